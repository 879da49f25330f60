"""The trailing-week trigger at 100 %: the gateway cohort's last hour against the same hour a
week before, read from CloudWatch (moto) and published for `TrailingWeekAlarm`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from llm_gateway.observability import metrics as m
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.rollout.trailing_week import HOUR, WEEK, CloudWatchAverages, compare, run
from sandbox.apigw import load_handler_module

NOW = datetime(2026, 12, 8, 15, 0, tzinfo=UTC)


class Hours:
    """`Averages` from fixed figures: this hour's and last week's, per metric and statistic."""

    def __init__(self, now: dict[str, float | None], week_ago: dict[str, float | None]) -> None:
        self.hours = {NOW - HOUR: now, NOW - WEEK - HOUR: week_ago}

    def statistic(self, metric: str, dimensions: dict[str, str], stat: str,
                  start: datetime, end: datetime) -> float | None:
        assert end - start == HOUR
        if metric != m.ROLLOUT_PERCENT:
            assert dimensions == {"cohort": "gateway"} and stat == "Average"
        return self.hours[start].get(metric)


def figures(rollout: float | None = 100.0, cost: float | None = 0.01, latency: float | None = 800.0) -> dict:
    return {m.ROLLOUT_PERCENT: rollout, m.REQUEST_COST_USD: cost, m.REQUEST_LATENCY_MS: latency}


def test_cost_and_latency_are_compared_with_the_same_hour_a_week_before() -> None:
    found = compare(Hours(figures(cost=0.016, latency=2000.0), figures(cost=0.01, latency=800.0)), NOW)
    assert found is not None
    assert found.cost_increase_percent == pytest.approx(60.0) and found.latency_ratio == pytest.approx(2.5)


@pytest.mark.parametrize(("now", "week_ago"), [
    (figures(rollout=25.0), figures()),  # still rolling out: the cohort alarms judge
    (figures(), figures(rollout=5.0)),  # a week ago the gateway cohort was other users
    (figures(), figures(rollout=None)),  # no chat traffic read the flag then
])
def test_nothing_is_compared_unless_the_rollout_was_at_100_percent_in_both_hours(now: dict, week_ago: dict) -> None:
    metrics = RecordingMetrics()
    assert run(Hours(now, week_ago), metrics, NOW) == {
        "compared": False, "reason": "the rollout was not at 100 % throughout both hours"}
    assert metrics.records == []


def test_a_week_ago_with_no_cost_publishes_latency_only() -> None:
    metrics = RecordingMetrics()
    run(Hours(figures(cost=0.002), figures(cost=0.0)), metrics, NOW)
    assert [r.name for r in metrics.records] == [m.LATENCY_VS_LAST_WEEK_RATIO]
    assert metrics.total(m.LATENCY_VS_LAST_WEEK_RATIO) == pytest.approx(1.0)


@mock_aws
def test_cloudwatch_averages_read_the_gateway_cohort_series_of_each_hour(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through moto's GetMetricData, the series the chat function emits (EMF: `service` plus
    `cohort`), at this hour and at the same hour a week before; then the handler itself."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    service = {"Name": "service", "Value": "llm-gateway"}
    cohort = [service, {"Name": "cohort", "Value": "gateway"}]
    for at, cost, latency in ((NOW - timedelta(minutes=30), 0.02, 900.0),
                              (NOW - WEEK - timedelta(minutes=30), 0.01, 1000.0)):
        cloudwatch.put_metric_data(Namespace=m.NAMESPACE, MetricData=[
            {"MetricName": m.ROLLOUT_PERCENT, "Dimensions": [service], "Timestamp": at, "Value": 100.0},
            {"MetricName": m.REQUEST_COST_USD, "Dimensions": cohort, "Timestamp": at, "Value": cost},
            {"MetricName": m.REQUEST_COST_USD, "Dimensions": cohort, "Timestamp": at, "Value": cost},
            {"MetricName": m.REQUEST_LATENCY_MS, "Dimensions": cohort, "Timestamp": at, "Value": latency},
            # the baseline cohort's figures must not be read
            {"MetricName": m.REQUEST_COST_USD, "Dimensions": [service, {"Name": "cohort", "Value": "baseline"}],
             "Timestamp": at, "Value": 5.0},
        ])
    found = compare(CloudWatchAverages(cloudwatch), NOW)
    assert found is not None
    assert found.cost_increase_percent == pytest.approx(100.0) and found.latency_ratio == pytest.approx(0.9)

    app = load_handler_module("trailing_week")
    answer = app.lambda_handler({"time": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), "detail-type": "Scheduled Event"}, None)
    assert answer == {"compared": True, "cost_increase_percent": pytest.approx(100.0), "latency_ratio": pytest.approx(0.9)}


class ClockAlignedCloudWatch:
    """GetMetricData as CloudWatch may answer an hour that does not start on the hour: buckets
    aligned to the clock's hours, newest first (its default order)."""

    def __init__(self, points: list[tuple[datetime, float]]) -> None:
        self.points = points

    def get_metric_data(self, MetricDataQueries: list[dict], StartTime: datetime, EndTime: datetime) -> dict:
        results = []
        for query in MetricDataQueries:
            stat, period = query["MetricStat"]["Stat"], query["MetricStat"]["Period"]
            buckets: dict[int, list[float]] = {}
            for at, value in self.points:
                if StartTime <= at < EndTime:
                    buckets.setdefault(int(at.timestamp()) // period, []).append(value)
            reduce = {"Sum": sum, "SampleCount": len, "Minimum": min, "Maximum": max,
                      "Average": lambda v: sum(v) / len(v)}[stat]
            results.append({"Id": query["Id"], "Values": [reduce(buckets[k]) for k in sorted(buckets, reverse=True)]})
        return {"MetricDataResults": results}


def test_an_hour_off_the_clock_is_read_whole_not_its_newest_bucket() -> None:
    """Found in the rollout audit: the statistic was the first value returned, and an hour from
    10:17 to 11:17 may come back as two clock-aligned buckets, newest (11:00-11:17) first."""
    end = datetime(2026, 12, 8, 11, 17, tzinfo=UTC)
    points = [(end - timedelta(minutes=50), 10.0), (end - timedelta(minutes=40), 20.0),
              (end - timedelta(minutes=30), 30.0), (end - timedelta(minutes=5), 100.0)]
    averages = CloudWatchAverages(ClockAlignedCloudWatch(points))
    assert averages.statistic(m.REQUEST_COST_USD, {}, "Average", end - HOUR, end) == pytest.approx(40.0)
    assert averages.statistic(m.ROLLOUT_PERCENT, {}, "Minimum", end - HOUR, end) == 10.0
    assert averages.statistic(m.ROLLOUT_PERCENT, {}, "Minimum", end - 3 * HOUR, end - 2 * HOUR) is None
