"""Cost: free is zero, cached and reasoning tokens, per-request fees and audio are priced as documented."""

from __future__ import annotations

import pytest

from llm_gateway.api.schemas import Usage
from llm_gateway.selection.catalog import Pricing
from llm_gateway.selection.cost import Cost, audio_cost, request_cost

PRICE = Pricing(input=1.0, output=4.0, cached_input=0.25)


def test_free_tier_costs_nothing() -> None:
    assert request_cost(PRICE, Usage.of(1_000_000, 1_000_000), free=True) == Cost(0.0, True, False)


def test_plain_usage() -> None:
    cost = request_cost(PRICE, Usage.of(1_000_000, 500_000), free=False)
    assert cost.usd == pytest.approx(1.0 + 2.0) and not cost.free and not cost.estimated


def test_cached_tokens_use_cached_price_or_input_price() -> None:
    usage = Usage.of(1_000_000, 0, cached=400_000)
    assert request_cost(PRICE, usage, free=False).usd == pytest.approx(0.6 + 0.1)
    no_cache_price = Pricing(input=1.0, output=4.0)
    assert request_cost(no_cache_price, usage, free=False).usd == pytest.approx(1.0)


def test_reasoning_tokens_are_part_of_completion() -> None:
    usage = Usage.of(0, 1_000_000, reasoning=600_000)
    assert request_cost(PRICE, usage, free=False).usd == pytest.approx(4.0)
    special = Pricing(input=1.0, output=4.0, reasoning_output=10.0)
    assert request_cost(special, usage, free=False).usd == pytest.approx(0.4 * 4 + 0.6 * 10)


def test_estimate_used_and_flagged_when_no_usage() -> None:
    cost = request_cost(PRICE, None, free=False, estimate=Usage.of(1000, 1000))
    assert cost.estimated and cost.usd == pytest.approx(0.005)
    assert request_cost(PRICE, None, free=True).estimated


def test_nonsense_details_are_clamped() -> None:
    usage = Usage.of(100, 100, cached=1000, reasoning=-5)
    assert request_cost(PRICE, usage, free=False).usd == pytest.approx((100 * 0.25 + 100 * 4) / 1e6)


def test_prices_a_model_does_not_state_cost_nothing_and_fees_are_added() -> None:
    output_only = Pricing(output=4.0)
    assert request_cost(output_only, Usage.of(1_000_000, 1_000_000), free=False).usd == pytest.approx(4.0)
    fee = Pricing(input=1.0, output=4.0, request=0.002)
    assert request_cost(fee, Usage.of(1_000_000, 0), free=False).usd == pytest.approx(1.002)
    assert request_cost(fee, Usage.of(1_000_000, 0), free=True).usd == 0.0  # free tier: no fee either
    assert request_cost(None, Usage.of(10, 10), free=False) == Cost(0.0, False, True)  # unknown price


def test_audio_is_priced_per_minute() -> None:
    assert audio_cost(Pricing(audio_minute=0.006), 90) == pytest.approx(0.009)
    assert audio_cost(Pricing(audio_minute=0.006, request=0.001), 60) == pytest.approx(0.007)
    assert audio_cost(Pricing(input=1.0), 60) == 0.0


def test_header_format() -> None:
    """`format_usd` is gone: the gateway formats `x-gateway-cost-usd` itself, fixed precision, no exponent."""
    from llm_gateway.config import Settings
    from llm_gateway.gateway import build_gateway
    from llm_gateway.observability.metrics import RecordingMetrics
    from llm_gateway.routing.chat import RoutedCompletion

    gateway = build_gateway(Settings(), metrics=RecordingMetrics())
    routed = RoutedCompletion(completion=None, provider="p", model="m", attempts=[], cost_usd=0.000123)  # type: ignore[arg-type]
    assert gateway._headers(routed, "rid")["x-gateway-cost-usd"] == "0.00012300"
    routed.cost_usd = 1.5e-9
    assert gateway._headers(routed, "rid")["x-gateway-cost-usd"] == "0.00000000"
