"""Operators hear when a user passes 80 % of a budget as it happens, not only in the next day's
report: one `BudgetWarnings` count (an alarm notifies) and one log line naming whose budget."""

from __future__ import annotations

import logging

import httpx
import pytest

from llm_gateway.api.auth import Caller
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.gateway import Gateway
from llm_gateway.observability import metrics as m
from llm_gateway.tenancy.policy import Policy
from tests.unit.routing.harness import completion_body, rig


def answer_with(completion_tokens: int):
    def behaviour(request: httpx.Request, fleet) -> httpx.Response:
        body = completion_body("gpt-4o-mini")
        body["usage"] = {"prompt_tokens": 5, "completion_tokens": completion_tokens,
                         "total_tokens": 5 + completion_tokens}
        return httpx.Response(200, json=body)

    return behaviour


def ask() -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "openai/gpt-4o-mini", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]})


def test_one_warning_when_a_call_takes_spend_past_80_percent(caplog: pytest.LogCaptureFixture) -> None:
    r = rig(paid=("openai",))
    gateway = Gateway(r.core, r.router, r.router.available)
    alice = Caller(user="alice", key_id="k1", policy=Policy(daily_budget_usd=0.0005))  # 500 micro-dollars
    r.fleet.set("openai", answer_with(100))  # 5 * $1 + 100 * $2 per 1M tokens = 205 micro-dollars a call
    with caplog.at_level(logging.WARNING, logger="llm_gateway.routing"):
        gateway.chat(ask(), alice, "r1")  # 41 %: nothing
        assert r.metrics.total(m.BUDGET_WARNINGS) == 0
        gateway.chat(ask(), alice, "r2")  # 82 %: passed
    assert r.metrics.total(m.BUDGET_WARNINGS) == 1
    passed = [rec for rec in caplog.records if rec.getMessage() == "budget threshold passed"]
    assert len(passed) == 1 and "alice" in passed[0].counter and passed[0].budget_usd == pytest.approx(0.0005)


def test_free_calls_and_callers_without_budgets_never_warn() -> None:
    r = rig()
    gateway = Gateway(r.core, r.router, r.router.available)
    for caller in (Caller(user="bob", key_id="k2", policy=Policy(daily_budget_usd=0.000001)), Caller()):
        gateway.chat(ask().model_copy(update={"model": "auto"}), caller, "r")
    assert r.metrics.total(m.BUDGET_WARNINGS) == 0
