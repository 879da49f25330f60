"""Chat routing: chat preparation, the shared failover runner, and streaming on top.

Everything that is not chat-specific (planning, reservations, breakers, failover, deadlines,
aggregated errors) is the runner's; this module says how to call a chat adapter, what a
completion consumed, and how a stream is opened, drained and settled.

Streaming: a failure before the first chunk fails over like any other; after it, the chunk
iterator raises `ProviderError` and the gateway ends the SSE body with an error event (text
already sent is never repeated by another model). `buffered=True` is for callers that send the
SSE body whole (`lambda_handler`, a buffered invocation): nothing reaches the user before the
provider's stream ends, so the whole stream is read inside the attempt and a cut at any point
fails over. `buffered=False` (the streaming invocation): opening the stream and its first chunk
must come within the attempt's timeout, the rest within the request's (stream) deadline. A
caller who stops reading closes the chunk iterator: the provider's response is closed (its
connection dropped) and the reservation is reconciled with what was sent until then.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from functools import partial

from llm_gateway.api.errors import GatewayError
from llm_gateway.api.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    FunctionCall,
    ToolCall,
    Usage,
)
from llm_gateway.providers.base import TRANSPORT_STREAM_CUT, TRANSPORT_TIMEOUT, ChatAdapter, ProviderError
from llm_gateway.providers.deadline_io import deadline_scope
from llm_gateway.providers.engine import ProviderEngine, ProviderStream
from llm_gateway.providers.pool import AdapterPool
from llm_gateway.retry.handler import Deadline
from llm_gateway.routing.run import AttemptRecord
from llm_gateway.routing.runner import CallerLimits, CallResult, FailoverRunner, Served
from llm_gateway.routing.whole_answer import fold
from llm_gateway.selection.conversation import next_turn_key
from llm_gateway.selection.cost import Cost, request_cost
from llm_gateway.selection.planner import Plan, PlanStep, Preparation
from llm_gateway.selection.selector import ChatDetail, ChatPreparer
from llm_gateway.state.items import affinity_pk
from llm_gateway.state.metering import REQUESTS, TOKENS, USD_MICROS, Amounts, usd_micros
from llm_gateway.state.store import ModelKey


@dataclass
class RoutedCompletion:
    """A whole answer, with who served it, every attempt made and what it cost."""

    completion: ChatCompletion
    provider: str
    model: str
    attempts: list[AttemptRecord]
    cost_usd: float = 0.0
    free: bool = False
    cost_estimated: bool = False
    estimate: Usage | None = None  # the usage an estimated cost was priced on (the ledger's tokens)


@dataclass
class RoutedStream:
    """A stream that has produced its first chunk; `usage`/`cost_usd` are final once drained."""

    provider: str
    model: str
    attempts: list[AttemptRecord]
    chunks: Generator[ChatCompletionChunk, None, None]
    usage: Usage | None = None
    cost_usd: float = 0.0
    free: bool = False
    cost_estimated: bool = False


@dataclass(frozen=True, slots=True)
class _Opened:
    """A provider stream whose first chunk has arrived: that chunk, and the rest to come."""

    stream: ProviderStream
    first: ChatCompletionChunk
    rest: Iterator[ChatCompletionChunk]


def consumed(usage: Usage | None, cost_usd: float = 0.0) -> Amounts | None:
    """What a call used: one request, its tokens and its cost (which settles a budget's reservation)."""
    return None if usage is None else {REQUESTS: 1, TOKENS: usage.total_tokens, USD_MICROS: usd_micros(cost_usd)}


class ChatRouter:
    def __init__(self, *, preparer: ChatPreparer, runner: FailoverRunner, engine: ProviderEngine,
                 adapters: AdapterPool[ChatAdapter]) -> None:
        self.preparer = preparer
        self.runner = runner
        self.engine = engine
        self.adapters = adapters

    def available(self) -> frozenset[ModelKey]:
        return self.adapters.current().available

    def plan(self, request: ChatCompletionRequest) -> Plan:
        """The plan this request would follow now (for `llm-gateway plan`)."""
        return self.runner.plan(self.preparer.prepare(request, self.available()))[0]

    def complete(self, request: ChatCompletionRequest, deadline: Deadline | None = None, *,
                 limits: CallerLimits | None = None) -> RoutedCompletion:
        deadline = deadline or self.runner.retry.deadline()
        view = self.adapters.current()
        prep = self.preparer.prepare(request, view.available)

        estimates: dict[int, Usage] = {}  # answer (by id) → our estimate of its usage, where it reported none
        # answer (by id) → (it, the step that produced it, its cost as priced for the runner)
        priced: dict[int, tuple[ChatCompletion, PlanStep, Cost]] = {}

        def call(step: PlanStep, timeout: float) -> CallResult[ChatCompletion]:
            reply = self.engine.complete(view.adapters[step.key.provider], request, step.key.model, timeout)
            usage = reply.value.usage
            if usage is None:
                usage = estimates[id(reply.value)] = self._whole_estimate(prep, reply.value)
            cost = request_cost(step.entry.price, usage, free=step.free)
            priced[id(reply.value)] = (reply.value, step, cost)
            # Never None: None would tell the runner the call is settled later (a stream), and an
            # answer without usage would then count no attempt and keep its reservation's maximum.
            return CallResult(reply.value, reply.rate_limits, consumed(usage, cost.usd))

        served = self.runner.run(prep, call, deadline, limits=limits, fingerprint=partial(fingerprint, request))
        completion = served.value
        if completion.choices:
            message = completion.choices[0].message
            self._remember(prep, request, served.step.key, message.content, message.tool_calls)
        estimate = None
        if completion.usage is None:  # only then is the estimate priced (counting costs tokenizing the answer)
            estimate = estimates[id(completion)]
        cost = _served_cost(priced.get(id(completion)), completion, served.step, estimate)
        return RoutedCompletion(completion, served.step.key.provider, served.step.key.model, served.run.attempts,
                                cost.usd, cost.free, cost.estimated, estimate)

    def complete_streamed(self, request: ChatCompletionRequest, deadline: Deadline, *, limits: CallerLimits | None,
                          spent: Callable[[RoutedStream], None]) -> RoutedCompletion:
        """An answer sent whole, read from the provider as a stream (`routing/whole_answer.py`).
        Nothing has reached the caller when a provider fails after its first chunk, so the
        request is routed once more while time is left (that provider now ranks last: its
        failure is on record), with attempts of its own; `spent` is told of each cut answer, whose
        cost stays spent. The caller's own windows count both routings' requests (a cut is rare,
        and giving a request back to the caller's windows only is not done)."""
        as_stream = request.model_copy(update={"stream": True})
        earlier: list[AttemptRecord] = []  # the attempts of a routing whose answer was cut
        cut: GatewayError | None = None
        for last in (False, True):
            try:
                routed = self.stream(as_stream, deadline, buffered=False, limits=limits)
            except GatewayError as error:
                if cut is not None and error.status >= 500:
                    raise cut from None  # nothing else could answer: the cut is what the caller should hear of
                if cut is None and error.code == "no_model_fits":
                    # a model the catalog says cannot stream (an override) may still answer whole
                    return self.complete(request, deadline, limits=limits)
                raise
            try:
                completion = fold(routed.chunks)
            except ProviderError as error:
                spent(routed)
                timed_out = error.transport == TRANSPORT_TIMEOUT and error.request_caused
                cut = GatewayError(
                    "The answer did not end within the gateway's deadline; ask for a shorter one (max_tokens) "
                    "or stream it." if timed_out else
                    "The provider failed while writing the answer, and no other model could be asked in time.",
                    code="answer_deadline" if timed_out else "answer_interrupted", status=504 if timed_out else 502,
                )
                if timed_out or last or self.runner.retry.attempt_timeout(deadline) is None:
                    raise cut from None
                earlier += routed.attempts
                continue
            finally:
                routed.chunks.close()
            estimate = None
            if routed.cost_estimated:  # the provider reported no usage: as unstreamed, none is shown
                estimate, completion.usage = completion.usage, None
            return RoutedCompletion(completion, routed.provider, routed.model, earlier + routed.attempts,
                                    routed.cost_usd, routed.free, routed.cost_estimated, estimate)
        raise AssertionError("unreachable")  # pragma: no cover

    def stream(self, request: ChatCompletionRequest, deadline: Deadline | None = None, *,
               buffered: bool, limits: CallerLimits | None = None) -> RoutedStream:
        """Open a stream that has produced its first chunk (see the module docstring)."""
        deadline = deadline or self.runner.retry.deadline()
        view = self.adapters.current()
        prep = self.preparer.prepare(request, view.available)

        def call(step: PlanStep, timeout: float) -> CallResult[_Opened]:
            adapter = view.adapters[step.key.provider]
            if buffered:
                opened = self.engine.open_stream(adapter, request, step.key.model, timeout)
                return CallResult(_first_chunk(opened, step, buffered), opened.rate_limits, None)
            # The stream may run until the request's deadline; its opening and first chunk are
            # held to the attempt's timeout (a nested deadline scope), so a slow start fails over.
            with deadline_scope(time.monotonic() + max(0.0, timeout)):
                opened = self.engine.open_stream(adapter, request, step.key.model, max(timeout, deadline.remaining()))
                return CallResult(_first_chunk(opened, step, buffered), opened.rate_limits, None)

        # Buffered, the attempt reads (and its timeout bounds) the whole stream: a whole answer's
        # time; live, it returns at the first chunk, and learns and is given a first chunk's.
        served = self.runner.run(prep, call, deadline, limits=limits, fingerprint=partial(fingerprint, request),
                                 first_chunk=not buffered)
        step = served.step
        routed = RoutedStream(step.key.provider, step.key.model, served.run.attempts, _no_chunks(), free=step.free)
        routed.chunks = self._drain(served, routed, prep, request)
        return routed

    def _remember(self, prep: Preparation, request: ChatCompletionRequest, key: ModelKey, content: str | None,
                  tool_calls: Sequence[ToolCall] | None) -> None:
        """Conversation affinity: name the model that answered under the key the next turn of this
        conversation will look up (`selection/conversation.py`). Not for pinned requests, which
        prefer nothing; one small write after the answer, never failing it.

        The write is a round trip the caller waits for, so it is made only where a next turn is
        expected: the answer calls tools (its results must follow), or the request already
        continues a conversation (it has an assistant turn). A one-shot question, the common API
        call, writes nothing."""
        continues = any(message.role == "assistant" for message in request.messages)
        if prep.pinned is None and (tool_calls or continues):
            self.runner.prefer_next(affinity_pk(next_turn_key(request.messages, content, tool_calls)), key)

    def _drain(self, served: Served[_Opened], routed: RoutedStream, prep: Preparation,
               request: ChatCompletionRequest) -> Generator[ChatCompletionChunk, None, None]:
        """Yield the stream in OpenAI's shape; settle usage, cost and health when it ends, however
        it ends.

        Providers put usage in different places (OpenAI: an extra chunk with `choices: []`; Groq,
        Mistral, Cohere: the `finish_reason` chunk; Gemini: every chunk, complete on the last).
        Usage is taken off every chunk and sent once, in a final chunk with no choices, as OpenAI
        does, because clients written against OpenAI read `chunk.choices[0]` whenever usage is
        absent. That chunk comes even when the provider reported none (our estimate, which the
        cost then says it is); whether the caller sees it is the caller's `include_usage`.
        """
        clock = self.runner.retry.clock
        opened = served.value
        texts: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        last = opened.first
        try:
            for chunk in itertools.chain((opened.first,), opened.rest):
                if chunk.usage is not None:
                    routed.usage = chunk.usage
                    if chunk.choices:  # a chunk without choices is not sent on: no copy of it is needed
                        chunk = chunk.model_copy(update={"usage": None})
                if not chunk.choices:
                    continue  # a provider's own usage-only chunk: its usage goes out once, at the end
                last = chunk
                texts += [c.delta.content for c in chunk.choices if c.delta.content]
                _add_call_deltas(calls, chunk)
                yield chunk
        except ProviderError as error:
            opened.stream.close()
            if error.transport == TRANSPORT_TIMEOUT and served.deadline is not None and served.deadline.remaining() <= 0:
                error.request_caused = True  # the request's own (stream) deadline ended it, not the provider
            produced = self._estimate(prep.detail, texts)  # billed by the provider though cut: its cost stays spent
            spent = request_cost(served.step.entry.price, produced, free=served.step.free).usd
            routed.usage, routed.cost_usd, routed.cost_estimated = produced, spent, True  # for whoever accounts it
            self.runner.fail_late(served, error, clock() - served.started, consumed(produced, spent))
            raise
        except GeneratorExit:  # the caller stopped reading (disconnected): stop the provider too
            opened.stream.close()
            self._settle_partial(served, routed, prep, texts)
            raise
        finally:
            opened.stream.close()
        estimate = self._estimate(prep.detail, texts) if routed.usage is None else None  # used only without usage
        cost = request_cost(served.step.entry.price, routed.usage, free=served.step.free, estimate=estimate)
        routed.cost_usd, routed.free, routed.cost_estimated = cost.usd, cost.free, cost.estimated
        routed.usage = routed.usage or estimate  # what the cost was priced on: the ledger counts these tokens
        self.runner.settle(served, consumed(routed.usage, cost.usd), clock() - served.started)
        tool_calls = [ToolCall(id=c["id"], function=FunctionCall(name=c["name"], arguments=c["arguments"]))
                      for _, c in sorted(calls.items())]
        self._remember(prep, request, served.step.key, "".join(texts) or None, tool_calls)
        yield ChatCompletionChunk(id=last.id, created=last.created, model=last.model,
                                  system_fingerprint=last.system_fingerprint, choices=[],
                                  usage=routed.usage)

    def _settle_partial(self, served: Served[_Opened], routed: RoutedStream, prep: Preparation,
                        texts: list[str]) -> None:
        """A stream the caller abandoned: the provider reports no usage for it, so the reservation
        is reconciled with our estimate of what it produced until then, and that is its cost."""
        estimate = self._estimate(prep.detail, texts)
        cost = request_cost(served.step.entry.price, estimate, free=served.step.free, estimate=estimate)
        routed.usage = estimate  # what the cost was priced on: the ledger counts these tokens
        routed.cost_usd, routed.free, routed.cost_estimated = cost.usd, cost.free, True
        self.runner.settle(served, consumed(estimate, cost.usd), self.runner.retry.clock() - served.started,
                           ended=False)

    def _whole_estimate(self, prep: Preparation, completion: ChatCompletion) -> Usage:
        """Our estimate of a whole answer's usage, for a provider that reported none."""
        return self._estimate(prep.detail, [c.message.content or "" for c in completion.choices])

    def _estimate(self, detail: ChatDetail, texts: list[str]) -> Usage:
        """Usage to price when a provider reports none: our prompt estimate + the text it sent."""
        return Usage.of(detail.prompt_tokens, self.preparer.tokens.count_text("".join(texts)))


def _served_cost(priced: tuple[ChatCompletion, PlanStep, Cost] | None, completion: ChatCompletion, step: PlanStep,
                 estimate: Usage | None) -> Cost:
    """`request_cost(step.entry.price, completion.usage, free=step.free, estimate=estimate)`, taken
    from the price the call put on this very answer when it has one (pricing cost about 23,000
    instructions): the same function of the same price, usage and tier, except that an answer
    without usage was priced on its estimate then, and is now said to be estimated."""
    if priced is None or priced[0] is not completion or priced[1] is not step:
        return request_cost(step.entry.price, completion.usage, free=step.free, estimate=estimate)
    cost = priced[2]
    return cost if completion.usage is not None else Cost(usd=cost.usd, free=cost.free, estimated=True)


def _add_call_deltas(calls: dict[int, dict[str, str]], chunk: ChatCompletionChunk) -> None:
    """Assemble the first choice's tool calls from their deltas, as OpenAI clients do (by index)."""
    for choice in chunk.choices[:1]:
        for delta in choice.delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] = delta.id or call["id"]
            if delta.function is not None:
                call["name"] += delta.function.name or ""
                call["arguments"] += delta.function.arguments or ""


def _no_chunks() -> Generator[ChatCompletionChunk, None, None]:
    yield from ()


def _first_chunk(opened: ProviderStream, step: PlanStep, buffered: bool) -> _Opened:
    try:
        rest = iter(opened)
        first = next(rest)
        if buffered:
            collected = list(rest)  # a cut here is a failure of this attempt: fail over
            opened.close()
            rest = iter(collected)
    except StopIteration:
        opened.close()
        raise ProviderError(f"{step.key.provider} ended the stream before any chunk", provider=step.key.provider,
                            model=step.key.model, transport=TRANSPORT_STREAM_CUT) from None
    except BaseException:
        opened.close()
        raise
    return _Opened(opened, first, rest)


__all__ = ["ChatRouter", "RoutedCompletion", "RoutedStream"]


def fingerprint(request: ChatCompletionRequest) -> str:
    """What tells this request from others to a provider: everything it is sent but whether it
    streams and for which end user (a prompt a provider chokes on chokes it either way)."""
    body = request.model_dump_json(exclude={"stream", "stream_options", "user"}, exclude_none=True)
    return hashlib.blake2b(body.encode(), digest_size=16).hexdigest()
