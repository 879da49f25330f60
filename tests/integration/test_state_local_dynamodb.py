"""The embedded DynamoDB of `make dev`, and `llm-gateway plan --state-table` against it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_gateway.state.metering import REQUESTS, TOKENS, Meter, WindowLimit, model_counter, usage_of
from llm_gateway.state.shared import SharedState
from llm_gateway.state.store import ModelKey
from sandbox import plan_cli
from sandbox.local_dynamodb import LocalDynamo, start_local_dynamodb


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalDynamo]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    dynamo = start_local_dynamodb()
    yield dynamo
    dynamo.stop()


def test_local_dynamodb_serves_the_state_table(local: LocalDynamo) -> None:
    assert local.endpoint_url.startswith("http://127.0.0.1:")
    ttl = local.client().describe_time_to_live(TableName=local.table_name)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at"
    state = SharedState(local.store(), fold_reconcile=True)
    key = ModelKey("groq", "llama-3.1-8b-instant")
    meter = Meter(model_counter(key.provider, key.model), WindowLimit.of(60, requests=30, tokens=6000))
    now = time.time()
    assert state.reserve([usage_of(meter, {}, now)], {REQUESTS: 1, TOKENS: 10}, now) is not None
    assert state.load([meter], [key], now).counters[meter.pk(meter.limit.period.start(now))] == {REQUESTS: 1, TOKENS: 10}


def test_plan_reads_shared_state(local: LocalDynamo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = ModelKey("groq", "llama-3.1-8b-instant")
    SharedState(local.store(), fold_reconcile=True).cool_down(key, time.time() + 300, "429 from provider", time.time())
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"model": "groq/llama-3.1-8b-instant", "messages": [{"role": "user", "content": "hi"}]}))
    args = [str(path), "--json", "--state-table", local.table_name, "--endpoint-url", local.endpoint_url,
            "--region", "us-east-1"]
    assert plan_cli.main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["plan"] == []
    assert out["dropped"][0]["model"] == "llama-3.1-8b-instant" and "cooling down" in out["dropped"][0]["reason"]


def test_local_dynamodb_serves_many_calls_on_one_connection(local: LocalDynamo) -> None:
    """moto's own server closed the connection after every call: each DynamoDB call of every local
    container paid for a new connection and a new server thread."""
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(local.endpoint_url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    headers = {"X-Amz-Target": "DynamoDB_20120810.DescribeTable", "Content-Type": "application/x-amz-json-1.0",
               "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, "
                                "SignedHeaders=host, Signature=0"}
    for _ in range(3):
        connection.request("POST", "/", body=json.dumps({"TableName": local.table_name}), headers=headers)
        response = connection.getresponse()
        body = json.loads(response.read())
        assert response.status == 200 and body["Table"]["TableName"] == local.table_name
        assert (response.getheader("connection") or "").lower() != "close"
    assert connection.sock is not None  # still the first connection
    connection.close()


def test_expired_items_are_swept_as_dynamodb_ttl_would(local: LocalDynamo) -> None:
    """moto never deletes expired items; the table grew for as long as make dev ran."""
    from sandbox.ttl_sweeper import TtlSweeper, sweep_expired

    client, now = local.client(), time.time()
    for pk, expires in (("rl#old", now - 10), ("rl#live", now + 600), ("cfg#no-ttl", None)):
        item = {"pk": {"S": pk}} | ({"expires_at": {"N": str(int(expires))}} if expires else {})
        client.put_item(TableName=local.table_name, Item=item)
    sweep_expired(client, local.table_name, now)  # (moto keeps one table per process: other tests' items too)
    left = {i["pk"]["S"] for i in client.scan(TableName=local.table_name)["Items"]}
    assert {"rl#live", "cfg#no-ttl"} <= left and "rl#old" not in left

    client.put_item(TableName=local.table_name, Item={"pk": {"S": "rl#soon"}, "expires_at": {"N": str(int(now))}})
    sweeper = TtlSweeper(client, local.table_name, every_s=0.2).start()
    try:
        deadline = time.monotonic() + 10
        while "rl#soon" in {i["pk"]["S"] for i in client.scan(TableName=local.table_name)["Items"]}:
            assert time.monotonic() < deadline, "the sweeper never deleted the expired item"
            time.sleep(0.1)
    finally:
        sweeper.stop()
