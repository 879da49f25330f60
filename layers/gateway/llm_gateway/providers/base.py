"""The seam between the gateway and every provider: normalized types and the adapter protocol.

Adapters are pure translators (data in, data out) so they can be tested against synthesized
payloads without sockets; `engine.py` is the only code that does HTTP. Everything a provider can
do wrong becomes a `ProviderError` here, so retry and routing never see httpx or a raw body.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from llm_gateway.api.schemas import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest

# Transport-level failures carry one of these in `ProviderError.transport`.
TRANSPORT_TIMEOUT = "timeout"
TRANSPORT_CONNECTION = "connection"
TRANSPORT_MALFORMED = "malformed"
TRANSPORT_STREAM_CUT = "stream_cut"


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What a provider told us about its limits, in seconds and counts (None = not said).

    `requests_window_s` exists because providers disagree on what the request headers count:
    OpenAI's are per minute, Groq's are per day.
    """

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_s: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_s: float | None = None
    retry_after_s: float | None = None
    requests_window_s: int = 60
    tokens_window_s: int = 60

    @property
    def is_empty(self) -> bool:
        """No figure given (the windows' lengths are defaults, not figures). Asked of every
        response and again of every attempt's outcome: one expression, no generator."""
        return (self.limit_requests is None and self.remaining_requests is None and self.reset_requests_s is None
                and self.limit_tokens is None and self.remaining_tokens is None and self.reset_tokens_s is None
                and self.retry_after_s is None)

    def cooldown_s(self) -> float | None:
        """How long to leave this model alone after a 429: the longest hint given."""
        hints = [self.retry_after_s]
        if self.remaining_requests == 0:
            hints.append(self.reset_requests_s)
        if self.remaining_tokens == 0:
            hints.append(self.reset_tokens_s)
        known = [hint for hint in hints if hint is not None and hint > 0]
        return max(known) if known else None


class ProviderError(Exception):
    """Any failure of a provider call, normalized.

    `code` is the provider's own error code (e.g. `rate_limit_exceeded`, `RESOURCE_EXHAUSTED`,
    `context_length_exceeded`); `transport` is set instead of `status` for failures below HTTP.
    The message is ours and never holds a key or a raw provider body.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model: str | None = None,
        status: int | None = None,
        code: str | None = None,
        transport: str | None = None,
        rate_limit: RateLimitInfo | None = None,
        provider_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.status = status
        self.code = code
        self.transport = transport
        self.rate_limit = rate_limit
        self.provider_message = provider_message
        # Set on a failure the *request* caused: a timeout its deadline or very long answer caused
        # (the runner), or content the provider refused to process (an adapter). It says nothing
        # about the provider: no breaker count, no failure mark, no passive-health record.
        self.request_caused = False
        # Set on a failure that repeats the same request's on a model that answered other requests
        # since (the runner, `FailureMemory.repeated`): taken for the request's doing as far as the
        # model's circuit and the provider's standing go, but retried and counted as any failure.
        self.repeated = False
        # Set by an adapter when the provider says the work itself has stopped (a Replicate
        # prediction `failed` or `canceled`): nothing is left running to cancel.
        self.work_ended = False

    @property
    def retry_after_s(self) -> float | None:
        return self.rate_limit.cooldown_s() if self.rate_limit else None

    def __repr__(self) -> str:
        return (
            f"ProviderError(provider={self.provider!r}, model={self.model!r}, status={self.status}, "
            f"code={self.code!r}, transport={self.transport!r})"
        )


# What a provider can serve; each provider module declares one adapter per capability.
CHAT = "chat"
TRANSCRIPTION = "transcription"

# (filename, bytes, content type) for a file part; (None, bytes) for a plain field, which keeps a
# body multipart when it carries no file (a URL instead of the audio).
MultipartFile = tuple[str, bytes, str] | tuple[None, bytes]


@dataclass(frozen=True, slots=True)
class HttpRequestSpec:
    """One HTTP call, fully described, so the engine needs no provider knowledge.

    The body is one of: `json`; multipart form data (`data` fields plus `files`); or raw
    `content` bytes.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    json: Any = None
    params: Mapping[str, str] | None = None
    data: Mapping[str, str | list[str]] | None = None
    files: Mapping[str, MultipartFile] | None = None
    content: bytes | None = None


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One server-sent event of a provider's stream: its data, and its event name when it has one."""

    data: str
    event: str | None = None


@dataclass(slots=True, init=False)
class StreamState:
    """Per-stream scratch space for adapters whose chunks depend on earlier ones.

    `response_id` is the id chunks get where the provider's carry none (Gemini's); without one
    given, it is drawn when first asked for (`new_response_id`): OpenAI-dialect chunks carry their
    own id, and a UUID drawn for every stream was a random read and a `uuid.UUID` built for nothing."""

    model: str
    _response_id: str | None
    created: int
    extra: dict[str, Any]
    done: bool

    def __init__(self, model: str, response_id: str | None = None, created: int = 0,
                 extra: dict[str, Any] | None = None, done: bool = False) -> None:
        self.model = model
        self._response_id = response_id
        self.created = created
        self.extra = {} if extra is None else extra
        self.done = done

    @property
    def response_id(self) -> str:
        if self._response_id is None:
            self._response_id = new_response_id()
        return self._response_id

    @response_id.setter
    def response_id(self, value: str) -> None:
        self._response_id = value


def new_response_id() -> str:
    """An id in OpenAI's shape (`chatcmpl-` and 24 hex digits) for a stream whose chunks carry none."""
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One configured provider instance: a kind (adapter), its endpoint, key and models."""

    name: str
    kind: str
    base_url: str
    api_key: str = field(repr=False)
    models: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)


class WireAdapter(Protocol):
    """What every adapter of every capability shares: who it is, and how its provider says no.
    Pure: no I/O, no clock, no globals."""

    config: ProviderConfig

    @property
    def name(self) -> str: ...

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, model: str | None) -> ProviderError: ...

    def parse_rate_limits(self, headers: Mapping[str, str]) -> RateLimitInfo | None: ...


@runtime_checkable
class ChatAdapter(WireAdapter, Protocol):
    """A provider's chat wire mapping."""

    def build_request(self, request: ChatCompletionRequest, model: str, *, stream: bool) -> HttpRequestSpec: ...

    def parse_response(self, body: Any, model: str) -> ChatCompletion: ...

    def parse_stream_event(self, event: SSEEvent, state: StreamState) -> list[ChatCompletionChunk]: ...

    def models_request(self) -> HttpRequestSpec: ...

    def parse_models(self, body: Any) -> list[str]: ...
