"""The gateway's live streams (a streaming invocation), on `httpx.MockTransport`: events as they
come, the usage chunk with the final cost, a late failure as an error event without `[DONE]`, a
caller who stops reading closing the provider's response and reconciling the reservation, the
stream deadline, and time to first token as a metric."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.config import load_settings
from llm_gateway.config_check import ConfigError
from llm_gateway.gateway import Caller
from llm_gateway.observability import metrics as m
from tests.unit.routing.test_deadline_budget import MODEL, _gateway
from tests.unit.test_buffered_stream_cap import _sse


def _request(include_usage: bool = True) -> ChatCompletionRequest:
    body: dict[str, object] = {"model": f"groq/{MODEL}", "stream": True,
                               "messages": [{"role": "user", "content": "write"}]}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    return ChatCompletionRequest.model_validate(body)


class _Body(httpx.SyncByteStream):
    """A provider body that records how far it was read and whether it was closed."""

    def __init__(self, parts: list[bytes], fail_after: int | None = None) -> None:
        self.parts = parts
        self.fail_after = fail_after
        self.sent = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for part in self.parts:
            if self.fail_after is not None and self.sent >= self.fail_after:
                raise httpx.ReadError("connection reset mid-stream")
            self.sent += 1
            yield part

    def close(self) -> None:
        self.closed = True


def _events(data: bytes) -> list[str]:
    return [block.removeprefix("data: ") for block in data.decode().split("\n\n") if block]


def _body_parts(pieces: int = 10) -> list[bytes]:
    return [block + b"\n\n" for block in _sse(pieces, "word ").split(b"\n\n") if block]


def _serve(body: _Body):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)

    return _gateway(handler)


def test_a_live_stream_sends_each_event_and_ends_with_the_priced_usage_chunk_and_done() -> None:
    body = _Body(_body_parts())
    gateway, _core, metrics = _serve(body)
    outcome = gateway.chat(_request(), Caller(), "r1", live=True)
    assert outcome.sse_stream is not None and outcome.sse_body is None
    assert "x-gateway-cost-usd" not in outcome.headers and outcome.headers["x-gateway-provider"] == "groq"
    assert outcome.headers["x-gateway-attempts"] == "1"
    first = next(outcome.sse_stream)
    assert body.sent < len(body.parts)  # the first event left before the provider's stream ended
    events = _events(first + b"".join(outcome.sse_stream))
    assert events[-1] == "[DONE]"
    usage = json.loads(events[-2])
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] == 12 and "cost_usd" in usage["usage"]
    assert metrics.total(m.TIME_TO_FIRST_TOKEN_MS, provider="groq") >= 0
    assert any(r.name == m.TIME_TO_FIRST_TOKEN_MS for r in metrics.records)


def test_a_failure_after_the_first_chunk_ends_with_an_error_event_and_no_done() -> None:
    body = _Body(_body_parts(), fail_after=3)
    gateway, _core, metrics = _serve(body)
    outcome = gateway.chat(_request(), Caller(), "r1", live=True)
    assert outcome.sse_stream is not None
    events = _events(b"".join(outcome.sse_stream))
    assert "[DONE]" not in events
    assert json.loads(events[-1])["error"]["code"] == "stream_interrupted"
    assert metrics.total(m.USER_VISIBLE_ERRORS) == 1


def test_a_caller_who_stops_reading_closes_the_provider_stream_and_reconciles(monkeypatch) -> None:
    body = _Body(_body_parts(50))
    gateway, core, _metrics = _serve(body)
    reconciled: list[dict[str, float]] = []
    original = core.state.reconcile

    def spy(reservation, actual, now):  # type: ignore[no-untyped-def]
        reconciled.append(dict(actual))
        return original(reservation, actual, now)

    monkeypatch.setattr(core.state, "reconcile", spy)
    outcome = gateway.chat(_request(), Caller(), "r1", live=True)
    assert outcome.sse_stream is not None
    for _ in range(3):
        next(outcome.sse_stream)
    outcome.sse_stream.close()  # what the host does when a write to the caller fails
    assert body.closed and body.sent < len(body.parts)
    assert len(reconciled) == 1
    assert reconciled[0]["requests"] == 1 and 0 < reconciled[0]["tokens"] < 50  # prompt + what was sent


def test_without_live_the_stream_is_one_buffered_body() -> None:
    gateway, _core, metrics = _serve(_Body(_body_parts()))
    outcome = gateway.chat(_request(), Caller(), "r1")
    assert outcome.sse_stream is None and outcome.sse_body is not None
    assert "x-gateway-cost-usd" in outcome.headers
    assert not any(r.name == m.TIME_TO_FIRST_TOKEN_MS for r in metrics.records)


@pytest.mark.parametrize(("env", "fragment"), [
    ({"LLM_GATEWAY_STREAM_DEADLINE_S": "20"}, "must be longer than LLM_GATEWAY_DEADLINE_S"),
    ({"LLM_GATEWAY_STREAM_DEADLINE_S": "901"}, "15-minute"),
    ({"LLM_GATEWAY_STREAM_DEADLINE_S": "300", "LLM_GATEWAY_FUNCTION_TIMEOUT_S": "301"}, "function timeout"),
    ({"LLM_GATEWAY_STREAM_DEADLINE_S": "abc"}, "must be a number"),
])
def test_a_stream_deadline_that_cannot_work_is_refused(env, fragment) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_settings(env)


def test_stream_deadline_defaults() -> None:
    settings = load_settings({"LLM_GATEWAY_FUNCTION_TIMEOUT_S": "310"})
    assert settings.deadline_s < settings.stream_deadline_s == 300.0 < settings.function_timeout_s == 310.0


def test_a_stream_the_caller_abandons_keeps_its_estimated_tokens_in_the_ledger(monkeypatch) -> None:
    """The cost of an abandoned stream is our estimate (the prompt plus the text sent); the ledger's
    tokens in and out must be that same estimate, not 0, or `/v1/usage` loses what was used."""
    _body, recorded = _abandoned_after(3, monkeypatch)
    assert len(recorded) == 1
    served = recorded[0]
    assert served.tokens_in > 0 and served.tokens_out > 0


def test_a_stream_closed_before_its_first_event_was_sent_is_still_settled_and_charged(monkeypatch) -> None:
    """The caller left before the host wrote anything (it closes the events unread). A generator
    closed before it started runs none of its code, so the provider's stream stayed open, its
    reservation held its maximum and the ledger never heard of a call the provider was paid for
    (found in the cost audit). The events now start with the gateway: closing them settles."""
    body, recorded = _abandoned_after(0, monkeypatch)  # nothing was read
    assert body.closed
    assert len(recorded) == 1 and recorded[0].tokens_in > 0


def _abandoned_after(events: int, monkeypatch: pytest.MonkeyPatch) -> tuple[_Body, list]:
    """A live stream of 50 pieces whose caller read `events` events and left; (the provider's
    body, what the ledger was given)."""
    body = _Body(_body_parts(50))
    gateway, core, _metrics = _serve(body)
    recorded: list = []
    monkeypatch.setattr(core.tenancy, "record", recorded.append)
    outcome = gateway.chat(_request(), Caller(), "r1", live=True)
    assert outcome.sse_stream is not None
    for _ in range(events):
        next(outcome.sse_stream)
    outcome.sse_stream.close()
    return body, recorded
