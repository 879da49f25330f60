"""Parsing of rate-limit and retry headers shared by several providers (see providers.md §2).

Header values are text from outside: `1e999`, `inf`, `nan` or four hundred nines parse as floats
that are not finite, and `int()` of those raises OverflowError. A value that is not a finite,
non-negative number within a sane bound is treated as absent, so nothing downstream (cooldowns,
window snapshots written to DynamoDB, `Retry-After` to callers) ever sees `inf` or a number
DynamoDB cannot store.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

import httpx

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_SECONDS = 400 * 86_400.0  # longer than any limit window a provider documents (a month)
MAX_COUNT = 10**12  # more requests or tokens than any limit a provider documents


def bounded_seconds(value: float | None) -> float | None:
    """`value` when it is a finite number of seconds in [0, MAX_SECONDS], else None (absent)."""
    if value is None or not math.isfinite(value) or value < 0 or value > MAX_SECONDS:
        return None
    return value


def bounded_count(value: float | int | None) -> int | None:
    """`value` as an int when it is a finite count in [0, MAX_COUNT], else None (absent)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or not 0 <= value <= MAX_COUNT:
        return None
    return int(value)


def parse_duration(value: str | None) -> float | None:
    """Go-style durations (`"6m0s"`, `"7.66s"`, `"12ms"`, `"14h29m11.04s"`) or bare seconds → seconds."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return bounded_seconds(float(text))
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(num + unit for num, unit in parts) != text.replace(" ", ""):
        return None
    return bounded_seconds(sum(float(num) * _UNIT_SECONDS[unit] for num, unit in parts))


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """`retry-after-ms`, then `retry-after` as seconds or an HTTP date; None when absent or nonsense."""
    millis = header(headers, "retry-after-ms")
    if millis is not None:
        try:
            return bounded_seconds(max(0.0, float(millis) / 1000.0))
        except ValueError:
            pass
    raw = header(headers, "retry-after")
    if raw is None:
        return None
    try:
        return bounded_seconds(max(0.0, float(raw)))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError, OverflowError):
        return None
    return bounded_seconds(max(0.0, moment.timestamp() - (time.time() if now is None else now)))


class FoldedHeaders(dict[str, str]):
    """A response's headers as a plain dict, read once: names lower-cased and a repeated header's
    values joined with ", ", as `httpx.Headers` answers a lookup (`header` reads it
    case-insensitively). Each `httpx.Headers` lookup scans and decodes every header again; a
    response's rate-limit parsing makes about twenty."""

    @classmethod
    def of(cls, headers: httpx.Headers) -> FoldedHeaders:
        return cls(headers.items())


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that works on plain dicts as well as httpx.Headers."""
    if type(headers) is FoldedHeaders:
        return headers.get(name.lower())
    value = headers.get(name)
    if value is not None or isinstance(headers, httpx.Headers):  # httpx.Headers is case-insensitive
        return value
    lowered = name.lower()
    for key, val in headers.items():
        if key.lower() == lowered:
            return val
    return None


def header_int(headers: Mapping[str, str], name: str) -> int | None:
    raw = header(headers, name)
    if raw is None:
        return None
    try:
        return bounded_count(float(raw))
    except ValueError:
        return None
