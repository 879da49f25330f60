"""CloudWatch metrics as EMF lines, behind a two-method protocol.

The router and gateway only call `count`/`timing`; tests pass `RecordingMetrics` and assert on
what was recorded. The names below are the whole contract with template.yaml: every metric its
alarms and dashboard read is emitted here, and every metric emitted here is on the dashboard or
in an alarm, or listed in `NOT_ON_DASHBOARD` with the reason (tests/unit/test_metrics_contract.py
checks both directions, and the dimensions alarms and panels rely on, by running requests).
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import NamedTuple, Protocol

NAMESPACE = "LlmGateway"
SERVICE = "llm-gateway"  # the `service` dimension of every data point (POWERTOOLS_SERVICE_NAME in the template)

REQUESTS = "Requests"
FREE_TIER_REQUESTS = "FreeTierRequests"
PAID_REQUESTS = "PaidRequests"
COST_USD = "CostUSD"
# The same two, as one total series each ({service} only): anomaly-detection bands are learnt per
# series, so the alarms on unexpected paid usage read these rather than the per-provider ones.
PAID_REQUESTS_TOTAL = "PaidRequestsTotal"
BUDGET_WARNINGS = "BudgetWarnings"  # a user's spend just passed BUDGET_WARNING_SHARE of a budget
COST_USD_TOTAL = "CostUSDTotal"
PROVIDER_ERRORS = "ProviderErrors"
RATE_LIMITED = "RateLimited"
RATE_LIMIT_NEAR_MISS = "RateLimitNearMiss"
FAILOVERS = "Failovers"
USER_VISIBLE_ERRORS = "UserVisibleErrors"
BREAKER_TRANSITIONS = "BreakerTransitions"
STATE_DEGRADED = "StateDegraded"
SELECTION_LATENCY_MS = "SelectionLatencyMs"
STATE_LATENCY_MS = "StateLatencyMs"
PROVIDER_LATENCY_MS = "ProviderLatencyMs"
CAPACITY_WAITS = "CapacityWaits"
USER_LIMITED = "UserLimited"  # 429s a caller's own limit or budget answered (dimension: code)
# A streamed answer: from the request reaching the gateway to its first chunk leaving it
# (planning, reservations, failed attempts, the provider's own time to first token). Dimension:
# cohort (the rollout's latency trigger compares the cohorts).
TIME_TO_FIRST_TOKEN_MS = "TimeToFirstTokenMs"
# --- the safe rollout (llm_gateway.rollout): chat metrics split by cohort (gateway | baseline) ---
# Requests and UserVisibleErrors of chat carry `cohort` too. A 429 the gateway answered because no
# model had capacity (not the caller's own limit: UserLimited) is counted here, not as an error.
CAPACITY_REJECTED = "CapacityRejected"
REQUEST_COST_USD = "RequestCostUSD"  # per served chat request, 0 included: its average is cost per request
REQUEST_LATENCY_MS = "RequestLatencyMs"  # a chat answer sent whole (not streamed live), served or failed
ROLLOUT_PERCENT = "RolloutPercent"  # the percentage a container read from the flag, at each read
# At 100 % (no baseline cohort left): the gateway cohort's last hour against the same hour a week
# before, published by the trailing-week function (rollout/trailing_week.py) for TrailingWeekCostAlarm and
# TrailingWeekLatencyAlarm.
COST_INCREASE_VS_LAST_WEEK_PERCENT = "CostIncreaseVsLastWeekPercent"
LATENCY_VS_LAST_WEEK_RATIO = "LatencyVsLastWeekRatio"
# Every provider call (dimensions provider, outcome: ok | failed | limited | refused), so a
# provider's error rate is failed / (ok + failed): ProviderErrors says why, this says how often.
PROVIDER_ATTEMPTS = "ProviderAttempts"
# --- transcription (the transcribe function): its own series, so chat's cohort alarms read chat
# alone. Every transcription the façade handles, once, by outcome (`transcription/gateway.py`;
# requests refused before it, with no valid key, a malformed form or an unknown upload, are not
# in it: API Gateway's 4XXError counts those); the audio seconds each served one billed, by
# provider and tier (free | paid).
TRANSCRIPTION_REQUESTS = "TranscriptionRequests"
AUDIO_SECONDS_SERVED = "AudioSecondsServed"

# Emitted but read by no dashboard panel and no alarm: name → why. Every metric has a panel
# today; a metric added for logs or ad-hoc queries only goes here, with its reason.
NOT_ON_DASHBOARD: dict[str, str] = {}


class Metrics(Protocol):
    def count(self, name: str, value: float = 1.0, **dimensions: str) -> None: ...

    def timing(self, name: str, ms: float, **dimensions: str) -> None: ...


class Recorded(NamedTuple):
    name: str
    value: float
    unit: str
    dimensions: tuple[tuple[str, str], ...]  # sorted by name


class RecordingMetrics:
    """In-memory metrics for tests and local runs (`list.append` is atomic: no lock needed)."""

    def __init__(self) -> None:
        self.records: list[Recorded] = []

    def count(self, name: str, value: float = 1.0, **dimensions: str) -> None:
        items = tuple(dimensions.items())
        self.records.append(Recorded(name, value, "Count", tuple(sorted(items)) if len(items) > 1 else items))

    def timing(self, name: str, ms: float, **dimensions: str) -> None:
        items = tuple(dimensions.items())
        self.records.append(Recorded(name, ms, "Milliseconds", tuple(sorted(items)) if len(items) > 1 else items))

    def total(self, name: str, **dimensions: str) -> float:
        wanted = set(dimensions.items())
        return sum(r.value for r in self.records if r.name == name and wanted <= set(r.dimensions))


class EmfMetrics:
    """Each call writes one EMF line to stdout: the very line Powertools' `single_metric` writes.

    One line per data point keeps per-metric dimensions (provider/model) exact; the request
    path emits a handful, which CloudWatch ingests from the log stream at no API cost. The line
    is composed here rather than through `single_metric`, which cost about 90 µs per data point
    (it rebuilds its unit and resolution tables on every call), half a millisecond per request;
    the constant text around the timestamp and the value is kept per (metric, unit, dimensions),
    at most `MAX_KEPT_LINES` of them. A test holds the output equal to Powertools', character for
    character.
    """

    MAX_KEPT_LINES = 4096  # dimension values come from the catalog and fixed vocabularies

    def __init__(self, namespace: str = NAMESPACE, service: str = SERVICE) -> None:
        self._namespace = namespace
        self._service = service
        self._lines: dict[tuple[object, ...], tuple[str, str]] = {}

    def _emit(self, name: str, value: float, unit: str, dimensions: dict[str, str]) -> None:
        value = float(value)
        key = (name, unit, *dimensions.items())
        keep = True
        try:
            parts = self._lines.get(key) if math.isfinite(value) else None
        except TypeError:  # an unhashable dimension value: composed afresh every time
            parts, keep = None, False
        if parts is None:
            if "service" in dimensions or name in dimensions or name == "service" or not math.isfinite(value):
                print(json.dumps(self._document(name, value, unit, dimensions), separators=(",", ":")))
                return
            head, tail = self._template(name, unit, tuple(dimensions))
            dims = "".join(f",{json.dumps(k)}:{json.dumps(v if isinstance(v, str) else str(v))}"
                           for k, v in dimensions.items())
            parts = (head, f"{tail}{dims},{json.dumps(name)}:[")
            # only str values are kept: `True == 1` would otherwise read back another's text
            if keep and len(self._lines) < self.MAX_KEPT_LINES and all(type(v) is str for v in dimensions.values()):
                self._lines[key] = parts
        sys.stdout.write(f"{parts[0]}{int(time.time() * 1000)}{parts[1]}{value!r}]}}\n")  # print's very text

    def _document(self, name: str, value: float, unit: str, dimensions: dict[str, str]) -> dict[str, object]:
        """The EMF document `single_metric` builds (dimension values as strings, service first)."""
        dims = {"service": self._service}
        for key, dim_value in dimensions.items():
            dims[key] = dim_value if isinstance(dim_value, str) else str(dim_value)
        return {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {"Namespace": self._namespace, "Dimensions": [list(dims)], "Metrics": [{"Name": name, "Unit": unit}]}
                ],
            },
            **dims,
            name: [value],
        }

    def _template(self, name: str, unit: str, keys: tuple[str, ...]) -> tuple[str, str]:
        """The constant text around the timestamp, composed as `json.dumps` composes `_document`:
        (everything before the timestamp, everything after it up to the service dimension)."""
        directive = [{"Namespace": self._namespace, "Dimensions": [["service", *keys]],
                      "Metrics": [{"Name": name, "Unit": unit}]}]
        compact = (",", ":")
        return ('{"_aws":{"Timestamp":',
                f',"CloudWatchMetrics":{json.dumps(directive, separators=compact)}}},"service":{json.dumps(self._service)}')

    # `count` and `timing` write a line whose constant text is kept themselves (the line of every
    # request but a container's first few): through `_emit` it cost a call more, about a tenth of
    # a data point. `value - value == 0.0` is `math.isfinite` for a float, without the call.
    def count(self, name: str, value: float = 1.0, **dimensions: str) -> None:
        value = float(value)
        try:
            parts = self._lines.get((name, "Count", *dimensions.items())) if value - value == 0.0 else None
        except TypeError:  # an unhashable dimension value
            parts = None
        if parts is None:
            self._emit(name, value, "Count", dimensions)
            return
        sys.stdout.write(f"{parts[0]}{int(time.time() * 1000)}{parts[1]}{value!r}]}}\n")  # as `_emit` writes it

    def timing(self, name: str, ms: float, **dimensions: str) -> None:
        value = float(ms)
        try:
            parts = self._lines.get((name, "Milliseconds", *dimensions.items())) if value - value == 0.0 else None
        except TypeError:
            parts = None
        if parts is None:
            self._emit(name, value, "Milliseconds", dimensions)
            return
        sys.stdout.write(f"{parts[0]}{int(time.time() * 1000)}{parts[1]}{value!r}]}}\n")
