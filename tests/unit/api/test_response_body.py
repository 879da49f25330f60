"""`completion_body` is `model_dump(exclude_none=True)`: the same dict, key order and value types
included (so the same JSON, byte for byte), on every recorded provider answer and on generated
ones; whatever it does not mirror takes pydantic's own path."""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_gateway.api import response_body
from llm_gateway.api.response_body import completion_body
from llm_gateway.api.schemas import ChatCompletion, ResponseMessage, Usage
from llm_gateway.providers.base import ProviderError
from llm_gateway.routing.whole_answer import fold

from ..providers.helpers import FIXTURES, adapter, load_json, replay

PROVIDERS = ("openai", "groq", "mistral", "cohere", "gemini")


def _same(fast: dict[str, Any], completion: ChatCompletion) -> None:
    slow = completion.model_dump(exclude_none=True)
    assert repr(fast) == repr(slow)  # keys in order, and each value of the same type
    assert json.dumps(fast) == json.dumps(slow)
    assert not _containers(fast) & _containers(completion), "the body shares a list or dict with the answer"


def _containers(value: Any) -> set[int]:
    """The ids of every dict and list inside `value` (a model's fields and extras included)."""
    if isinstance(value, ChatCompletion | ResponseMessage | Usage) or hasattr(value, "__pydantic_extra__"):
        return _containers(dict(value.__dict__)) | _containers(value.__pydantic_extra__ or {})
    if isinstance(value, dict):
        return {id(value)}.union(*(_containers(v) for v in value.values()))
    if isinstance(value, list):
        return {id(value)}.union(*(_containers(v) for v in value))
    return set()


def test_the_fast_path_is_on_for_these_schemas():
    """Off when a response model's fields change: then update `response_body` with them."""
    assert response_body.FAST


def _recorded() -> list[tuple[str, ChatCompletion]]:
    out = []
    for provider in PROVIDERS:
        for path in sorted((FIXTURES / provider).glob("chat_*.json")):
            try:
                out.append((f"{provider}/{path.name}", adapter(provider).parse_response(
                    load_json(provider, path.name), "m")))
            except ProviderError:  # an answer the adapter turns into an error
                continue
        for path in sorted((FIXTURES / provider).glob("stream_*.sse")):
            try:
                out.append((f"{provider}/{path.name}", fold(iter(replay(provider, path.name).chunks))))
            except ProviderError:
                continue
    return out


RECORDED = _recorded()


def test_recorded_answers_cover_tool_calls_usage_details_and_extras():
    bodies = [c.model_dump(exclude_none=True) for _, c in RECORDED]
    messages = [choice["message"] for body in bodies for choice in body["choices"]]
    assert any("tool_calls" in m for m in messages) and any(m.get("content") for m in messages)
    assert any("usage" in b for b in bodies) and any("prompt_tokens_details" in b.get("usage", {}) for b in bodies)
    assert any(set(b) - set(ChatCompletion.model_fields) for b in bodies)  # a provider's extra field


@pytest.mark.parametrize(("name", "completion"), RECORDED, ids=[name for name, _ in RECORDED])
def test_each_recorded_answer_gives_pydantics_body(name: str, completion: ChatCompletion):
    _same(response_body._completion(completion), completion)  # the fast path itself: it must not step aside


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
EXTRAS = st.dictionaries(st.text(max_size=4).map(lambda s: f"x_{s}"), JSON, max_size=3)
OPTIONAL_TEXT = st.none() | st.text(max_size=8)


def _with(extras: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    return {**extras, **fields}


@st.composite
def completions(draw: st.DrawFn) -> ChatCompletion:
    calls = draw(st.none() | st.lists(st.fixed_dictionaries({
        "id": st.text(max_size=6), "function": st.fixed_dictionaries(
            {"name": st.text(max_size=6), "arguments": st.text(max_size=10)})}), max_size=2))
    choices = [
        _with(draw(EXTRAS), {
            "index": index,
            "message": _with(draw(EXTRAS), {"content": draw(OPTIONAL_TEXT), "refusal": draw(OPTIONAL_TEXT),
                                            "tool_calls": calls}),
            "finish_reason": draw(st.sampled_from([None, "stop", "length", "tool_calls", "content_filter"])),
            "logprobs": draw(st.none() | JSON),
        })
        for index in range(draw(st.integers(0, 2)))
    ]
    usage = None
    if draw(st.booleans()):
        usage = _with(draw(EXTRAS), {
            "prompt_tokens": draw(st.integers(0, 10**6)), "completion_tokens": draw(st.integers(0, 10**6)),
            "total_tokens": draw(st.integers(0, 2 * 10**6)),
            "prompt_tokens_details": draw(st.none() | st.builds(
                lambda n, e: _with(e, {"cached_tokens": n}), st.none() | st.integers(0, 99), EXTRAS)),
            "completion_tokens_details": draw(st.none() | st.builds(
                lambda n, e: _with(e, {"reasoning_tokens": n}), st.none() | st.integers(0, 99), EXTRAS)),
        })
    return ChatCompletion.model_validate(_with(draw(EXTRAS), {
        "id": draw(st.text(max_size=8)), "model": draw(st.text(max_size=8)), "created": draw(st.integers(0, 2**40)),
        "choices": choices, "usage": usage, "system_fingerprint": draw(OPTIONAL_TEXT),
    }))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(completions())
def test_generated_answers_give_pydantics_body(completion: ChatCompletion):
    _same(response_body._completion(completion), completion)


class _Sub(ChatCompletion):
    pass


def _unusual() -> list[tuple[str, ChatCompletion]]:
    base = RECORDED[0][1]
    cases = []
    for name, value in (("a tuple", (1, None)), ("a set", {1}), ("a model", Usage.of(1, 2)), ("an int key", {1: 2}),
                        ("bytes", b"x"), ("a float subclass", type("F", (float,), {})(1.5))):
        completion = base.model_copy(deep=True)
        completion.__pydantic_extra__ = {"x_extra": value}
        cases.append((f"an extra holding {name}", completion))
    cases.append(("a subclass", _Sub.model_validate(base.model_dump())))
    completion = base.model_copy(deep=True)
    completion.choices[0].message.content = ["not", "a", "string"]  # type: ignore[assignment]
    cases.append(("a field holding another type", completion))
    completion = base.model_copy(deep=True)
    completion.choices[0].logprobs = {"nan": math.nan, "deep": [[[{"k": None}]]]}
    cases.append(("NaN and nesting in an Any field (taken by the fast path)", completion))
    return cases


@pytest.mark.parametrize(("name", "completion"), _unusual(), ids=[name for name, _ in _unusual()])
def test_what_the_fast_path_does_not_mirror_takes_pydantics(name: str, completion: ChatCompletion):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic warns of a field holding another type, and serializes it
        slow = completion.model_dump(exclude_none=True)
        fast = completion_body(completion)
    assert repr(fast) == repr(slow)
    if "fast path" not in name:
        with pytest.raises(response_body._Unusual):
            response_body._completion(completion)
    else:  # the fast path itself gave it, not pydantic behind it
        assert repr(response_body._completion(completion)) == repr(slow)

