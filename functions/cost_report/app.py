"""Cost report Lambda (scheduled shortly after midnight UTC): the previous day's report per user,
provider and model, as JSON and CSV in the reports bucket, and a summary on the alarm topic.

Thin: the report is `llm_gateway.tenancy.report`. The event may name a day (`{"date":
"YYYY-MM-DD"}`) to build again; a scheduled event reports the day before its own time.
"""

from __future__ import annotations

import calendar
import os
import time
from typing import Any

import boto3

from llm_gateway.state.dynamodb import DynamoStateStore, client_config
from llm_gateway.state.memory import MemoryStore
from llm_gateway.tenancy.keys import DynamoKeyStore, KeyStore, MemoryKeyStore
from llm_gateway.tenancy.report import checked_day, previous_day, run_report
from llm_gateway.tenancy.usage import UsageLedger

TABLE = os.environ.get("LLM_GATEWAY_STATE_TABLE")
_keys: KeyStore = MemoryKeyStore()  # no table (`llm-gateway invoke` in memory mode): an empty report
_ledger = UsageLedger(MemoryStore())
if TABLE:
    _dynamodb = boto3.client("dynamodb", endpoint_url=os.environ.get("LLM_GATEWAY_DYNAMODB_ENDPOINT") or None,
                             config=client_config())
    _ledger, _keys = UsageLedger(DynamoStateStore(_dynamodb, TABLE)), DynamoKeyStore(_dynamodb, TABLE)


def _day(event: dict[str, Any], now: float) -> str:
    asked = (event or {}).get("date")
    if asked:  # a day asked for by hand: that day or a clear error, never another day's report
        return checked_day(str(asked))
    scheduled = str((event or {}).get("time") or "")
    if scheduled:
        return previous_day(calendar.timegm(time.strptime(scheduled, "%Y-%m-%dT%H:%M:%SZ")))
    return previous_day(now)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    now = time.time()
    bucket = os.environ.get("LLM_GATEWAY_REPORTS_BUCKET")
    topic = os.environ.get("LLM_GATEWAY_ALARM_TOPIC_ARN")
    s3 = boto3.client("s3", endpoint_url=os.environ.get("LLM_GATEWAY_S3_ENDPOINT") or None) if bucket else None
    sns = boto3.client("sns") if topic else None
    return run_report(_ledger, _keys.list(), _day(event, now), now, s3=s3, bucket=bucket, sns=sns, topic_arn=topic)
