"""Users end to end through the chat handler, as Lambda runs it (fake providers, in-memory state):
keys created by an admin and shown once, limits and budgets enforced with their own error codes,
policy changes and revocation without a redeploy, `/v1/usage` equal to the headers the user got,
and the plaintext key nowhere but in the one answer that created it."""

from __future__ import annotations

import io
import json
import logging
from types import ModuleType

import pytest

from llm_gateway.providers.registry import provider_specs
from sandbox.apigw import LocalContext, load_handler_module, make_event, response_headers

CLIENT = "client-" + "c" * 40
ADMIN = "admin-" + "a" * 40
_instances = iter(range(10**6))


def _load(fakes, monkeypatch, **env: str) -> ModuleType:
    specs = provider_specs()
    for name, fake in fakes.providers.items():
        if name in specs:
            monkeypatch.setenv(specs[name].key_env, "sandbox-fake-key")
            monkeypatch.setenv(specs[name].base_url_env, fake.base_url)
    for ambient in ("LLM_GATEWAY_LOCAL", "LLM_GATEWAY_API_KEYS", "LLM_GATEWAY_ADMIN_KEYS", "LLM_GATEWAY_STATE_TABLE",
                    "LLM_GATEWAY_DAILY_SPEND_CAP_USD", "LLM_GATEWAY_KEY_CACHE_S"):
        monkeypatch.delenv(ambient, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_handler_module("chat", instance=f"users_{next(_instances)}")


def call(module: ModuleType, method: str, path: str, key: str | None, body: dict | None = None):
    headers = {"authorization": f"Bearer {key}"} if key else {}
    if body is not None:
        headers["content-type"] = "application/json"
    raw = json.dumps(body).encode() if body is not None else b""
    result = module.lambda_handler(make_event(method, path, headers, raw), LocalContext(function_name="chat"))
    text = result["body"]
    headers = {k.lower(): v for k, v in response_headers(result).items()}
    return int(result["statusCode"]), (json.loads(text) if text and text.startswith("{") else text), headers


def ask(module: ModuleType, key: str, model: str = "auto"):
    return call(module, "POST", "/v1/chat/completions", key,
                {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16})


@pytest.fixture
def chat(fakes, monkeypatch) -> ModuleType:
    return _load(fakes, monkeypatch, LLM_GATEWAY_API_KEYS=CLIENT, LLM_GATEWAY_ADMIN_KEYS=ADMIN,
                 LLM_GATEWAY_KEY_CACHE_S="0")


def create(module: ModuleType, **body) -> dict:
    status, answer, _ = call(module, "POST", "/v1/admin/keys", ADMIN, body)
    assert status == 201, answer
    return answer


def test_admin_creates_a_key_shown_once_and_listed_without_it(chat) -> None:
    made = create(chat, user="alice", name="laptop", rpm=3)
    assert made["key"].startswith("sk-gw-") and len(made["key"]) >= 46 and made["user"] == "alice"
    status, listed, _ = call(chat, "GET", "/v1/admin/keys", ADMIN)
    assert status == 200 and [k["id"] for k in listed["data"]] == [made["id"]]
    text = json.dumps(listed)
    assert made["key"] not in text and "sk-gw-" not in text
    assert listed["data"][0]["policy"]["rpm"] == 3
    # the key works as a client key; a client key may not administer
    assert ask(chat, made["key"])[0] == 200
    assert call(chat, "GET", "/v1/admin/keys", made["key"])[1]["error"]["code"] == "admin_key_required"
    assert call(chat, "GET", "/v1/admin/keys", CLIENT)[0] == 403
    assert call(chat, "GET", "/v1/admin/keys", None)[0] == 401


def test_admin_api_refuses_bad_input_with_400s_never_500s(chat) -> None:
    for body in ({}, {"user": ""}, {"user": "a b"}, {"user": "x", "rpm": -1}, {"user": "x", "rpm": "many"},
                 {"user": "x", "bogus": 1}, {"user": "x", "models": ["no spaces allowed"]}, {"user": "static"},
                 {"user": "x", "daily_budget_usd": 1e999}, {"user": "x", "models": ["nosuch/*"]},
                 {"user": "x", "models": ["groq/*", "groq/no-such-model"]}):
        status, answer, _ = call(chat, "POST", "/v1/admin/keys", ADMIN, body)
        assert status == 400, (body, answer)
        assert set(answer["error"]) == {"message", "type", "param", "code"}, answer
    status, answer, _ = call(chat, "POST", "/v1/admin/keys", ADMIN, {"user": "x", "models": ["groq/*", "nosuch/*"]})
    assert (answer["error"]["code"], answer["error"]["param"]) == ("invalid_value", "models[1]"), answer
    assert "'nosuch/*'" in answer["error"]["message"]
    made = create(chat, user="x", models=["groq/*"])
    status, answer, _ = call(chat, "PATCH", f"/v1/admin/keys/{made['id']}", ADMIN, {"models": ["nosuch/*"]})
    assert (status, answer["error"]["param"]) == (400, "models[0]"), answer
    assert call(chat, "PATCH", "/v1/admin/keys/key_0000000000000000", ADMIN, {"rpm": 1})[0] == 404
    assert call(chat, "DELETE", "/v1/admin/keys/nonsense", ADMIN)[0] == 404


def test_rpm_3_refuses_the_fourth_while_another_user_is_served(chat) -> None:
    alice = create(chat, user="alice", rpm=3)["key"]
    bob = create(chat, user="bob", rpm=3)["key"]
    assert [ask(chat, alice)[0] for _ in range(3)] == [200, 200, 200]
    status, body, headers = ask(chat, alice)
    assert status == 429 and body["error"]["code"] == "user_rate_limited"
    assert int(headers["retry-after"]) >= 1
    assert ask(chat, bob)[0] == 200


def test_allow_list_and_free_only_are_403_model_not_allowed(chat, fakes) -> None:
    key = create(chat, user="carol", free_only=True)["key"]
    openai_model = fakes.providers["openai"].models[0]
    status, body, _ = ask(chat, key, f"openai/{openai_model}")
    assert status == 403 and body["error"]["code"] == "model_not_allowed"
    status, _, headers = ask(chat, key)
    assert status == 200 and headers["x-gateway-cost-usd"] == "0.00000000"


def test_budget_exhausted_on_paid_only_model_is_budget_exceeded(chat, fakes) -> None:
    key = create(chat, user="dave", daily_budget_usd=0, models=["openai/*"])["key"]
    status, body, headers = ask(chat, key)
    assert status == 429 and body["error"]["code"] == "budget_exceeded"
    # a budget of 0 is below what any paid request may cost: no reset time, which would not help
    assert "resets_at" not in body["error"] and "retry-after" not in headers
    assert "no budget for paid models" in body["error"]["message"]


def test_a_per_end_user_key_keeps_one_budget_whatever_end_users_it_names(chat) -> None:
    """`per_end_user` splits a key's rate windows among its end users; its budget stays the user's.
    The budgets were kept per end user too, so naming a new `user` in each request gave a fresh
    budget every time: a $0.00003 daily budget let 8 paid requests spend more than twice it."""
    budget = 0.00003
    key = create(chat, user="hank", per_end_user=True, daily_budget_usd=budget)["key"]
    told, refused = [], []
    for n in range(8):
        status, body, headers = call(chat, "POST", "/v1/chat/completions", key, {
            "model": "openai/gpt-4o-mini", "user": f"end-user-{n}", "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}]})
        if status == 200:
            told.append(float(headers["x-gateway-cost-usd"]))
        else:
            assert status == 429 and body["error"]["code"] == "budget_exceeded", body
            refused.append(n)
    assert refused and 0 < sum(told) <= budget
    status, usage, _ = call(chat, "GET", "/v1/usage", key)
    spent = {(row["window"], row["unit"]): row for row in usage["limits"]}[("day", "usd")]
    assert spent["used"] >= sum(told) - 1e-9  # the budget row is the user's, not that of requests naming no one


def test_policy_change_and_revocation_apply_without_a_redeploy(chat) -> None:
    made = create(chat, user="erin", rpm=1)
    key = made["key"]
    assert ask(chat, key)[0] == 200
    assert ask(chat, key)[0] == 429
    status, changed, _ = call(chat, "PATCH", f"/v1/admin/keys/{made['id']}", ADMIN, {"rpm": 100})
    assert status == 200 and changed["policy"]["rpm"] == 100
    assert ask(chat, key)[0] == 200
    status, revoked, _ = call(chat, "DELETE", f"/v1/admin/keys/{made['id']}", ADMIN)
    assert status == 200 and revoked["revoked"] is True
    status, body, _ = ask(chat, key)
    assert status == 401 and body["error"]["code"] == "invalid_api_key"


def test_usage_totals_equal_the_cost_headers_the_user_received(chat, fakes) -> None:
    key = create(chat, user="frank")["key"]
    openai_model = fakes.providers["openai"].models[0]
    costs = []
    for model in ("auto", f"openai/{openai_model}", f"openai/{openai_model}", "auto"):
        status, _, headers = ask(chat, key, model)
        assert status == 200
        costs.append(headers["x-gateway-cost-usd"])
    status, usage, _ = call(chat, "GET", "/v1/usage", key)
    assert status == 200 and usage["user"] == "frank"
    from decimal import Decimal

    assert Decimal(str(usage["today"]["cost_usd"])) == sum(Decimal(c) for c in costs)
    assert usage["today"]["requests"] == 4 and usage["month"]["requests"] == 4
    assert usage["today"]["paid_requests"] == 2 and usage["today"]["free_share"] == 0.5
    assert f"openai/{openai_model}" in usage["today"]["by_model"]
    # another user's usage is for admins only; admins may read anyone's, and everyone's
    assert call(chat, "GET", "/v1/usage?user=alice", key)[0] == 403
    status, theirs, _ = call(chat, "GET", "/v1/usage?user=frank&days=3", ADMIN)
    assert status == 200 and theirs["today"]["requests"] == 4 and theirs["days"][-1]["requests"] == 4
    status, everyone, _ = call(chat, "GET", "/v1/usage?user=*", ADMIN)
    assert status == 200 and everyone["today"]["requests"] >= 4
    assert call(chat, "GET", "/v1/usage?days=0", key)[0] == 400


def test_usage_shows_limits_and_what_is_left(chat) -> None:
    key = create(chat, user="gina", rpm=5, daily_budget_usd=2.5)["key"]
    ask(chat, key)
    status, usage, _ = call(chat, "GET", "/v1/usage", key)
    assert status == 200
    limits = {(row["window"], row["unit"]): row for row in usage["limits"]}
    assert limits[("minute", "requests")]["remaining"] == 4
    assert limits[("day", "usd")]["limit"] == 2.5 and limits[("day", "usd")]["resets_at"].endswith("T00:00:00Z")


def test_the_plaintext_key_is_in_no_log_line_and_no_error(chat, caplog, capsys) -> None:
    caplog.set_level(logging.DEBUG)
    stream = io.StringIO()
    for handler in chat.logger.handlers:
        handler.stream = stream  # type: ignore[attr-defined]
    made = create(chat, user="hank", rpm=1)
    key = made["key"]
    ask(chat, key)
    ask(chat, key)  # refused: an error body
    status, body, _ = call(chat, "POST", "/v1/chat/completions", key, {"model": "auto", "messages": "nope " + key})
    assert status == 400 and key not in json.dumps(body)
    chat.logger.info("a line that quotes %s", key)
    logged = stream.getvalue() + caplog.text + capsys.readouterr().out
    assert key not in logged and key[6:] not in logged
    assert "hank" in logged  # the summary line names the user
    made_store = chat.gateway.core.tenancy.keys
    stored = json.dumps([r.item() for r in made_store.list()])
    assert key not in stored


def test_status_takes_issued_admin_keys_and_refuses_issued_client_keys_with_403(chat) -> None:
    """`/v1/status` is for operators: an issued key whose policy says admin reads it, as it
    administers keys; an issued client key is refused 403 (it was 401 for both: the status route
    did not consult the key directory)."""
    operator = create(chat, user="ops", admin=True)["key"]
    user = create(chat, user="bob")["key"]
    status, body, _ = call(chat, "GET", "/v1/status", operator)
    assert status == 200 and body["providers"]
    status, body, _ = call(chat, "GET", "/v1/status", user)
    assert status == 403 and body["error"]["code"] == "admin_key_required"


def test_usage_for_a_user_id_no_key_can_have_is_a_400_naming_the_parameter(chat) -> None:
    """An admin's `?user=` is read as part of a state key: one no user id can be (3,000
    characters: DynamoDB refuses key values over 2,048 bytes, so the read failed on AWS, a 500) is
    refused as key creation refuses it, before any read."""
    for wanted in ("u" * 3000, "bad user", "-dash-first", "%0A"):
        status, body, _ = call(chat, "GET", f"/v1/usage?user={wanted}", ADMIN)
        assert status == 400, (wanted, status, body)
        assert body["error"]["param"] == "user" and body["error"]["code"] == "invalid_value"
    assert call(chat, "GET", "/v1/usage?user=frank.o%2Bx%40example.com", ADMIN)[0] == 200  # any user id keys may have
    assert call(chat, "GET", "/v1/usage?user=*", ADMIN)[0] == 200


def test_a_user_id_with_a_trailing_newline_is_refused(chat) -> None:
    """`$` in the user id pattern matched before a trailing newline, so "alice\\n" was a valid
    user id: a name that is not the one shown, written into log lines and state keys."""
    status, body, _ = call(chat, "POST", "/v1/admin/keys", ADMIN, {"user": "alice\n"})
    assert status == 400 and body["error"]["param"] == "user", body
