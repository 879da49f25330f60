"""A request that breaks a rule between two fields names the field to change in `param` (it was
`body`, which tells a client nothing: found by exploratory testing of `make dev`)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from llm_gateway.api.audio_schemas import TranscriptionRequest
from llm_gateway.api.errors import from_validation_error
from llm_gateway.api.schemas import ChatCompletionRequest

HI = [{"role": "user", "content": "hi"}]
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}


def _param(model: type[BaseModel], body: dict[str, Any]) -> str | None:
    with pytest.raises(ValidationError) as failed:
        model.model_validate(body)
    return from_validation_error(failed.value).param


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "auto", "messages": HI, "tool_choice": "required"}, "tool_choice"),
    ({"model": "auto", "messages": HI, "tools": [TOOL],
      "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
])
def test_chat_rules_between_fields_name_the_field(body: dict[str, Any], param: str) -> None:
    assert _param(ChatCompletionRequest, body) == param


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "auto", "stream": True}, "stream"),
    ({"model": "auto", "timestamp_granularities": ["word"], "response_format": "json"}, "timestamp_granularities"),
])
def test_transcription_rules_between_fields_name_the_field(body: dict[str, Any], param: str) -> None:
    assert _param(TranscriptionRequest, body) == param


def test_valid_combinations_still_pass() -> None:
    ChatCompletionRequest.model_validate({"model": "auto", "messages": HI, "tools": [TOOL], "tool_choice": "required"})
    ChatCompletionRequest.model_validate({"model": "auto", "messages": HI, "tool_choice": "none"})
    TranscriptionRequest.model_validate({"model": "auto", "timestamp_granularities": ["word"],
                                         "response_format": "verbose_json"})
