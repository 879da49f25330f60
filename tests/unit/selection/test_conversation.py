"""Conversation keys: the turn after an answer finds the key the answer was recorded under."""

from __future__ import annotations

import json
from typing import Any

from llm_gateway.api.schemas import ChatCompletionRequest, ToolCall
from llm_gateway.selection.conversation import _json, next_turn_key, turn_key

CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}


def messages(*raw: dict[str, Any]) -> list[Any]:
    return ChatCompletionRequest.model_validate({"model": "auto", "messages": list(raw)}).messages


SYSTEM = {"role": "system", "content": "Be brief."}
USER = {"role": "user", "content": "Weather in Paris?"}


def test_a_first_turn_has_no_conversation_to_continue():
    assert turn_key(messages(USER)) is None
    assert turn_key(messages(SYSTEM, USER)) is None  # a shared system prompt is no conversation


def test_the_follow_up_of_a_tool_call_finds_the_key_its_answer_was_recorded_under():
    recorded = next_turn_key(messages(SYSTEM, USER), None, [ToolCall.model_validate(CALL)])
    # what an SDK echoes back: the response message dumped, with fields the request ignores
    echoed = {"role": "assistant", "content": None, "refusal": None, "annotations": [], "tool_calls": [CALL]}
    follow_up = messages(SYSTEM, USER, echoed, {"role": "tool", "tool_call_id": "call_1", "content": "18C"})
    assert turn_key(follow_up) == recorded
    parallel = messages(SYSTEM, USER, echoed, {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                        {"role": "tool", "tool_call_id": "call_2", "content": "19C"})
    assert turn_key(parallel) == recorded  # every result of the latest turn is left out


def test_a_text_answer_continues_with_the_next_user_message():
    recorded = next_turn_key(messages(USER), "It is sunny.", None)
    as_parts = {"role": "assistant", "content": [{"type": "text", "text": "It is sunny."}]}
    assert turn_key(messages(USER, {"role": "assistant", "content": "It is sunny."}, {"role": "user", "content": "And tomorrow?"})) == recorded
    assert turn_key(messages(USER, as_parts, {"role": "user", "content": "And tomorrow?"})) == recorded


def test_empty_content_beside_tool_calls_is_the_same_turn():
    calls = [ToolCall.model_validate(CALL)]
    follow = {"role": "tool", "tool_call_id": "call_1", "content": "18C"}
    assert turn_key(messages(USER, {"role": "assistant", "content": "", "tool_calls": [CALL]}, follow)) == \
        next_turn_key(messages(USER), None, calls)


def test_other_conversations_get_other_keys():
    base = next_turn_key(messages(USER), "It is sunny.", None)
    assert next_turn_key(messages({"role": "user", "content": "Weather in Rome?"}), "It is sunny.", None) != base
    assert next_turn_key(messages(USER), "It is raining.", None) != base
    assert len(base) == 64 and int(base, 16) >= 0  # SHA-256, hex


def test_the_canonical_json_is_written_as_the_non_ascii_encoder_writes_it() -> None:
    """`_json` writes ASCII histories with the faster ASCII encoder: every key stays what
    `json.dumps(..., ensure_ascii=False)` makes of the same messages, whatever they hold."""
    texts = ["plain", "caf\u00e9", "emoji \U0001F600", "del \x7f", "bell \x07 tab \t nl \n", 'quote " and \\',
             "a literal \\u00e9 typed out", "\\", "", "\u2028 line separator", "lone \ud800 surrogate"]
    for text in texts:
        for messages in ([{"role": "user", "content": text}],
                         [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": text}}]}],
                         [{"role": "user", "content": "ascii"}, {"role": "assistant", "content": text}]):
            assert _json(messages) == json.dumps(messages, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
