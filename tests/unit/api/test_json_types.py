"""JSON bodies are validated strictly by type: a boolean must be a JSON boolean, an integer a JSON
integer (not a string, a boolean or a number with a decimal point), a string a string, and a
number may be any JSON number. Pydantic's lax mode would turn `"stream": "yes"` into True and
`"max_tokens": true` into 1; OpenAI answers 400 for both, and so does the gateway, naming the
field. Multipart form fields (transcriptions) arrive as text and keep being parsed from it.

The valid requests are captured from the official openai SDK itself (no server), so what the
SDK sends is what is validated here.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from pydantic import ValidationError

from llm_gateway.api.audio_schemas import TranscriptionJobRequest, TranscriptionRequest, UploadRequest
from llm_gateway.api.errors import GatewayError, from_validation_error
from llm_gateway.api.forms import parse_form
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.tenancy.policy_input import parse_policy

MESSAGES = [{"role": "user", "content": "hi"}]
CHAT = {"model": "auto", "messages": MESSAGES}


def _refusal(model: Any, body: dict[str, Any]) -> GatewayError:
    with pytest.raises(ValidationError) as info:
        model.model_validate(body)
    return from_validation_error(info.value)


# --- chat: wrong JSON types are 400s naming the field ---------------------------------------------
@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"stream": "yes"}, "stream"),
        ({"stream": 1}, "stream"),
        ({"stream": "true"}, "stream"),
        ({"stream": 0}, "stream"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_tokens": "7"}, "max_tokens"),
        ({"max_tokens": 7.5}, "max_tokens"),
        ({"max_tokens": 7.0}, "max_tokens"),  # OpenAI takes integers only; 7.0 is not one in JSON's grammar
        ({"max_completion_tokens": "7"}, "max_completion_tokens"),
        ({"max_completion_tokens": False}, "max_completion_tokens"),
        ({"seed": "42"}, "seed"),
        ({"seed": True}, "seed"),
        ({"n": True}, "n"),
        ({"n": "1"}, "n"),
        ({"logprobs": "on"}, "logprobs"),
        ({"logprobs": 1}, "logprobs"),
        ({"logprobs": True, "top_logprobs": "2"}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": True}, "top_logprobs"),
        ({"parallel_tool_calls": "false"}, "parallel_tool_calls"),
        ({"parallel_tool_calls": 0}, "parallel_tool_calls"),
        ({"temperature": "0.5"}, "temperature"),
        ({"temperature": True}, "temperature"),
        ({"top_p": "1"}, "top_p"),
        ({"presence_penalty": False}, "presence_penalty"),
        ({"frequency_penalty": "0"}, "frequency_penalty"),
        ({"logit_bias": {"1734": "5"}}, "logit_bias.1734"),
        ({"logit_bias": {"1734": True}}, "logit_bias.1734"),
        ({"stream": True, "stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
        ({"stream": True, "stream_options": {"include_usage": 1}}, "stream_options.include_usage"),
        ({"tools": [{"type": "function", "function": {"name": "f", "strict": "yes"}}]}, "tools[0].function.strict"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": 1}}},
         "response_format.json_schema.strict"),
        ({"user": 5}, "user"),
        ({"model": 5}, "model"),
        ({"stop": 5}, "stop"),
    ],
)
def test_a_wrong_json_type_in_a_chat_request_is_a_400_naming_the_field(fields, param):
    error = _refusal(ChatCompletionRequest, {**CHAT, **fields})
    assert error.status == 400
    assert error.param == param
    assert error.code == "invalid_type"
    assert error.message.startswith(f"Invalid type for '{param}'")


@pytest.mark.parametrize(
    "fields",
    [
        {"temperature": 1},  # a JSON integer is a number
        {"temperature": 0, "top_p": 1, "presence_penalty": -2, "frequency_penalty": 2},
        {"logit_bias": {"1734": -100, "50256": 5.5}},
        {"max_tokens": 7, "max_completion_tokens": 9, "seed": 0, "n": 1},
        {"stream": False, "logprobs": False, "parallel_tool_calls": True},
        {"seed": -3},
    ],
)
def test_right_json_types_still_parse(fields):
    request = ChatCompletionRequest.model_validate({**CHAT, **fields})
    for name, value in fields.items():
        assert getattr(request, name) == value


# --- what the official SDK sends still validates -------------------------------------------------
def _sent_by_sdk(call: Any) -> httpx.Request:
    """The request the openai SDK builds for `call(client)`, captured before any network."""
    sent: list[httpx.Request] = []

    def capture(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(400, json={"error": {"message": "captured", "type": "invalid_request_error"}})

    client = openai.OpenAI(base_url="http://gateway.test/v1", api_key="k", max_retries=0,
                           http_client=httpx.Client(transport=httpx.MockTransport(capture)))
    with pytest.raises(openai.BadRequestError):
        call(client)
    assert len(sent) == 1
    return sent[0]


SDK_CHATS = [
    {"stream": True, "stream_options": {"include_usage": True}},
    {"stream": False},
    {"max_tokens": 7, "seed": 42, "temperature": 1, "top_p": 0.5, "n": 1},
    {"max_completion_tokens": 16, "presence_penalty": 0, "frequency_penalty": 0.5},
    {"logprobs": True, "top_logprobs": 2, "logit_bias": {"1734": -100}},
    {"parallel_tool_calls": False, "user": "bob", "stop": ["x"],
     "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "strict": True}}]},
    {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"},
                                                                "strict": True}}},
]


@pytest.mark.parametrize("kwargs", SDK_CHATS)
def test_chat_requests_as_the_sdk_sends_them_validate(kwargs):
    sent = _sent_by_sdk(lambda client: client.chat.completions.create(model="auto", messages=MESSAGES, **kwargs))
    request = ChatCompletionRequest.model_validate(json.loads(sent.content))
    for name, value in kwargs.items():
        if name not in {"tools", "response_format", "stream_options"}:
            assert getattr(request, name) == value


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"temperature": 0.2, "stream": False}, {"temperature": 0.2, "stream": False}),
        ({"temperature": 0, "language": "en", "prompt": "p"}, {"temperature": 0.0, "language": "en"}),
        ({"response_format": "verbose_json", "timestamp_granularities": ["word", "segment"]},
         {"timestamp_granularities": ("word", "segment")}),
    ],
)
def test_transcription_forms_as_the_sdk_sends_them_keep_parsing_from_text(kwargs, expected):
    sent = _sent_by_sdk(lambda client: client.audio.transcriptions.create(
        model="auto", file=("a.wav", b"RIFF0000WAVE", "audio/wav"), **kwargs))
    form = parse_form(sent.content, sent.headers["content-type"], max_bytes=1 << 20)
    request = TranscriptionRequest.from_form(form.fields)
    for name, value in expected.items():
        assert getattr(request, name) == value


# --- audio JSON bodies (uploads, jobs) -------------------------------------------------------------
UPLOAD = {"filename": "a.wav", "bytes": 1000}
JOB = {"file_id": "file-abc"}


@pytest.mark.parametrize(
    ("model", "body", "param"),
    [
        (UploadRequest, {**UPLOAD, "bytes": "1000"}, "bytes"),
        (UploadRequest, {**UPLOAD, "bytes": True}, "bytes"),
        (UploadRequest, {**UPLOAD, "bytes": 1000.0}, "bytes"),
        (UploadRequest, {**UPLOAD, "filename": 5}, "filename"),
        (TranscriptionJobRequest, {**JOB, "translate": "yes"}, "translate"),
        (TranscriptionJobRequest, {**JOB, "translate": 1}, "translate"),
        (TranscriptionJobRequest, {**JOB, "temperature": "0.2"}, "temperature"),
        (TranscriptionJobRequest, {**JOB, "temperature": True}, "temperature"),
        (TranscriptionJobRequest, {**JOB, "file_id": 5}, "file_id"),
    ],
)
def test_a_wrong_json_type_in_an_audio_json_body_is_a_400_naming_the_field(model, body, param):
    error = _refusal(model, body)
    assert (error.status, error.param, error.code) == (400, param, "invalid_type")


def test_audio_json_bodies_of_the_right_types_parse():
    assert UploadRequest.model_validate(UPLOAD).bytes == 1000
    job = TranscriptionJobRequest.model_validate({**JOB, "temperature": 0, "translate": True,
                                                  "response_format": "verbose_json",
                                                  "timestamp_granularities": ["word"]})
    assert (job.temperature, job.translate, job.timestamp_granularities) == (0.0, True, ("word",))
    # a job is validated again from its stored JSON when it runs
    assert TranscriptionJobRequest.model_validate(json.loads(json.dumps(job.model_dump()))) == job
    assert job.transcription().wants_words


# --- the admin API's policy input ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"admin": "yes"}, "admin"),
        ({"admin": 1}, "admin"),
        ({"free_only": "true"}, "free_only"),
        ({"per_end_user": 0}, "per_end_user"),
        ({"rpm": True}, "rpm"),
        ({"rpm": "60"}, "rpm"),
        ({"rpm": 60.0}, "rpm"),
        ({"rpd": "1"}, "rpd"),
        ({"tpm": False}, "tpm"),
        ({"audio_seconds_per_day": "60"}, "audio_seconds_per_day"),
        ({"daily_budget_usd": "1"}, "daily_budget_usd"),
        ({"monthly_budget_usd": True}, "monthly_budget_usd"),
        ({"models": "groq/*"}, "models"),
        ({"models": [5]}, "models[0]"),
    ],
)
def test_a_wrong_json_type_in_a_key_policy_is_a_400_naming_the_field(body, param):
    with pytest.raises(GatewayError) as info:
        parse_policy(body)
    assert (info.value.status, info.value.param, info.value.code) == (400, param, "invalid_type")


def test_a_key_policy_of_the_right_types_parses():
    policy = parse_policy({"rpm": 60, "rpd": 0, "tpm": None, "daily_budget_usd": 1, "monthly_budget_usd": 2.5,
                           "free_only": True, "admin": False, "per_end_user": True, "models": ["groq/*"]})
    assert (policy.rpm, policy.rpd, policy.daily_budget_usd, policy.monthly_budget_usd) == (60, 0, 1.0, 2.5)
    assert (policy.free_only, policy.admin, policy.per_end_user, policy.models) == (True, False, True, ("groq/*",))
