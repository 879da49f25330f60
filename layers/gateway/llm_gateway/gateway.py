"""The façade the Lambda handlers call: authenticate, route, shape the answer and its headers.

`build_gateway` runs the composition root (`compose.py`) once per container at cold start;
everything the Gateway uses is passed in, so tests can assemble one from in-memory parts.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

from llm_gateway.api.auth import STATIC_USER, Caller, authenticate
from llm_gateway.api.errors import GatewayError, NotFound
from llm_gateway.api.response_body import completion_body
from llm_gateway.api.schemas import ChatCompletionChunk, ChatCompletionRequest, ModelCard, ModelList, Usage
from llm_gateway.api.served import count_failure, count_served, log_served, served_headers, told_usd
from llm_gateway.compose import Core, build_chat, build_core, build_rollout
from llm_gateway.config import Settings
from llm_gateway.observability import metrics as m
from llm_gateway.observability.metrics import Metrics
from llm_gateway.providers.base import TRANSCRIPTION, TRANSPORT_TIMEOUT, ProviderError
from llm_gateway.providers.pool import AdapterPool
from llm_gateway.providers.sse import encode_sse
from llm_gateway.retry.handler import Deadline, chat_deadline, request_budget
from llm_gateway.rollout.cohorts import BASELINE, GATEWAY, cohort_of, subject_of
from llm_gateway.rollout.flag import Rollout
from llm_gateway.routing.chat import ChatRouter, RoutedCompletion, RoutedStream
from llm_gateway.selection.analyzer import AUTO_ALIASES
from llm_gateway.selection.catalog import ModelEntry
from llm_gateway.state.store import ModelKey
from llm_gateway.tenancy.limits import UserLimits, micros
from llm_gateway.tenancy.policy import Policy
from llm_gateway.tenancy.usage import ServedRequest

# Lambda refuses a response payload over 6 MB (6,291,456 bytes) with an error the caller sees as a
# 502/500. The buffered SSE body is capped well below, counted as Lambda counts it (the body as a
# JSON string: quotes and non-ASCII escaped), leaving room for the headers and the envelope.
MAX_BUFFERED_SSE_BYTES = 5_000_000
_CLOSING_ROOM = 1024  # the error event and [DONE] always fit after the last kept chunk


@dataclass
class ChatOutcome:
    """What the handler sends back: a JSON body, a whole SSE body, or SSE events to send as they
    come (`sse_stream`, a streaming invocation: close it to stop early), plus gateway headers."""

    status: int
    headers: dict[str, str]
    json_body: dict[str, Any] | None = None
    sse_body: str | None = None
    sse_stream: Generator[bytes, None, None] | None = None


class Gateway:
    """`listed`: every model a configured provider serves now, of every capability (chat and
    speech-to-text), for `/v1/models`; this Lambda routes only chat."""

    def __init__(self, core: Core, router: ChatRouter, listed: Callable[[], frozenset[ModelKey]],
                 rollout: Rollout | None = None) -> None:
        self.core = core
        self.settings = core.settings
        self.router = router
        self.listed = listed
        self.metrics: Metrics = core.metrics
        self.logger = core.logger
        self.rollout = rollout or Rollout(None, fallback=100.0)
        self.baseline_model = core.settings.rollout.baseline_model
        provider, _, name = (self.baseline_model or "").partition("/")
        self._baseline_entry = core.catalog.get(ModelKey(provider, name)) if self.baseline_model else None

    # --- rollout ----------------------------------------------------------------------------------
    def cohort_for(self, caller: Caller, request: ChatCompletionRequest) -> str:
        """`gateway` (routed) or `baseline` (the old way: the one baseline model), by a stable hash
        of the caller's user, or of its end user for keys serving many (`rollout/cohorts.py`).

        A key whose policy excludes the baseline model (an allow-list, `free_only`, a budget of 0
        for a paid one) stays routed: the old system could not serve it at all (every request a
        403, or a 429 `budget_exceeded`), so a rollback must not send it there."""
        if self.baseline_model is None:
            return GATEWAY
        if self._baseline_entry is not None and not _may_use(caller.policy, self._baseline_entry):
            return GATEWAY
        many = caller.policy.per_end_user or caller.user == STATIC_USER
        return cohort_of(subject_of(caller.user, request.user, many_users=many), self.rollout.percent())

    def baseline(self, request: ChatCompletionRequest) -> ChatCompletionRequest:
        """The request as the old system served it: pinned to the baseline model, so its plan has
        that one step (no free tier, no failover; a retry of the same model is the provider's own)."""
        return request.model_copy(update={"model": self.baseline_model})

    # --- auth -------------------------------------------------------------------------------------
    def authenticate(self, authorization: str | None) -> Caller:
        return authenticate(self.core.keys.current(), authorization, self.core.tenancy.directory)

    # --- routes -----------------------------------------------------------------------------------
    def list_models(self) -> ModelList:
        """The aliases, then every catalog model a configured provider serves, as `provider/model`."""
        cards = [ModelCard(id=alias, owned_by="llm-gateway") for alias in AUTO_ALIASES]
        cards += [ModelCard(id=str(key), owned_by=key.provider) for key in sorted(self.listed())]
        return ModelList(data=cards)

    def retrieve_model(self, model_id: str) -> ModelCard:
        """`GET /v1/models/{id}`: the card of any id `/v1/models` lists, or of a bare model id a
        configured provider serves (the chat endpoint accepts those too); else OpenAI's 404.

        A 404 here and a 400 for the same id in a chat request (`ModelNotFound`) are both
        OpenAI's behaviour: retrieving a missing resource is not found, sending a request that
        names one is a bad request.
        """
        if model_id in AUTO_ALIASES:
            return ModelCard(id=model_id, owned_by="llm-gateway")
        available = self.listed()
        provider, _, name = model_id.partition("/")
        if name and ModelKey(provider, name) in available:
            return ModelCard(id=model_id, owned_by=provider)
        owners = sorted({e.provider for e in self.core.catalog.by_model_id(model_id) if e.key in available})
        if owners:
            return ModelCard(id=model_id, owned_by=owners[0] if len(owners) == 1 else "llm-gateway")
        raise NotFound(f"The model '{model_id}' does not exist or no configured provider serves it.",
                       param="model", code="model_not_found")

    def status(self) -> dict[str, Any]:
        from llm_gateway.routing.status import build_status

        return build_status(self.core, self.listed())  # chat and speech-to-text models alike

    def chat(self, request: ChatCompletionRequest, caller: Caller, request_id: str,
             remaining_s: float | None = None, *, live: bool = False, cohort: str | None = None) -> ChatOutcome:
        """`remaining_s`: what the Lambda invocation has left (None outside Lambda); the request's
        deadline is the configured one cut to that less a margin, so no attempt outlives Lambda.

        `live`: the response is streamed (a streaming invocation), so a `stream: true` request
        gets its events as the provider sends them, within `stream_deadline_s`, and an answer
        sent whole is not bound by API Gateway's 29 s (`retry.handler.chat_deadline`); otherwise
        the answer (or the SSE body) is sent whole, within `deadline_s`.

        `cohort`: the request's rollout cohort when the handler already knows it (`cohort_for`);
        a `baseline` request is served by the baseline model alone. Its answer says which
        (`x-gateway-cohort`), and its metrics carry it (the rollback alarms compare the two)."""
        cohort = cohort or self.cohort_for(caller, request)
        if cohort == BASELINE:
            request = self.baseline(request)
        retry = self.core.runner.retry
        started = retry.clock()
        live_stream = live and bool(request.stream)
        budget = chat_deadline(retry.settings.deadline_s, self.settings.stream_deadline_s, live=live,
                               stream=bool(request.stream))
        deadline = retry.deadline(request_budget(budget, remaining_s))
        self.metrics.count(m.REQUESTS, cohort=cohort)
        limits = self.core.tenancy.limits_for(caller.user, caller.policy, request.user)
        cuts: list[RoutedStream] = []  # answers sent whole that a provider cut after their first chunk
        try:
            if live_stream:
                return self._chat_live(request, deadline, request_id, started, caller, limits, cohort)
            if request.stream:
                outcome = self._chat_stream(request, deadline, request_id, caller, limits, cohort)
                self._latency(started, cohort)
                return outcome
            if live:  # read from the provider as a stream (`routing/whole_answer.py`)
                routed = self.router.complete_streamed(request, deadline, limits=limits, spent=cuts.append)
            else:
                routed = self.router.complete(request, deadline, limits=limits)
        except GatewayError as exc:
            self._spent(caller, cohort, cuts, failed=True)
            count_failure(self.metrics, exc.status, exc.code, cohort=cohort)
            if not live_stream:
                self._latency(started, cohort)
            exc.headers = {**exc.headers, "x-gateway-cohort": cohort}
            self.logger.warning("request failed", extra={"status": exc.status, "code": exc.code, "cohort": cohort})
            raise
        cut_cost = self._spent(caller, cohort, cuts, failed=False) if cuts else 0.0
        cost = routed.cost_usd + cut_cost  # what the request cost, cuts too
        estimated = routed.cost_estimated or bool(cuts)
        body = completion_body(routed.completion)  # model_dump(exclude_none=True), built directly
        body.setdefault("usage", {})
        body["usage"]["cost_usd"] = told_usd(cost)
        if estimated:
            body["usage"]["cost_estimated"] = True
        self._account(routed.provider, routed.model, routed.free, routed.cost_usd, cohort, request_cost=cost)
        self._record(caller, routed, routed.completion.usage or routed.estimate, cohort, cost_usd=cost, free=routed.free and not cut_cost)
        self._latency(started, cohort)
        headers = served_headers(routed.provider, routed.model, len(routed.attempts), cost, estimated, request_id,
                                 cohort)
        return ChatOutcome(200, headers, json_body=body)

    # --- helpers ----------------------------------------------------------------------------------
    def _spent(self, caller: Caller, cohort: str, cuts: list[RoutedStream], *, failed: bool) -> float:
        """Answers a provider cut after their first chunk (each re-routed): what they cost (our
        estimate of what was produced) stays spent. It goes to each one's provider's cost series
        (not its request counts: those answers served no one), and to the user's ledger and the
        request's `RequestCostUSD`: in the served request's cost, or, when the request failed, as
        a request of its own that cost that much. Returns the total."""
        total = 0.0
        for cut in cuts:
            self.logger.warning("answer cut after first chunk", extra={"provider": cut.provider, "model": cut.model})
            if cut.cost_usd:
                self.metrics.count(m.COST_USD, cut.cost_usd, provider=cut.provider)
                self.metrics.count(m.COST_USD_TOTAL, cut.cost_usd)
            total += cut.cost_usd
        if failed and total:  # something was paid: the entry is paid, on the model that cost most
            self.metrics.count(m.REQUEST_COST_USD, total, cohort=cohort)  # one data point a request
            costliest = max(cuts, key=lambda cut: cut.cost_usd)
            self.core.tenancy.record(ServedRequest(caller.user, costliest.provider, costliest.model, False, total))
        return total

    def _chat_stream(self, request: ChatCompletionRequest, deadline: Deadline, request_id: str, caller: Caller,
                     limits: UserLimits, cohort: str) -> ChatOutcome:
        routed = self.router.stream(request, deadline, buffered=True, limits=limits)  # the SSE body is sent whole
        body = "".join(self._sse_events(routed, request, cohort))
        self._account(routed.provider, routed.model, routed.free, routed.cost_usd, cohort)
        self._record(caller, routed, routed.usage, cohort)
        return ChatOutcome(200, self._headers(routed, request_id, cohort), sse_body=body)

    def _chat_live(self, request: ChatCompletionRequest, deadline: Deadline, request_id: str,
                   started: float, caller: Caller, limits: UserLimits, cohort: str) -> ChatOutcome:
        """The stream as it comes: the router returns once a model has sent its first chunk (all
        failover happens before); the cost is known only at the end, so it travels in the usage
        chunk (`include_usage`), not in a header."""
        routed = self.router.stream(request, deadline, buffered=False, limits=limits)
        self.metrics.timing(m.TIME_TO_FIRST_TOKEN_MS, (self.core.runner.retry.clock() - started) * 1000,
                            cohort=cohort)
        headers = {k: v for k, v in self._headers(routed, request_id, cohort).items()
                   if not k.startswith("x-gateway-cost")}
        # the serving attempt is recorded when its stream is settled, at the end: count it now
        headers["x-gateway-attempts"] = str(len(routed.attempts) + 1)
        events = self._live_events(routed, request, caller, cohort)
        next(events)  # started: a caller gone before the first write still closes (and settles) it
        return ChatOutcome(200, headers, sse_stream=events)

    def _live_events(self, routed: RoutedStream, request: ChatCompletionRequest,
                     caller: Caller, cohort: str) -> Generator[bytes, None, None]:
        """Each chunk as an SSE event as soon as it arrives. A failure after the first chunk ends
        the stream with an OpenAI-style error event and no `[DONE]` (the answer is incomplete;
        the SDKs raise on the error event). Closing this generator (the caller went away) closes
        the provider's stream; the router reconciles what was used."""
        want_usage = request.wants_usage_in_stream
        ended = False
        chunks = routed.chunks
        try:
            # Both generators are started before the events are handed over (`_chat_live` takes
            # this first, empty step): one closed before it started would run none of its code,
            # and a caller gone before the first write left the provider's stream open, its
            # reservation at its maximum and the call out of the ledger.
            early: ProviderError | None = None
            try:
                first = next(chunks, None)  # read by the router already: no wait
            except ProviderError as exc:  # answered below, as any failure after the first chunk
                first, early = None, exc
            yield b""
            if early is not None:
                raise early
            for chunk in itertools.chain(() if first is None else (first,), chunks):
                for event in _render_chunk(chunk, want_usage, routed):
                    yield event.encode()
            ended = True
        except ProviderError as exc:
            self.metrics.count(m.USER_VISIBLE_ERRORS, cohort=cohort)
            timed_out = exc.transport == TRANSPORT_TIMEOUT and exc.request_caused
            self.logger.warning("stream failed after first chunk",
                                extra={"provider": exc.provider, "transport": exc.transport})
            error = GatewayError(
                f"The stream reached the gateway's stream deadline ({self.settings.stream_deadline_s:g} s); "
                "the answer above is incomplete." if timed_out else
                "The provider failed mid-stream; the answer above is incomplete.",
                code="stream_deadline" if timed_out else "stream_interrupted", status=504 if timed_out else 502,
            )
            yield encode_sse(json.dumps(error.body())).encode()
        except Exception:  # a bug mid-stream: the caller gets an error event, the log the traceback
            self.metrics.count(m.USER_VISIBLE_ERRORS, cohort=cohort)
            self.logger.exception("stream failed: internal error")
            error = GatewayError("The gateway hit an internal error mid-stream. It has been logged.",
                                 code="internal_error")
            yield encode_sse(json.dumps(error.body())).encode()
        finally:
            routed.chunks.close()  # the caller's disconnect reaches the provider through here
            self._account(routed.provider, routed.model, routed.free, routed.cost_usd, cohort)
            self._record(caller, routed, routed.usage, cohort)
        if ended:
            yield encode_sse("[DONE]").encode()

    def _sse_events(self, routed: RoutedStream, request: ChatCompletionRequest, cohort: str) -> Iterator[str]:
        """Render the whole stream once it has ended (the body is sent whole anyway), so the
        usage chunk can carry the final cost; a failure after the first chunk keeps what arrived
        and ends the stream with an error event."""
        chunks: list[ChatCompletionChunk] = []
        failed = False
        try:
            chunks.extend(routed.chunks)
        except ProviderError as exc:
            failed = True
            self.metrics.count(m.USER_VISIBLE_ERRORS, cohort=cohort)
            self.logger.warning("stream failed after first chunk", extra={"provider": exc.provider})
        want_usage = request.wants_usage_in_stream
        size = 0
        for chunk in chunks:
            for event in _render_chunk(chunk, want_usage, routed):
                size += _payload_bytes(event)
                if size > MAX_BUFFERED_SSE_BYTES - _CLOSING_ROOM:
                    self.logger.warning("buffered stream cut at the response size limit",
                                        extra={"provider": routed.provider, "limit": MAX_BUFFERED_SSE_BYTES})
                    too_long = GatewayError(
                        "The answer was too long for a buffered stream (the response size limit); the "
                        "answer above is incomplete. Ask for a shorter answer (max_tokens) or use stream=false.",
                        code="response_too_long", status=502,
                    )
                    yield encode_sse(json.dumps(too_long.body()))
                    yield encode_sse("[DONE]")
                    return
                yield event
        if failed:
            error = GatewayError(
                "The provider failed mid-stream; the answer above is incomplete.",
                code="stream_interrupted", status=502,
            )
            yield encode_sse(json.dumps(error.body()))
        yield encode_sse("[DONE]")

    def _headers(self, routed: RoutedCompletion | RoutedStream, request_id: str,
                 cohort: str | None = None) -> dict[str, str]:
        return served_headers(routed.provider, routed.model, len(routed.attempts), routed.cost_usd,
                              routed.cost_estimated, request_id, cohort)

    def _account(self, provider: str, model: str, free: bool, cost: float, cohort: str, *,
                 request_cost: float | None = None) -> None:
        """The served answer's provider series, and the request's one `RequestCostUSD` data point
        (`request_cost`: the answer's cost plus answers cut before it, which `_spent` counted in
        the provider series only)."""
        count_served(self.metrics, provider, free, cost)
        self.metrics.count(m.REQUEST_COST_USD, cost if request_cost is None else request_cost, cohort=cohort)

    def _latency(self, started: float, cohort: str) -> None:
        """A chat answer sent whole (JSON, or a buffered SSE body), served or failed: the rollback
        latency trigger's series (streams sent live count their time to first token instead)."""
        self.metrics.timing(m.REQUEST_LATENCY_MS, (self.core.runner.retry.clock() - started) * 1000, cohort=cohort)

    def _record(self, caller: Caller, routed: RoutedCompletion | RoutedStream, usage: Usage | None,
                cohort: str, *, cost_usd: float | None = None, free: bool | None = None) -> None:
        """The served request in the user's ledger, and its summary log line; `cost_usd` and
        `free` when the request cost more than its answer (a paid answer cut before it)."""
        cost = routed.cost_usd if cost_usd is None else cost_usd
        served = ServedRequest(caller.user, routed.provider, routed.model, routed.free if free is None else free, cost,
                               usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0)
        self.core.tenancy.record(served)
        log_served(self.logger, caller, "chat", served, routed.attempts, cohort=cohort)


def _may_use(policy: Policy, entry: ModelEntry) -> bool:
    """Whether a key may ever be served by `entry`: its allow-list lets it, and, for a paid model,
    no budget of 0 shuts it out (fixed in the policy like `free_only`, unlike a budget spent)."""
    if not policy.allows(entry):
        return False
    return entry.is_free or 0 not in (micros(policy.daily_budget_usd), micros(policy.monthly_budget_usd))


def _payload_bytes(event: str) -> int:
    """The bytes `event` adds to Lambda's response payload: its length as a JSON string."""
    return len(json.dumps(event)) - 2


def _render_chunk(chunk: ChatCompletionChunk, want_usage: bool, routed: RoutedStream) -> Iterator[str]:
    """One SSE event. The router sends usage only in the stream's final, choice-less chunk
    (OpenAI's shape); it goes out only when the caller asked for it, as OpenAI does, with its cost."""
    if chunk.usage is None:
        yield encode_sse(chunk.model_dump_json(exclude_none=True))
        return
    if not want_usage:
        return
    payload = chunk.model_dump(exclude_none=True)
    payload["usage"]["cost_usd"] = told_usd(routed.cost_usd)
    if routed.cost_estimated:
        payload["usage"]["cost_estimated"] = True
    yield encode_sse(json.dumps(payload))


def build_gateway(settings: Settings, **overrides: Any) -> Gateway:
    """Cold-start composition of the chat gateway; `overrides` go to `compose.build_core`
    (tests and benchmarks put an `httpx.MockTransport` or recording metrics under the real code)."""
    core = build_core(settings, **overrides)
    chat = build_chat(core)
    speech: AdapterPool[object] = AdapterPool(TRANSCRIPTION, core.catalog, core.keys.providers)
    return Gateway(core, chat, lambda: chat.available() | speech.current().available, build_rollout(core))
