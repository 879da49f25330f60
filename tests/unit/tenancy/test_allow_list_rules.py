"""A key's `models` allow-list names models the catalog has: a rule that matches none
(`nosuch/*`, a typo in a model id) was stored silently, and every request with the key was then
a 403 `model_not_allowed`. The admin API refuses it with a 400 naming the rule; the CLI exits 2."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest

from llm_gateway.api.errors import InvalidRequest
from llm_gateway.selection.catalog import Catalog, default_catalog, load_catalog
from llm_gateway.tenancy.admin import KeyAdmin
from llm_gateway.tenancy.keys import MemoryKeyStore
from llm_gateway.tenancy.policy import Policy


def _admin(catalog: Catalog | None = None) -> KeyAdmin:
    return KeyAdmin(MemoryKeyStore(), catalog=(lambda: catalog) if catalog is not None else default_catalog)


@pytest.mark.parametrize(("rules", "param", "named"), [
    (["nosuch/*"], "models[0]", "'nosuch/*'"),
    (["groq/*", "nosuch-model"], "models[1]", "'nosuch-model'"),
    (["groq/no-such-model"], "models[0]", "'groq/no-such-model'"),
    (["gemini/whisper-1"], "models[0]", "'gemini/whisper-1'"),  # a model id, but not of that provider
    (["llama-3.1-8b-instnt", "groq/*", "openai/gpt-4.1-nan"], "models[0]", "'llama-3.1-8b-instnt', 'openai/gpt-4.1-nan'"),
])
def test_a_rule_that_matches_no_catalog_model_is_a_400_naming_it(rules: list[str], param: str, named: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(f"matches no model in the catalog: {named}.")) as refused:
        _admin().create({"user": "alice", "models": rules})
    assert (refused.value.status, refused.value.code, refused.value.param) == (400, "invalid_value", param)


@pytest.mark.parametrize("rules", [
    ["groq/*", "gemini/*"], ["openai/whisper-1"], ["whisper-1"], ["whisper-large-v3-turbo"],  # transcription too
    ["gpt-4.1-nano"], ["groq/llama-3.1-8b-instant"], ["replicate/openai/whisper"], [],
])
def test_rules_that_match_a_chat_or_transcription_model_are_accepted(rules: list[str]) -> None:
    made = _admin().create({"user": "alice", "models": rules})
    assert made["policy"]["models"] == rules


def test_every_rule_matches_as_the_policy_matches_requests() -> None:
    """The check reads the catalog as `Policy.allows` does: each accepted rule lets some model through."""
    catalog = default_catalog()
    for entry in catalog.entries:
        for rule in (f"{entry.provider}/{entry.model}", entry.model, f"{entry.provider}/*"):
            made = _admin().create({"user": "alice", "models": [rule]})
            assert Policy(models=tuple(made["policy"]["models"])).allows(entry)


def test_the_gateways_own_catalog_is_the_one_checked() -> None:
    """A model an operator added with LLM_GATEWAY_CATALOG_OVERRIDES may be named; it is the
    catalog the gateway routes on (compose passes it: `test_config_validation.py`), not the built-in one."""
    added = {"provider": "groq", "model": "my-finetune", "context_window": 8192, "max_output": 1024,
             "free_tier": {"rpm": 1}}
    catalog = load_catalog(json.dumps({"models": [added]}))
    assert _admin(catalog).create({"user": "alice", "models": ["groq/my-finetune"]})["policy"]["models"]
    with pytest.raises(InvalidRequest, match="matches no model"):
        _admin().create({"user": "alice", "models": ["groq/my-finetune"]})


def test_an_update_checks_the_rules_it_sets_and_only_those() -> None:
    admin = _admin()
    made = admin.create({"user": "alice", "models": ["groq/*"]})
    with pytest.raises(InvalidRequest, match="'nosuch/\\*'"):
        admin.update(made["id"], {"models": ["nosuch/*"]})
    assert admin.get(made["id"]).policy.models == ("groq/*",)  # left as it was
    # a key whose stored rule no longer matches (a model since removed) keeps its other settings changeable
    stale = admin.create({"user": "bob", "models": ["groq/*"]})
    admin.store.save(replace(admin.get(stale["id"]), policy=Policy(models=("gone/*",))))
    assert admin.update(stale["id"], {"rpm": 5})["policy"]["models"] == ["gone/*"]
    assert admin.update(stale["id"], {"models": None})["policy"]["models"] == []


def test_the_cli_exits_2_on_a_refused_rule(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from sandbox import users_cli

    admin = _admin()

    def over_http(args: Any) -> tuple[int, dict[str, Any]]:  # the admin API's answer, without a socket
        try:
            return 201, admin.create(users_cli._body(args))
        except InvalidRequest as error:
            return error.status, error.body()

    monkeypatch.setattr(users_cli, "_over_http", over_http)
    assert users_cli.keys_main(["create", "--user", "alice", "--models", "groq/*,nosuch/*"]) == 2
    err = capsys.readouterr().err
    assert "HTTP 400" in err and "'nosuch/*'" in err and "Traceback" not in err, err
    assert users_cli.keys_main(["create", "--user", "alice", "--models", "groq/*"]) == 0
