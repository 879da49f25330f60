"""The one error a caller sees when every attempt failed.

OpenAI SDKs map the status to their exception classes and honour `Retry-After`, so the status
says *why* (429: everything that could serve is rate limited, come back later; 503: providers
are failing) and the header says *when* (the earliest moment any tried model frees up). The
body lists each attempt by provider, model, error class and status only: never a key, never a
provider's raw body (they can echo prompts or partial keys).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from llm_gateway.api.errors import AllProvidersFailed

_RATE_CLASSES = frozenset({"rate_limited", "quota_exhausted"})


class AttemptLike(Protocol):
    """Read-only (properties), so frozen records such as `routing.run.AttemptRecord` match."""

    @property
    def provider(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def error_class(self) -> str | None: ...

    @property
    def status(self) -> int | None: ...

    def public(self) -> dict[str, Any]: ...


def earliest(values: Iterable[float | None]) -> float | None:
    known = [value for value in values if value is not None and value > 0]
    return min(known) if known else None


def aggregate_error(
    attempts: Sequence[AttemptLike],
    *,
    retry_after_s: float | None = None,
    skipped_for_rate_limits: bool = False,
    timed_out: bool = False,
) -> AllProvidersFailed:
    """Build the aggregated error.

    `skipped_for_rate_limits` covers requests where nothing was even tried because every
    candidate was cooling down after a 429: that is still "rate limited", so 429.
    """
    failed = [a for a in attempts if a.error_class is not None]
    all_rate_limited = (
        all(a.error_class in _RATE_CLASSES for a in failed) if failed else skipped_for_rate_limits
    )
    status = 429 if all_rate_limited else 503
    headers: dict[str, str] = {}
    if retry_after_s is not None and retry_after_s > 0:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    return AllProvidersFailed(
        _message(failed, all_rate_limited, timed_out),
        status=status,
        error_type="rate_limit_error" if all_rate_limited else "server_error",
        code="all_providers_rate_limited" if all_rate_limited else "all_providers_failed",
        headers=headers,
        extra={"attempts": [a.public() for a in failed]},
    )


def _message(failed: Sequence[AttemptLike], rate_limited: bool, timed_out: bool) -> str:
    if not failed:
        if rate_limited:
            return "Every model that can serve this request is rate limited right now; retry later."
        return "No provider is available to serve this request right now."
    listed = ", ".join(f"{a.provider}/{a.model} ({a.error_class}, {a.status or '-'})" for a in failed)
    what = "rate limited" if rate_limited else "failed"
    tail = " The request ran out of time before another provider could be tried." if timed_out else ""
    return f"All {len(failed)} attempt{'s' if len(failed) != 1 else ''} {what}: {listed}.{tail}"
