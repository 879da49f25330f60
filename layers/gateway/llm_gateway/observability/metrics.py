"""CloudWatch metrics as EMF lines (Powertools), behind a two-method protocol.

The router and gateway only call `count`/`timing`; tests pass `RecordingMetrics` and assert on
what was recorded. The names below are the whole contract with template.yaml: every metric its
alarms and dashboard read is emitted here, and every metric emitted here is on the dashboard or
in an alarm, or listed in `NOT_ON_DASHBOARD` with the reason (tests/unit/test_metrics_contract.py
checks both directions, and the dimensions alarms and panels rely on, by running requests).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from aws_lambda_powertools.metrics import MetricUnit, single_metric

NAMESPACE = "LlmGateway"

REQUESTS = "Requests"
FREE_TIER_REQUESTS = "FreeTierRequests"
PAID_REQUESTS = "PaidRequests"
COST_USD = "CostUSD"
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

# Emitted but read by no dashboard panel and no alarm: name → why. Every metric has a panel
# today; a metric added for logs or ad-hoc queries only goes here, with its reason.
NOT_ON_DASHBOARD: dict[str, str] = {}


class Metrics(Protocol):
    def count(self, name: str, value: float = 1.0, **dimensions: str) -> None: ...

    def timing(self, name: str, ms: float, **dimensions: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Recorded:
    name: str
    value: float
    unit: str
    dimensions: tuple[tuple[str, str], ...]


class RecordingMetrics:
    """In-memory metrics for tests and local runs."""

    def __init__(self) -> None:
        self.records: list[Recorded] = []
        self._lock = threading.Lock()

    def _add(self, name: str, value: float, unit: str, dimensions: dict[str, str]) -> None:
        with self._lock:
            self.records.append(Recorded(name, value, unit, tuple(sorted(dimensions.items()))))

    def count(self, name: str, value: float = 1.0, **dimensions: str) -> None:
        self._add(name, value, "Count", dimensions)

    def timing(self, name: str, ms: float, **dimensions: str) -> None:
        self._add(name, ms, "Milliseconds", dimensions)

    def total(self, name: str, **dimensions: str) -> float:
        wanted = set(dimensions.items())
        return sum(r.value for r in self.records if r.name == name and wanted <= set(r.dimensions))


class EmfMetrics:
    """Each call writes one EMF line to stdout via Powertools' `single_metric`.

    One line per data point keeps per-metric dimensions (provider/model) exact; the request
    path emits a handful, which CloudWatch ingests from the log stream at no API cost.
    """

    def __init__(self, namespace: str = NAMESPACE, service: str = "llm-gateway") -> None:
        self._namespace = namespace
        self._service = service

    def _emit(self, name: str, value: float, unit: str, dimensions: dict[str, str]) -> None:
        with single_metric(
            name=name, unit=MetricUnit(unit), value=value, namespace=self._namespace,
            default_dimensions={"service": self._service},
        ) as metric:
            for key, dim_value in dimensions.items():
                metric.add_dimension(name=key, value=str(dim_value))

    def count(self, name: str, value: float = 1.0, **dimensions: str) -> None:
        self._emit(name, value, "Count", dimensions)

    def timing(self, name: str, ms: float, **dimensions: str) -> None:
        self._emit(name, ms, "Milliseconds", dimensions)
