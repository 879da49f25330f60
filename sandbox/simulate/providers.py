"""The simulated providers: one handler (`SimulatedProviders.handle`, httpx request in, httpx
response out; every container's client hands it its requests, `engine.SimClient`) that answers as
Groq, Gemini, Cohere, Mistral and OpenAI would, on the virtual clock, enforcing the catalog's limits.

Chat bodies, stream events, rate-limit headers and error bodies are the sandbox fakes' own
(`sandbox/fakes/*_fake.py` wires, called without HTTP); transcription answers are minimal bodies in
each provider's shape. Limits are the catalog's, per model and per organisation, counted the way
providers count them: exact sliding windows (what was used in the last N seconds) and calendar
months, admitted on the request and its prompt tokens, completion tokens charged after. A call
that does not fit is answered 429 *and recorded as a violation*: the gateway is supposed never
to send one, so any violation is a gateway bug (or a scenario's storm, which is recorded apart).

What a request consumes is stated inside its prompt by the simulator (`[sim in=N out=M]`): the
provider counts N x its catalog token factor prompt tokens, writes M tokens (at most max_tokens),
and takes `first_token_s + M x per_token_s` (x a log-normal jitter, x a slow scenario's factor) to
answer; a call the gateway gave less time than that times out after the time it was given. A
stream sends its first delta of content after `first_token_s` (same factors) and ends when the
whole answer is written (`streams.py`); a stream that starts in time but outlasts the time given
to the whole is cut then.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from llm_gateway.providers import deadline_io
from llm_gateway.selection.catalog import Catalog, ModelEntry
from llm_gateway.state.metering import AUDIO_SECONDS, MONTH, REQUESTS, TOKENS
from sandbox.fakes.content import make_reply
from sandbox.fakes.limits import (
    DIMENSIONS,
    CalendarMonth,
    Exceeded,
    LimitSnapshot,
    SlidingWindow,
    WindowState,
)
from sandbox.fakes.registry import FAKES
from sandbox.fakes.wire import BadRequest, Ctx, ErrorInfo, Route, Wire
from sandbox.simulate import streams
from sandbox.simulate.clock import VirtualClock
from sandbox.simulate.scenario import Scenario

HOSTS = {"api.groq.com": "groq", "generativelanguage.googleapis.com": "gemini", "api.cohere.com": "cohere",
         "api.mistral.ai": "mistral", "api.openai.com": "openai"}
MARKER = re.compile(r"\[sim in=(\d+) out=(\d+)\]")
# (unit, window seconds) → the limit's short name, as the catalog and the fakes spell them
_SHORT = {(REQUESTS, 1): "rps", (REQUESTS, 60): "rpm", (REQUESTS, 3600): "rph", (REQUESTS, 86400): "rpd",
          (REQUESTS, MONTH): "rpmonth", (TOKENS, 60): "tpm", (TOKENS, 3600): "tph", (TOKENS, 86400): "tpd",
          (TOKENS, MONTH): "tpmonth", (AUDIO_SECONDS, 3600): "ash", (AUDIO_SECONDS, 86400): "asd"}
# the fakes' wires know these limit names; the others are reported under the nearest one
_WIRE_NAME = {"rph": "rpm", "tph": "tpm", "ash": "rpm", "asd": "rpd"}


@dataclass
class Window:
    counter: str
    short: str
    unit: str
    counts: Any  # SlidingWindow | CalendarMonth
    peak: int = 0  # the most ever counted in this window at once (after a charge)


@dataclass
class ProviderCall:
    """One call that reached a simulated provider."""

    at: float
    provider: str
    model: str
    outcome: str  # ok | limit_429 | storm_429 | outage | revoked | error_500 | timeout | bad_request
    capability: str


@dataclass
class Violation:
    at: float
    provider: str
    model: str
    limit: str  # e.g. "groq#llama-3.1-8b-instant rpm=30"
    used: int
    requested: int


@dataclass
class Limiter:
    """Every window the catalog knows, shared the way its meters are (model, organisation)."""

    catalog: Catalog
    windows: dict[tuple[str, str], Window] = field(default_factory=dict)
    by_model: dict[tuple[str, str], list[Window]] = field(default_factory=dict)

    def of(self, entry: ModelEntry) -> list[Window]:
        found = self.by_model.get((entry.provider, entry.model))
        if found is None:
            found = []
            for meter in self.catalog.meters(entry):
                seconds = meter.limit.period.seconds
                for unit, limit in meter.limit.maxima.items():
                    short = _SHORT.get((unit, seconds), f"{unit}/{seconds}s")
                    key = (meter.counter, short)
                    if key not in self.windows:
                        counts = CalendarMonth(limit) if seconds == MONTH else SlidingWindow(limit, float(seconds))
                        self.windows[key] = Window(meter.counter, short, unit, counts)
                    found.append(self.windows[key])
            self.by_model[(entry.provider, entry.model)] = found
        return found

    def admit(self, entry: ModelEntry, amounts: dict[str, int], now: float) -> tuple[Window, int, float] | None:
        """Count the call, or return the window it does not fit in (with the amount and the wait)."""
        windows = self.of(entry)
        worst: tuple[Window, int, float] | None = None
        for window in windows:
            need = amounts.get(window.unit, 0)
            if not need:
                continue
            wait = window.counts.fits_in(need, now)
            if wait > 0 and (worst is None or wait > worst[2]):
                worst = (window, need, wait)
        if worst is None:
            self.charge(entry, amounts, now)
        return worst

    def charge(self, entry: ModelEntry, amounts: dict[str, int], now: float) -> None:
        for window in self.of(entry):
            need = amounts.get(window.unit, 0)
            if need:
                window.counts.add(need, now)
                window.peak = max(window.peak, window.counts.used)

    def snapshot(self, entry: ModelEntry, now: float, exceeded: Exceeded | None = None) -> LimitSnapshot:
        """What the wire's headers report: per limit name, the scope with the least left."""
        states: dict[str, WindowState] = {}
        for window in self.of(entry):
            name = _WIRE_NAME.get(window.short, window.short)
            if name not in DIMENSIONS:
                continue
            counts = window.counts
            remaining = counts.remaining(now)
            if name not in states or remaining < states[name].remaining:  # only a kept one is built
                states[name] = WindowState(counts.limit, remaining, counts.reset_in(now))
        return LimitSnapshot(states, exceeded=exceeded)

    def remaining_share(self, provider: str, now: float) -> float:
        """Free capacity left at this provider: per free model, the least left (as a share) of its
        windows of a minute or longer, any unit (a 1-second window is full or empty from one
        instant to the next); averaged over the models, weighted by their daily request limit."""
        total = left = 0.0
        for entry in self.catalog.entries:
            if entry.provider != provider or not entry.is_free:
                continue
            windows = [w for w in self.of(entry) if getattr(w.counts, "seconds", 60) >= 60 and w.counts.limit]
            if not windows:
                continue
            daily = [w.counts.limit for w in windows if w.unit == REQUESTS and w.short == "rpd"]
            weight = float(daily[0]) if daily else 1000.0
            share = min(w.counts.remaining(now) / w.counts.limit for w in windows)
            total += weight
            left += weight * share
        return left / total if total else 0.0


class SimulatedProviders:
    """The transport behind every container's httpx client (`handle`)."""

    def __init__(self, catalog: Catalog, scenario: Scenario, clock: VirtualClock, seed: int) -> None:
        self.catalog = catalog
        self.scenario = scenario
        self.clock = clock
        self.rng = random.Random(f"providers:{seed}")
        self.limiter = Limiter(catalog)
        self.wires: dict[str, Wire] = {name: spec.wire for name, spec in FAKES.items()}
        self.calls: list[ProviderCall] = []
        self.violations: list[Violation] = []
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.bad_requests: list[str] = []
        self._seq = 0
        self._entries = {(e.provider, e.model): e for e in catalog.entries}
        self.token_factor = {e.key: catalog.token_factor(e) for e in catalog.entries}
        self.hourly: dict[str, Counter[int]] = defaultdict(Counter)  # outcome → hour → calls

    # --- the transport ----------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        provider = HOSTS[request.url.host]
        wire = self.wires[provider]
        path = request.url.path

        content = request.read()
        if "/audio/" in path or (provider == "gemini" and b'"audio/' in content):
            return self._transcription(provider, wire, request, content)
        route = wire.match(request.method, path) or Route("none")
        body = json.loads(content or b"{}")
        model = wire.model_of(route, body) or ""
        self._seq += 1
        ctx = Ctx(provider, self._seq, int(self.clock.wall()), model, route)
        entry = self._entries.get((provider, model))
        early = self._incident(provider, model, "chat", wire, ctx, request)
        if early is not None:
            return early
        try:
            wire.check_strict(body, route)
            req = wire.parse_chat(body, route)
        except BadRequest as exc:
            self._record(provider, model, "bad_request", "chat")
            self.bad_requests.append(f"{provider}/{model}: {exc}")
            return self._error(wire, ErrorInfo(exc.kind, message=str(exc), model=model, detail=exc.detail), ctx)
        if route.stream is not None:
            req.stream = route.stream
        if entry is None:
            self._record(provider, model, "bad_request", "chat")
            return self._error(wire, ErrorInfo("model_not_found", model=model), ctx)
        found = MARKER.search(req.prompt_text[-200:]) or MARKER.search(req.prompt_text)
        asked_in, asked_out = (int(found.group(1)), int(found.group(2))) if found else (10, 10)
        prompt = math.ceil(asked_in * self.token_factor[entry.key]) + 3
        completion = min(asked_out, req.max_tokens) if req.max_tokens else asked_out
        refused = self._admit(entry, {REQUESTS: 1, TOKENS: prompt}, wire, ctx, "chat")
        if refused is not None:
            return refused
        started = self.clock.now
        first, latency = self._latency(provider, tokens=completion)
        first_budget, whole_budget = _budgets(request, self.clock)
        reply = make_reply(provider, req, lambda name, i: wire.call_id(ctx, name, i))
        reply.prompt_tokens, reply.completion_tokens = prompt, completion
        reply.piece_words = streams.two_deltas(reply.text)  # the timing is `_latency`'s, whatever the deltas
        if reply.finish == "stop" and req.max_tokens and asked_out > req.max_tokens:
            reply.finish = "length"
        head, tail = streams.split(wire.stream(req, reply, ctx), wire.sentinel) if req.stream else (b"", b"")
        if not tail:
            first = latency  # a body sent whole (or a stream its first content ends): its first byte is its last
        if first > first_budget:
            self.clock.sleep(first_budget)
            self._record(provider, model, "timeout", "chat", started)
            raise httpx.ReadTimeout(f"no answer within {first_budget:.1f} s", request=request)
        cut = latency > whole_budget  # a stream that starts in time but outlasts the time it was given
        self.clock.sleep(first)
        now = self.clock.wall()
        if not cut:  # charged as the answer starts: the headers sent with its first byte count it
            self.limiter.charge(entry, {TOKENS: completion}, now)
        snap = self.limiter.snapshot(entry, now)
        snap.cost = reply.total_tokens
        headers = {**wire.response_headers(ctx), **wire.limit_headers(snap)}
        self._record(provider, model, "timeout" if cut else "ok", "chat", started)
        if req.stream:
            # The first content at the first token, the rest when the whole answer is written
            # (`streams.py`). As a provider streams: no Content-Length (a real stream is chunked),
            # and text in UTF-8, which is what httpx would make of a content type without a
            # charset; set here, it is not worked out again from the header for every answer.
            rest_s = (whole_budget if cut else latency) - first
            body = streams.PacedBody(head, tail, sleep=self.clock.sleep, rest_s=rest_s, cut=request if cut else None)
            response = httpx.Response(200, headers={**headers, "content-type": "text/event-stream"}, stream=body)
            response.encoding = "utf-8"
            return response
        return httpx.Response(200, headers=headers, json=wire.completion(req, reply, ctx))

    # --- transcription ------------------------------------------------------------------------------
    def _transcription(self, provider: str, wire: Wire, request: httpx.Request, content: bytes) -> httpx.Response:
        if provider == "gemini":
            model = request.url.path.rsplit("/", 1)[-1].split(":", 1)[0]
            audio_s = _audio_seconds_gemini(content)
        else:
            model = _form_field(content, "model") or ""
            audio_s = float(_form_field(content, "sim_duration") or 0) or _filename_seconds(content)
        self._seq += 1
        ctx = Ctx(provider, self._seq, int(self.clock.wall()), model, Route("chat", model))
        entry = self._entries.get((provider, model))
        early = self._incident(provider, model, "transcription", wire, ctx, request)
        if early is not None:
            return early
        if entry is None or entry.audio is None:
            self._record(provider, model, "bad_request", "transcription")
            return self._error(wire, ErrorInfo("model_not_found", model=model), ctx)
        seconds = max(1, math.ceil(audio_s))
        tokens = math.ceil(seconds * entry.audio.tokens_per_second) + 10 if entry.audio.tokens_per_second else 0
        amounts = {REQUESTS: 1, AUDIO_SECONDS: seconds, **({TOKENS: tokens} if tokens else {})}
        refused = self._admit(entry, amounts, wire, ctx, "transcription")
        if refused is not None:
            return refused
        started = self.clock.now
        _first, latency = self._latency(provider, tokens=0, audio_s=seconds)
        timeout = _budgets(request, self.clock)[0]
        if latency > timeout:
            self.clock.sleep(timeout)
            self._record(provider, model, "timeout", "transcription", started)
            raise httpx.ReadTimeout(f"no answer within {timeout:.1f} s", request=request)
        self.clock.sleep(latency)
        text = f"Simulated transcript of {seconds} s of audio."
        self._record(provider, model, "ok", "transcription", started)
        segments = [{"id": 0, "start": 0.0, "end": float(seconds), "text": text}]
        if provider == "gemini":
            out = len(text) // 4
            self.limiter.charge(entry, {TOKENS: out}, self.clock.wall())
            return httpx.Response(200, json={
                "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": tokens, "candidatesTokenCount": out,
                                  "totalTokenCount": tokens + out}})
        if provider == "mistral":
            return httpx.Response(200, json={"model": model, "text": text, "language": "en", "segments": segments,
                                             "usage": {"prompt_audio_seconds": seconds, "prompt_tokens": 4,
                                                       "total_tokens": 10}})
        body: dict[str, Any] = {"task": "transcribe", "language": "english", "duration": float(seconds), "text": text,
                                "segments": segments, "words": [{"word": "Simulated", "start": 0.0, "end": 0.5}]}
        if provider == "openai":
            if "transcribe" in model:
                body = {"text": text, "usage": {"type": "tokens", "input_tokens": seconds * 10, "output_tokens": 20,
                                                "total_tokens": seconds * 10 + 20}}
            else:
                body["usage"] = {"type": "duration", "seconds": seconds}
        return httpx.Response(200, json=body)

    # --- shared steps -------------------------------------------------------------------------------
    def _incident(self, provider: str, model: str, capability: str, wire: Wire, ctx: Ctx,
                  request: httpx.Request) -> httpx.Response | None:
        """A scenario event or a background error answers instead of the model, if one applies."""
        now = self.clock.now
        for event in self.scenario.active(provider, now):
            if event.type == "outage":
                self._record(provider, model, "outage", capability)
                if event.mode == "refused":
                    raise httpx.ConnectError("connection refused", request=request)
                if event.mode == "timeout":
                    timeout = _budgets(request, self.clock)[0]
                    self.clock.sleep(timeout)
                    raise httpx.ReadTimeout(f"no answer within {timeout:.1f} s", request=request)
                self.clock.sleep(0.05)
                return self._error(wire, ErrorInfo("server_500" if event.mode == "500" else "server_503", model=model), ctx)
            if event.type == "key_revoked":
                self._record(provider, model, "revoked", capability)
                return self._error(wire, ErrorInfo("auth_invalid", model=model), ctx)
            if event.type == "rate_limit_storm" and self.rng.random() < event.share:
                self._record(provider, model, "storm_429", capability)
                entry = self._entries.get((provider, model))
                snap = self.limiter.snapshot(entry, self.clock.wall()) if entry else LimitSnapshot()
                snap.exceeded = Exceeded(DIMENSIONS["rpm"], "model", 1, 1, 1, event.retry_after_s)
                return self._error(wire, ErrorInfo("rate_limited", model=model, snap=snap,
                                                   retry_after=event.retry_after_s), ctx)
        if self.rng.random() < self.scenario.latency_of(provider).error_rate:
            self._record(provider, model, "error_500", capability)
            self.clock.sleep(0.1)
            return self._error(wire, ErrorInfo("server_500", model=model), ctx)
        return None

    def _admit(self, entry: ModelEntry, amounts: dict[str, int], wire: Wire, ctx: Ctx,
               capability: str) -> httpx.Response | None:
        now = self.clock.wall()
        refused = self.limiter.admit(entry, amounts, now)
        if refused is None:
            return None
        window, need, wait = refused
        self._record(entry.provider, entry.model, "limit_429", capability)
        self.violations.append(Violation(self.clock.now, entry.provider, entry.model,
                                         f"{window.counter} {window.short}={window.counts.limit}",
                                         window.counts.used, need))
        dimension = DIMENSIONS[_WIRE_NAME.get(window.short, window.short)] if _WIRE_NAME.get(
            window.short, window.short) in DIMENSIONS else DIMENSIONS["rpm"]
        scope = "org" if window.counter.endswith("#*") else "model"
        snap = self.limiter.snapshot(entry, now, Exceeded(dimension, scope, window.counts.limit, window.counts.used,
                                                          need, wait))
        return self._error(wire, ErrorInfo("rate_limited", model=entry.model, snap=snap), ctx)

    def _latency(self, provider: str, *, tokens: int, audio_s: float = 0.0) -> tuple[float, float]:
        """(first byte of a stream, whole answer): `first_token_s`, then the output and audio,
        both times one log-normal jitter and a slow scenario's factor."""
        spec = self.scenario.latency_of(provider)
        factor = math.exp(spec.jitter * self.rng.gauss(0.0, 1.0) - spec.jitter**2 / 2) if spec.jitter else 1.0
        for event in self.scenario.active(provider, self.clock.now):
            if event.type == "slow":
                factor *= event.factor
        base = spec.first_token_s + tokens * spec.per_token_s + audio_s * spec.audio_factor
        return spec.first_token_s * factor, base * factor

    def _error(self, wire: Wire, info: ErrorInfo, ctx: Ctx) -> httpx.Response:
        status, body, headers = wire.error(info, ctx)
        return httpx.Response(status, headers={**wire.response_headers(ctx), **headers}, json=body)

    def _record(self, provider: str, model: str, outcome: str, capability: str, at: float | None = None) -> None:
        """One call, at the moment it reached the provider (`at`; now if not given)."""
        at = self.clock.now if at is None else at
        self.calls.append(ProviderCall(at, provider, model, outcome, capability))
        self.outcomes[(provider, outcome)] += 1
        self.hourly[outcome][int(at // 3600)] += 1

    def peaks(self) -> list[dict[str, Any]]:
        """Per window: its limit and the most it ever counted (never above the limit unless a
        violation was recorded; token windows may pass by the completion tokens charged late)."""
        return [{"counter": w.counter, "limit": w.short, "max": w.counts.limit, "peak": w.peak}
                for w in self.limiter.windows.values()]


def _read_timeout(request: httpx.Request) -> float:
    timeout = request.extensions.get("timeout", {}).get("read")
    return float(timeout) if timeout else 20.0


def _budgets(request: httpx.Request, clock: VirtualClock) -> tuple[float, float]:
    """(first byte, whole answer): the time the gateway gave this call. Its read timeout bounds
    the whole answer; the engine's deadline scope bounds its first byte (for a stream sent live,
    the scope is the attempt's timeout and the read timeout what is left of the stream deadline;
    the scope is per greenlet in a simulation, see `clock.powertools_on`). Scopes are on the
    virtual clock during a simulation (`clock.powertools_on`), so what is left of one is its
    budget in virtual seconds, whatever the real time the simulation took to get here."""
    read = _read_timeout(request)
    at: float | None = getattr(deadline_io._SCOPE, "at", None)
    return (read if at is None else max(0.0, min(read, at - clock.monotonic()))), read


def _form_field(content: bytes, name: str) -> str | None:
    marker = f'name="{name}"'.encode()
    at = content.find(marker)
    if at < 0:
        return None
    start = content.find(b"\r\n\r\n", at)
    if start < 0:
        return None
    end = content.find(b"\r\n", start + 4)
    return content[start + 4 : end].decode(errors="replace")


_SECONDS_IN_NAME = re.compile(rb'filename="sim-(\d+(?:\.\d+)?)s\.')


def _filename_seconds(content: bytes) -> float:
    found = _SECONDS_IN_NAME.search(content)
    return float(found.group(1)) if found else 1.0


def _audio_seconds_gemini(content: bytes) -> float:
    body = json.loads(content)
    for part in body.get("contents", [{}])[0].get("parts", []):
        text = part.get("text") or ""
        found = re.search(r"sim-(\d+(?:\.\d+)?)s", text)
        if found:
            return float(found.group(1))
    inline = [p for p in body.get("contents", [{}])[0].get("parts", []) if "inlineData" in p]
    return 1.0 if not inline else _seconds_from_b64(inline[0]["inlineData"].get("data", ""))


def _seconds_from_b64(data: str) -> float:
    import base64

    raw = base64.b64decode(data[:200] + "=" * (-len(data[:200]) % 4), validate=False)
    found = re.search(rb"sim-(\d+(?:\.\d+)?)s", raw)
    return float(found.group(1)) if found else 1.0


Handler = Callable[[httpx.Request], httpx.Response]
