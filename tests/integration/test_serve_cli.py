"""`llm-gateway serve` (what `make dev` runs) as a person meets it, each run as a subprocess.

- the fake providers, the embedded DynamoDB and the handler containers run in processes of their
  own (in one process they took turns on one GIL), and stopping serve stops them all;
- a bad setting or a busy port ends it at once with one line, not a traceback;
- the banner says which providers serve how many models; each request is one readable line;
- Ctrl-C lets a request in flight finish before the server exits.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llm_gateway.selection.catalog import load_catalog
from sandbox.fakes import config as fake_config
from tests.gateway_env import without_gateway_settings

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "sandbox.cli"]
AUTH = {"Authorization": "Bearer local-dev-key"}
SLOW_MS = 2500


def _env(**extra: str) -> dict[str, str]:
    env = without_gateway_settings()
    return {**env, **extra}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve_once(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    done = subprocess.run([*CLI, "serve", *args], cwd=REPO, env=env or _env(), capture_output=True, text=True,
                          timeout=60, check=False)
    return done, time.monotonic() - began


@pytest.mark.parametrize(("variable", "value", "named"), [
    ("LLM_GATEWAY_DEADLINE_S", "abc", "LLM_GATEWAY_DEADLINE_S"),
    ("LLM_GATEWAY_CATALOG_OVERRIDES", '{"models": [{"provider": "groq", "model": "llama-3.1-8b-instnt", "free_tier": {"rpm": 5}}]}',
     "groq/llama-3.1-8b-instant"),
    ("GROQ_MODELS", "llama-3.1-8b-instnt", "GROQ_MODELS"),
])
def test_invalid_configuration_stops_serve_at_once_with_one_line(variable, value, named):
    done, elapsed = _serve_once("--port", str(_free_port()), env=_env(**{variable: value}))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "invalid configuration" in lines[0] and named in lines[0], done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""  # nothing started, nothing announced
    assert elapsed < 20


def test_a_port_in_use_is_one_line_naming_it_and_how_to_move():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done, _ = _serve_once("--port", str(port))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port} is already in use" in lines[0] and "PORT=" in lines[0], done.stderr
    assert "Traceback" not in done.stderr


class Served:
    """A running `llm-gateway serve` in its own session (so SIGINT reaches it alone, as a
    terminal's Ctrl-C would reach the foreground command), with its output collected."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [threading.Thread(target=self._pump, args=(process.stdout, self.stdout), daemon=True),
                         threading.Thread(target=self._pump, args=(process.stderr, self.stderr), daemon=True)]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _pump(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def wait_for_line(self, pattern: str, timeout_s: float = 60) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.stdout):
                if re.search(pattern, line):
                    return line
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r}; stdout={self.stdout[-20:]}, stderr={self.stderr[-20:]}")

    def stats(self) -> dict:
        return httpx.get(f"{self.url}/_sandbox/stats", timeout=5).json()


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    """Four containers over two worker processes, on fakes that take SLOW_MS to answer."""
    config = tmp_path_factory.mktemp("fakes") / "slow.json"  # JSON is YAML
    raw = fake_config.load_raw(None)  # the default fakes (every catalog model), only slower
    for provider in raw["providers"].values():
        provider["latency_ms"] = SLOW_MS
    config.write_text(json.dumps(raw))
    port = _free_port()
    process = subprocess.Popen([*CLI, "serve", "--port", str(port), "--containers", "4", "--workers", "2",
                                "--fakes-config", str(config)], cwd=REPO, env=_env(PYTHONUNBUFFERED="1"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    server = Served(process, f"http://127.0.0.1:{port}")
    try:
        server.wait_for_line(r"listening on")
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(30)


def _children(pid: int) -> dict[int, str]:
    """Pid -> command line of the processes whose parent is `pid` (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _proc_stat(int(entry.name))[1:2] == [str(pid)]:
            try:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
    return found


def _proc_stat(pid: int) -> list[str]:
    """State, parent pid, ... of a process; [] once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def test_fakes_dynamodb_and_containers_each_run_in_their_own_processes(served):
    children = list(_children(served.process.pid).values())
    assert sum("sandbox.container_host" in c for c in children) == 2, children
    assert sum("sandbox.stand_ins" in c and " fakes" in c for c in children) == 1, children
    assert sum("sandbox.stand_ins" in c and " dynamodb" in c for c in children) == 1, children
    assert sum("sandbox.stand_ins" in c and c.rstrip().endswith(" s3") for c in children) == 1, children
    stats = served.stats()
    assert (stats["hosts"], stats["containers"]) == (2, 4)
    assert set(stats["fakes"]) == {"openai", "groq", "gemini", "cohere", "mistral", "replicate"} and stats["dynamodb"]["endpoint_url"]
    assert stats["s3"]["bucket"] and stats["s3"]["endpoint_url"].startswith("http://127.0.0.1:")


def test_requests_are_answered_by_containers_in_the_worker_processes(served):
    answers = []

    def ask() -> None:
        answers.append(httpx.post(f"{served.url}/v1/chat/completions", headers=AUTH, timeout=30,
                                  json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]}))

    clients = [threading.Thread(target=ask) for _ in range(6)]
    for client in clients:
        client.start()
    for client in clients:
        client.join(30)
    assert [a.status_code for a in answers] == [200] * 6
    assert served.stats()["executing"]["peak"] == 4  # every container of both hosts busy at once


def test_the_banner_lists_each_provider_with_its_model_count(served):
    catalog = load_catalog()
    expected = {p: len([e for e in catalog.entries if e.provider == p]) for p in ("groq", "gemini", "cohere", "mistral", "openai")}
    line = served.wait_for_line(r"^Providers: ")
    for provider, count in expected.items():
        assert f"{provider} {count} models" in line, line
    served.wait_for_line(r"^Containers: 4 in 2 worker processes$")
    served.wait_for_line(r"FAKE providers")
    # what an operator needs to inspect local state with the AWS CLI: endpoints, table and bucket
    served.wait_for_line(r"^State: embedded DynamoDB .* at http://127\.0\.0\.1:\d+, table \S+\.$")
    served.wait_for_line(r"^Uploads: embedded S3 .* at http://127\.0\.0\.1:\d+, bucket \S+\.$")


def test_each_request_is_one_readable_line(served):
    answer = httpx.post(f"{served.url}/v1/chat/completions", headers=AUTH, timeout=30,
                        json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    assert answer.status_code == 200
    rid, provider, model = answer.headers["x-request-id"], answer.headers["x-gateway-provider"], answer.headers["x-gateway-model"]
    line = served.wait_for_line(re.escape(f"id={rid}"), timeout_s=10)
    assert re.match(rf"^\d\d:\d\d:\d\d POST /v1/chat/completions 200 {re.escape(provider)}/{re.escape(model)} "
                    rf"attempts=1 \d+ms id={re.escape(rid)}$", line), line
    missing = httpx.get(f"{served.url}/v1/nope", headers=AUTH, timeout=30)
    line = served.wait_for_line(re.escape(f"id={missing.headers['x-request-id']}"), timeout_s=10)
    assert " GET /v1/nope 404 - attempts=- " in line, line


def test_ctrl_c_lets_a_request_in_flight_finish(served):
    """Runs last in this module: it stops the server."""
    result: dict[str, object] = {}

    def slow_request() -> None:
        try:
            response = httpx.post(f"{served.url}/v1/chat/completions", headers=AUTH, timeout=30,
                                  json={"model": "auto", "messages": [{"role": "user", "content": "take your time"}]})
            result["status"] = response.status_code
        except httpx.HTTPError as exc:
            result["error"] = repr(exc)

    children = _children(served.process.pid)
    assert len(children) == 5, children  # fakes, DynamoDB, S3, two container hosts
    client = threading.Thread(target=slow_request)
    client.start()
    deadline = time.monotonic() + 10
    while served.stats()["in_flight"]["current"] < 1:
        assert time.monotonic() < deadline, "the request never reached the server"
        time.sleep(0.05)
    sent_at = time.monotonic()
    os.killpg(served.process.pid, signal.SIGINT)
    client.join(30)
    assert result == {"status": 200}
    assert time.monotonic() - sent_at > SLOW_MS / 1000 / 2  # it was really in flight, not yet answered
    assert served.process.wait(30) == 0
    assert any("letting 1 request in flight finish" in line for line in served.stderr), served.stderr
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{served.url}/v1/models", headers=AUTH, timeout=5)
    deadline = time.monotonic() + 15
    while any(_proc_stat(pid)[:1] not in ([], ["Z"]) for pid in children):
        assert time.monotonic() < deadline, "a child process outlived serve"
        time.sleep(0.1)
