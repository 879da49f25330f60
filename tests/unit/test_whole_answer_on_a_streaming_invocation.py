"""An answer sent whole (`stream` unset) on a streaming invocation (production's chat routes,
`make dev`) is read from the provider as a stream and folded into one `chat.completion`
(`routing/whole_answer.py`), within the stream deadline capped below API Gateway's idle timeout,
not API Gateway's 29 s: a long answer without `max_tokens` used to be a 504 at 25 s.

On `httpx.MockTransport` and a frozen clock (`test_deadline_budget._gateway`): the assertions are
about what was asked of the provider, which deadline was used and what the caller got, never
about elapsed time."""

from __future__ import annotations

import json

import httpx
import pytest

from llm_gateway.api.errors import GatewayError
from llm_gateway.api.schemas import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest
from llm_gateway.config import load_settings
from llm_gateway.gateway import Caller
from llm_gateway.observability import metrics as m
from llm_gateway.retry.handler import API_GATEWAY_STREAM_IDLE_S, IDLE_MARGIN_S, chat_deadline
from llm_gateway.routing.chat import RoutedCompletion, RoutedStream
from llm_gateway.routing.whole_answer import fold
from llm_gateway.selection.catalog import Catalog, default_catalog
from llm_gateway.state.store import ModelKey
from llm_gateway.tenancy.usage import ServedRequest
from tests.unit.routing.test_deadline_budget import MODEL, _gateway, deadlines_given
from tests.unit.test_buffered_stream_cap import _sse
from tests.unit.test_live_stream import _Body

ANSWER = {"id": "c1", "object": "chat.completion", "created": 1, "model": MODEL,
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "short"}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}


def _request() -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": f"groq/{MODEL}", "messages": [{"role": "user", "content": "write an essay"}]})


def _parts(pieces: int = 4) -> list[bytes]:
    return [block + b"\n\n" for block in _sse(pieces, "word ").split(b"\n\n") if block]


def test_an_answer_sent_whole_on_a_streaming_invocation_is_read_as_a_stream_within_the_stream_deadline() -> None:
    asked: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(json.loads(request.content))
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_Body(_parts()))

    gateway, _core, metrics = _gateway(handler)
    seen = deadlines_given(gateway, "stream")
    outcome = gateway.chat(_request(), Caller(), "r1", live=True)
    assert asked and asked[0]["stream"] is True
    assert seen == [pytest.approx(min(load_settings({}).stream_deadline_s, API_GATEWAY_STREAM_IDLE_S - IDLE_MARGIN_S))]
    assert outcome.status == 200 and outcome.sse_stream is None and outcome.sse_body is None
    body = outcome.json_body
    assert body is not None and body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "word " * 4, "refusal": None}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["total_tokens"] == 12 and "cost_usd" in body["usage"]
    assert outcome.headers["x-gateway-attempts"] == "1" and "x-gateway-cost-usd" in outcome.headers
    assert any(r.name == m.REQUEST_LATENCY_MS for r in metrics.records)
    assert not any(r.name == m.TIME_TO_FIRST_TOKEN_MS for r in metrics.records)


def test_a_buffered_invocation_still_asks_for_the_answer_whole_within_the_short_deadline() -> None:
    asked: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(json.loads(request.content))
        return httpx.Response(200, json=ANSWER)

    gateway, _core, _ = _gateway(handler)
    seen = deadlines_given(gateway, "complete")
    outcome = gateway.chat(_request(), Caller(), "r1")
    assert outcome.status == 200 and outcome.json_body is not None
    assert outcome.json_body["choices"][0]["message"]["content"] == "short"
    assert "stream" not in asked[0]
    assert seen == [pytest.approx(25.0)]


@pytest.mark.parametrize("paid", [False, True])
def test_an_answer_cut_after_its_first_chunk_is_asked_again_and_the_cut_one_stays_spent(paid: bool) -> None:
    """The cut answer was produced (and, on a paid model, billed) up to the cut: its cost stays in
    the provider's cost series, the caller's answer and the user's ledger; the request is counted
    served once, in one ledger entry and one `request served` line."""
    bodies = [_Body(_parts(8), fail_after=3), _Body(_parts(2))]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=bodies.pop(0))

    provider, model = ("openai", "gpt-4o-mini") if paid else ("groq", MODEL)
    gateway, core, metrics = _gateway(handler, failure_threshold=3, provider=provider, model=model)
    recorded: list[ServedRequest] = []
    record = core.tenancy.record
    core.tenancy.record = lambda served: (recorded.append(served), record(served))[-1]  # type: ignore[method-assign]
    request = ChatCompletionRequest.model_validate(
        {"model": f"{provider}/{model}", "messages": [{"role": "user", "content": "write an essay"}]})
    outcome = gateway.chat(request, Caller(), "r1", live=True)
    assert not bodies  # both asked
    assert outcome.status == 200 and outcome.json_body is not None
    assert outcome.json_body["choices"][0]["message"]["content"] == "word " * 2  # only the whole answer
    assert outcome.headers["x-gateway-attempts"] == "2"
    assert len(recorded) == 1  # one request, one ledger entry
    assert metrics.total(m.FREE_TIER_REQUESTS if not paid else m.PAID_REQUESTS, provider=provider) == 1
    assert metrics.total(m.USER_VISIBLE_ERRORS) == 0
    cost = float(outcome.headers["x-gateway-cost-usd"])
    assert outcome.json_body["usage"]["cost_usd"] == pytest.approx(cost) == pytest.approx(recorded[0].cost_usd)
    assert metrics.total(m.COST_USD, provider=provider) == pytest.approx(cost)
    if paid:  # the cut's chunks cost something, and are in the request's cost
        alone, _, _ = _gateway(lambda _r: httpx.Response(200, headers={"content-type": "text/event-stream"},
                                                         stream=_Body(_parts(2))), provider=provider, model=model)
        uncut = float(alone.chat(request, Caller(), "r2", live=True).headers["x-gateway-cost-usd"])
        assert cost > uncut > 0
        assert outcome.json_body["usage"]["cost_estimated"] is True
    else:
        assert cost == 0


@pytest.mark.parametrize("threshold", [1, 3])  # the cut opens the only model's circuit / it is cut again
def test_an_answer_cut_with_no_second_chance_is_a_502_in_openai_s_shape(threshold: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              stream=_Body(_parts(8), fail_after=3))

    gateway, _core, metrics = _gateway(handler, failure_threshold=threshold)
    with pytest.raises(GatewayError) as failed:
        gateway.chat(_request(), Caller(), "r1", live=True)
    assert failed.value.status == 502 and failed.value.code == "answer_interrupted"
    assert failed.value.body()["error"]["type"] == "server_error"
    assert metrics.total(m.USER_VISIBLE_ERRORS) == 1


def test_a_paid_answer_cut_twice_is_a_502_and_its_cost_one_ledger_entry() -> None:
    """The failed request's cut answers were billed: their estimated cost goes to the provider's
    cost series and, as one request of the user's, to the ledger (`Gateway._spent`)."""
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              stream=_Body(_parts(8), fail_after=3))

    gateway, core, metrics = _gateway(handler, failure_threshold=3, provider="openai", model="gpt-4o-mini")
    recorded: list[ServedRequest] = []
    record = core.tenancy.record
    core.tenancy.record = lambda served: (recorded.append(served), record(served))[-1]  # type: ignore[method-assign]
    request = ChatCompletionRequest.model_validate(
        {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "write an essay"}]})
    with pytest.raises(GatewayError) as failed:
        gateway.chat(request, Caller(), "r1", live=True)
    assert failed.value.status == 502
    assert len(recorded) == 1 and recorded[0].cost_usd > 0 and not recorded[0].free
    assert metrics.total(m.COST_USD, provider="openai") == pytest.approx(recorded[0].cost_usd)


def test_a_request_with_a_cut_answer_is_one_cost_per_request_data_point() -> None:
    """`RequestCostUSD` is one data point per request (its Average is the cost per request the
    cohort cost alarm and the trailing-week trigger compare): a paid answer cut and asked again is
    one data point of the whole request's cost, not one for the cut and one for the answer, which
    halved that request's weight in the average."""
    bodies = [_Body(_parts(8), fail_after=3), _Body(_parts(2))]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=bodies.pop(0))

    gateway, _core, metrics = _gateway(handler, failure_threshold=3, provider="openai", model="gpt-4o-mini")
    request = ChatCompletionRequest.model_validate(
        {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "write an essay"}]})
    outcome = gateway.chat(request, Caller(), "r1", live=True)
    points = [r for r in metrics.records if r.name == m.REQUEST_COST_USD]
    assert len(points) == 1 and points[0].dimensions == (("cohort", "gateway"),)
    assert points[0].value == pytest.approx(float(outcome.headers["x-gateway-cost-usd"]))


def test_a_failed_request_whose_cut_answers_cost_something_is_one_cost_data_point() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              stream=_Body(_parts(8), fail_after=3))

    gateway, _core, metrics = _gateway(handler, failure_threshold=3, provider="openai", model="gpt-4o-mini")
    request = ChatCompletionRequest.model_validate(
        {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "write an essay"}]})
    with pytest.raises(GatewayError):
        gateway.chat(request, Caller(), "r1", live=True)
    points = [r for r in metrics.records if r.name == m.REQUEST_COST_USD]
    spent = metrics.total(m.COST_USD, provider="openai")
    assert spent > 0 and len(points) == 1 and points[0].value == pytest.approx(spent)


def test_the_deadline_of_each_kind_of_chat_answer() -> None:
    settings = load_settings({"LLM_GATEWAY_STREAM_DEADLINE_S": "600", "LLM_GATEWAY_FUNCTION_TIMEOUT_S": "610"})
    args = (settings.deadline_s, settings.stream_deadline_s)
    assert chat_deadline(*args, live=True, stream=False) == API_GATEWAY_STREAM_IDLE_S - IDLE_MARGIN_S
    assert chat_deadline(*args, live=True, stream=True) == 600.0  # sent as it comes: no idle time
    for stream in (False, True):  # a buffered invocation: API Gateway's 29 s
        assert chat_deadline(*args, live=False, stream=stream) == settings.deadline_s
    short = load_settings({"LLM_GATEWAY_STREAM_DEADLINE_S": "60"})
    assert chat_deadline(short.deadline_s, short.stream_deadline_s, live=True, stream=False) == 60.0


def _chunk(delta: dict[str, object], finish: str | None = None, **extra: object) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate(
        {"id": "c9", "created": 7, "model": "m", "system_fingerprint": "fp",
         "choices": [{"index": 0, "delta": delta, "finish_reason": finish, **extra}]})


def test_fold_assembles_tool_calls_by_index_extra_text_logprobs_and_the_usage_chunk() -> None:
    chunks = [
        _chunk({"role": "assistant", "reasoning": "think "}, logprobs={"content": [{"token": "a"}]}),
        _chunk({"reasoning": "more", "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_", "arguments": '{"ci'}}]}),
        _chunk({"tool_calls": [{"index": 1, "id": "call_2", "function": {"name": "other", "arguments": "{}"}},
                               {"index": 0, "function": {"name": "weather", "arguments": 'ty": "Oslo"}'}}]},
               logprobs={"content": [{"token": "b"}]}),
        _chunk({}, "tool_calls"),
        ChatCompletionChunk.model_validate({"id": "c9", "created": 7, "model": "m", "choices": [],
                                            "usage": {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10}}),
    ]
    completion = fold(chunks)
    body = completion.model_dump(exclude_none=True)
    assert (body["id"], body["created"], body["model"], body["system_fingerprint"]) == ("c9", 7, "m", "fp")
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["reasoning"] == "think more"
    assert choice["message"]["content"] is None
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in choice["message"]["tool_calls"]] == [
        ("call_1", "get_weather", '{"city": "Oslo"}'), ("call_2", "other", "{}")]
    assert choice["logprobs"] == {"content": [{"token": "a"}, {"token": "b"}], "refusal": None}
    assert body["usage"]["total_tokens"] == 10


def test_fold_of_a_refusal_keeps_it_apart_from_the_content() -> None:
    completion = fold([_chunk({"role": "assistant", "refusal": "I can"}), _chunk({"refusal": "not."}, "stop")])
    message = completion.choices[0].message
    assert (message.content, message.refusal) == (None, "I cannot.")


def test_fold_keeps_extra_fields_skips_nulls_and_drops_what_only_a_stream_has() -> None:
    chunks = [
        ChatCompletionChunk.model_validate(
            {"id": "c1", "created": 1, "model": "m", "service_tier": "default", "obfuscation": "xyz",
             "choices": [{"index": 0, "delta": {"role": "assistant", "reasoning_content": None, "annotations": ["a"]},
                          "finish_reason": None}]}),
        _chunk({"reasoning_content": "step one ", "annotations": ["b"]}),
        _chunk({"reasoning_content": None, "content": "Hi"}, stop_reason=None),
        _chunk({"reasoning_content": "two"}, "stop", stop_reason="eos"),
    ]
    body = fold(chunks).model_dump(exclude_none=True)
    assert body["service_tier"] == "default" and "obfuscation" not in body
    message = body["choices"][0]["message"]
    assert message["reasoning_content"] == "step one two" and message["annotations"] == ["a", "b"]
    assert message["content"] == "Hi"
    assert body["choices"][0]["stop_reason"] == "eos"


def test_a_message_a_provider_sends_beside_the_delta_is_not_the_folded_answer() -> None:
    """A stream choice may carry a `message` of its own beside its delta (some OpenAI-compatible
    servers repeat the message so far): an extra field of the chunk's choice, which fold kept for
    the answer's choice, where `message` is the folded one: building it raised a TypeError (two
    values for `message`), not a provider failure, and the caller got a 500."""
    chunks = [_chunk({"role": "assistant", "content": "Hel"}, message={"role": "assistant", "content": "Hel"}),
              _chunk({"content": "lo"}, "stop", message={"role": "assistant", "content": "Hello"}, seen=1)]
    body = fold(chunks).model_dump(exclude_none=True)
    assert body["choices"][0]["message"]["content"] == "Hello" and body["choices"][0]["seen"] == 1


def test_an_empty_answer_is_an_empty_string_and_a_tool_call_alone_has_no_content() -> None:
    empty = fold([_chunk({"role": "assistant", "content": ""}), _chunk({}, "stop")])
    assert empty.choices[0].message.content == ""
    call = fold([_chunk({"role": "assistant", "content": "", "tool_calls": [
        {"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]}), _chunk({}, "tool_calls")])
    assert call.choices[0].message.content is None and call.choices[0].message.tool_calls


def test_a_model_the_catalog_says_cannot_stream_still_answers_whole() -> None:
    """A catalog override may mark a model `streaming: false`: asked as a stream, nothing fits;
    its answer sent whole is then asked of it unstreamed, as before."""
    catalog = default_catalog()
    entries = [e.model_copy(update={"capabilities": e.capabilities.model_copy(update={"streaming": False})})
               if e.key == ModelKey("groq", MODEL) else e for e in catalog.entries]
    asked: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(json.loads(request.content))
        return httpx.Response(200, json=ANSWER)

    gateway, _core, _ = _gateway(handler, catalog=Catalog.from_entries(entries, catalog.data.providers))
    outcome = gateway.chat(_request(), Caller(), "r1", live=True)
    assert outcome.status == 200 and outcome.json_body is not None
    assert outcome.json_body["choices"][0]["message"]["content"] == "short"
    assert "stream" not in asked[0]


def test_an_answer_whose_provider_reported_no_usage_shows_none_as_unstreamed() -> None:
    """Its cost is priced on our estimate and says so; the estimate is not shown as the
    provider's usage."""
    parts = [p for p in _parts() if b"x_groq" not in p]  # the usage travels in the last chunk's x_groq

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_Body(parts))

    gateway, _core, _ = _gateway(handler)
    body = gateway.chat(_request(), Caller(), "r1", live=True).json_body
    assert body is not None and body["usage"]["cost_estimated"] is True
    assert "total_tokens" not in body["usage"]


def test_a_failed_request_whose_paid_answer_was_cut_before_a_free_one_is_booked_paid() -> None:
    """The ledger entry of a failed request's cuts is paid whenever any cut cost something, and
    names the model that cost the most: booking it on the last cut said `free` with a cost when
    a paid answer was cut and then a free one."""
    gateway, core, metrics = _gateway(lambda _r: httpx.Response(500), provider="openai", model="gpt-4o-mini")
    recorded: list[ServedRequest] = []
    core.tenancy.record = recorded.append  # type: ignore[method-assign]
    paid = RoutedStream("openai", "gpt-4o-mini", [], iter(()), cost_usd=0.002, free=False)
    free = RoutedStream("groq", MODEL, [], iter(()), cost_usd=0.0, free=True)
    total = gateway._spent(Caller(), "stable", [paid, free], failed=True)
    assert total == pytest.approx(0.002)
    assert len(recorded) == 1
    assert (recorded[0].provider, recorded[0].model, recorded[0].free) == ("openai", "gpt-4o-mini", False)
    assert recorded[0].cost_usd == pytest.approx(0.002)
    assert metrics.total(m.COST_USD, provider="openai") == pytest.approx(0.002)


def test_a_free_answer_after_a_paid_cut_is_booked_paid_with_both_costs() -> None:
    """A request served free after a paid answer was cut cost the cut's price: the ledger says
    paid, with that cost (it said free with a cost)."""
    gateway, core, _metrics = _gateway(lambda _r: httpx.Response(500))
    recorded: list[ServedRequest] = []
    core.tenancy.record = recorded.append  # type: ignore[method-assign]
    completion = ChatCompletion.model_validate(ANSWER)

    def complete_streamed(request, deadline, *, limits, spent):  # type: ignore[no-untyped-def]
        spent(RoutedStream("openai", "gpt-4o-mini", [], iter(()), cost_usd=0.002, free=False))
        return RoutedCompletion(completion, "groq", MODEL, [], cost_usd=0.0, free=True)

    gateway.router.complete_streamed = complete_streamed  # type: ignore[method-assign]
    outcome = gateway.chat(_request(), Caller(), "r1", live=True)
    assert outcome.status == 200 and outcome.json_body is not None
    assert outcome.json_body["usage"]["cost_usd"] == pytest.approx(0.002)
    assert len(recorded) == 1
    assert (recorded[0].provider, recorded[0].free) == ("groq", False)
    assert recorded[0].cost_usd == pytest.approx(0.002)


def test_a_providers_own_cost_estimated_never_reaches_the_callers_usage() -> None:
    """`usage.cost_usd` and `usage.cost_estimated` are the gateway's: a provider's usage that
    carries its own must not reach the caller (a review suspected it did; it does not, the
    adapters keep only the usage fields they know: this holds it so)."""
    echoed = {**ANSWER, "usage": {**ANSWER["usage"], "cost_estimated": True, "cost_usd": 99.0}}
    gateway, _core, _metrics = _gateway(lambda request: httpx.Response(200, json=echoed))
    body = gateway.chat(_request(), Caller(), "r1").json_body
    assert body is not None and "cost_estimated" not in body["usage"]
    assert body["usage"]["cost_usd"] != 99.0
