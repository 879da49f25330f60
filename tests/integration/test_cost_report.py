"""The cost_report Lambda against moto (DynamoDB, S3, SNS): yesterday's report per user, provider
and model as JSON and CSV in the reports bucket, its summary on the alarm topic, the day before
and the month's projection, and users near a budget. `llm-gateway report` builds the same."""

from __future__ import annotations

import calendar
import csv
import io
import json
import time

import boto3
import pytest
from moto import mock_aws

from llm_gateway.state.dynamodb import DynamoStateStore, create_table
from llm_gateway.tenancy.admin import KeyAdmin
from llm_gateway.tenancy.keys import DynamoKeyStore
from llm_gateway.tenancy.usage import ServedRequest, UsageLedger
from sandbox import report_cli
from sandbox.apigw import LocalContext, load_handler_module

TABLE, BUCKET = "state", "reports"
DAY = "2026-11-26"
NOON = calendar.timegm(time.strptime(DAY, "%Y-%m-%d")) + 12 * 3600


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    for ambient in ("LLM_GATEWAY_DYNAMODB_ENDPOINT", "LLM_GATEWAY_S3_ENDPOINT"):
        monkeypatch.delenv(ambient, raising=False)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, TABLE)
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        topic = boto3.client("sns", region_name="us-east-1").create_topic(Name="alarms")["TopicArn"]
        queue = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="mail")["QueueUrl"]
        queue_arn = boto3.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs",
                                      Endpoint=queue_arn["Attributes"]["QueueArn"])
        monkeypatch.setenv("LLM_GATEWAY_STATE_TABLE", TABLE)
        monkeypatch.setenv("LLM_GATEWAY_REPORTS_BUCKET", BUCKET)
        monkeypatch.setenv("LLM_GATEWAY_ALARM_TOPIC_ARN", topic)
        yield client, queue


def _seed(client) -> None:
    ledger = UsageLedger(DynamoStateStore(client, TABLE))
    admin = KeyAdmin(DynamoKeyStore(client, TABLE))
    admin.create({"user": "alice", "daily_budget_usd": 0.01})
    admin.create({"user": "bob"})
    for at, served in (
        (NOON, ServedRequest("alice", "openai", "gpt-4o-mini", False, 0.009, 100, 50)),
        (NOON, ServedRequest("alice", "groq", "llama-3.1-8b-instant", True, 0.0, 10, 5)),
        (NOON, ServedRequest("bob", "groq", "llama-3.1-8b-instant", True, 0.0, 10, 5)),
        (NOON - 86_400, ServedRequest("alice", "openai", "gpt-4o-mini", False, 0.003, 100, 50)),
    ):
        ledger.record(served, at)


def test_the_report_lambda_writes_json_csv_and_publishes_a_summary(aws) -> None:
    client, queue = aws
    _seed(client)
    module = load_handler_module("cost_report", instance="report_test")
    event = {"time": "2026-11-27T00:15:00Z", "detail-type": "Scheduled Event"}
    result = module.lambda_handler(event, LocalContext(function_name="cost_report"))
    assert result["date"] == DAY
    s3 = boto3.client("s3")
    report = json.loads(s3.get_object(Bucket=BUCKET, Key=f"reports/2026/11/{DAY}.json")["Body"].read())
    assert report["totals"]["requests"] == 3 and report["totals"]["cost_usd"] == 0.009
    assert report["totals"]["free_share"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["previous_day"]["cost_usd"] == 0.003 and report["previous_day"]["cost_change"] == 2.0
    assert report["month"]["cost_usd"] == 0.012 and report["month"]["projected_cost_usd"] == pytest.approx(0.012 / 26 * 30)
    assert report["users"]["alice"]["cost_usd"] == 0.009 and report["users"]["bob"]["requests"] == 1
    assert [n["user"] for n in report["near_budget"]] == ["alice"]  # $0.009 of $0.01: 90 %
    rows = list(csv.DictReader(io.StringIO(s3.get_object(Bucket=BUCKET, Key=f"reports/2026/11/{DAY}.csv")["Body"]
                                           .read().decode())))
    assert {(r["user"], r["model"]) for r in rows} == {("alice", "openai/gpt-4o-mini"),
                                                       ("alice", "groq/llama-3.1-8b-instant"),
                                                       ("bob", "groq/llama-3.1-8b-instant")}
    message = boto3.client("sqs").receive_message(QueueUrl=queue)["Messages"][0]["Body"]
    assert "cost report for 2026-11-26" in message and "Near budget: alice" in message


def test_llm_gateway_report_builds_the_same_report_locally(aws, tmp_path, capsys) -> None:
    client, _ = aws
    _seed(client)
    assert report_cli.main(["--date", DAY, "--out", str(tmp_path)]) == 0
    assert "cost report for 2026-11-26" in capsys.readouterr().out
    local = json.loads((tmp_path / f"{DAY}.json").read_text())
    assert local["totals"]["requests"] == 3 and (tmp_path / f"{DAY}.csv").read_text().startswith("date,user,model")
    assert report_cli.main(["--date", "yesterday-ish", "--out", str(tmp_path)]) == 2


@pytest.mark.parametrize("asked", ["2026-13-45", "2026-1-5", "yesterday", "2026-02-30"])
def test_a_day_asked_for_that_is_no_day_is_a_clear_error_not_another_days_report(aws, asked) -> None:
    """Found in the rollout audit: `2026-13-45` failed with a traceback, and a day the pattern did
    not match (`2026-1-5`) silently reported the day before the invocation instead."""
    module = load_handler_module("cost_report", instance=f"report_bad_day_{asked}")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        module.lambda_handler({"date": asked}, LocalContext(function_name="cost_report"))
    assert report_cli.main(["--date", asked]) == 2
