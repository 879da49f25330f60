from __future__ import annotations

import pytest
from pydantic import ValidationError

from llm_gateway.api.errors import ModelNotFound, from_validation_error
from llm_gateway.api.schemas import MAX_MESSAGES, ChatCompletionRequest, ResponseFormatJsonSchema


def _req(**kw):
    return ChatCompletionRequest.model_validate({"model": "auto", "messages": [{"role": "user", "content": "hi"}], **kw})


def _param_of(payload) -> str:
    with pytest.raises(ValidationError) as info:
        ChatCompletionRequest.model_validate(payload)
    return from_validation_error(info.value).param


def test_all_roles_and_content_parts_parse():
    req = ChatCompletionRequest.model_validate({
        "model": "auto",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": [{"type": "text", "text": "dev"}]},
            {"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
            ]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
        "temperature": 0.2, "top_p": 0.9, "max_completion_tokens": 50, "stop": ["\n"], "seed": 1, "user": "u",
        "stream": True, "stream_options": {"include_usage": True},
    })
    assert len(req.messages) == 5
    assert req.output_limit == 50
    assert req.wants_usage_in_stream
    assert isinstance(req.response_format, ResponseFormatJsonSchema)
    assert req.response_format.json_schema.schema_ == {"type": "object"}


def test_max_tokens_alias_and_stop_string():
    req = _req(max_tokens=7, stop="END")
    assert req.output_limit == 7
    assert req.stop_list == ["END"]


def _error_of(payload):
    with pytest.raises(ValidationError) as info:
        ChatCompletionRequest.model_validate(payload)
    return from_validation_error(info.value)


BASE = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}


def test_an_unknown_field_is_refused_naming_it_as_openai_does():
    """Never silently dropped: a field the gateway does not know is a 400, not ignored."""
    error = _error_of({**BASE, "reasoning_format": "parsed"})
    assert (error.param, error.code) == ("reasoning_format", "unknown_parameter")
    assert error.message == "Unrecognized request argument supplied: reasoning_format"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("prediction", {"type": "content", "content": "x"}),
        ("audio", {"voice": "alloy", "format": "wav"}),
        ("modalities", ["text", "audio"]),
        ("web_search_options", {}),
        ("functions", [{"name": "f"}]),
        ("function_call", "auto"),
        ("store", True),
        ("metadata", {"a": "b"}),
        ("service_tier", "flex"),
        ("verbosity", "low"),
        ("safety_identifier", "user-1"),
        ("prompt_cache_key", "k"),
        ("prompt_cache_retention", "24h"),
    ],
)
def test_openai_parameters_no_route_honours_are_refused_naming_them(name, value):
    error = _error_of({**BASE, name: value})
    assert (error.param, error.code, error.status) == (name, "unsupported_parameter", 400)
    assert error.message.startswith(f"Unsupported parameter '{name}': ")


@pytest.mark.parametrize(
    ("name", "value"),
    [("modalities", ["text"]), ("store", False), ("service_tier", "auto"), ("logprobs", False),
     ("parallel_tool_calls", True), ("n", 1), ("prediction", None), ("metadata", None), ("audio", None)],
)
def test_values_that_ask_for_nothing_beyond_the_default_are_accepted(name, value):
    assert _req(**{name: value}).model == "auto"


def test_parameters_some_models_honour_parse():
    req = _req(logprobs=True, top_logprobs=3, logit_bias={"1734": -100, "50256": 5.5}, reasoning_effort="low",
               parallel_tool_calls=False)
    assert (req.logprobs, req.top_logprobs, req.reasoning_effort, req.parallel_tool_calls) == (True, 3, "low", False)
    assert req.logit_bias == {"1734": -100, "50256": 5.5}


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"top_logprobs": 2}, "top_logprobs"),  # OpenAI: top_logprobs needs logprobs: true
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"logit_bias": {"not-a-token": 1}}, "logit_bias"),
        ({"logit_bias": {"42": 101}}, "logit_bias"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
    ],
)
def test_bad_values_of_honoured_parameters_name_them(fields, param):
    assert _error_of({**BASE, **fields}).param.startswith(param)


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"model": "auto", "messages": []}, "messages"),
        ({"model": "auto"}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "auto", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "auto", "messages": [{"role": "robot", "content": "x"}]}, "messages[0]"),
        ({"model": "auto", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"model": "auto", "messages": [{"role": "assistant"}]}, "messages[0]"),
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}], "temperature": 3}, "temperature"),
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}], "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}], "tool_choice": "required"}, "tool_choice"),
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}],
          "response_format": {"type": "yaml"}}, "response_format"),
        # OpenAI: "The 'stream_options' parameter is only allowed when 'stream' is enabled."
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}],
          "stream_options": {"include_usage": True}}, "stream_options"),
        ({"model": "auto", "messages": [{"role": "user", "content": "x"}], "stream": False,
          "stream_options": {"include_usage": True}}, "stream_options"),
    ],
)
def test_validation_errors_name_the_field(payload, param):
    assert _param_of(payload) == param


def test_message_count_limit():
    messages = [{"role": "user", "content": "x"}] * (MAX_MESSAGES + 1)
    assert _param_of({"model": "auto", "messages": messages}) == "messages"


def test_error_body_shape():
    body = ModelNotFound("nope").body()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == "model_not_found"
    assert ModelNotFound("nope").status == 400


# --- media the request refers to: inline data, or an https image a provider fetches --------------
def _with_part(part: dict) -> dict:
    return {"model": "auto", "messages": [{"role": "user", "content": [{"type": "text", "text": "look"}, part]}]}


@pytest.mark.parametrize("url", [
    "data:image/png;base64,iVBORw0KGgo=", "data:image/jpeg;base64,/9j/4AAQ", "https://example.com/cat.jpg",
    "https://x/y.png", "https://cdn.example.com:8443/a/b.webp?sig=abc",
])
def test_image_urls_that_can_be_served(url):
    ChatCompletionRequest.model_validate(_with_part({"type": "image_url", "image_url": {"url": url}}))


@pytest.mark.parametrize("url", [
    "files/abc123",                                   # a Gemini Files API name: another key's file, or none
    "gs://bucket/cat.png",                            # a cloud object no provider key can read
    "http://example.com/cat.jpg",                     # cleartext
    "file:///etc/passwd", "ftp://example.com/x.png", "javascript:alert(1)", "", "cat.png",
    "https://", "https:///no-host.png", "https://user:pw@example.com/x.png",
    "data:text/plain;base64,aGk=",                    # not an image
    "data:image/png,rawbytes",                        # not base64
    "https://example.com/" + "a" * 9000,              # longer than any provider accepts
])
def test_image_urls_no_provider_can_serve_are_refused_at_validation(url):
    param = _param_of(_with_part({"type": "image_url", "image_url": {"url": url}}))
    assert param == "messages[0].content[1].image_url.url"


def test_files_are_accepted_only_inline():
    ok = {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}}
    ChatCompletionRequest.model_validate(_with_part(ok))
    for bad in ({"file_id": "file-abc123"}, {"file_data": "https://example.com/a.pdf"},
                {"file_data": "files/abc"}, {"file_data": "JVBERi0="}, {}):
        param = _param_of(_with_part({"type": "file", "file": bad}))
        assert param.startswith("messages[0].content[1].file"), (bad, param)


def test_answer_models_keep_their_required_nulls_without_a_post_init_hook() -> None:
    """`_required_nulls` is a class constant: assigned without its `ClassVar` annotation in a
    subclass, pydantic gave every answer, choice and chunk a `model_post_init` call back into
    Python (3 to 9 us a validation; a streamed answer makes one per chunk), and kept nothing."""
    from llm_gateway.api import schemas

    keeping = [cls for cls in vars(schemas).values()
               if isinstance(cls, type) and issubclass(cls, schemas._KeepsRequiredNulls) and cls._required_nulls]
    assert len(keeping) >= 3
    for cls in keeping:
        assert cls.__pydantic_post_init__ is None, cls
        assert cls.__private_attributes__ == {}, cls
