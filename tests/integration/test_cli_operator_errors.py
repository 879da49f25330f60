"""The operator commands given what an operator's shell often has wrong: no AWS region or
credentials, an unreachable endpoint, an event file that is missing or not an event, a flag file
path that is a folder. Each is a short message and a non-zero exit status, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway_env import without_gateway_settings

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "sandbox.cli"]
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing listens


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False)


def _assert_clean_failure(done: subprocess.CompletedProcess[str], *named: str) -> None:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    assert lines and len(lines[-1]) < 400, done.stderr
    for text in named:
        assert text in done.stderr, done.stderr


AWS_COMMANDS = {
    "fold-windows": ["fold-windows", "--table", "state", "--endpoint-url", NOWHERE],
    "keys list --table": ["keys", "list", "--table", "state", "--endpoint-url", NOWHERE],
    "report --table": ["report", "--date", "2026-01-01", "--table", "state", "--endpoint-url", NOWHERE],
    "plan --state-table": ["plan", "sandbox/requests/hello.json", "--state-table", "state", "--endpoint-url", NOWHERE],
    "rollout --stack": ["rollout", "status", "--stack", "llm-gateway"],
}


@pytest.mark.parametrize("command", sorted(AWS_COMMANDS))
@pytest.mark.parametrize("shell", ["no region", "no credentials", "nothing listening"])
def test_a_command_on_aws_says_what_is_missing_in_one_line(command: str, shell: str) -> None:
    """Each was a botocore traceback (NoRegionError, NoCredentialsError, EndpointConnectionError)."""
    env = without_gateway_settings(drop_aws=True)
    env.update({"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard"})
    if shell != "no region":
        env["AWS_DEFAULT_REGION"] = "us-east-1"
    if shell == "nothing listening":
        env.update({"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "not-a-real-secret-key-0123456789",
                    "AWS_ENDPOINT_URL": NOWHERE})
    done = _run(AWS_COMMANDS[command], env)
    _assert_clean_failure(done, f"llm-gateway {AWS_COMMANDS[command][0]}")
    assert "not-a-real-secret-key-0123456789" not in done.stderr + done.stdout


def test_invoke_names_the_functions_when_given_one_that_does_not_exist() -> None:
    done = _run(["invoke", "nosuch", "events/chat.json"], without_gateway_settings(drop_aws=True))
    _assert_clean_failure(done, "nosuch", "chat", "transcribe")


@pytest.mark.parametrize("content", [None, "{bad", "[1]", '{"model": "auto", "messages": []}'])
def test_invoke_says_what_is_wrong_with_the_event_file(content: str | None, tmp_path: Path) -> None:
    """A missing file, a file that is not JSON, not an object, or a request body instead of an API
    Gateway event: each was a traceback (FileNotFoundError, JSONDecodeError, TypeError, KeyError)."""
    event = tmp_path / "event.json"
    if content is not None:
        event.write_text(content, encoding="utf-8")
    done = _run(["invoke", "chat", str(event)], without_gateway_settings(drop_aws=True))
    _assert_clean_failure(done, "llm-gateway invoke", str(event))


def test_rollout_set_on_a_flag_file_that_is_a_folder_says_so(tmp_path: Path) -> None:
    done = _run(["rollout", "set", "5", "--file", str(tmp_path)], without_gateway_settings(drop_aws=True))
    _assert_clean_failure(done, "llm-gateway rollout", str(tmp_path))


@pytest.mark.parametrize("command", sorted(AWS_COMMANDS))
def test_a_command_given_an_endpoint_that_is_no_url_says_so_in_one_line(command: str) -> None:
    """`--endpoint-url notaurl` was botocore's ValueError("Invalid endpoint: notaurl") as a traceback."""
    env = without_gateway_settings(drop_aws=True)
    env.update({"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
                "AWS_SECRET_ACCESS_KEY": "not-a-real-secret-key-0123456789", "AWS_ENDPOINT_URL": "notaurl"})
    args = ["notaurl" if arg == NOWHERE else arg for arg in AWS_COMMANDS[command]]
    done = _run(args, env)
    _assert_clean_failure(done, f"llm-gateway {args[0]}", "notaurl")


UNWRITABLE = Path("/proc/self")  # a folder no one may create files in, root included


@pytest.mark.parametrize("out", ["a file", "an unwritable folder"])
def test_report_with_an_out_it_cannot_write_says_so_before_reading_the_table(out: str, tmp_path: Path) -> None:
    """Both were tracebacks (FileExistsError, PermissionError), and only after the table was read."""
    if out == "a file":
        target = tmp_path / "taken"
        target.write_text("", encoding="utf-8")
    else:
        if not UNWRITABLE.is_dir():
            pytest.skip("no /proc here")
        target = UNWRITABLE
    done = _run(["report", "--date", "2026-01-01", "--table", "state", "--endpoint-url", NOWHERE, "--out", str(target)],
                without_gateway_settings(drop_aws=True))
    _assert_clean_failure(done, "llm-gateway report: --out", str(target))


def test_report_with_an_empty_date_is_refused_not_read_as_yesterday() -> None:
    done = _run(["report", "--date", "", "--table", "state", "--endpoint-url", NOWHERE],
                without_gateway_settings(drop_aws=True))
    _assert_clean_failure(done, "llm-gateway report: --date")


BAD_FAKES_CONFIGS = {
    "missing file": (None, "nosuch.yaml"),
    "not YAML": ("providers: {groq: [1, 2\n", "YAML"),
    "unknown provider": ("providers: {nosuch: {}}\n", "nosuch"),
    "unknown fault": ("providers: {groq: {faults: [{fault: bogus}]}}\n", "bogus"),
    "bad limit": ("providers: {groq: {limits: {default: {rpm: nan}}}}\n", "rpm"),
    "latency not a number": ("providers: {groq: {latency_ms: slow}}\n", "latency_ms"),
}


@pytest.mark.parametrize("case", sorted(BAD_FAKES_CONFIGS))
@pytest.mark.parametrize("command", ["fakes", "serve"])
def test_a_fakes_config_that_cannot_work_is_one_line_before_anything_starts(
        command: str, case: str, tmp_path: Path) -> None:
    """Each was a traceback (FileNotFoundError, yaml's ParserError, ValueError): from `fakes`
    itself, and from `serve` or from the fakes process it had started."""
    content, named = BAD_FAKES_CONFIGS[case]
    config = tmp_path / "nosuch.yaml"
    if content is not None:
        config = tmp_path / "fakes.yaml"
        config.write_text(content, encoding="utf-8")
    args = ["fakes", "--config", str(config)] if command == "fakes" else \
        ["serve", "--port", "0", "--containers", "1", "--workers", "1", "--fakes-config", str(config)]
    done = _run(args, without_gateway_settings(drop_aws=True))
    _assert_clean_failure(done, f"llm-gateway {command}", str(config), named)
    assert "Traceback" not in done.stdout, done.stdout


def test_fakes_with_a_provider_the_config_does_not_have_says_so() -> None:
    done = _run(["fakes", "--providers", "nosuch"], without_gateway_settings(drop_aws=True))
    _assert_clean_failure(done, "llm-gateway fakes", "nosuch")


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_serve_on_a_port_that_does_not_exist_says_so(port: str) -> None:
    """Both were an OverflowError traceback from bind()."""
    done = _run(["serve", "--port", port, "--containers", "1", "--workers", "1"], without_gateway_settings(drop_aws=True))
    _assert_clean_failure(done, "llm-gateway serve", "--port")


def test_plan_of_a_file_that_is_not_text_says_so(tmp_path: Path) -> None:
    """A UnicodeDecodeError traceback (invoke already said it in one line)."""
    body = tmp_path / "body.json"
    body.write_bytes(b"\xff\xfe{}")
    done = _run(["plan", str(body)], without_gateway_settings(drop_aws=True))
    _assert_clean_failure(done, "llm-gateway plan", str(body))


@pytest.mark.parametrize("command", [["keys", "list"], ["usage"], ["status"], ["loadgen", "--requests", "1"],
                                     ["rollout", "status"]])
def test_a_url_that_is_no_url_is_one_line(command: list[str]) -> None:
    """httpx.InvalidURL is no httpx.HTTPError, so `--url http://[::1` got past the commands'
    "could not reach" message as a traceback."""
    done = _run([*command, "--url", "http://[::1"], without_gateway_settings(drop_aws=True))
    _assert_clean_failure(done, f"llm-gateway {command[0]}", "--url")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_keys_create_with_a_budget_that_is_no_number_is_refused(value: str) -> None:
    """Over HTTP it was a traceback (JSON cannot carry NaN or Infinity); on the table, a 400."""
    done = _run(["keys", "create", "--user", "dave", "--daily-budget-usd", value, "--url", NOWHERE],
                without_gateway_settings(drop_aws=True))
    _assert_clean_failure(done, "llm-gateway keys", "--daily-budget-usd")
