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
