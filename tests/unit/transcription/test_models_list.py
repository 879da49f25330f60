"""`/v1/models` lists the speech models of configured providers next to the chat models, as
OpenAI's lists whisper-1, so SDK users can discover both."""

from __future__ import annotations

import pytest

from llm_gateway.api.errors import NotFound
from llm_gateway.config import load_settings
from llm_gateway.gateway import build_gateway
from llm_gateway.observability.metrics import RecordingMetrics


def test_speech_models_of_configured_providers_are_listed_and_retrievable() -> None:
    gateway = build_gateway(load_settings({"GROQ_API_KEY": "gsk_test-key-0123456789"}), metrics=RecordingMetrics())
    ids = {card.id for card in gateway.list_models().data}
    assert {"groq/whisper-large-v3-turbo", "groq/whisper-large-v3", "groq/llama-3.1-8b-instant"} <= ids
    assert not any(i.startswith("openai/") for i in ids)  # not configured: not listed
    assert gateway.retrieve_model("whisper-large-v3").owned_by == "groq"
    with pytest.raises(NotFound):
        gateway.retrieve_model("whisper-1")
