"""Cohort assignment: stable, monotonic in the percentage, and on target over many users."""

from __future__ import annotations

import pytest

from llm_gateway.rollout.cohorts import BASELINE, GATEWAY, bucket, cohort_of, subject_of

USERS = [f"user-{i}" for i in range(100_000)]


def test_a_user_always_lands_in_the_same_cohort() -> None:
    for user in USERS[:1000]:
        assert cohort_of(user, 25) == cohort_of(user, 25)
        assert bucket(user) == bucket(user)


def test_raising_the_percentage_keeps_everyone_already_in() -> None:
    """Monotonic: the 5 % are all in the 25 %, the 25 % all in the 100 %; nobody leaves."""
    previous: set[str] = set()
    for percent in (0, 1, 5, 10, 25, 50, 75, 99, 100):
        inside = {u for u in USERS[:20_000] if cohort_of(u, percent) == GATEWAY}
        assert previous <= inside, percent
        previous = inside
    assert previous == set(USERS[:20_000])


@pytest.mark.parametrize("percent", [1, 5, 25, 50, 75])
def test_the_share_is_within_one_point_of_the_target_over_100000_users(percent: float) -> None:
    share = 100 * sum(cohort_of(u, percent) == GATEWAY for u in USERS) / len(USERS)
    assert abs(share - percent) <= 1.0, share


def test_the_ends_are_exact() -> None:
    assert {cohort_of(u, 0) for u in USERS[:500]} == {BASELINE}
    assert {cohort_of(u, 100) for u in USERS[:500]} == {GATEWAY}


def test_keys_serving_many_users_hash_the_end_user() -> None:
    assert subject_of("app", "alice", many_users=True) != subject_of("app", "bob", many_users=True)
    assert subject_of("app", "alice", many_users=False) == "app"
    assert subject_of("app", None, many_users=True) == "app"
    # spread: an app's own users fall on both sides
    cohorts = {cohort_of(subject_of("app", f"end-{i}", many_users=True), 50) for i in range(100)}
    assert cohorts == {GATEWAY, BASELINE}
