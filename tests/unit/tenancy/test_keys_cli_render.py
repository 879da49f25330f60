"""`llm-gateway keys list` shows every limit a key has, including a limit of 0.

A policy of `rpm: 0` (or `daily_budget_usd: 0`, `rpd: 0`, ...) refuses every request of that kind,
yet the table left it out as if it were unset, because the filter `v not in (None, False, [])`
also drops 0 (0 == False): an operator listing a key that served nothing read "no limits"."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.users_cli import render_keys


def _key(**policy: Any) -> dict[str, Any]:
    base = {"rpm": None, "rpd": None, "tpm": None, "audio_seconds_per_day": None, "daily_budget_usd": None,
            "monthly_budget_usd": None, "free_only": False, "models": [], "admin": False, "per_end_user": False}
    return {"id": "key_0123456789abcdef", "user": "dave", "name": "", "revoked": False, "policy": {**base, **policy}}


@pytest.mark.parametrize("field", ["rpm", "rpd", "tpm", "audio_seconds_per_day", "daily_budget_usd",
                                   "monthly_budget_usd"])
def test_a_limit_of_zero_is_listed(field: str) -> None:
    table = render_keys({"data": [_key(**{field: 0})]})
    assert f"{field}=0" in table and "no limits" not in table, table


def test_a_key_with_nothing_set_reads_no_limits() -> None:
    table = render_keys({"data": [_key()]})
    assert "no limits" in table, table
    assert "free_only" not in table and "admin" not in table, table


def test_switches_and_allow_lists_are_listed_when_on() -> None:
    table = render_keys(_key(free_only=True, models=["groq/*"], rpm=60))
    assert "rpm=60" in table and "free_only=True" in table and "models=['groq/*']" in table, table
