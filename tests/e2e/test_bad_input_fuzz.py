"""Whatever a client sends, the answer is a clean OpenAI-style error or a success, never a 500."""

from __future__ import annotations

import json

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HEADERS = {"Authorization": "Bearer local-dev-key", "content-type": "application/json"}
FIELDS = ["model", "messages", "tools", "tool_choice", "response_format", "temperature", "top_p", "max_tokens",
          "max_completion_tokens", "stop", "seed", "user", "stream", "stream_options", "n"]

scalars = st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
roles = st.sampled_from(["system", "developer", "user", "assistant", "tool", "function", "", "USER"])
parts = st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", "input_audio", "file", "video"])},
                              optional={"text": json_values, "image_url": json_values})
messages = st.lists(
    st.fixed_dictionaries({"role": roles}, optional={
        "content": st.none() | st.text(max_size=30) | st.lists(parts, max_size=3) | st.integers(),
        "tool_calls": json_values, "tool_call_id": json_values, "name": json_values}),
    max_size=4,
)
bodies = st.fixed_dictionaries(
    {}, optional={"model": st.sampled_from(["auto", "auto:large", "groq/llama-3.1-8b-instant", "x/y", "", "auto:nope"]) | json_values,
                  "messages": messages | json_values, **{f: json_values for f in FIELDS[2:]}},
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=bodies)
def test_random_bodies_never_cause_a_server_error(gateway_url, body):
    response = httpx.post(f"{gateway_url}/v1/chat/completions", content=json.dumps(body), headers=HEADERS, timeout=30)
    assert response.status_code in {200, 400, 413, 429, 503}, (response.status_code, response.text[:300])
    if response.status_code != 200:
        error = response.json()["error"]
        assert {"message", "type", "param", "code"} <= set(error)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_random_bytes_are_a_clean_400(gateway_url, raw):
    response = httpx.post(f"{gateway_url}/v1/chat/completions", content=raw, headers=HEADERS, timeout=30)
    assert response.status_code in {200, 400}, (response.status_code, response.text[:300])


# --- hostile bodies: what crashed handlers before (surrogates, depth, numbers, bombs) ------------
surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3)
hostile_text = st.one_of(
    st.tuples(st.text(max_size=8), surrogates, st.text(max_size=8)).map("".join),
    st.text(st.characters(max_codepoint=0x1F), max_size=8).map(lambda s: "\x00" + s + "\x00"),
    st.integers(1, 300_000).map(lambda n: "x" * n),  # oversize fields (the body cap is 4 MiB)
    st.text(max_size=20),
)
raw_numbers = st.sampled_from(["1e999", "-1e999", "NaN", "Infinity", "-Infinity", "1" + "0" * 5000, "1e308",
                               "-0", "1.5e-400", "18446744073709551616", "-9223372036854775809", "0.0"])


def _nest(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)


def _bomb(levels: int, fanout: int, description: str) -> dict:
    props = lambda i: {f"p{k}": {"$ref": f"#/$defs/L{i + 1}"} for k in range(fanout)}  # noqa: E731
    defs = {f"L{i}": {"type": "object", "description": description, "properties": props(i)} for i in range(levels)}
    defs[f"L{levels}"] = {"type": "string"}
    return {"type": "object", "properties": {"root": {"$ref": "#/$defs/L0"}}, "$defs": defs}


bombs = st.builds(_bomb, st.integers(3, 24), st.integers(2, 3), st.sampled_from(["", "d" * 500]))


@st.composite
def hostile_bodies(draw) -> str:
    """Raw request text (not always strict JSON: NaN and 1e999 are what clients really send)."""
    fields = {"model": json.dumps(draw(st.sampled_from(["auto", "gemini/gemini-2.5-flash", "auto:large"])))}
    content = draw(hostile_text)
    fields["messages"] = json.dumps([{"role": "user", "content": content}])
    for name in draw(st.lists(st.sampled_from(["max_tokens", "temperature", "seed", "top_p", "n"]), max_size=2)):
        fields[name] = draw(raw_numbers)
    if draw(st.booleans()):
        fields[draw(st.sampled_from(["metadata", "tools", "stop"]))] = _nest(draw(st.integers(50, 20_000)),
                                                                              draw(st.sampled_from(["list", "dict"])))
    if draw(st.booleans()):
        schema = draw(bombs)
        if draw(st.booleans()):
            fields["tools"] = json.dumps([{"type": "function", "function": {"name": "f", "parameters": schema}}])
        else:
            fields["response_format"] = json.dumps({"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    if draw(st.booleans()):
        fields[draw(st.sampled_from(["user", "model"]))] = json.dumps(draw(hostile_text))
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in fields.items()) + "}"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                                 HealthCheck.data_too_large])
@given(raw=hostile_bodies())
def test_hostile_bodies_never_cause_a_server_error(gateway_url, raw):
    response = httpx.post(f"{gateway_url}/v1/chat/completions", content=raw.encode("utf-8", "surrogatepass"),
                          headers=HEADERS, timeout=60)
    assert response.status_code in {200, 400, 413, 429, 503}, (response.status_code, response.text[:300], raw[:200])
    if response.status_code != 200:
        assert {"message", "type", "param", "code"} <= set(response.json()["error"])
