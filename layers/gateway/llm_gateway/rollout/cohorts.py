"""Cohorts: which requests the gateway routes, and which go the old way (the baseline). Pure.

A request belongs to the `gateway` cohort when the stable hash of its user falls below the rollout
percentage, else to `baseline`. The hash maps a user to a fixed point in [0, 100); a user is in
the gateway cohort at every percentage above that point, so raising 5 → 25 keeps everyone of the
5 % and nobody flips back and forth while the percentage stays put.

Who "the user" is: the key's user; for keys serving many end users (a policy with
`per_end_user`, and the static bootstrap keys, which stand for whole apps) the request's `user`
field when it names one, so an app's own users are spread over both cohorts.
"""

from __future__ import annotations

import hashlib

GATEWAY = "gateway"
BASELINE = "baseline"
COHORTS = (GATEWAY, BASELINE)
_SALT = b"llm-gateway-rollout:"
_SCALE = 100.0 / float(1 << 64)


def bucket(subject: str) -> float:
    """The subject's fixed point in [0, 100): the first 8 bytes of SHA-256, scaled."""
    digest = hashlib.sha256(_SALT + subject.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") * _SCALE


def cohort_of(subject: str, percent: float) -> str:
    """`gateway` when the subject's point is below `percent` (0 → nobody, 100 → everyone)."""
    if percent >= 100:
        return GATEWAY
    if percent <= 0:
        return BASELINE
    return GATEWAY if bucket(subject) < percent else BASELINE


def subject_of(user: str, end_user: str | None, *, many_users: bool) -> str:
    """What is hashed: the key's user, or that user's end user for keys serving many."""
    if many_users and end_user:
        return f"{user}\x1f{end_user}"
    return user
