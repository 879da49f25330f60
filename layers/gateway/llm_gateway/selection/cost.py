"""Per-request cost from actual usage and catalog prices.

Why here and pure: the same function prices buffered and streamed responses (a stream's usage
comes from its final event), so both cost exactly the same. When a provider reports no usage,
the caller passes its own estimate and the result says `estimated=True`.

Pricing rules (USD per 1M tokens from the catalog, plus a per-request fee where one is set):
- A request served by a free tier costs 0 (`free=True`), whatever its size.
- Cached prompt tokens (`prompt_tokens_details.cached_tokens`) are billed at `cached_input`
  when the catalog knows it, otherwise at the input price.
- Reasoning tokens are part of `completion_tokens` (OpenAI; the Gemini adapter adds thoughts to
  completion); they are billed at `reasoning_output` when set, otherwise at the output price.
"""

from __future__ import annotations

from dataclasses import dataclass

from llm_gateway.api.schemas import Usage
from llm_gateway.selection.catalog import Pricing

PER_TOKEN = 1_000_000


@dataclass(slots=True, unsafe_hash=True)  # a value, never changed; not frozen: see FAST_VALUES in metering.py
class Cost:
    """What a call cost in USD, whether it was free, and whether the cost is an estimate."""

    usd: float
    free: bool
    estimated: bool


def usage_cost(price: Pricing, usage: Usage) -> float:
    """USD for one usage record at the given prices (no rounding: aggregation happens later)."""
    cached = (usage.prompt_tokens_details.cached_tokens or 0) if usage.prompt_tokens_details else 0
    cached = min(max(cached, 0), usage.prompt_tokens)
    reasoning = (
        (usage.completion_tokens_details.reasoning_tokens or 0) if usage.completion_tokens_details else 0
    )
    reasoning = min(max(reasoning, 0), usage.completion_tokens)
    rate_in, rate_out = price.input or 0.0, price.output or 0.0
    cached_rate = price.cached_input if price.cached_input is not None else rate_in
    reasoning_rate = price.reasoning_output if price.reasoning_output is not None else rate_out
    micro = (
        (usage.prompt_tokens - cached) * rate_in
        + cached * cached_rate
        + (usage.completion_tokens - reasoning) * rate_out
        + reasoning * reasoning_rate
    )
    return micro / PER_TOKEN + (price.request or 0.0)


def audio_cost(price: Pricing, seconds: float, tokens: tuple[int, int] | None = None) -> float:
    """USD for one transcription: by (input, output) tokens when the model is billed in tokens
    (Gemini, gpt-4o-transcribe) and they are known, else `seconds` of audio at the per-minute
    price; plus any per-request fee."""
    fee = price.request or 0.0
    rate_in = price.audio_input if price.audio_input is not None else price.input
    if tokens is not None and rate_in is not None:
        return fee + (tokens[0] * rate_in + tokens[1] * (price.output or 0.0)) / PER_TOKEN
    return fee + (price.audio_minute or 0.0) * seconds / 60.0


def request_cost(
    price: Pricing | None,
    usage: Usage | None,
    *,
    free: bool,
    estimate: Usage | None = None,
) -> Cost:
    """Cost of one served request.

    `free` is the plan step's flag (a free tier served it). `estimate` is used, and the result
    marked estimated, when the provider reported no usage.
    """
    record, estimated = (usage, False) if usage is not None else (estimate, True)
    if free:
        return Cost(usd=0.0, free=True, estimated=estimated)
    if price is None or record is None:
        return Cost(usd=0.0, free=False, estimated=True)
    return Cost(usd=usage_cost(price, record), free=False, estimated=estimated)

