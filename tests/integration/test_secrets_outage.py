"""Secrets Manager failing in a warm container: the keys in force keep serving, and the failed
re-read is not repeated on every call.

A request asks for the keys in force several times (authentication, the adapters of each
capability), and each ask re-reads the secret once its cached copy is older than
`LLM_GATEWAY_SECRET_TTL_S`. While Secrets Manager does not answer, each read waits up to the
client's timeouts (5 s to read, retried once): repeated on every ask, a brownout of Secrets
Manager would hold every request for tens of seconds, past API Gateway's 29 s. A failed re-read
keeps the keys in force, as the rollout flag keeps its percentage, and is tried again a while
later, not at once.

Over loopback HTTP against a stand-in Secrets Manager that answers, then fails, counting what it
is asked.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from aws_lambda_powertools.utilities import parameters

from llm_gateway.config import load_settings
from llm_gateway.gateway import build_gateway
from llm_gateway.observability.metrics import RecordingMetrics
from tests.loopback import QuietHandler, serving

CLIENT_KEY = "client-key-for-outage-" + "c" * 24
PROVIDER_KEY = "sk-provider-for-outage-" + "p" * 16
TTL_S = 1


class _SecretsManager(QuietHandler):
    """`GetSecretValue` for two secrets; `down` answers 503 instead (as a brownout does)."""

    protocol_version = "HTTP/1.1"
    down = False
    asked = 0
    values = {"providers": {"OPENAI_API_KEY": PROVIDER_KEY}, "clients": {"LLM_GATEWAY_API_KEYS": CLIENT_KEY}}

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        cls = type(self)
        if cls.down:
            cls.asked += 1
            self._answer(503, {"__type": "ServiceUnavailable", "message": "try again"})
            return
        name = str(request.get("SecretId"))
        self._answer(200, {"ARN": f"arn:aws:secretsmanager:us-east-1:000000000000:secret:{name}", "Name": name,
                           "SecretString": json.dumps(cls.values[name]), "VersionId": "v1"})

    def _answer(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def secrets_manager() -> Iterator[str]:
    _SecretsManager.down, _SecretsManager.asked = False, 0
    parameters.clear_caches()
    with serving(_SecretsManager) as url:
        yield url
    parameters.clear_caches()


def _completion(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    })


def test_a_failed_re_read_keeps_the_keys_and_is_not_repeated_on_every_call(secrets_manager: str) -> None:
    env = {"LLM_GATEWAY_PROVIDER_SECRET": "providers", "LLM_GATEWAY_CLIENT_KEY_SECRET": "clients",
           "AWS_ENDPOINT_URL_SECRETS_MANAGER": secrets_manager, "LLM_GATEWAY_SECRET_TTL_S": str(TTL_S),
           "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_SESSION_TOKEN": "testing"}
    gateway = build_gateway(load_settings(env), metrics=RecordingMetrics(),
                            http_client=httpx.Client(transport=httpx.MockTransport(_completion)))
    gateway.authenticate(f"Bearer {CLIENT_KEY}")

    _SecretsManager.down = True
    time.sleep(TTL_S + 0.1)  # the cached copies expire: the next ask re-reads, and fails
    for _ in range(5):  # five requests' worth of asks, within a second
        gateway.authenticate(f"Bearer {CLIENT_KEY}")  # the keys in force still work
        assert any(key.provider == "openai" for key in gateway.router.available())
    # one failed re-read (GetSecretValue and its one retry), not one per ask
    assert _SecretsManager.asked <= 2, _SecretsManager.asked

    _SecretsManager.down = False
    _SecretsManager.values = {**_SecretsManager.values, "clients": {"LLM_GATEWAY_API_KEYS": CLIENT_KEY + "-rotated"}}
    try:
        deadline = time.monotonic() + 35  # tried again a while later: a rotation made meanwhile is seen
        while True:
            try:
                gateway.authenticate(f"Bearer {CLIENT_KEY}-rotated")
                break
            except Exception:
                assert time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        _SecretsManager.values = {**_SecretsManager.values, "clients": {"LLM_GATEWAY_API_KEYS": CLIENT_KEY}}
