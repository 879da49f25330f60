"""An answer sent whole (`stream` unset) on a streaming invocation is not bound by API Gateway's
29 s: production's chat routes all use the streaming integration, whose limit is its idle timeout
(5 minutes on a Regional API). Such an answer gets the stream deadline, capped below that idle
timeout, and an attempt that is given the whole time (a pinned model's only attempt, a failover
after a timeout) may use all of it. A long answer without `max_tokens` (OpenAI answers those in a
minute) used to be a 504 at 25 s.

On `httpx.MockTransport` and a frozen clock (`test_deadline_budget._gateway`): the assertions are
about which deadline and which timeout were used, never about elapsed time."""

from __future__ import annotations

import httpx
import pytest

from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.config import load_settings
from llm_gateway.gateway import Caller
from llm_gateway.retry.handler import API_GATEWAY_STREAM_IDLE_S, IDLE_MARGIN_S, Deadline, chat_deadline
from tests.unit.routing.test_deadline_budget import ATTEMPT_TIMEOUT_S, MODEL, _gateway

ANSWER = {"id": "c1", "object": "chat.completion", "created": 1, "model": MODEL,
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "a long essay"},
                       "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}


def _request(stream: bool = False) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": f"groq/{MODEL}", "stream": stream, "messages": [{"role": "user", "content": "write an essay"}]})


def _served_with_timeouts(live: bool) -> tuple[list[float], list[float]]:
    """(the deadline the router got, the read timeout of each provider call)."""
    reads: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        reads.append(request.extensions["timeout"]["read"])
        return httpx.Response(200, json=ANSWER)

    gateway, _core, _ = _gateway(handler)
    seen: list[float] = []
    complete = gateway.router.complete

    def spy(request: ChatCompletionRequest, deadline: Deadline | None = None, **kwargs: object) -> object:
        assert deadline is not None
        seen.append(deadline.remaining())
        return complete(request, deadline, **kwargs)  # type: ignore[arg-type]

    gateway.router.complete = spy  # type: ignore[method-assign]
    outcome = gateway.chat(_request(), Caller(), "r1", live=live)
    assert outcome.status == 200
    return seen, reads


def test_an_answer_sent_whole_on_a_streaming_invocation_may_take_the_stream_deadline() -> None:
    settings = load_settings({})
    seen, reads = _served_with_timeouts(live=True)
    whole = min(settings.stream_deadline_s, API_GATEWAY_STREAM_IDLE_S - IDLE_MARGIN_S)
    assert seen == [pytest.approx(whole)]
    # a pinned model's only attempt is given the whole time, past the attempt timeout's cap
    assert reads and reads[0] > ATTEMPT_TIMEOUT_S
    assert reads[0] <= whole


def test_a_buffered_invocation_keeps_the_api_gateway_bound_deadline() -> None:
    seen, reads = _served_with_timeouts(live=False)
    assert seen == [pytest.approx(25.0)]
    assert reads and reads[0] <= ATTEMPT_TIMEOUT_S


def test_the_deadline_of_each_kind_of_chat_answer() -> None:
    settings = load_settings({"LLM_GATEWAY_STREAM_DEADLINE_S": "600", "LLM_GATEWAY_FUNCTION_TIMEOUT_S": "610"})
    sent_whole = chat_deadline(settings.deadline_s, settings.stream_deadline_s, live=True, stream=False)
    assert sent_whole.budget_s == API_GATEWAY_STREAM_IDLE_S - IDLE_MARGIN_S  # never past the idle timeout
    assert sent_whole.attempt_cap_s == sent_whole.budget_s
    streamed = chat_deadline(settings.deadline_s, settings.stream_deadline_s, live=True, stream=True)
    assert (streamed.budget_s, streamed.attempt_cap_s) == (600.0, None)  # the first chunk: the usual cap
    for stream in (False, True):  # a buffered invocation: API Gateway's 29 s
        buffered = chat_deadline(settings.deadline_s, settings.stream_deadline_s, live=False, stream=stream)
        assert (buffered.budget_s, buffered.attempt_cap_s) == (settings.deadline_s, None)
    short = load_settings({"LLM_GATEWAY_STREAM_DEADLINE_S": "60"})
    assert chat_deadline(short.deadline_s, short.stream_deadline_s, live=True, stream=False).budget_s == 60.0
