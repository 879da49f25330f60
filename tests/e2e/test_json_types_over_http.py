"""Wrong JSON types over HTTP against the local gateway: a 400 in OpenAI's shape naming the field,
never a silently converted value (an SSE answer for `"stream": "yes"`, an admin key for
`"admin": "yes"`). The schema-level cases are in tests/unit/api/test_json_types.py."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import DEV_KEY

MESSAGES = [{"role": "user", "content": "hi"}]


def _post(gateway_url: str, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{gateway_url}/v1{path}", json=body, timeout=30, trust_env=False,
                      headers={"Authorization": f"Bearer {DEV_KEY}"})


def _assert_400_naming(response: httpx.Response, param: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert (error["param"], error["type"], error["code"]) == (param, "invalid_request_error", "invalid_type")
    assert param in error["message"]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"stream": "yes"}, "stream"),
        ({"stream": 1}, "stream"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_tokens": "7"}, "max_tokens"),
        ({"max_tokens": 7.0}, "max_tokens"),
        ({"seed": "42"}, "seed"),
        ({"logprobs": "on"}, "logprobs"),
        ({"temperature": "0.5"}, "temperature"),
    ],
)
def test_a_chat_request_with_a_wrong_json_type_is_a_400(gateway_url, fields, param):
    _assert_400_naming(_post(gateway_url, "/chat/completions", {"model": "auto", "messages": MESSAGES, **fields}),
                       param)


@pytest.mark.parametrize(
    ("fields", "param"),
    [({"admin": "yes"}, "admin"), ({"rpm": True}, "rpm"), ({"daily_budget_usd": "1"}, "daily_budget_usd")],
)
def test_a_key_with_a_wrong_json_type_is_refused_and_not_created(gateway_url, fields, param):
    user = f"e2e-types-{param.replace('_', '-')}"
    _assert_400_naming(_post(gateway_url, "/admin/keys", {"user": user, **fields}), param)
    listed = httpx.get(f"{gateway_url}/v1/admin/keys", params={"user": user}, timeout=30, trust_env=False,
                       headers={"Authorization": f"Bearer {DEV_KEY}"})
    assert listed.status_code == 200 and listed.json()["data"] == []


def test_the_sdk_with_right_types_is_still_served(client):
    answer = client.chat.completions.create(model="auto", messages=MESSAGES, max_tokens=16, seed=42,
                                            temperature=1, stream=False)
    assert answer.choices[0].message.content
    chunks = list(client.chat.completions.create(model="auto", messages=MESSAGES, max_tokens=16, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks and chunks[-1].usage is not None
