"""A whole answer's cost is priced once, in the call that produced it, and reused: it is the cost
`request_cost` gives the served step's price, the answer's usage (or our estimate, then marked
estimated) and its tier, after failovers too."""

from __future__ import annotations

import dataclasses
import json

import httpx
import pytest

from llm_gateway.routing import chat as chat_module
from llm_gateway.selection.cost import Cost, request_cost

from .harness import ORDER, Fleet, answer, chat, completion_body, pinned, rig, status


def _without_usage(request: httpx.Request, fleet: Fleet) -> httpx.Response:
    body = completion_body(json.loads(request.content)["model"], "one two three four five")
    del body["usage"]
    return httpx.Response(200, json=body)


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[Cost]:
    priced: list[Cost] = []

    def counted(*args: object, **kwargs: object) -> Cost:
        cost = request_cost(*args, **kwargs)  # type: ignore[arg-type]
        priced.append(cost)
        return cost

    monkeypatch.setattr(chat_module, "request_cost", counted)
    return priced


@pytest.mark.parametrize("paid", [True, False])
@pytest.mark.parametrize("usage", [True, False])
@pytest.mark.parametrize("failover", [False, True])
def test_the_served_cost_is_request_costs(monkeypatch: pytest.MonkeyPatch, paid: bool, usage: bool, failover: bool):
    r = rig(paid=ORDER if paid else ())
    for provider in ORDER:
        r.fleet.set(provider, answer() if usage else _without_usage)
    if failover:
        r.fleet.then("groq", status(500), status(500), status(500))
    priced = _counting(monkeypatch)
    routed = r.router.complete(chat() if failover else pinned("groq"))  # auto: groq first, then another
    assert (routed.provider != "groq") is failover
    step = next(e for e in r.core.catalog.entries if e.provider == routed.provider)
    expected = request_cost(step.price, routed.completion.usage, free=routed.free, estimate=routed.estimate)
    assert (routed.cost_usd, routed.free, routed.cost_estimated) == (expected.usd, expected.free, expected.estimated)
    assert routed.cost_estimated is not usage and (routed.cost_usd > 0) is paid
    assert len(priced) == 1  # the served answer, priced in its call and not again


def test_a_cost_put_on_another_answer_or_step_is_not_reused():
    """`_served_cost` reuses only the price of this very answer from this very step."""
    r = rig(paid=("groq",))
    completion = r.router.complete(pinned("groq")).completion
    step = r.router.plan(pinned("groq")).steps[0]
    fresh = request_cost(step.entry.price, completion.usage, free=step.free)
    wrong = Cost(usd=123.0, free=False, estimated=False)
    assert chat_module._served_cost((completion, step, wrong), completion, step, None) is wrong
    assert chat_module._served_cost((completion.model_copy(), step, wrong), completion, step, None) == fresh
    assert chat_module._served_cost((completion, dataclasses.replace(step), wrong), completion, step, None) == fresh
    assert chat_module._served_cost(None, completion, step, None) == fresh
    assert fresh.usd > 0
