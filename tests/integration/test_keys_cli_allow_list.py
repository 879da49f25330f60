"""`llm-gateway keys --table` (straight to the state table, moto here) checks `--models` rules
against the catalog with this shell's LLM_GATEWAY_CATALOG_OVERRIDES, as the admin API checks them
against the gateway's: a rule that matches no model exits 2 with one line, and nothing is stored."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from llm_gateway.state.dynamodb import create_table
from llm_gateway.tenancy.keys import DynamoKeyStore
from sandbox import users_cli

TABLE = "state"


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch):
    # fake AWS credentials and region: tests/conftest.py's session fixture sets them for every test
    monkeypatch.delenv("LLM_GATEWAY_CATALOG_OVERRIDES", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, TABLE)
        yield DynamoKeyStore(client, TABLE)


def test_a_rule_that_matches_no_model_exits_2_and_stores_nothing(table, capsys) -> None:
    assert users_cli.keys_main(["create", "--user", "alice", "--models", "groq/*,nosuch/*", "--table", TABLE]) == 2
    err = capsys.readouterr().err
    assert "HTTP 400" in err and "'nosuch/*'" in err and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert table.list() == []
    assert users_cli.keys_main(["create", "--user", "alice", "--models", "groq/*,whisper-1", "--table", TABLE]) == 0
    assert [r.policy.models for r in table.list()] == [("groq/*", "whisper-1")]


def test_a_model_the_overrides_add_may_be_named(table, monkeypatch, capsys) -> None:
    added = {"provider": "groq", "model": "my-finetune", "context_window": 8192, "max_output": 1024,
             "free_tier": {"rpm": 1}}
    assert users_cli.keys_main(["create", "--user", "alice", "--models", "groq/my-finetune", "--table", TABLE]) == 2
    monkeypatch.setenv("LLM_GATEWAY_CATALOG_OVERRIDES", json.dumps({"models": [added]}))
    assert users_cli.keys_main(["create", "--user", "alice", "--models", "groq/my-finetune", "--table", TABLE]) == 0


def test_overrides_that_do_not_load_are_one_line_not_a_traceback(table, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LLM_GATEWAY_CATALOG_OVERRIDES", '{"models": [}')
    assert users_cli.keys_main(["create", "--user", "alice", "--models", "groq/*", "--table", TABLE]) == 2
    err = capsys.readouterr().err
    assert "LLM_GATEWAY_CATALOG_OVERRIDES" in err and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert users_cli.keys_main(["create", "--user", "alice", "--rpm", "5", "--table", TABLE]) == 0  # no rule to check
