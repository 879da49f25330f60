"""template.yaml's parts for users: the daily cost report (schedule, least privilege, encrypted
bucket), the spend cap and key cache parameters, and the saved Logs Insights queries."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_template import _calls_in, _dynamodb_actions, _iam_action, function_props

cfn_yaml = pytest.importorskip("cfnlint.decode.cfn_yaml")
ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "gateway" / "llm_gateway"
REPORT_SOURCES = [ROOT / "functions" / "cost_report" / "app.py", LAYER / "tenancy" / "report.py",
                  LAYER / "tenancy" / "usage.py", LAYER / "tenancy" / "keys.py", LAYER / "state" / "dynamodb.py"]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    path = ROOT / "template.yaml"
    return cfn_yaml.loads(path.read_text(encoding="utf-8"), str(path))


def test_cost_report_runs_shortly_after_midnight_utc(template) -> None:
    props = function_props(template, "CostReportFunction")
    assert props["Handler"] == "app.lambda_handler" and props["AutoPublishAlias"] == "live"
    schedule = props["Events"]["DailyAfterMidnightUtc"]["Properties"]["Schedule"]
    minute, hour = re.match(r"cron\((\d+) (\d+) ", schedule).groups()  # type: ignore[union-attr]
    assert hour == "0" and 0 < int(minute) <= 30
    env = props["Environment"]["Variables"]
    assert env["LLM_GATEWAY_REPORTS_BUCKET"] == {"Ref": "ReportsBucket"}
    assert env["LLM_GATEWAY_ALARM_TOPIC_ARN"] == {"Ref": "AlarmTopic"}


def test_cost_report_may_only_read_state_write_reports_and_publish(template) -> None:
    # the only read the report's code path makes is a BatchGetItem (DynamoStateStore.load); keys
    # are written by the chat function, never by the report
    writes = {"put_item", "update_item"}
    reads = _calls_in(REPORT_SOURCES) - writes
    assert _dynamodb_actions(template, "CostReportFunction") == {_iam_action(op) for op in reads} == {"dynamodb:BatchGetItem"}
    statements = [s for p in function_props(template, "CostReportFunction")["Policies"] if isinstance(p, dict)
                  for s in p.get("Statement", [])]
    s3 = [s for s in statements if any(a.startswith("s3:") for a in s["Action"])]
    assert [s["Action"] for s in s3] == [["s3:PutObject"]]
    assert s3[0]["Resource"] == {"Fn::Sub": "${ReportsBucket.Arn}/reports/*"}


def test_reports_bucket_is_encrypted_and_private(template) -> None:
    props = template["Resources"]["ReportsBucket"]["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert all(props["PublicAccessBlockConfiguration"].values())


def test_spend_cap_and_key_cache_reach_every_function(template) -> None:
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["LLM_GATEWAY_DAILY_SPEND_CAP_USD"] == {"Ref": "DailySpendCapUsd"}
    assert env["LLM_GATEWAY_KEY_CACHE_S"] == {"Ref": "KeyCacheSeconds"}
    assert template["Parameters"]["KeyCacheSeconds"]["MaxValue"] == 60
    assert template["Parameters"]["DailySpendCapUsd"]["Default"] == ""


def test_saved_queries_read_the_summary_line(template) -> None:
    queries = {name: r["Properties"] for name, r in template["Resources"].items()
               if r["Type"] == "AWS::Logs::QueryDefinition"}
    assert set(queries) == {"TopUsersByCostQuery", "FreeTierShareByDayQuery", "FailoversByProviderQuery",
                            "SlowestModelsQuery"}
    served_fields = {"user", "cost_usd", "free", "attempts", "provider", "model", "latency_ms"}
    for props in queries.values():
        assert 'message = "request served"' in props["QueryString"]
        used = set(re.findall(r"\b(user|cost_usd|free|attempts|provider|model|latency_ms)\b", props["QueryString"]))
        assert used <= served_fields
