"""The one HTTP engine behind every fake provider.

`FakeProvider` owns a `ThreadingHTTPServer` on 127.0.0.1 (random free port, daemon threads) and a
`Wire` (the provider's format). The request handler does, in order: route → read body → stats →
auth → injected fault → models listing or chat (strict request checks, unknown model, rate
limits, latency, reply, JSON or SSE). The `/_sandbox/*` control endpoints (faults, limits,
stats, reset) need no auth.

HTTP/1.1 with keep-alive: JSON bodies carry Content-Length, streams use chunked encoding, so a
cut stream surfaces in clients as an incomplete chunked body, as it does with real providers.
"""

from __future__ import annotations

import itertools
import json
import math
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sandbox.fakes.config import ProviderConfig
from sandbox.fakes.content import ChatRequest, Reply, make_reply
from sandbox.fakes.limits import RateLimiter, parse_dimensions, parse_model_limits
from sandbox.fakes.state import Fault, FaultBook, Stats
from sandbox.fakes.transcription import AudioReply, Form, parse_multipart
from sandbox.fakes.wire import BadRequest, Ctx, ErrorInfo, Route, Wire

_ERROR_FAULTS = {"429": "rate_limited", "500": "server_500", "503": "server_503", "401": "auth_fault"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients dropping idle keep-alive connections is normal; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class FakeProvider:
    """One fake provider server. Public API: name, base_url, root_url, models, add_fault,
    clear_faults, faults, set_limits, limits, stats, reset, stop."""

    def __init__(self, wire: Wire, config: ProviderConfig) -> None:
        self.wire = wire
        self.name = wire.name
        self.config = config
        self.models: list[str] = list(config.models)
        self.stop_event = threading.Event()
        self._faults = FaultBook(config.seed)
        self._stats = Stats()
        self.limiter = RateLimiter(config.limits, config.org_limits)
        self._seq = itertools.count(1)
        self._seq_lock = threading.Lock()
        self.state: dict[str, Any] = {}  # a wire's own state (e.g. Replicate predictions); cleared on reset
        self.state_lock = threading.Lock()
        for fault in config.faults:
            self._faults.add(fault)
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.fake = self  # type: ignore[attr-defined]
        self.port: int = self.httpd.server_address[1]
        self.root_url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.root_url + wire.base_path
        self._thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-{self.name}",
            daemon=True,
        )

    # --- lifecycle and the Python control API -------------------------------------------------

    def start(self) -> FakeProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent); requests hanging in a `timeout` fault are released."""
        if self.stop_event.is_set():
            return
        self.stop_event.set()
        if self._thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()

    def add_fault(self, **fault: Any) -> dict[str, Any]:
        return self._faults.add(fault).to_dict()

    def clear_faults(self) -> None:
        self._faults.clear()

    def faults(self) -> list[dict[str, Any]]:
        return self._faults.list()

    def set_limits(self, limits: Any = None, org_limits: Any = None) -> dict[str, Any]:
        """Replace the per-model limits (`{"default": {...}, "<model>": {...}}`) and/or the
        provider-wide ones (`{"rps": 1, "rpmonth": 1000}`); counting starts over. `reset()` goes
        back to the configured limits."""
        self.limiter.configure(
            None if limits is None else parse_model_limits(limits),
            None if org_limits is None else parse_dimensions(org_limits, "org_limits"),
        )
        return self.limits()

    def limits(self) -> dict[str, Any]:
        """Configured limits and what each model and the organisation has used."""
        return self.limiter.describe()

    def stats(self) -> dict[str, Any]:
        return self._stats.snapshot()

    def reset(self) -> None:
        """Clear statistics, rate-limit counters and all faults; limits back to the configured ones."""
        self._stats.clear()
        self.limiter.reset()
        self._faults.clear()
        with self.state_lock:
            self.state.clear()
        with self._seq_lock:
            self._seq = itertools.count(1)

    def describe(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "root_url": self.root_url, "models": list(self.models)}

    # --- used by the handler ------------------------------------------------------------------

    def new_ctx(self, route: Route, model: str | None) -> Ctx:
        with self._seq_lock:
            seq = next(self._seq)
        return Ctx(self.name, seq, int(time.time()), model or "", route)

    def sleep(self, ms: float) -> None:
        if ms > 0:
            self.stop_event.wait(ms / 1000.0)

    @property
    def stats_book(self) -> Stats:
        return self._stats

    @property
    def fault_book(self) -> FaultBook:
        return self._faults


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-provider/1.0"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without NODELAY, Nagle + delayed ACK add ~40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    @property
    def fake(self) -> FakeProvider:
        return self.server.fake  # type: ignore[attr-defined]

    # --- dispatch -----------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        raw = self._read_body()
        if url.path.startswith("/_sandbox/"):
            self._sandbox(method, url.path, raw)
            return
        route = self.fake.wire.match(method, url.path)
        ctx = self.fake.new_ctx(route or Route("none"), None)
        if route is None:
            self.fake.stats_book.received(None)
            self._error(ErrorInfo("path_not_found", message=f"Invalid URL ({method} {url.path})"), ctx)
            return
        body: Any
        if route.kind == "audio":
            try:
                body = parse_multipart(self.headers.get("Content-Type", ""), raw)
            except BadRequest as exc:
                self.fake.stats_book.received(None)
                self._error(ErrorInfo(exc.kind, message=str(exc)), ctx)
                return
        else:
            try:
                body = json.loads(raw) if raw.strip() else {}
                if not isinstance(body, dict):
                    raise ValueError("body must be a JSON object")
            except ValueError as exc:
                self.fake.stats_book.received(route.model)
                self._error(ErrorInfo("bad_request", message=f"We could not parse the JSON body: {exc}"), ctx)
                return
        self._api(route, body, dict(parse_qsl(url.query)), ctx)

    def _api(self, route: Route, body: Any, query: dict[str, str], ctx: Ctx) -> None:
        fake = self.fake
        if isinstance(body, Form):
            model: str | None = body.get("model")
        else:
            model = fake.wire.model_of(route, body) if route.kind in ("chat", "custom") else None
        ctx.model = model or ""
        ctx.extra["headers"] = {k.lower(): v for k, v in self.headers.items()}
        fake.stats_book.received(model)
        key = fake.wire.api_key({k.lower(): v for k, v in self.headers.items()}, query)
        if not key or key.startswith("invalid"):
            self._error(ErrorInfo("auth_missing" if not key else "auth_invalid", model=model), ctx)
            return
        fault = fake.fault_book.pick(model, jobs=route.starts_job)
        if fault is not None:
            fake.stats_book.fault(fault.fault)
            if self._early_fault(fault, ctx):
                return
        if route.kind == "models":
            self._ok_json(
                fake.wire.models_body(fake.models, ctx), ctx, fault, fake.wire.response_headers(ctx)
            )
        elif route.kind == "model":
            if route.model in fake.models:
                self._ok_json(
                    fake.wire.model_body(route.model, ctx), ctx, fault, fake.wire.response_headers(ctx)
                )
            else:
                self._error(ErrorInfo("model_not_found", model=route.model), ctx)
        elif route.kind == "audio":
            self._audio(route, body, ctx, fault)
        elif route.kind == "custom":
            self._custom(route, body, ctx, fault)
        else:
            self._chat(route, body, ctx, fault)

    def _audio(self, route: Route, form: Form, ctx: Ctx, fault: Fault | None) -> None:
        """A multipart transcription/translation: the wire checks the form and the audio and
        shapes the answer; limits count the request and its billed audio seconds."""
        fake = self.fake
        if ctx.model and ctx.model not in fake.models:
            self._error(ErrorInfo("model_not_found", model=ctx.model), ctx)
            return
        try:
            reply = fake.wire.transcribe(form, route, ctx)
        except BadRequest as exc:
            self._error(ErrorInfo(exc.kind, message=str(exc), model=ctx.model or None, detail=exc.detail), ctx)
            return
        snap = fake.limiter.admit(ctx.model, 0, math.ceil(reply.billed_seconds))
        if snap.exceeded:
            self._error(ErrorInfo("rate_limited", model=ctx.model, snap=snap), ctx)
            return
        headers = {**fake.wire.response_headers(ctx), **fake.wire.limit_headers(snap), **reply.extra_headers}
        fake.sleep(fake.config.latency_ms)
        self._ok_reply(reply, ctx, fault, headers)

    def _custom(self, route: Route, body: dict[str, Any], ctx: Ctx, fault: Fault | None) -> None:
        fake = self.fake
        status, answer, headers = fake.wire.serve(fake, route, body, ctx, fault)
        headers = {**fake.wire.response_headers(ctx), **headers}
        if status >= 400:
            self._send_json(status, answer, headers, ctx)
            return
        fake.sleep(fake.config.latency_ms)
        self._ok_json(answer, ctx, fault, headers, status)

    def _chat(self, route: Route, body: dict[str, Any], ctx: Ctx, fault: Fault | None) -> None:
        fake = self.fake
        try:
            if fake.config.strict:
                fake.wire.check_strict(body, route)
            req = fake.wire.parse_chat(body, route)
        except BadRequest as exc:
            self._error(ErrorInfo(exc.kind, message=str(exc), model=ctx.model, detail=exc.detail), ctx)
            return
        if req.model not in fake.models:
            self._error(ErrorInfo("model_not_found", model=req.model), ctx)
            return
        if route.stream is not None:
            req.stream = route.stream
        reply = make_reply(fake.name, req, lambda name, i: fake.wire.call_id(ctx, name, i))
        snap = fake.limiter.admit(req.model, reply.prompt_tokens)
        if snap.exceeded:
            self._error(ErrorInfo("rate_limited", model=req.model, snap=snap), ctx)
            return
        snap = fake.limiter.add_tokens(req.model, reply.completion_tokens)
        snap.cost = reply.total_tokens
        headers = {**fake.wire.response_headers(ctx), **fake.wire.limit_headers(snap)}
        fake.sleep(fake.config.latency_ms)
        if req.stream:
            self._stream(req, reply, ctx, headers, fault)
        else:
            self._ok_json(fake.wire.completion(req, reply, ctx), ctx, fault, headers)

    # --- faults -------------------------------------------------------------------------------

    def _early_fault(self, fault: Fault, ctx: Ctx) -> bool:
        """Faults that replace the response entirely. Returns True when the request is done."""
        if fault.fault in _ERROR_FAULTS:
            info = ErrorInfo(
                _ERROR_FAULTS[fault.fault], model=ctx.model or None, retry_after=fault.retry_after
            )
            if fault.fault == "429":
                info.snap = self.fake.limiter.exhausted(ctx.model or None, fault.retry_after)
                assert info.snap.exceeded is not None
                info.retry_after = info.snap.exceeded.retry_after
            self._error(info, ctx)
            return True
        if fault.fault == "timeout":
            self.fake.stop_event.wait(fault.hang_seconds)
            self.close_connection = True
            return True
        if fault.fault == "reset":
            self._reset_connection()
            return True
        return False

    def _reset_connection(self) -> None:
        """Close abruptly: SO_LINGER 0 makes the kernel send RST instead of FIN."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    # --- writing ------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_json(self, status: int, body: Any, headers: dict[str, str], ctx: Ctx) -> None:
        data = json.dumps(body).encode()
        self.fake.stats_book.responded(ctx.model or None, status)
        self._send_head(
            status, {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}
        )
        self.wfile.write(data)

    def _error(self, info: ErrorInfo, ctx: Ctx) -> None:
        status, body, headers = self.fake.wire.error(info, ctx)
        self._send_json(status, body, {**self.fake.wire.response_headers(ctx), **headers}, ctx)

    def _ok_json(
        self, body: Any, ctx: Ctx, fault: Fault | None, headers: dict[str, str], status: int = 200
    ) -> None:
        self._ok_bytes(json.dumps(body).encode(), "application/json", ctx, fault, headers, status)

    def _ok_reply(self, reply: AudioReply, ctx: Ctx, fault: Fault | None, headers: dict[str, str]) -> None:
        if isinstance(reply.body, str):
            self._ok_bytes(reply.body.encode(), reply.content_type, ctx, fault, headers)
        else:
            self._ok_json(reply.body, ctx, fault, headers)

    def _ok_bytes(
        self, data: bytes, content_type: str, ctx: Ctx, fault: Fault | None, headers: dict[str, str],
        status: int = 200,
    ) -> None:  # fmt: skip
        """A successful buffered answer, broken as the active fault says (malformed, cut_stream,
        trickle) or whole."""
        kind = fault.fault if fault is not None else None
        self.fake.stats_book.responded(ctx.model or None, status)
        if kind == "trickle" and fault is not None:
            self._send_head(status, {"Content-Type": content_type, "Content-Length": str(len(data)), **headers})
            self._trickle(data, fault, chunked=False)
            return
        if kind not in ("malformed", "cut_stream"):
            self._send_head(status, {"Content-Type": content_type, "Content-Length": str(len(data)), **headers})
            self.wfile.write(data)
            return
        half = data[: max(1, len(data) // 2)]
        length = len(half) if kind == "malformed" else len(data)
        # A complete (if broken) response announces that the connection closes after it, so a
        # pooled client does not send its next request into a socket that is going away.
        closing = {"Connection": "close"} if kind == "malformed" else {}
        self._send_head(status, {"Content-Type": content_type, "Content-Length": str(length), **closing, **headers})
        self.wfile.write(half)
        self.close_connection = True

    def _trickle(self, data: bytes, fault: Fault, *, chunked: bool) -> bool:
        """Send `data` one byte at a time, `byte_delay_s` apart: every read the client makes gets
        a byte well within any per-read timeout, so only a wall-clock deadline stops it. False
        when the client went away (or the fake is stopping)."""
        try:
            for index in range(len(data)):
                byte = data[index : index + 1]
                if chunked:
                    self._write_chunk(byte)
                else:
                    self.wfile.write(byte)
                    self.wfile.flush()
                if self.fake.stop_event.wait(fault.byte_delay_s):
                    self.close_connection = True
                    return False
        except OSError:  # the client gave up
            self.close_connection = True
            return False
        return True

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")

    def _stream(
        self, req: ChatRequest, reply: Reply, ctx: Ctx, headers: dict[str, str], fault: Fault | None
    ) -> None:
        fake = self.fake
        head = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
                "Transfer-Encoding": "chunked", **headers}  # fmt: skip
        fake.stats_book.responded(ctx.model or None, 200)
        self._send_head(200, head)
        kind = fault.fault if fault is not None else None
        sent = 0
        try:
            for data, is_content in fake.wire.stream(req, reply, ctx):
                if kind == "cut_stream" and is_content and fault is not None and sent >= fault.after_chunks:
                    self.close_connection = True
                    return
                if kind == "trickle" and fault is not None:
                    if not self._trickle(data, fault, chunked=True):
                        return
                else:
                    self._write_chunk(data)
                sent += int(is_content)
                if kind == "malformed" and sent == 1 and is_content:
                    self._write_chunk(fake.wire.broken_event(ctx))
                self.wfile.flush()
                fake.sleep(fault.delay_ms if kind == "slow_stream" and fault is not None else fake.config.chunk_delay_ms)
            if fake.wire.sentinel:
                self._write_chunk(fake.wire.sentinel)
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client went away mid-stream: it stops here, as a provider would
            self.close_connection = True
            fake.stats_book.abandoned()

    # --- /_sandbox control endpoints ----------------------------------------------------------

    def _sandbox(self, method: str, path: str, raw: bytes) -> None:
        fake = self.fake
        ctx = fake.new_ctx(Route("sandbox"), None)
        if path == "/_sandbox/faults" and method == "POST":
            try:
                data = json.loads(raw or b"{}")
                items = data if isinstance(data, list) else [data]
                added = [fake.add_fault(**item) for item in items]
            except (ValueError, TypeError) as exc:
                self._send_plain(400, {"error": str(exc)}, ctx)
                return
            self._send_plain(200, {"added": added, "faults": fake.faults()}, ctx)
        elif path == "/_sandbox/faults" and method == "DELETE":
            fake.clear_faults()
            self._send_plain(200, {"faults": []}, ctx)
        elif path == "/_sandbox/faults" and method == "GET":
            self._send_plain(200, {"faults": fake.faults()}, ctx)
        elif path == "/_sandbox/limits" and method == "GET":
            self._send_plain(200, fake.limits(), ctx)
        elif path == "/_sandbox/limits" and method == "POST":
            try:
                data = json.loads(raw or b"{}")
                if not isinstance(data, dict):
                    raise ValueError("expected {\"limits\": {...}, \"org_limits\": {...}}")
                described = fake.set_limits(data.get("limits"), data.get("org_limits"))
            except ValueError as exc:
                self._send_plain(400, {"error": str(exc)}, ctx)
                return
            self._send_plain(200, described, ctx)
        elif path == "/_sandbox/stats" and method == "GET":
            self._send_plain(200, fake.stats(), ctx)
        elif path == "/_sandbox/reset" and method == "POST":
            fake.reset()
            self._send_plain(200, {"reset": True}, ctx)
        elif path == "/_sandbox/config" and method == "GET":
            self._send_plain(200, {"name": fake.name, **fake.describe()}, ctx)
        else:
            self._send_plain(404, {"error": f"no sandbox endpoint {method} {path}"}, ctx)

    def _send_plain(self, status: int, body: Any, ctx: Ctx) -> None:
        data = json.dumps(body).encode()
        self._send_head(status, {"Content-Type": "application/json", "Content-Length": str(len(data))})
        self.wfile.write(data)
