"""Replicate: Whisper models run as predictions (transcription only; no chat adapter).

Base URL is the API root (`https://api.replicate.com`), as the official `replicate` SDK takes it.
"""

from __future__ import annotations

from llm_gateway.providers.registry import ProviderSpec

SPEC = ProviderSpec(
    kind="replicate",
    default_base_url="https://api.replicate.com",
    key_env="REPLICATE_API_TOKEN",
    adapters={},
)
