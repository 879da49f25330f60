"""Conversation affinity over HTTP on the fake providers, through the composition root's router.

With `model: "auto"`, the turns of one conversation stay on the model that served the previous
turn while it can serve (a tool call and its follow-up land on the same model even though the
capacity balancer rotates equally good models), and fall back normally when it cannot.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.routing.chat import ChatRouter
from llm_gateway.state.items import AFFINITY_TTL_S
from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.store import Item, ModelKey
from tests.integration.test_failover_matrix import build_router

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
FIRST = [{"role": "user", "content": "What is the weather in Paris?"}]


def ask(router: ChatRouter, messages: list[dict[str, Any]], *, stream: bool = False,
        **fields: Any) -> tuple[ModelKey, dict[str, Any]]:
    """(who answered, the answer as an SDK user appends it to the history)."""
    request = ChatCompletionRequest.model_validate(
        {"model": "auto", "messages": messages, "tools": [WEATHER], "stream": stream, **fields})
    if not stream:
        routed = router.complete(request)
        message = routed.completion.choices[0].message.model_dump(exclude_none=True)
        return ModelKey(routed.provider, routed.model), message
    streamed = router.stream(request, buffered=True)
    text, calls = "", {}
    for chunk in streamed.chunks:  # as openai-python's stream helpers accumulate deltas
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": "", "type": "function",
                                                      "function": {"name": "", "arguments": ""}})
                call["id"] = delta.id or call["id"]
                if delta.function is not None:
                    call["function"]["name"] += delta.function.name or ""
                    call["function"]["arguments"] += delta.function.arguments or ""
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return ModelKey(streamed.provider, streamed.model), message


def tool_result(call_message: dict[str, Any], text: str = "18 degrees and sunny") -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_message["tool_calls"][0]["id"], "content": text}


@pytest.fixture
def router(fakes):
    router, close = build_router(fakes)
    yield router
    close()


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "streamed"])
def test_the_follow_up_of_a_tool_call_goes_to_the_model_that_made_it(router, stream):
    served, call = ask(router, FIRST, stream=stream, tool_choice="required")
    assert call["tool_calls"]
    follow_up = [*FIRST, call, tool_result(call)]
    # the balancer spreads fresh conversations over the equally good models...
    fresh = {ask(router, [{"role": "user", "content": f"Weather in city number {i}?"}])[0] for i in range(6)}
    assert len(fresh) > 1, fresh
    # ...but every retry of this follow-up goes to the model that made the call
    for _ in range(6):
        answered_by, answer = ask(router, follow_up, stream=stream)
        assert answered_by == served
        assert "18 degrees and sunny" in (answer.get("content") or "")


def test_a_conversation_falls_back_when_its_model_is_cooling_down_and_then_stays_on_the_new_one(router):
    served, call = ask(router, FIRST, tool_choice="required")
    now = time.time()
    router.runner.state.cool_down(served, now + 60, "rate_limited (429)", now)
    moved_to, answer = ask(router, [*FIRST, call, tool_result(call)])
    assert moved_to != served
    next_turn = [*FIRST, call, tool_result(call), answer, {"role": "user", "content": "And in Rome?"}]
    assert {ask(router, next_turn)[0] for _ in range(4)} == {moved_to}


class PutRecorder(MemoryStore):
    """The in-memory store, noting every item written with `put` (affinities among them)."""

    def __init__(self) -> None:
        super().__init__()
        self.puts: list[str] = []

    def put(self, pk: str, item: Item, expires_at: int, now: float) -> None:
        self.puts.append(pk)
        super().put(pk, item, expires_at, now)


def test_only_unpinned_answers_are_remembered_and_only_for_15_minutes(fakes):
    store = PutRecorder()
    router, close = build_router(fakes, store=store)
    try:
        served, call = ask(router, FIRST, tool_choice="required")
        remembered = [pk for pk in store.puts if pk.startswith("aff#")]
        assert len(remembered) == 1
        item = store.load(remembered, time.time())[remembered[0]]
        assert (item["provider"], item["model"]) == served
        assert store.load(remembered, time.time() + AFFINITY_TTL_S + 1) == {}  # gone after its TTL
        request = ChatCompletionRequest.model_validate(
            {"model": str(served), "messages": [*FIRST, call, tool_result(call)], "tools": [WEATHER]})
        router.complete(request)
        assert len([pk for pk in store.puts if pk.startswith("aff#")]) == 1  # the pinned turn wrote none
    finally:
        close()


def test_a_one_shot_question_writes_nothing_and_a_continued_conversation_does(fakes):
    """The affinity write is a round trip the caller waits for: only where a next turn is expected."""
    store = PutRecorder()
    router, close = build_router(fakes, store=store)
    try:
        _served, answer = ask(router, FIRST, tool_choice="none")  # a plain answer to a first question
        assert "tool_calls" not in answer
        assert [pk for pk in store.puts if pk.startswith("aff#")] == []
        ask(router, [*FIRST, answer, {"role": "user", "content": "And in Rome?"}], tool_choice="none")
        assert len([pk for pk in store.puts if pk.startswith("aff#")]) == 1  # a conversation: remembered
    finally:
        close()
