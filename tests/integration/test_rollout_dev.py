"""The safe rollout on a running `make dev`: `llm-gateway rollout set N` changes who is served
how within 10 s, without a restart; `rollback` sends everyone back to the baseline model.

One `llm-gateway serve` subprocess (its own fakes, embedded DynamoDB, N containers in worker
processes) and the CLI as an operator runs it. The dev key is a static key, which stands for a
whole app, so the request's `user` field picks the cohort (rollout/cohorts.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from llm_gateway.rollout.cohorts import BASELINE, GATEWAY, cohort_of, subject_of
from tests.gateway_env import running_make_dev, without_gateway_settings

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "sandbox.cli"]
AUTH = {"Authorization": "Bearer local-dev-key"}


def _end_user(**cohorts: str) -> str:
    """An end user (of the static dev key) in these cohorts at these percentages (`at_5="gateway"`)."""
    return next(f"end-{i}" for i in range(10_000)
                if all(cohort_of(subject_of("static", f"end-{i}", many_users=True), float(at[3:])) == cohort
                       for at, cohort in cohorts.items()))


def _ask(url: str, user: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", headers=AUTH, timeout=30,
                      json={"model": "auto", "user": user, "messages": [{"role": "user", "content": "hi"}]})


def _cli(url: str, *args: str) -> dict:
    done = subprocess.run([*CLI, "rollout", *args, "--url", url], cwd=REPO, env=without_gateway_settings(),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _until(url: str, user: str, cohort: str, within_s: float = 10.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        answer = _ask(url, user)
        assert answer.status_code == 200, answer.text
        if answer.headers["x-gateway-cohort"] == cohort:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"{user} was not served as {cohort} within {within_s} s")


def test_rollout_set_on_a_running_make_dev_changes_who_is_served_how(tmp_path: Path) -> None:
    early = _end_user(at_5=GATEWAY)
    late = _end_user(at_5=BASELINE, at_25=GATEWAY)  # joins at 25 %
    with running_make_dev(tmp_path / "serve.log", LLM_GATEWAY_ROLLOUT_PERCENT="0") as url:
        assert _cli(url, "status")["percent"] == 0
        answer = _ask(url, early)
        assert answer.headers["x-gateway-cohort"] == BASELINE
        assert answer.headers["x-gateway-provider"] == "openai" and answer.headers["x-gateway-model"] == "gpt-4o-mini"

        assert _cli(url, "set", "5")["percent"] == 5
        _until(url, early, GATEWAY)  # within 10 s, no restart
        assert _ask(url, late).headers["x-gateway-cohort"] == BASELINE
        assert _cli(url, "set", "25")["percent"] == 25
        _until(url, late, GATEWAY)
        assert _ask(url, early).headers["x-gateway-cohort"] == GATEWAY  # the 5 % stay in at 25 %

        assert _cli(url, "rollback")["percent"] == 0
        _until(url, early, BASELINE)
        _until(url, late, BASELINE)
    assert "Rollout: flag file" in (tmp_path / "serve.log").read_text()
