"""The chat façade under a rollout: who is served how, what they are told, what is counted."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from llm_gateway.api.auth import Caller
from llm_gateway.api.errors import GatewayError
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.compose import build_rollout
from llm_gateway.config_check import ConfigError
from llm_gateway.gateway import Gateway
from llm_gateway.observability import metrics as m
from llm_gateway.rollout.cohorts import BASELINE, GATEWAY, cohort_of
from llm_gateway.rollout.flag import write_file
from llm_gateway.tenancy.policy import Policy
from tests.unit.routing.harness import MODELS, Rig, chat, rig, status

BASELINE_MODEL = f"openai/{MODELS['openai']}"


def _gateway(tmp_path: Path, percent: float, **env: str) -> tuple[Gateway, Rig, Path]:
    path = tmp_path / "rollout.json"
    write_file(path, percent)
    r = rig(paid=("openai",), LLM_GATEWAY_BASELINE_MODEL=BASELINE_MODEL, LLM_GATEWAY_ROLLOUT_FILE=str(path),
            LLM_GATEWAY_ROLLOUT_CACHE_S="5", **env)
    return Gateway(r.core, r.router, r.router.available, build_rollout(r.core)), r, path


def _user(cohort: str, percent: float) -> Caller:
    name = next(f"u{i}" for i in range(10_000) if cohort_of(f"u{i}", percent) == cohort)
    return Caller(user=name, key_id=name)


def test_baseline_requests_go_to_the_baseline_model_only(tmp_path: Path) -> None:
    gateway, r, _ = _gateway(tmp_path, 50)
    outcome = gateway.chat(chat("auto"), _user(BASELINE, 50), "req")
    assert outcome.headers["x-gateway-cohort"] == BASELINE
    assert outcome.headers["x-gateway-model"] == MODELS["openai"]
    assert r.fleet.providers_called() == ["openai"]  # no free tier first, although groq is free
    # even a request pinned elsewhere: the old system had one model
    gateway.chat(chat(f"groq/{MODELS['groq']}"), _user(BASELINE, 50), "req")
    assert r.fleet.providers_called() == ["openai", "openai"]


def test_a_failing_baseline_model_does_not_fail_over(tmp_path: Path) -> None:
    gateway, r, _ = _gateway(tmp_path, 50)
    r.fleet.set("openai", status(500))
    with pytest.raises(GatewayError) as failed:
        gateway.chat(chat("auto"), _user(BASELINE, 50), "req")
    assert set(r.fleet.providers_called()) == {"openai"}  # retried the same model at most, nothing else
    assert failed.value.headers["x-gateway-cohort"] == BASELINE
    assert r.metrics.total(m.USER_VISIBLE_ERRORS, cohort=BASELINE) == 1


def test_gateway_requests_are_routed_free_tier_first(tmp_path: Path) -> None:
    gateway, r, _ = _gateway(tmp_path, 50)
    outcome = gateway.chat(chat("auto"), _user(GATEWAY, 50), "req")
    assert outcome.headers["x-gateway-cohort"] == GATEWAY
    assert r.fleet.providers_called() == ["groq"]


def test_metrics_are_split_by_cohort(tmp_path: Path) -> None:
    gateway, r, _ = _gateway(tmp_path, 50)
    gateway.chat(chat(), _user(GATEWAY, 50), "req")
    gateway.chat(chat(), _user(BASELINE, 50), "req")
    for cohort in (GATEWAY, BASELINE):
        assert r.metrics.total(m.REQUESTS, cohort=cohort) == 1
        assert [x for x in r.metrics.records if x.name == m.REQUEST_LATENCY_MS and ("cohort", cohort) in x.dimensions]
    assert r.metrics.total(m.REQUEST_COST_USD, cohort=GATEWAY) == 0  # free tier
    assert r.metrics.total(m.REQUEST_COST_USD, cohort=BASELINE) > 0  # the paid baseline model
    assert r.metrics.total(m.ROLLOUT_PERCENT) == 50  # read once: cached for the second request


def test_a_changed_percentage_applies_after_the_cache_without_a_restart(tmp_path: Path) -> None:
    gateway, r, path = _gateway(tmp_path, 0)
    caller = _user(GATEWAY, 5)
    assert gateway.chat(chat(), caller, "req").headers["x-gateway-cohort"] == BASELINE
    write_file(path, 5)
    r.clock.advance(5.1)
    assert gateway.chat(chat(), caller, "req").headers["x-gateway-cohort"] == GATEWAY
    write_file(path, 0)  # the rollback
    r.clock.advance(5.1)
    assert gateway.chat(chat(), caller, "req").headers["x-gateway-cohort"] == BASELINE


def test_static_and_per_end_user_keys_hash_the_request_user(tmp_path: Path) -> None:
    gateway, _, _ = _gateway(tmp_path, 50)
    ends = [f"end-{i}" for i in range(40)]

    def cohorts(caller: Caller) -> set[str]:
        return {gateway.cohort_for(caller, ChatCompletionRequest.model_validate(
            {"model": "auto", "user": end, "messages": [{"role": "user", "content": "hi"}]})) for end in ends}

    assert cohorts(Caller()) == {GATEWAY, BASELINE}  # a static (bootstrap) key stands for a whole app
    assert cohorts(Caller(user="app", key_id="k", policy=Policy(per_end_user=True))) == {GATEWAY, BASELINE}
    assert len(cohorts(Caller(user="alice", key_id="k"))) == 1  # one user, one cohort


def test_without_a_baseline_model_everyone_is_routed_and_told_so() -> None:
    r = rig()
    gateway = Gateway(r.core, r.router, r.router.available, build_rollout(r.core))
    assert gateway.chat(chat(), Caller(), "req").headers["x-gateway-cohort"] == GATEWAY


def test_a_capacity_429_is_counted_apart_from_errors(tmp_path: Path) -> None:
    gateway, r, _ = _gateway(tmp_path, 100)
    for provider in ("groq", "openai", "mistral"):
        r.fleet.set(provider, status(429))
    with contextlib.suppress(GatewayError):
        gateway.chat(chat(), _user(GATEWAY, 100), "req")
    assert r.metrics.total(m.USER_VISIBLE_ERRORS) == 0
    assert r.metrics.total(m.CAPACITY_REJECTED, cohort=GATEWAY) == 1


def test_a_baseline_model_the_catalog_lacks_stops_the_start() -> None:
    # settings stop it now (load_settings, so `make dev` and `invoke` say it in one line); the
    # rollout's own check stays for Settings built otherwise
    with pytest.raises(ConfigError, match="no-such-model"):
        build_rollout(rig(LLM_GATEWAY_BASELINE_MODEL="openai/no-such-model").core)


@pytest.mark.parametrize("policy", [Policy(models=(f"groq/{MODELS['groq']}", "gemini/*")), Policy(free_only=True)],
                         ids=["allow-list", "free-only"])
def test_a_key_the_baseline_model_cannot_serve_stays_on_the_gateway_at_0_percent(tmp_path: Path, policy: Policy) -> None:
    """The old system could not serve a key whose policy excludes its model (every request would
    be a 403), so a rollback must not send it there: it stays routed, and is told so."""
    gateway, _rig, _ = _gateway(tmp_path, 0)
    restricted = Caller(user="erin", key_id="k-erin", policy=policy)
    outcome = gateway.chat(chat("auto"), restricted, "req")
    assert outcome.status == 200 and outcome.headers["x-gateway-cohort"] == GATEWAY
    assert outcome.headers["x-gateway-provider"] in {"groq", "gemini"}
    assert gateway.chat(chat("auto"), _user(BASELINE, 0), "req").headers["x-gateway-cohort"] == BASELINE


@pytest.mark.parametrize("policy", [Policy(daily_budget_usd=0.0), Policy(monthly_budget_usd=0.0)],
                         ids=["daily", "monthly"])
def test_a_key_with_a_zero_budget_stays_on_the_gateway_at_0_percent(tmp_path: Path, policy: Policy) -> None:
    """A budget of 0 allows no paid call: the paid baseline model could never serve the key (every
    request a 429 `budget_exceeded`, "use a free model"), as for `free_only`. It went to the
    baseline all the same (the cohort asked only the allow-list), so at 0 % (a rollback) and for
    the baseline share of a rollout such a key was refused every request free tiers serve."""
    gateway, _rig, _ = _gateway(tmp_path, 0)
    broke = Caller(user="erin", key_id="k-erin", policy=policy)
    outcome = gateway.chat(chat("auto"), broke, "req")
    assert outcome.status == 200 and outcome.headers["x-gateway-cohort"] == GATEWAY
    assert outcome.headers["x-gateway-cost-usd"] == "0.00000000"
