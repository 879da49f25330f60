"""Trailing-week Lambda (every 10 minutes): at 100 % rollout, the gateway cohort's last hour of
cost per request and latency against the same hour a week before, published as metrics for
`TrailingWeekAlarm` (a rollback trigger).

Thin: the logic is `llm_gateway.rollout.trailing_week`. The scheduled event's own time is the
hour's end, so a retried invocation compares the same hour.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3

from llm_gateway.observability.metrics import EmfMetrics
from llm_gateway.rollout.trailing_week import CloudWatchAverages, run

_averages = CloudWatchAverages(boto3.client("cloudwatch"))
_metrics = EmfMetrics()


def _now(event: dict[str, Any]) -> datetime:
    scheduled = str((event or {}).get("time") or "")
    if scheduled:
        return datetime.strptime(scheduled, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return datetime.now(UTC)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return run(_averages, _metrics, _now(event))
