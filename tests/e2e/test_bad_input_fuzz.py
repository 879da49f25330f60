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
