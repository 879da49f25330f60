"""The official `openai` SDK against the local gateway (the same handler Lambda runs) on fakes."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
    },
}


def test_models_list_has_auto_aliases_and_pinned_ids(client):
    ids = {model.id for model in client.models.list()}
    assert {"auto", "auto:small", "auto:large", "auto:reasoning"} <= ids
    assert any(i.startswith("groq/") for i in ids)
    assert any(i.startswith("openai/") for i in ids)


@pytest.mark.parametrize(
    "model", ["auto", "auto:reasoning", "openai/gpt-4o-mini", "groq/llama-3.1-8b-instant", "groq/openai/gpt-oss-20b"]
)
def test_models_retrieve_answers_ids_with_and_without_slashes(client, model):
    """`client.models.retrieve` percent-encodes the id as one path segment (`groq%2Fopenai%2F…`)."""
    card = client.models.retrieve(model)
    assert (card.id, card.object) == (model, "model")
    assert card.owned_by == ("llm-gateway" if model.startswith("auto") else model.split("/", 1)[0])


def test_every_listed_model_can_be_retrieved(client):
    for listed in client.models.list():
        assert client.models.retrieve(listed.id) == listed


def test_models_retrieve_with_raw_slashes_as_older_sdks_send_them(gateway_url):
    """openai-python before its path encoding (and curl users) send the id's slashes as they are."""
    headers = {"Authorization": "Bearer local-dev-key"}
    response = httpx.get(f"{gateway_url}/v1/models/groq/openai/gpt-oss-20b", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"id": "groq/openai/gpt-oss-20b", "object": "model", "created": 0, "owned_by": "groq"}


@pytest.mark.parametrize("model", ["no-such-model", "groq/no-such-model", "nobody/llama-3.1-8b-instant"])
def test_models_retrieve_of_an_unknown_id_is_openais_404(client, model):
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve(model)
    assert info.value.status_code == 404
    error = info.value.body
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "model_not_found", "model")
    assert model in error["message"]


def test_models_retrieve_needs_a_key(gateway_url):
    bad = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="not-the-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.retrieve("auto")


def test_chat_auto_answers_with_gateway_headers(client):
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Say hello"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens > 0
    for name in ("x-gateway-provider", "x-gateway-model", "x-gateway-attempts", "x-gateway-cost-usd", "x-request-id"):
        assert raw.headers.get(name), name
    assert int(raw.headers["x-gateway-attempts"]) >= 1


def test_streaming_yields_text_then_ends(client):
    stream = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "Stream please"}], stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


def test_streaming_without_usage_option_sends_no_usage_chunk(client):
    chunks = list(client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], stream=True
    ))
    assert chunks and all(chunk.usage is None for chunk in chunks)


def test_tool_call_then_follow_up_with_result(client):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.chat.completions.create(
        model="auto", messages=messages, tools=[WEATHER_TOOL], tool_choice="required"
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    assert isinstance(args["city"], str) and args["unit"] in {"c", "f"}

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"},
    ]
    second = client.chat.completions.create(model="auto", messages=messages, tools=[WEATHER_TOOL])
    assert "18 degrees and sunny" in (second.choices[0].message.content or "")


def test_a_tool_calls_follow_up_stays_on_the_model_that_made_the_call(client):
    """Conversation affinity through the local server (two containers, the embedded DynamoDB):
    the follow-up of a tool call goes to the model that made the call, whichever container
    serves it and however the balancer would rotate. Spaced by 1.5 s, so that even Mistral's
    1 request/s free tier keeps the capacity affinity needs (without it the gateway moves on): the
    gateway counts a 1 s window's request until 0.25 s past its stamp (`metering.MIN_STAMP_SLACK_S`,
    a margin for clocks that differ from the provider's), counted in tenths: 1.1 s apart was not
    always enough (`/v1/status` showed Mistral's 1 s window with 0 used and 0 remaining, and the
    test failed in some orders of the module)."""
    import time

    messages = [{"role": "user", "content": "What is the weather in Lyon?"}]
    first = client.chat.completions.with_raw_response.create(
        model="auto", messages=messages, tools=[WEATHER_TOOL], tool_choice="required")
    made_the_call = (first.headers["x-gateway-provider"], first.headers["x-gateway-model"])
    call = first.parse().choices[0].message
    messages += [call.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.tool_calls[0].id, "content": "21 degrees"}]
    for _ in range(3):
        time.sleep(1.5)
        again = client.chat.completions.with_raw_response.create(model="auto", messages=messages, tools=[WEATHER_TOOL])
        assert (again.headers["x-gateway-provider"], again.headers["x-gateway-model"]) == made_the_call
        assert "21 degrees" in (again.parse().choices[0].message.content or "")


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}, "temperature"),
        ({"messages": [{"role": "user", "content": "hi"}], "model": "no-such-model"}, "model"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0]"),
        ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "n"),
    ],
)
def test_bad_requests_are_clean_400s(client, kwargs, param):
    kwargs = {"model": "auto", **kwargs}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(**kwargs)
    error = info.value.body
    assert info.value.status_code == 400
    assert error["param"].startswith(param)
    assert error["type"] == "invalid_request_error"
    assert error["message"]


def test_logprobs_go_to_a_model_that_returns_them(client):
    """`logprobs` is a hard need: `auto` goes to a model whose provider returns them (OpenAI's
    non-reasoning models), and they come back in OpenAI's shape."""
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Say hello"}], logprobs=True, top_logprobs=2,
    )
    assert raw.headers["x-gateway-provider"] == "openai"
    assert raw.headers["x-gateway-model"] in {"gpt-4o-mini", "gpt-4.1-nano", "gpt-4.1-mini"}
    logprobs = raw.parse().choices[0].logprobs
    assert logprobs is not None and logprobs.content
    assert all(len(token.top_logprobs) == 2 for token in logprobs.content)


def test_a_pinned_model_that_cannot_honour_a_parameter_says_so(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="groq/llama-3.1-8b-instant", logprobs=True,
                                       messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["code"] == "no_model_fits"
    assert "does not support logprobs" in info.value.body["message"]


@pytest.mark.parametrize(
    ("kwargs", "param", "code"),
    [
        ({"prediction": {"type": "content", "content": "hello"}}, "prediction", "unsupported_parameter"),
        ({"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}, "audio",
         "unsupported_parameter"),
        ({"store": True}, "store", "unsupported_parameter"),
        ({"extra_body": {"reasoning_format": "parsed"}}, "reasoning_format", "unknown_parameter"),
    ],
)
def test_parameters_no_model_can_honour_are_refused_not_dropped(client, kwargs, param, code):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}], **kwargs)
    assert (info.value.body["param"], info.value.body["code"]) in {(param, code), ("modalities", code)}


def test_wrong_key_is_401(gateway_url):
    bad = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="not-the-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_malformed_json_and_unknown_route(gateway_url):
    headers = {"Authorization": "Bearer local-dev-key", "content-type": "application/json"}
    response = httpx.post(f"{gateway_url}/v1/chat/completions", content=b"{not json", headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    response = httpx.get(f"{gateway_url}/v1/nothing-here", headers=headers)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


PINNED = {
    "openai": "gpt-4o-mini",
    "groq": "llama-3.1-8b-instant",
    "gemini": "gemini-2.5-flash",
    "cohere": "command-r7b-12-2024",
    "mistral": "mistral-small-latest",
}


@pytest.mark.parametrize("provider", sorted(PINNED))
@pytest.mark.parametrize("stream", [False, True])
def test_pinned_to_each_provider(patient_client, provider, stream):
    model = f"{provider}/{PINNED[provider]}"
    raw = patient_client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "Who are you?"}], stream=stream
    )
    assert raw.headers["x-gateway-provider"] == provider
    assert raw.headers["x-gateway-model"] == PINNED[provider]
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    else:
        text = raw.parse().choices[0].message.content
    assert text


@pytest.mark.parametrize("provider", sorted(PINNED))
def test_json_output_through_each_provider(patient_client, provider):
    completion = patient_client.chat.completions.create(
        model=f"{provider}/{PINNED[provider]}",
        messages=[{"role": "user", "content": "Give me a city as JSON"}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": {
            "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}},
    )
    assert isinstance(json.loads(completion.choices[0].message.content)["name"], str)


def test_status_lists_providers_and_models(gateway_url):
    response = httpx.get(f"{gateway_url}/v1/status", headers={"Authorization": "Bearer local-dev-key"})
    assert response.status_code == 200
    providers = response.json()["providers"]
    for provider, model in PINNED.items():
        row = providers[provider]["models"][model]
        assert row["breaker"]["state"] in {"CLOSED", "OPEN", "HALF_OPEN"}
        assert isinstance(row["windows"], list)


def test_cost_header_matches_usage_cost(client):
    raw = client.chat.completions.with_raw_response.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "paid please"}]
    )
    completion = raw.parse()
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(completion.usage.model_extra["cost_usd"], abs=1e-8)


def test_pinned_model_without_capacity_waits_briefly_then_says_when_to_retry(gateway_url):
    """Mistral's free tier: 1 request per second for the organisation. A burst of 6 pinned
    requests: those that fit within the gateway's short wait (2 s) are served, the rest get 429
    with Retry-After, never a provider 429."""
    from concurrent.futures import ThreadPoolExecutor

    headers = {"Authorization": "Bearer local-dev-key"}
    body = {"model": "mistral/mistral-small-latest", "messages": [{"role": "user", "content": "x"}]}

    def post(_: int) -> httpx.Response:
        return httpx.post(f"{gateway_url}/v1/chat/completions", json=body, headers=headers, timeout=30)

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(post, range(6)))
    served = [r for r in statuses if r.status_code == 200]
    limited = [r for r in statuses if r.status_code == 429]
    assert len(served) >= 2, [r.status_code for r in statuses]  # more than one: the later ones waited
    assert limited and len(served) + len(limited) == 6, [r.status_code for r in statuses]
    assert 0 < float(limited[0].headers["retry-after"]) <= 2
    assert limited[0].json()["error"]["type"] == "rate_limit_error"


def test_rate_limit_state_lands_in_the_embedded_dynamodb(client):
    """`make dev` runs on the real state path: moto's DynamoDB server, not in-memory state."""
    import os

    import boto3

    client.chat.completions.create(model="groq/llama-3.1-8b-instant", messages=[{"role": "user", "content": "x"}])
    dynamodb = boto3.client("dynamodb", endpoint_url=os.environ["LLM_GATEWAY_DYNAMODB_ENDPOINT"], region_name="us-east-1")
    items = dynamodb.scan(TableName=os.environ["LLM_GATEWAY_STATE_TABLE"])["Items"]
    assert any(item["pk"]["S"] == "rl#groq#llama-3.1-8b-instant" for item in items)  # the model's counter item


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "gemini/gemini-2.5-pro"])
def test_a_streamed_request_costs_what_the_buffered_one_costs(patient_client, model):
    messages = [{"role": "user", "content": "Price this exact request twice"}]
    buffered = patient_client.chat.completions.with_raw_response.create(model=model, messages=messages)
    streamed = patient_client.chat.completions.with_raw_response.create(
        model=model, messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(streamed.parse())
    usage = next(c.usage for c in chunks if c.usage)
    assert usage.model_dump()["completion_tokens"] == buffered.parse().usage.completion_tokens
    cost = float(buffered.headers["x-gateway-cost-usd"])
    assert cost > 0  # paid models
    # sent as it is produced, a stream's cost is known only at its end: it is in the usage chunk,
    # not in a header (headers leave before the first chunk)
    assert "x-gateway-cost-usd" not in streamed.headers
    assert usage.model_extra["cost_usd"] == pytest.approx(cost, rel=1e-9)
    assert "x-gateway-cost-estimated" not in streamed.headers


def test_status_command_against_the_running_gateway(gateway_url, client, fake_fleet, capsys):
    """`llm-gateway status` shows the cooldown a provider's 429 caused, as an operator sees it."""
    from sandbox import status_cli

    fake_fleet.providers["groq"].add_fault(fault="429", model="qwen/qwen3-32b", count=1, retry_after=30)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="groq/qwen/qwen3-32b", messages=[{"role": "user", "content": "x"}])
    assert status_cli.main(["--url", gateway_url, "--key", "local-dev-key"]) == 0
    table = capsys.readouterr().out
    assert "PROVIDER" in table and "BREAKER" in table
    row = next(line for line in table.splitlines() if line.startswith("groq") and "qwen/qwen3-32b" in line)
    assert "rate_limited" in row and ("30s" in row or "29s" in row)  # last error, cooldown until Retry-After
    assert status_cli.main(["--url", gateway_url, "--key", "wrong"]) == 1
    assert "401" in capsys.readouterr().err
