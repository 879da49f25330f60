"""Adapters turn a provider's documented context-overflow wording into `context_length_exceeded`
(the router then moves to a model with a larger window). That wording must be the provider's own
message, matched from its start: a caller's 400 that merely echoes "context window" or "too many
tokens" from the request stays the caller's error, so it cannot make the gateway try (and spend
capacity on) more models."""

from __future__ import annotations

import json

import pytest

from llm_gateway.retry.classifier import ErrorClass, classify
from tests.unit.providers.helpers import adapter, error_case

ECHOES = {
    "gemini": {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                         "message": "* GenerateContentRequest.tools[0].function_declarations[0].name: 'context_window_"
                                    "too_long' maximum number of tokens is not a valid name"}},
    "cohere": {"message": "invalid request: tool 'count_too_many_tokens' has an invalid parameter: context length"},
    "mistral": {"object": "error", "type": "invalid_request_error", "code": "3280",
                "message": "Tool 'maximum context length' is too large for model schema: context window"},
}


@pytest.mark.parametrize("kind", sorted(ECHOES))
def test_an_echoed_overflow_phrase_is_the_callers_400(kind):
    error = adapter(kind).parse_error(400, {}, json.dumps(ECHOES[kind]).encode(), "m")
    assert error.code != "context_length_exceeded"
    assert classify(error).error_class is ErrorClass.BAD_REQUEST


@pytest.mark.parametrize("kind", ["gemini", "cohere", "mistral"])
def test_the_providers_own_overflow_message_still_moves_on(kind):
    status, headers, body = error_case(kind, "context_length")
    error = adapter(kind).parse_error(status, headers, body, "m")
    assert error.code == "context_length_exceeded"
    assert classify(error).error_class is ErrorClass.CONTEXT_LENGTH
