"""Cost: free is zero, cached and reasoning tokens are priced as documented."""

from __future__ import annotations

import pytest

from llm_gateway.api.schemas import Usage
from llm_gateway.selection.catalog import Pricing
from llm_gateway.selection.cost import Cost, format_usd, request_cost

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


def test_header_format() -> None:
    assert format_usd(Cost(0.000123, False, False)) == "0.00012300"
