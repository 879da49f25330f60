"""Nothing a caller sends crashes the chat handler: each hostile body is a 400 in OpenAI's shape,
and an unexpected exception that still reaches the last-resort 500 is counted where the rollback
alarms look (UserVisibleErrors, dimensions {service, cohort}).

The handler (functions/chat/app.py) runs as Lambda runs it: imported as a fresh module, fed API
Gateway REST events, on the session's fake providers and in-memory state.
"""

from __future__ import annotations

import json
import time
from types import ModuleType
from typing import Any

import pytest

from llm_gateway.observability import metrics as m
from llm_gateway.observability.metrics import RecordingMetrics
from sandbox.apigw import LocalContext, make_event
from tests.conftest import chat_handler_on_fakes

DEV_KEY = "local-dev-key"
_instances = iter(range(10**6))


@pytest.fixture
def chat(fakes, clean_gateway_env) -> ModuleType:
    monkeypatch = clean_gateway_env
    module = chat_handler_on_fakes(fakes, monkeypatch, f"never500_{next(_instances)}")
    module.gateway.metrics = RecordingMetrics()
    return module


def call(module: ModuleType, body: bytes | str, path: str = "/v1/chat/completions", method: str = "POST",
         key: str = DEV_KEY) -> tuple[int, dict[str, Any]]:
    raw = body.encode() if isinstance(body, str) else body
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    result = module.lambda_handler(make_event(method, path, headers, raw), LocalContext(function_name="chat"))
    return int(result["statusCode"]), json.loads(result["body"]) if result.get("body") else {}


def chat_body(**fields: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": "hi"}], **fields}


def assert_clean_400(status: int, body: dict[str, Any]) -> dict[str, Any]:
    assert status == 400, (status, body)
    error = body["error"]
    assert {"message", "type", "param", "code"} <= set(error)
    assert error["type"] == "invalid_request_error"
    return error


@pytest.mark.parametrize("escaped", ["\\ud800", "\\udfff", "a\\udbffb", "\\ud83d"])
def test_a_lone_surrogate_is_a_400(chat, escaped):
    raw = '{"model": "auto", "messages": [{"role": "user", "content": "x' + escaped + 'y"}]}'
    error = assert_clean_400(*call(chat, raw))
    assert error["param"] == "messages[0].content"


def test_a_lone_surrogate_in_a_key_or_a_tool_schema_is_a_400(chat):
    raw = json.dumps(chat_body(tools=[{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object", "properties": {"PLACEHOLDER": {"type": "string"}}}}}]))
    assert_clean_400(*call(chat, raw.replace("PLACEHOLDER", "\\udc80")))


def test_a_valid_surrogate_pair_is_just_an_emoji(chat):
    raw = '{"model": "auto", "messages": [{"role": "user", "content": "smile \\ud83d\\ude00"}]}'
    status, body = call(chat, raw)
    assert status == 200, body


@pytest.mark.parametrize("depth", [100_000, 5_000, 990, 200])
def test_deep_nesting_is_a_400(chat, depth):
    nested = "[" * depth + "]" * depth
    raw = '{"model": "auto", "messages": [{"role": "user", "content": "hi"}], "metadata": ' + nested + "}"
    error = assert_clean_400(*call(chat, raw))
    assert error["code"] == "too_deep"


def test_deep_nesting_inside_a_tool_schema_is_a_400(chat):
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(150):
        schema = {"type": "object", "properties": {"x": schema}}
    body = chat_body(tools=[{"type": "function", "function": {"name": "f", "parameters": schema}}])
    assert_clean_400(*call(chat, json.dumps(body)))


def test_nul_bytes_huge_and_non_finite_numbers_are_never_a_500(chat):
    for raw in (
        json.dumps(chat_body(messages=[{"role": "user", "content": "a\x00b"}])),
        json.dumps(chat_body(max_tokens=10**400)),
        json.dumps(chat_body(seed=-(10**30))),
        json.dumps(chat_body(temperature=1e999)).replace("Infinity", "1e999"),
        json.dumps(chat_body()).replace('"auto"', '"auto", "temperature": NaN'),
        json.dumps(chat_body()).replace('"auto"', '"auto", "top_p": -Infinity'),
        '{"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1' + "0" * 5000 + "}",
    ):
        status, body = call(chat, raw)
        assert status in (200, 400), (status, body, raw[:120])
        if status == 400:
            assert body["error"]["type"] == "invalid_request_error"


def test_max_tokens_above_every_model_is_a_400_naming_the_reason(chat):
    status, body = call(chat, json.dumps(chat_body(max_tokens=50_000_000)))
    error = assert_clean_400(status, body)
    assert error["code"] == "no_model_fits"
    assert "max_tokens 50000000" in error["message"]
    status, body = call(chat, json.dumps(chat_body(model="groq/llama-3.1-8b-instant", max_tokens=50_000_000)))
    assert assert_clean_400(status, body)["code"] == "no_model_fits"


def _schema_bomb(levels: int = 20) -> dict[str, Any]:
    """~2 KB of JSON that a naive $ref inliner expands to 2**levels nodes."""
    defs = {f"L{i}": {"type": "object", "properties": {"a": {"$ref": f"#/$defs/L{i + 1}"},
                                                       "b": {"$ref": f"#/$defs/L{i + 1}"}}}
            for i in range(levels)}
    defs[f"L{levels}"] = {"type": "string"}
    return {"type": "object", "properties": {"root": {"$ref": "#/$defs/L0"}}, "$defs": defs}


@pytest.mark.parametrize("where", ["tools", "response_format"])
def test_a_schema_bomb_is_a_fast_400(chat, where):
    schema = _schema_bomb()
    assert len(json.dumps(schema)) < 3000
    if where == "tools":
        body = chat_body(model="gemini/gemini-2.5-flash",
                         tools=[{"type": "function", "function": {"name": "f", "parameters": schema}}])
    else:
        body = chat_body(model="gemini/gemini-2.5-flash",
                         response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    started = time.monotonic()
    error = assert_clean_400(*call(chat, json.dumps(body)))
    assert time.monotonic() - started < 2.0
    assert error["code"] == "schema_too_large"


@pytest.mark.parametrize("where", ["tools", "response_format"])
@pytest.mark.parametrize("schema", [{"type": 5}, {"$defs": "x"}, {"type": "object", "properties": {"a": {}}, "required": [{}]},
                                    {"properties": 5}, {"items": 5}])
def test_a_malformed_schema_is_a_400_naming_the_field(chat, where, schema):
    """A schema whose `type`, `$defs` or `required` has the wrong JSON type crashed the Gemini
    translation that validation runs (TypeError): a 500 counted in UserVisibleErrors, so one
    caller's typo could count toward rolling a canary back."""
    if where == "tools":
        body = chat_body(tools=[{"type": "function", "function": {"name": "f", "parameters": schema}}])
        param = "tools[0].function.parameters"
    else:
        body = chat_body(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
        param = "response_format.json_schema.schema"
    error = assert_clean_400(*call(chat, json.dumps(body)))
    assert (error["code"], error["param"]) == ("invalid_schema", param)
    assert chat.gateway.metrics.total(m.USER_VISIBLE_ERRORS) == 0


_NOT_JSON_TEXT = ['{"a": NaN}', '{"a": 1e999}', '{"a": "\\ud800"}', '{"a": ' + "[" * 5000 + "]" * 5000 + "}"]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("text", _NOT_JSON_TEXT, ids=["nan", "1e999", "surrogate", "deep"])
@pytest.mark.parametrize("where", ["arguments", "tool_result"])
def test_json_text_inside_a_message_that_json_cannot_carry_is_sent_as_text(chat, where, text, stream):
    """Gemini takes tool-call arguments and tool results as JSON objects, so its adapter parses
    the text the caller sent in them. `NaN` and `1e999` parsed to floats no JSON encoder takes, a
    `\\ud800` escape to a string no UTF-8 encoder takes, 5,000 brackets overflowed the parser's
    recursion: each a 500 counted in UserVisibleErrors. Such text is not JSON to send on: it
    goes as text, as any other text that does not parse does."""
    arguments, result = (text, "done") if where == "arguments" else ("{}", text)
    body = chat_body(model="gemini/gemini-2.5-flash", stream=stream, messages=[
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                              "function": {"name": "f", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "c1", "content": result}])
    headers = {"authorization": f"Bearer {DEV_KEY}", "content-type": "application/json"}
    event = make_event("POST", "/v1/chat/completions", headers, json.dumps(body).encode())
    result = chat.lambda_handler(event, LocalContext(function_name="chat"))
    assert result["statusCode"] == 200, result["body"][:300]
    assert ("data: [DONE]" in result["body"]) if stream else json.loads(result["body"])["choices"]
    assert chat.gateway.metrics.total(m.USER_VISIBLE_ERRORS) == 0


@pytest.mark.parametrize("token", ["\udc80", "sk-gw-\udc80" + "a" * 43])
@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/chat/completions"), ("GET", "/v1/models"),
                                              ("GET", "/v1/status"), ("GET", "/v1/usage"), ("GET", "/v1/admin/keys")])
def test_a_key_that_is_not_text_is_a_401(chat, token, method, path):
    """An event's Authorization header holding a lone surrogate (an event file for
    `llm-gateway invoke` or `sam local invoke`, written with a `\\udc80` escape) could be no key:
    it was a 500 counted in UserVisibleErrors, since comparing it to the keys encodes it as UTF-8."""
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    event = make_event(method, path, headers, json.dumps(chat_body()).encode() if method == "POST" else b"")
    result = chat.lambda_handler(event, LocalContext(function_name="chat"))
    assert result["statusCode"] == 401, result["body"]
    assert json.loads(result["body"])["error"]["code"] == "invalid_api_key"
    assert chat.gateway.metrics.total(m.USER_VISIBLE_ERRORS) == 0


def test_refused_media_reference_is_a_400(chat):
    part = {"type": "image_url", "image_url": {"url": "files/made-up-file"}}
    body = chat_body(model="gemini/gemini-2.5-flash",
                     messages=[{"role": "user", "content": [{"type": "text", "text": "x"}, part]}])
    error = assert_clean_400(*call(chat, json.dumps(body)))
    assert error["param"] == "messages[0].content[1].image_url.url"


def test_an_unexpected_exception_is_a_counted_500(chat, monkeypatch):
    def explode(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("a bug the tests did not foresee")

    monkeypatch.setattr(chat.gateway, "chat", explode)
    status, body = call(chat, json.dumps(chat_body()))
    assert status == 500 and body["error"]["code"] == "internal_error"
    assert "foresee" not in json.dumps(body)
    recorded = [r for r in chat.gateway.metrics.records if r.name == m.USER_VISIBLE_ERRORS]
    # exactly {service, cohort}: what ChatErrorRateAlarm and the cohort's rollback alarm read
    assert [r.dimensions for r in recorded] == [(("cohort", "gateway"),)]


def test_a_500_after_the_cohort_is_chosen_says_which_cohort(chat, monkeypatch):
    """Every chat error once a cohort is chosen carries `x-gateway-cohort`, a bug's 500 too (an
    operator comparing the cohorts' errors during a rollout reads it); one before the cohort is
    known (here: authentication) carries none, as the README says."""
    def explode(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("a bug the tests did not foresee")

    def answer() -> dict[str, Any]:
        headers = {"authorization": f"Bearer {DEV_KEY}", "content-type": "application/json"}
        event = make_event("POST", "/v1/chat/completions", headers, json.dumps(chat_body()).encode())
        return chat.lambda_handler(event, LocalContext(function_name="chat"))

    monkeypatch.setattr(chat.gateway, "chat", explode)
    result = answer()
    assert result["statusCode"] == 500
    assert _headers(result).get("x-gateway-cohort") == ["gateway"], result
    monkeypatch.setattr(chat.gateway, "authenticate", explode)
    result = answer()
    assert result["statusCode"] == 500
    assert "x-gateway-cohort" not in _headers(result)


def _headers(result: dict[str, Any]) -> dict[str, list[str]]:
    """A Lambda proxy result's headers, single- and multi-valued alike, as lists."""
    single = {k: [v] for k, v in (result.get("headers") or {}).items()}
    return {**single, **(result.get("multiValueHeaders") or {})}


def test_a_provider_body_with_an_infinite_number_is_a_provider_failure_not_a_crash():
    """`1e999` in a provider's usage parses as inf and int(inf) raises OverflowError: that is an
    unreadable provider response (fail over, count against the provider), not a gateway crash."""
    import httpx

    from llm_gateway.api.errors import GatewayError
    from llm_gateway.api.schemas import ChatCompletionRequest
    from llm_gateway.config import load_settings
    from llm_gateway.gateway import build_gateway

    body = ('{"id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini", "choices": [{"index": 0,'
            ' "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],'
            ' "usage": {"prompt_tokens": 1e999, "completion_tokens": 1, "total_tokens": 2}}')
    client = httpx.Client(transport=httpx.MockTransport(lambda _r: httpx.Response(200, content=body.encode())))
    key = "client-" + "k" * 40
    gateway = build_gateway(load_settings({"OPENAI_API_KEY": "sk-test-" + "o" * 20, "LLM_GATEWAY_API_KEYS": key}),
                            metrics=RecordingMetrics(), http_client=client)
    request = ChatCompletionRequest.model_validate(
        {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    with pytest.raises(GatewayError) as info:
        gateway.chat(request, gateway.authenticate(f"Bearer {key}"), "r")
    assert info.value.status == 503
    assert info.value.body()["error"]["attempts"][0]["error_class"] == "server_error"
    client.close()
