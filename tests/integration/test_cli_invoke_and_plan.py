"""The operator commands as a person runs them: `llm-gateway invoke` and `llm-gateway plan`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway_env import running_make_dev, without_gateway_settings

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "sandbox.cli"]


def _run(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = without_gateway_settings()
    return subprocess.run([*CLI, *args], cwd=REPO, env={**env, **extra_env}, capture_output=True, text=True,
                          timeout=120, check=False)


def _bare_shell_env() -> dict[str, str]:
    """What a new user's shell has: no provider keys, no gateway settings, no AWS region or credentials."""
    return without_gateway_settings(drop_aws=True)


# Every file in events/ and what `invoke` must answer for it (a new event file needs a line here).
EVENT_RESULTS = {
    "chat.json": ("chat", 200), "chat_stream.json": ("chat", 200), "chat_tools.json": ("chat", 200),
    "chat_bad.json": ("chat", 400), "models.json": ("chat", 200), "status.json": ("chat", 200),
    "not_found.json": ("chat", 404), "health_schedule.json": ("health", None),
    # 501 from the stand-in façade until the transcription router lands (llm_gateway/speech.py)
    "transcribe.json": ("transcribe", 200), "transcribe_translation.json": ("transcribe", 200),
    "transcribe_bad.json": ("transcribe", 400), "transcribe_upload.json": ("transcribe", 200),
    "transcribe_job_run.json": ("transcribe", "skipped"),  # a job runner event for a job that does not exist
    "cost_report_schedule.json": ("cost_report", "report"),  # the day before the event's time, of an empty ledger
    "rollback_alarm.json": ("rollback", "rolled back"),  # the composite alarm's notification: the local flag at 0 %
}


def test_every_event_file_has_an_expected_result():
    assert sorted(p.name for p in (REPO / "events").glob("*.json")) == sorted(EVENT_RESULTS)


@pytest.mark.parametrize("event", sorted(EVENT_RESULTS))
def test_every_event_file_runs_with_invoke_in_a_bare_shell(event):
    """`invoke health` used to crash with NoRegionError when the shell had no AWS region."""
    function, status = EVENT_RESULTS[event]
    done = subprocess.run([*CLI, "invoke", function, f"events/{event}"], cwd=REPO, env=_bare_shell_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    result = json.loads(done.stdout)
    if status is None:
        assert result["checked"] == 5 and all(p["available"] for p in result["providers"].values())
    elif status == "rolled back":
        assert result["rolled_back"] and result["percent"] == 0 and result["previous"] == 100
        assert result["alarm"] == "llm-gateway-rollback"
    elif status == "report":
        assert result["date"] == "2026-11-26" and "cost report for 2026-11-26" in result["summary"]
    elif isinstance(status, str):
        assert result["status"] == status
    else:
        assert result["statusCode"] == status


@pytest.mark.parametrize(("event", "status"), [("chat.json", 200), ("chat_stream.json", 200), ("chat_bad.json", 400)])
def test_invoke_runs_the_chat_handler_on_an_event_file(event, status):
    done = _run("invoke", "chat", f"events/{event}")
    result = json.loads(done.stdout)  # stdout holds only the handler's result
    assert result["statusCode"] == status, done.stderr[-2000:]
    assert result["multiValueHeaders"]["x-request-id"]
    if status == 200:
        assert result["multiValueHeaders"]["x-gateway-provider"]
    else:
        assert json.loads(result["body"])["error"]["param"] == "messages"
    assert "FAKE providers" in done.stderr  # never mistaken for real ones


def test_invoke_with_invalid_configuration_says_so_in_one_line():
    env = without_gateway_settings()
    env["LLM_GATEWAY_CATALOG_OVERRIDES"] = '{"disable": ["groq/llama-3.1-8b-instnt"]}'
    done = subprocess.run([*CLI, "invoke", "chat", "events/chat.json"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "llm-gateway invoke: invalid configuration: LLM_GATEWAY_CATALOG_OVERRIDES: disable entry "
        "'groq/llama-3.1-8b-instnt' matches no catalog model (did you mean groq/llama-3.1-8b-instant?)"
    ]


def test_plan_json_explains_every_candidate(tmp_path):
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"model": "auto", "messages": [{"role": "user", "content": "hi"}],
                                   "tools": [{"type": "function", "function": {"name": "f"}}]}))
    done = _run("plan", str(request), "--json")
    plan = json.loads(done.stdout)
    assert set(plan) >= {"category", "prompt_tokens", "plan", "dropped"}
    assert plan["plan"] and all({"provider", "model", "free", "context_window", "reason"} <= set(s) for s in plan["plan"])
    assert all({"provider", "model", "reason"} <= set(d) for d in plan["dropped"])
    frees = [step["free"] for step in plan["plan"]]
    assert frees == sorted(frees, reverse=True)  # free ones first


def test_invoke_runs_the_scheduled_health_check():
    done = _run("invoke", "health", "events/health_schedule.json")
    result = json.loads(done.stdout)
    assert result["checked"] == 5, done.stderr[-2000:]
    assert all(p["available"] for p in result["providers"].values())


def test_serve_is_what_make_dev_runs_and_it_answers(tmp_path):
    """`llm-gateway serve` as a subprocess, on its own fakes and embedded DynamoDB, with no keys."""
    import httpx

    with running_make_dev(tmp_path / "serve.log") as base:
        url = f"{base}/v1"
        response = httpx.get(f"{url}/models", headers={"Authorization": "Bearer local-dev-key"}, timeout=5)
        assert response.status_code == 200
        answer = httpx.post(f"{url}/chat/completions", headers={"Authorization": "Bearer local-dev-key"},
                            json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]}, timeout=30)
        assert answer.status_code == 200 and answer.headers["x-gateway-provider"]
    announced = (tmp_path / "serve.log").read_text()
    assert "FAKE providers" in announced and "embedded DynamoDB" in announced and "local-dev-key" in announced


def _plan_json(*args: str, **env: str) -> tuple[dict, str]:
    done = _run("plan", *args, "--json", **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def test_plan_takes_an_api_gateway_event_file_as_well_as_a_request_body(tmp_path):
    event = json.loads((REPO / "events/chat_tools.json").read_text())
    body = tmp_path / "body.json"
    body.write_text(event["body"])
    from_event, _ = _plan_json("events/chat_tools.json")
    from_body, _ = _plan_json(str(body))
    assert from_event == from_body and from_event["plan"]


def test_plan_refuses_an_event_that_is_not_a_chat_request():
    done = _run("plan", "events/models.json")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "GET /v1/models" in done.stderr


@pytest.mark.parametrize("example", sorted(p.name for p in (REPO / "sandbox/requests").glob("*.json")))
def test_plan_runs_on_every_shipped_example_request(example):
    plan, _ = _plan_json(f"sandbox/requests/{example}")
    assert plan["plan"], plan


def test_the_shipped_examples_cover_the_request_kinds():
    names = {p.stem for p in (REPO / "sandbox/requests").glob("*.json")}
    assert {"hello", "tools", "vision", "json_schema", "reasoning", "pinned"} <= names


def test_plan_defaults_to_the_fake_providers_make_dev_would_run_when_no_key_is_set():
    plan, said = _plan_json("sandbox/requests/hello.json")
    providers = {step["provider"] for step in plan["plan"]} | {d["provider"] for d in plan["dropped"]}
    assert providers == {"openai", "groq", "gemini", "cohere", "mistral"}
    assert "no provider keys" in said and "fake providers" in said and "make dev" in said


def test_plan_defaults_to_the_providers_configured_in_the_environment():
    plan, said = _plan_json("sandbox/requests/hello.json", GROQ_API_KEY="gk-test", GROQ_MODELS="llama-3.1-8b-instant")
    assert [(s["provider"], s["model"]) for s in plan["plan"]] == [("groq", "llama-3.1-8b-instant")]
    assert plan["dropped"] == []
    assert "configured in the environment" in said and "groq 1 model" in said


def test_plan_for_providers_given_on_the_command_line():
    plan, said = _plan_json("sandbox/requests/hello.json", "--configured", "gemini,cohere")
    assert {s["provider"] for s in plan["plan"]} == {"gemini", "cohere"}
    assert "--configured" in said


def test_plan_text_says_its_assumption_and_has_no_plural_slips():
    done = _run("plan", "sandbox/requests/hello.json")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("providers: ")
    assert "mistral" in done.stdout  # mistral's free tier is 1 request per second: "1 request left"
    assert not re.search(r"\b1 (requests|tokens|models|candidates)\b", done.stdout), done.stdout
