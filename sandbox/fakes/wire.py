"""The contract between the engine and a provider module, plus small framing helpers.

A provider module subclasses `Wire` and declares only its wire format: which paths it serves, how
to read a request into a `ChatRequest`, and how to shape responses, stream events, errors and
headers. The engine (`engine.py`) does all HTTP, auth, faults, limits and statistics.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.fakes.content import ChatRequest, Reply
from sandbox.fakes.limits import LimitSnapshot

if TYPE_CHECKING:
    from sandbox.fakes.engine import FakeProvider
    from sandbox.fakes.state import Fault
    from sandbox.fakes.transcription import AudioReply, Form

Event = tuple[bytes, bool]  # (framed SSE bytes, carries content?)


@dataclass
class Route:
    kind: str  # "chat" | "models" | "model" | "audio" (multipart transcription) | "custom" (Wire.serve)
    model: str | None = None
    stream: bool | None = None  # decided by the path (Gemini) or None (decided by the body)
    api_version: str = ""
    task: str = ""  # audio: "transcribe" | "translate"; custom: the wire's own name for the call
    starts_job: bool = False  # job faults (slow_job, fail_job) fire only on such requests


@dataclass
class Ctx:
    """Per-request values shared by the response, its stream events and its headers."""

    provider: str
    seq: int
    created: int
    model: str
    route: Route
    extra: dict[str, Any] = field(default_factory=dict)
    # ids already derived (every chunk of a stream repeats its response's id): one hash each
    _ids: dict[tuple[str, str, int], str] = field(default_factory=dict, repr=False, compare=False)

    def hex_id(self, salt: str = "", length: int = 24) -> str:
        key = ("hex", salt, length)
        found = self._ids.get(key)
        if found is None:
            digest = hashlib.sha1(f"{self.provider}:{self.seq}:{salt}".encode()).hexdigest()
            found = self._ids[key] = digest[:length]
        return found

    def alnum_id(self, salt: str, length: int) -> str:
        key = ("alnum", salt, length)
        found = self._ids.get(key)
        if found is None:
            digest = hashlib.sha256(f"{self.provider}:{self.seq}:{salt}".encode()).digest()
            alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
            found = self._ids[key] = "".join(alphabet[b % len(alphabet)] for b in digest[:length])
        return found


@dataclass
class ErrorInfo:
    """What went wrong, for `Wire.error` to phrase in the provider's own words."""

    kind: str  # auth_missing | auth_invalid | auth_fault | model_not_found | path_not_found
    #            | bad_request | rate_limited | server_500 | server_503 | too_large | bad_audio
    #            | a wire's own (BadRequest.kind)
    message: str = ""
    model: str | None = None
    snap: LimitSnapshot | None = None
    retry_after: float | None = None
    detail: Any = None  # structured detail of a rejected request (e.g. Mistral's validation errors)


class BadRequest(ValueError):
    """A body the real provider would reject. `kind` names the rejection for `Wire.error` (the
    default `bad_request` is each provider's plain 400); `detail` carries structured detail."""

    def __init__(self, message: str, kind: str = "bad_request", detail: Any = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.detail = detail


class Wire:
    name = "base"
    sentinel: bytes | None = None  # e.g. b"data: [DONE]\n\n"
    base_path = ""  # appended to the root URL to form the SDK's base URL

    def match(self, method: str, path: str) -> Route | None:
        raise NotImplementedError

    def api_key(self, headers: dict[str, str], query: dict[str, str]) -> str | None:
        auth = headers.get("authorization", "")
        return auth[7:].strip() or None if auth.lower().startswith("bearer ") else None

    def model_of(self, route: Route, body: dict[str, Any]) -> str | None:
        return route.model or (str(body["model"]) if body.get("model") is not None else None)

    def parse_chat(self, body: dict[str, Any], route: Route) -> ChatRequest:
        raise NotImplementedError

    def check_strict(self, body: dict[str, Any], route: Route) -> None:
        """Raise `BadRequest` for what the real provider rejects although `parse_chat` could read it
        (strict mode, the default). Lenient mode skips this, to test clients that are known to
        send such bodies without failing on them."""

    def call_id(self, ctx: Ctx, name: str, index: int) -> str:
        return f"call_{ctx.alnum_id(f'tool{index}', 24)}"

    def completion(self, req: ChatRequest, reply: Reply, ctx: Ctx) -> dict[str, Any]:
        raise NotImplementedError

    def stream(self, req: ChatRequest, reply: Reply, ctx: Ctx) -> Iterator[Event]:
        raise NotImplementedError

    def broken_event(self, ctx: Ctx) -> bytes:
        return b'data: {"id": "' + ctx.hex_id().encode() + b'", "choices": [{"delta": {"content": "br\n\n'

    def error(self, info: ErrorInfo, ctx: Ctx) -> tuple[int, dict[str, Any], dict[str, str]]:
        raise NotImplementedError

    def limit_headers(self, snap: LimitSnapshot) -> dict[str, str]:
        return {}

    def response_headers(self, ctx: Ctx) -> dict[str, str]:
        return {}

    def models_body(self, models: list[str], ctx: Ctx) -> dict[str, Any]:
        raise NotImplementedError

    def model_body(self, model: str, ctx: Ctx) -> dict[str, Any]:
        raise NotImplementedError

    # --- transcription (route kind "audio": a multipart body) ----------------------------------

    def transcribe(self, form: Form, route: Route, ctx: Ctx) -> AudioReply:
        """Answer a multipart transcription/translation request (model already checked to be
        served); raise `BadRequest` for what the provider rejects. `AudioReply.billed_seconds`
        is charged to the audio-seconds limits."""
        raise BadRequest(f"{self.name} has no transcription endpoint", kind="path_not_found")

    # --- anything else (route kind "custom") -----------------------------------------------------

    def serve(
        self, fake: FakeProvider, route: Route, body: dict[str, Any], ctx: Ctx, fault: Fault | None
    ) -> tuple[int, Any, dict[str, str]]:
        """(status, JSON body, headers) for a route of kind "custom" (e.g. Replicate predictions).
        Auth and the faults that replace a response are done by the engine; limits and state are
        the wire's to apply through `fake`; `fault` may be a job fault (slow_job, fail_job)."""
        raise NotImplementedError


# --- helpers -----------------------------------------------------------------------------------


# `json.dumps(obj, separators=(",", ":"))`, whose non-default separators build a new encoder for
# every call: a stream's every event went through one.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def sse_data(obj: Any) -> bytes:
    return b"data: " + _COMPACT.encode(obj).encode() + b"\n\n"


def sse_event(name: str, obj: Any) -> bytes:
    return f"event: {name}\n".encode() + sse_data(obj)


def go_duration(seconds: float) -> str:
    """Go's time.Duration formatting as used in x-ratelimit-reset-*: 12ms, 1s, 7.66s, 6m0s."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    sec_text = f"{secs:.2f}".rstrip("0").rstrip(".")
    if hours:
        return f"{int(hours)}h{int(minutes)}m{sec_text}s"
    if minutes:
        return f"{int(minutes)}m{sec_text}s"
    return f"{sec_text}s"


def match_path(pattern: str, path: str) -> dict[str, str] | None:
    found = re.fullmatch(pattern, path)
    return found.groupdict() if found else None
