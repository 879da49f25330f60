"""The seed's cost and latency triggers once the rollout is at 100 %: the gateway cohort's last
hour against the same hour a week before.

Below 100 % the cohort alarms compare the gateway cohort with the baseline cohort in the same
minutes. At 100 % there is no baseline cohort left, and CloudWatch metric math has no time
shift, so a small scheduled function reads both hours (`CloudWatchAverages`) and publishes the
two comparisons as metrics that `TrailingWeekAlarm` reads. A comparison is only made when the
rollout read 100 % throughout both hours: while it moves, the gateway cohort is a different set
of users from one week to the next, and the cohort alarms are the right judge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from llm_gateway.observability import metrics as m
from llm_gateway.observability.metrics import Metrics

HOUR = timedelta(hours=1)
WEEK = timedelta(days=7)
GATEWAY_COHORT = {"cohort": "gateway"}
FULL_ROLLOUT = 100.0


class Averages(Protocol):
    """One statistic of one metric series (namespace `LlmGateway`, `service` plus `dimensions`)
    over [start, end); None when the series has no data there."""

    def statistic(self, metric: str, dimensions: dict[str, str], stat: str,
                  start: datetime, end: datetime) -> float | None: ...


@dataclass(frozen=True, slots=True)
class WeekComparison:
    cost_increase_percent: float | None  # None: no cost a week ago (all free then), nothing to compare
    latency_ratio: float | None


def compare(averages: Averages, now: datetime) -> WeekComparison | None:
    """None when either hour was not wholly at 100 % (or had no rollout reading at all)."""
    hours = ((now - HOUR, now), (now - WEEK - HOUR, now - WEEK))
    for start, end in hours:
        lowest = averages.statistic(m.ROLLOUT_PERCENT, {}, "Minimum", start, end)
        if lowest is None or lowest < FULL_ROLLOUT:
            return None
    (cost_now, latency_now), (cost_then, latency_then) = (
        (averages.statistic(m.REQUEST_COST_USD, GATEWAY_COHORT, "Average", start, end),
         averages.statistic(m.REQUEST_LATENCY_MS, GATEWAY_COHORT, "Average", start, end))
        for start, end in hours)
    cost = None
    if cost_now is not None and cost_then:
        cost = 100.0 * (cost_now / cost_then - 1.0)
    latency = latency_now / latency_then if latency_now is not None and latency_then else None
    return WeekComparison(cost, latency)


def publish(comparison: WeekComparison | None, metrics: Metrics) -> None:
    """Nothing is published without a comparison: the alarm treats missing data as not breaching."""
    if comparison is None:
        return
    if comparison.cost_increase_percent is not None:
        metrics.count(m.COST_INCREASE_VS_LAST_WEEK_PERCENT, comparison.cost_increase_percent)
    if comparison.latency_ratio is not None:
        metrics.count(m.LATENCY_VS_LAST_WEEK_RATIO, comparison.latency_ratio)


class CloudWatchAverages:
    """`Averages` over CloudWatch GetMetricData (one call per statistic; four to six an hour).

    An hour that does not start on the hour may come back as two buckets (CloudWatch may align
    them to the clock, newest first), so no statistic is read off one bucket: an average is the
    hour's sum over its sample count, a minimum or maximum the lowest or highest of the buckets."""

    def __init__(self, cloudwatch: Any, namespace: str = m.NAMESPACE, service: str = m.SERVICE) -> None:
        self.cloudwatch = cloudwatch
        self.namespace = namespace
        self.service = service

    def statistic(self, metric: str, dimensions: dict[str, str], stat: str,
                  start: datetime, end: datetime) -> float | None:
        if stat == "Average":
            sums, counts = self._buckets(metric, dimensions, ("Sum", "SampleCount"), start, end)
            samples = sum(counts)
            return sum(sums) / samples if samples else None
        if stat not in _COMBINE:
            raise ValueError(f"no way to combine {stat} over buckets")
        (values,) = self._buckets(metric, dimensions, (stat,), start, end)
        return _COMBINE[stat](values) if values else None

    def _buckets(self, metric: str, dimensions: dict[str, str], stats: tuple[str, ...],
                 start: datetime, end: datetime) -> list[list[float]]:
        """Each statistic's values over [start, end), every bucket CloudWatch returns."""
        dims = [{"Name": "service", "Value": self.service}]
        dims += [{"Name": name, "Value": value} for name, value in dimensions.items()]
        period = int((end - start).total_seconds())
        answer = self.cloudwatch.get_metric_data(
            MetricDataQueries=[{"Id": f"q{i}", "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": self.namespace, "MetricName": metric, "Dimensions": dims},
                "Period": period, "Stat": stat}} for i, stat in enumerate(stats)],
            StartTime=start, EndTime=end)
        by_id = {result["Id"]: [float(v) for v in result.get("Values", [])] for result in answer["MetricDataResults"]}
        return [by_id.get(f"q{i}", []) for i in range(len(stats))]


_COMBINE: dict[str, Callable[[list[float]], float]] = {"Minimum": min}  # the only other statistic asked: Average


def run(averages: Averages, metrics: Metrics, now: datetime) -> dict[str, Any]:
    """The scheduled function's work; returns what it found (logged by the handler)."""
    comparison = compare(averages, now)
    publish(comparison, metrics)
    if comparison is None:
        return {"compared": False, "reason": "the rollout was not at 100 % throughout both hours"}
    return {"compared": True, "cost_increase_percent": comparison.cost_increase_percent,
            "latency_ratio": comparison.latency_ratio}
