"""Groq: OpenAI's dialect under `/openai/v1`, usage in `x_groq`, request headers counted per day.

Base URL is the root (`https://api.groq.com`), as the official `groq` SDK takes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_gateway.providers.base import CHAT, TRANSCRIPTION, ChatAdapter, ProviderConfig
from llm_gateway.providers.openai import AudioDialect, Dialect, OpenAIAdapter, OpenAITranscriptionAdapter
from llm_gateway.providers.registry import ProviderSpec

if TYPE_CHECKING:  # annotations only: a chat container never builds transcription's types
    from llm_gateway.providers.transcription import TranscriptionAdapter

GROQ_DIALECT = Dialect(
    chat_path="/openai/v1/chat/completions",
    models_path="/openai/v1/models",
    max_tokens_field="max_completion_tokens",
    drop_params=frozenset({"stream_options"}),
    stream_usage="x_groq",
    requests_window_s=86_400,
)

# Groq fetches audio from `url` (up to 40 MB on the free tier, 25 MB as an upload).
GROQ_AUDIO = AudioDialect(transcription_path="/openai/v1/audio/transcriptions",
                          translation_path="/openai/v1/audio/translations", url_field="url")


def make_chat_adapter(config: ProviderConfig) -> ChatAdapter:
    return OpenAIAdapter(config, GROQ_DIALECT)


def make_transcription_adapter(config: ProviderConfig) -> TranscriptionAdapter:
    return OpenAITranscriptionAdapter(config, GROQ_DIALECT, GROQ_AUDIO)


SPEC = ProviderSpec(
    kind="groq",
    default_base_url="https://api.groq.com",
    key_env="GROQ_API_KEY",
    adapters={CHAT: make_chat_adapter, TRANSCRIPTION: make_transcription_adapter},
)
