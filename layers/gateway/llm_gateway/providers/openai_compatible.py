"""Any endpoint that speaks OpenAI's format: Together, DeepSeek, OpenRouter, vLLM, Ollama, ...

Configured instances are declared by operators (name, base_url, key, models); see `factory.py`.
Options in `ProviderConfig.options` adjust the dialect without code: `max_tokens_field`,
`drop_params`, `stream_usage`, `chat_path`, `models_path`.
"""

from __future__ import annotations

from llm_gateway.providers.base import CHAT, ChatAdapter, ProviderConfig
from llm_gateway.providers.openai import Dialect, OpenAIAdapter
from llm_gateway.providers.registry import ProviderSpec


def dialect_from_options(options: dict[str, object] | None) -> Dialect:
    opts = dict(options or {})
    return Dialect(
        chat_path=str(opts.get("chat_path", "/chat/completions")),
        models_path=str(opts.get("models_path", "/models")),
        max_tokens_field=str(opts.get("max_tokens_field", "max_tokens")),
        drop_params=_names(opts.get("drop_params")),
        stream_usage=str(opts.get("stream_usage", "stream_options")),
    )


def _names(value: object) -> frozenset[str]:
    """Parameter names from JSON: a list of names, or one name (not split into its letters)."""
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list | tuple | set | frozenset):
        return frozenset(str(name) for name in value)
    return frozenset()


def make_chat_adapter(config: ProviderConfig) -> ChatAdapter:
    return OpenAIAdapter(config, dialect_from_options(dict(config.options)))


SPEC = ProviderSpec(
    kind="openai_compatible",
    default_base_url="http://127.0.0.1:8000/v1",
    key_env=None,  # declared in LLM_GATEWAY_OPENAI_COMPATIBLE, any number of them
    adapters={CHAT: make_chat_adapter},
)
