# ruff: noqa: F811  (pytest fixtures imported by name, then requested as parameters)
"""Fault injection, statistics and rate limits of the fakes, over raw httpx."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest

from llm_gateway.providers.base import CHAT
from llm_gateway.providers.registry import provider_specs
from sandbox.fakes import FAKES, FakeFleet, FakeProvider, start_fakes
from tests.fakes_fixtures import fake_fleet, fakes  # noqa: F401

PROVIDERS = [name for name in FAKES if CHAT in provider_specs()[name].adapters]  # these tests send chat requests
CLIENT = httpx.Client(timeout=5)  # one client: building an httpx.Client (SSL context) per call costs ~50 ms


def chat_call(
    fake: FakeProvider, stream: bool = False, model: str | None = None, key: str | None = "k"
) -> dict[str, Any]:
    """httpx.request kwargs for one chat request in the provider's own format."""
    model = model or fake.models[0]
    messages = [{"role": "user", "content": "Hi there, how are you today?"}]
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
    path = {"openai": "/v1/chat/completions", "groq": "/openai/v1/chat/completions",
            "mistral": "/v1/chat/completions", "cohere": "/v2/chat"}.get(fake.name)  # fmt: skip
    if fake.name == "gemini":
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        path = f"/v1beta/models/{model}:{method}"
        body = {"contents": [{"role": "user", "parts": [{"text": messages[0]["content"]}]}]}
        headers = {"x-goog-api-key": key} if key else {}
    return {"method": "POST", "url": fake.root_url + str(path), "json": body, "headers": headers}


def send(fake: FakeProvider, **kw: Any) -> httpx.Response:
    return CLIENT.request(**chat_call(fake, **kw))


def sse_data_lines(fake: FakeProvider, model: str | None = None) -> tuple[list[str], Exception | None]:
    """The `data:` payloads of a stream, and the exception that ended it early (if any)."""
    lines: list[str] = []
    try:
        with httpx.stream(**chat_call(fake, stream=True, model=model), timeout=5) as resp:
            assert resp.status_code == 200
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    lines.append(line[6:])
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        return lines, exc
    return lines, None


def content_of(name: str, payload: str) -> str:
    data = json.loads(payload)
    if name == "gemini":
        return "".join(p.get("text", "") for p in data["candidates"][0]["content"]["parts"])
    if name == "cohere":
        return data["delta"]["message"]["content"]["text"] if data["type"] == "content-delta" else ""
    return "".join(c["delta"].get("content") or "" for c in data.get("choices", []))


def error_message(name: str, body: dict[str, Any]) -> str:
    if name in ("openai", "groq", "gemini"):
        return body["error"]["message"]
    return body["message"]


# --- error faults -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("fault", ["500", "503", "401"])
def test_error_faults_use_the_provider_error_body(fakes: FakeFleet, name: str, fault: str) -> None:
    fake = fakes[name]
    fake.add_fault(fault=fault)
    resp = send(fake)
    assert resp.status_code == int(fault)
    body = resp.json()
    assert error_message(name, body)
    if name == "gemini":
        assert body["error"]["code"] == int(fault)
        assert (
            body["error"]["status"]
            == {"500": "INTERNAL", "503": "UNAVAILABLE", "401": "UNAUTHENTICATED"}[fault]
        )
    if name == "cohere":
        assert set(body) == {"id", "message"}
    if name == "mistral" and fault != "401":
        assert body["object"] == "error"
    assert fake.stats()["faults_fired"] == {fault: 1}


@pytest.mark.parametrize("name", PROVIDERS)
def test_429_fault_headers_per_provider(fakes: FakeFleet, name: str) -> None:
    fake = fakes[name]
    fake.add_fault(fault="429", retry_after=12)
    resp = send(fake)
    assert resp.status_code == 429
    headers, body = resp.headers, resp.json()
    if name in ("openai", "groq"):
        assert headers["retry-after"] == "12" and headers["x-ratelimit-remaining-requests"] == "0"
        assert (
            headers["x-ratelimit-reset-requests"] == "12s" and body["error"]["code"] == "rate_limit_exceeded"
        )
    elif name == "mistral":
        assert headers["x-ratelimit-remaining-req-minute"] == "0" and "retry-after" not in headers
        assert body["type"] == "rate_limited" and body["code"] == "1300"
    else:
        assert not [h for h in headers if h.startswith("x-ratelimit") or h == "retry-after"]
    if name == "gemini":
        retry = [d for d in body["error"]["details"] if d["@type"].endswith("RetryInfo")]
        assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}]


@pytest.mark.parametrize("name", PROVIDERS)
def test_missing_and_invalid_keys(fakes: FakeFleet, name: str) -> None:
    missing, invalid = send(fakes[name], key=None), send(fakes[name], key="invalid-123")
    if name == "gemini":  # the real API: 403 PERMISSION_DENIED / 400 API_KEY_INVALID
        assert (missing.status_code, invalid.status_code) == (403, 400)
        assert invalid.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    else:
        assert (missing.status_code, invalid.status_code) == (401, 401)
    assert error_message(name, invalid.json())
    stats = fakes[name].stats()
    assert stats["received"] == 2 and stats["rejected"] == 2 and stats["served"] == 0


# --- connection-level faults --------------------------------------------------------------------


def test_reset_closes_without_a_response(fakes: FakeFleet) -> None:
    fake = fakes["openai"]
    fake.add_fault(fault="reset", count=1)
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        send(fake)
    assert send(fake).status_code == 200
    stats = fake.stats()
    assert stats["faults_fired"] == {"reset": 1} and stats["received"] == 2 and stats["served"] == 1


def test_timeout_hangs_then_recovers(fakes: FakeFleet) -> None:
    fake = fakes["groq"]
    fake.add_fault(fault="timeout", hang_seconds=1.5, count=1)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.request(**chat_call(fake), timeout=0.3)
    assert time.monotonic() - started < 1.0
    assert send(fake).status_code == 200


def test_timeout_does_not_block_shutdown() -> None:
    fleet = start_fakes(providers=["openai"])
    fleet["openai"].add_fault(fault="timeout", hang_seconds=30)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.request(**chat_call(fleet["openai"]), timeout=10)
        except httpx.HTTPError as exc:
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    time.sleep(0.2)
    started = time.monotonic()
    fleet.stop()
    worker.join(5)
    assert time.monotonic() - started < 2.0 and not worker.is_alive() and errors


def test_malformed_json_and_sse(fakes: FakeFleet) -> None:
    fake = fakes["openai"]
    fake.add_fault(fault="malformed", count=2)
    resp = send(fake)
    assert resp.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(resp.content)
    lines, exc = sse_data_lines(fake)
    assert exc is None and lines[-1] == "[DONE]"
    broken = []
    for line in lines[:-1]:
        try:
            json.loads(line)
        except json.JSONDecodeError:
            broken.append(line)
    assert len(broken) == 1


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("after", [0, 1])
def test_cut_stream(fakes: FakeFleet, name: str, after: int) -> None:
    fake = fakes[name]
    fake.add_fault(fault="cut_stream", after_chunks=after, count=1)
    lines, exc = sse_data_lines(fake)
    assert isinstance(exc, httpx.RemoteProtocolError)
    assert "[DONE]" not in lines
    contents = [c for c in (content_of(name, line) for line in lines) if c]
    assert len(contents) == after
    full, exc = sse_data_lines(fake)
    assert exc is None and len([c for c in (content_of(name, x) for x in full if x != "[DONE]") if c]) > 1


def test_cut_non_streaming_body(fakes: FakeFleet) -> None:
    fake = fakes["mistral"]
    fake.add_fault(fault="cut_stream", count=1)
    with pytest.raises(httpx.RemoteProtocolError):
        send(fake)
