"""Analyzer rules, one test per documented rule."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.selection.analyzer import LARGE_PROMPT_TOKENS, REASONING_CUES, analyze, find_cue


def req(content: Any = "hi", **extra: Any) -> ChatCompletionRequest:
    body = {"model": "auto", "messages": [{"role": "user", "content": content}], **extra}
    return ChatCompletionRequest.model_validate(body)


TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}


@pytest.mark.parametrize("alias,category", [("auto:small", "small"), ("auto:large", "large"), ("auto:reasoning", "reasoning")])
def test_alias_wins_over_content(alias: str, category: str) -> None:
    result = analyze(req("prove the theorem step by step", model=alias), 10_000)
    assert result.category == category and result.alias == alias


@pytest.mark.parametrize("text", ["Prove that 2+2=4", "explain step-by-step", "Think carefully about this", "solve for x"])
def test_reasoning_cues(text: str) -> None:
    assert analyze(req(text), 10).category == "reasoning"


def test_cue_needs_a_whole_word() -> None:
    assert analyze(req("please approve this improvement"), 10).category == "small"


def test_size_rules() -> None:
    assert analyze(req(), LARGE_PROMPT_TOKENS).category == "large"
    assert analyze(req(), LARGE_PROMPT_TOKENS - 1).category == "small"
    assert analyze(req(max_tokens=4000), 10).category == "large"
    assert analyze(req(tools=[TOOL, {**TOOL, "function": {"name": "g"}}, {**TOOL, "function": {"name": "h"}}]), 10).category == "large"
    many = [{"role": "user", "content": "x"}] * 12
    assert analyze(ChatCompletionRequest.model_validate({"model": "auto", "messages": many}), 10).category == "large"


def test_needs() -> None:
    image = [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    result = analyze(req(image, tools=[TOOL], response_format={"type": "json_object"}), 10)
    assert (result.needs_tools, result.needs_vision, result.needs_json) == (True, True, True)
    plain = analyze(req(tools=[TOOL], tool_choice="none"), 10)
    assert (plain.needs_tools, plain.needs_vision, plain.needs_json) == (False, False, False)


def test_tool_history_needs_tools() -> None:
    body = {
        "model": "auto",
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        ],
    }
    assert analyze(ChatCompletionRequest.model_validate(body), 10).needs_tools


def test_deterministic() -> None:
    request = req("a fairly ordinary question about cooking pasta")
    assert len({analyze(request, 50) for _ in range(20)}) == 1


# --- the reasoning-cue search: a fast path that finds exactly what the regex finds ---------------
_REFERENCE = re.compile(r"\b(" + "|".join(re.escape(cue) for cue in REASONING_CUES) + r")\b", re.IGNORECASE)


_ASCII_WORDS = st.sampled_from([*REASONING_CUES, "Step By Step", "PROVE", "Proofs", "sub-lemma", "theorems", "reason",
                                "think", "x", "_", "9"])


@given(st.lists(_ASCII_WORDS | st.text(st.characters(max_codepoint=127), max_size=6), max_size=12),
       st.sampled_from([" ", "", "-", "\n", "_", "."]))
def test_find_cue_s_fast_path_on_ascii_text_finds_what_the_regex_finds(parts: list[str], glue: str) -> None:
    """ASCII text (nearly all prompts) takes the fast path: lowercased, substring-tested, searched
    case-sensitively."""
    text = glue.join(parts)
    assert text.isascii()
    expected = _REFERENCE.search(text)
    assert find_cue(text) == (expected.group(1).lower() if expected else None)

_WORDS = st.sampled_from([*REASONING_CUES, "Step By Step", "PROVE", "Proofs", "sub-lemma", "derived", "theorems",
                          "reason", "through", "think", "hard", "x", "_", "9", "é", "İ", "\u017ftep by \u017ftep", "\u212a"])  # long s, Kelvin sign: fold to s, k


@given(st.lists(st.one_of(_WORDS, st.text(max_size=6)), max_size=12), st.sampled_from([" ", "", "-", "\n", "_", ".", "é"]))
def test_find_cue_finds_what_the_case_insensitive_regex_finds(parts: list[str], glue: str) -> None:
    """`find_cue` replaced a case-insensitive regex (16 ms on a 30,000-token prompt): on every
    text it must name the same cue. Non-ASCII text takes that regex itself; the fast path is for
    ASCII, so the reference here is built from the cue list, not taken from the module."""
    text = glue.join(parts)
    expected = _REFERENCE.search(text)
    assert find_cue(text) == (expected.group(1).lower() if expected else None)
