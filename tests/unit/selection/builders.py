"""Synthetic catalogs and requests for selector tests."""

from __future__ import annotations

from typing import Any

from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.selection.catalog import Capabilities, Catalog, FreeTier, ModelEntry, Pricing, ProviderInfo

PROVIDERS = ("p0", "p1", "p2", "p3")


def entry(
    provider: str,
    model: str,
    *,
    category: str = "small",
    context: int = 100_000,
    max_output: int = 8192,
    free: FreeTier | None = None,
    price: tuple[float, float] | None = (1.0, 2.0),
    tools: bool = True,
    vision: bool = False,
    params: tuple[str, ...] = (),
    **capabilities: bool,
) -> ModelEntry:
    return ModelEntry(
        provider=provider,
        model=model,
        category=category,  # type: ignore[arg-type]
        context_window=context,
        max_output=max_output,
        capabilities=Capabilities(tools=tools, vision=vision, json_mode=True, params=params, **capabilities),
        free_tier=free,
        price=Pricing(input=price[0], output=price[1]) if price else None,
    )


def catalog(entries: list[ModelEntry]) -> Catalog:
    providers = {e.provider for e in entries} | set(PROVIDERS)
    return Catalog.from_entries(entries, {p: ProviderInfo(as_of="test", source="test") for p in providers})


def request(text: str = "hello", **extra: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "auto", "messages": [{"role": "user", "content": text}], **extra})
