"""Cold start: the chat Lambda's handler module imported fresh and serving its first request,
against a fresh interpreter that imports only the bare dependencies and makes the same call.

Both run as new interpreters, alternating (gateway, baseline, gateway, …) so load from other
processes on the machine falls on both alike, and the figures are medians. Each child times
itself from its first statement to the answer of its first provider call, which arrives from
an `httpx.MockTransport` holding the OpenAI fixture response (synthesized) in both, so no network enters
either figure:

- baseline: `import boto3, httpx, pydantic, aws_lambda_powertools, tenacity`, then one
  `httpx.Client(...).post(...)` of a chat body and `response.json()`;
- gateway: what Lambda does at a cold start: import `functions/chat/app.py` (the module builds
  its gateway), then call `lambda_handler` with `events/chat.json`. The only preparation: when
  the handler's own imports load the engine, its `build_http_client` is replaced by one
  returning a client on the same MockTransport (so neither side builds a real transport: no TLS
  context, no pool), without changing what is imported when.

- streaming function: what the chat function does at a cold start on AWS, where it streams
  behind the Lambda Web Adapter (template.yaml, Handler run.sh): the server `run.sh` starts
  (`llm_gateway.api.lwa`: imports app.py, builds the gateway, then listens), then its first
  request as the adapter forwards it over loopback HTTP, a `stream: true` chat read to `[DONE]`
  (the provider's answer: the OpenAI SSE fixture). The adapter's own start (a Rust extension)
  is not measured: it is not available here.

Both pairs are run twice over: with clients on a MockTransport (neither side builds a real
transport), and with the clients each side really builds (httpx's default transport for the
bare call; the engine's deadline transport, with httpcore, a TLS context and a pool, for the
gateway), where only the exchange itself is answered in-process (`HTTPTransport.handle_request`
is replaced in both). The first pair is the target's measurement; the second is closer to what
a Lambda cold start pays on both sides.

`wall` is elapsed time, `cpu` the child's user+system time (less sensitive to other processes
on a shared machine), `peak RSS` the child's VmHWM. The memory-state row is the target's
configuration; the DynamoDB row points the same handler at a state table on moto's server
(started in this process, also when the children run as Lambda does), with credentials in the
environment as Lambda sets them, so it pays
its DynamoDB client and real HTTP round trips to moto. The production row adds what the chat
function reads at a cold start on AWS besides: its two Secrets Manager secrets (provider keys,
client keys), from a second moto server (`AWS_ENDPOINT_URL_SECRETS_MANAGER`). The AppConfig
rollout flag, read on the first request in production, has no local stand-in and is not in it.

Last timed (2026-11-30, branch cold5 on main 458a178 against main 458a178, each run as Lambda
runs it: the Makefile's layer byte-compiled by python3.13, boto3 from a runtime dir;
`BENCH_COLD_RUNS=7`, two rounds, the trees taking turns, at load average 4.1-4.5 from other jobs
on this 2-core machine, where single pairs spread by 0.2x and medians by 0.05x between rounds):

| x baseline, wall (CPU) | cold5, round 1 | cold5, round 2 | main, round 1 | main, round 2 |
|---|---|---|---|---|
| memory state | 1.35 (1.29) | 1.29 (1.28) | 1.40 (1.38) | 1.29 (1.36) |
| DynamoDB state | 1.45 (1.33) | 1.39 (1.32) | 1.47 (1.42) | 1.38 (1.42) |
| DynamoDB + both secrets | 1.47 (1.38) | 1.42 (1.36) | 1.55 (1.44) | 1.51 (1.47) |

Peak RSS 48.9-49.8 MiB (main 49.4-50.3). In this Python 3.11 venv, one round at load 5.2-5.6:
memory state 1.40 (1.42), DynamoDB 1.54 (1.46), both secrets 1.48 (1.53); main 1.49 (1.53), 1.50
(1.59), 1.60 (1.60). Two more rounds at load 9-11 were thrown away (wall ratios from 0.95 to 1.95).
At such load only the instruction counts (`bench_instructions.py`, which holds the last ones)
separate one tree from another.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_COLD_RUNS", "7"))
CLIENT_KEY = "bench-client-key-" + "0" * 20
TARGET_RATIO = 1.5
TARGET_RSS_MIB = 80.0
# As Lambda runs it: BENCH_COLD_AS_LAMBDA=<layer>/python:<dir with boto3> and, optionally,
# BENCH_COLD_PYTHON=<python3.13>; both sides then import from those directories only (`-S`),
# and nothing writes bytecode, so a layer built without .pyc compiles on every run, as on Lambda.
AS_LAMBDA_PATH = os.environ.get("BENCH_COLD_AS_LAMBDA", "")
AS_LAMBDA_PYTHON = os.environ.get("BENCH_COLD_PYTHON", sys.executable)
REAL_PREFIX = "real clients: "
BASELINE_ROW = "bare deps + one httpx call (baseline)"
MEMORY_ROW = "gateway, memory state"
DYNAMODB_ROW = "gateway, DynamoDB state (moto server)"
PRODUCTION_ROW = "gateway, DynamoDB state + both secrets (moto)"
REAL_BASELINE_ROW = REAL_PREFIX + "bare deps + one httpx call"
REAL_MEMORY_ROW = REAL_PREFIX + "gateway, memory state"
STREAMING_ROW = "streaming function (LWA server), memory state"
REAL_STREAMING_ROW = REAL_PREFIX + "streaming function (LWA server)"

# Shared by both children: the clock starts at the first statement; the fixture answer.
_PRELUDE = """
import time as _time, resource as _resource
_t0, _c0 = _time.perf_counter(), _time.process_time()
"""
_REPORT = """
import json as _json, re as _re
_hwm = int(_re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024
print(_json.dumps({"wall_ms": (_time.perf_counter() - _t0) * 1000, "cpu_ms": (_time.process_time() - _c0) * 1000,
                   "rss_mib": _hwm, **_extra}))
"""
_RECORDED = """
import os as _os
_body = open(@FIXTURE@, "rb").read()
_headers = {"content-type": "application/json", "x-ratelimit-remaining-requests": "499",
            "x-ratelimit-limit-requests": "500", "x-ratelimit-reset-requests": "120ms"}
def _answer(request):
    return httpx.Response(200, content=_body, headers=_headers)
_REAL = _os.environ.get("BENCH_REAL_CLIENTS") == "1"
if _REAL:  # real clients are built (TLS context, pool); only the exchange is answered in-process
    def _handle(self, request):
        request.read()
        return _answer(request)
    httpx.HTTPTransport.handle_request = _handle
"""

BASELINE = _PRELUDE + """
import boto3, httpx, pydantic, aws_lambda_powertools, tenacity
""" + _RECORDED + """
_client = httpx.Client() if _REAL else httpx.Client(transport=httpx.MockTransport(_answer))
_reply = _client.post("https://api.openai.com/v1/chat/completions", headers={"authorization": "Bearer x"},
                      json=@BODY@)
_data = _reply.json()
assert _data["choices"][0]["message"]["content"]
_extra = {}
""" + _REPORT

GATEWAY = _PRELUDE + """
import httpx
""" + _RECORDED + """
import importlib.abc, importlib.util, sys as _sys
# When the handler's imports reach the engine, its build_http_client is replaced right after the
# module runs, so the handler imports everything in its own order (and with its GC paused).
class _OnRecordedAnswer(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "llm_gateway.providers.engine":
            return None
        _sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        real = spec.loader
        class _Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return real.create_module(spec)
            def exec_module(self, module):
                real.exec_module(module)
                module.build_http_client = lambda: httpx.Client(transport=httpx.MockTransport(_answer), trust_env=False)
        spec.loader = _Loader()
        return spec
if not _REAL:
    _sys.meta_path.insert(0, _OnRecordedAnswer())
import sys as _sys
_sys.path.insert(0, @FUNCTIONS@)
import app
_t1 = _time.perf_counter()
class _Context:
    function_name = "chat"; memory_limit_in_mb = 512; function_version = "1"; aws_request_id = "bench"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:chat"
    log_group_name = "/aws/lambda/chat"; log_stream_name = "bench"
    def get_remaining_time_in_millis(self):
        return 29_000
_out = app.lambda_handler(_event, _Context())
assert _out["statusCode"] == 200, _out
_extra = {"init_ms": (_t1 - _t0) * 1000, "first_request_ms": (_time.perf_counter() - _t1) * 1000}
""" + _REPORT

# The streaming function (template.yaml: Handler run.sh behind the Lambda Web Adapter): its cold
# start is the server run.sh starts (`llm_gateway.api.lwa`, which imports app.py and builds the
# gateway before it listens, so LWA's readiness check passes only then), and its first request
# as LWA forwards it: a `stream: true` chat over HTTP on loopback, read to `[DONE]`, the provider
# answering with the OpenAI SSE fixture. LWA itself (a Rust extension) is not in the figure.
STREAMING = _PRELUDE + """
import httpx, http.client as _http_client, threading as _threading
""" + _RECORDED + """
_sse_body = open(@SSE_FIXTURE@, "rb").read()
def _answer_any(request):
    if b'"stream": true' in request.content or b'"stream":true' in request.content:
        return httpx.Response(200, content=_sse_body, headers={**_headers, "content-type": "text/event-stream"})
    return _answer(request)
if _REAL:
    def _handle(self, request):
        request.read()
        return _answer_any(request)
    httpx.HTTPTransport.handle_request = _handle
import importlib.abc, importlib.util, sys as _sys
class _OnRecordedAnswer(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "llm_gateway.providers.engine":
            return None
        _sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        real = spec.loader
        class _Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return real.create_module(spec)
            def exec_module(self, module):
                real.exec_module(module)
                module.build_http_client = lambda: httpx.Client(transport=httpx.MockTransport(_answer_any), trust_env=False)
        spec.loader = _Loader()
        return spec
if not _REAL:
    _sys.meta_path.insert(0, _OnRecordedAnswer())
_sys.path.insert(0, @FUNCTIONS@)
from llm_gateway.api.lwa import LwaServer, load_stream_handler
_server = LwaServer(0, load_stream_handler("app:stream_handler"))
_threading.Thread(target=_server.serve_forever, daemon=True).start()
_t1 = _time.perf_counter()
_conn = _http_client.HTTPConnection("127.0.0.1", _server.server_address[1])
_conn.request("POST", "/v1/chat/completions", body=@STREAM_BODY@, headers=@LWA_HEADERS@)
_resp = _conn.getresponse()
_data = _resp.read()
assert _resp.status == 200 and b"data: [DONE]" in _data, (_resp.status, _data[:300])
_extra = {"init_ms": (_t1 - _t0) * 1000, "first_request_ms": (_time.perf_counter() - _t1) * 1000}
""" + _REPORT


@dataclass(frozen=True)
class Run:
    wall_ms: float
    cpu_ms: float
    rss_mib: float
    init_ms: float | None = None
    first_request_ms: float | None = None


def _event() -> dict[str, object]:
    event = json.loads((ROOT / "events" / "chat.json").read_text())
    for headers in (event["headers"], event["multiValueHeaders"]):
        headers["Authorization"] = f"Bearer {CLIENT_KEY}" if headers is event["headers"] else [f"Bearer {CLIENT_KEY}"]
    return event


def _streaming_script() -> str:
    event = json.loads((ROOT / "events" / "chat_stream.json").read_text())
    lwa_headers = {"content-type": "application/json", "authorization": f"Bearer {CLIENT_KEY}",
                   "x-amzn-request-context": json.dumps(event["requestContext"]),
                   "x-amzn-lambda-context": json.dumps({"request_id": "bench", "env_config": {"function_name": "chat"}})}
    fixtures = ROOT / "tests" / "fixtures" / "providers" / "openai"
    return (STREAMING.replace("@FIXTURE@", repr(str(fixtures / "chat_text.json")))
            .replace("@SSE_FIXTURE@", repr(str(fixtures / "stream_text.sse")))
            .replace("@FUNCTIONS@", repr(str(ROOT / "functions" / "chat")))
            .replace("@STREAM_BODY@", repr(str(event["body"]).encode()))
            .replace("@LWA_HEADERS@", repr(lwa_headers)))


def _scripts() -> tuple[str, str]:
    fixture = str(ROOT / "tests" / "fixtures" / "providers" / "openai" / "chat_text.json")
    event = _event()
    body = json.loads(str(event["body"]))
    baseline = BASELINE.replace("@FIXTURE@", repr(fixture)).replace("@BODY@", repr(body))
    gateway = f"_event = {event!r}\n" + GATEWAY.replace("@FIXTURE@", repr(fixture)).replace(
        "@FUNCTIONS@", repr(str(ROOT / "functions" / "chat")))
    return baseline, gateway


_PYCACHE = tempfile.mkdtemp(prefix="bench-cold-pycache-")
atexit.register(shutil.rmtree, _PYCACHE, ignore_errors=True)  # the warmed bytecode goes with the run


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    """The chat function's environment: one provider key, one client key, and of template.yaml's
    globals the two that change a cold start (the metrics namespace; pydantic's plugin search off).

    Every child reads and writes compiled bytecode in one private cache (`PYTHONPYCACHEPREFIX`),
    warmed by a discarded first run: otherwise a module without a usable `.pyc` (our editable
    sources, or any module when `PYTHONDONTWRITEBYTECODE` is set) is compiled on every run and
    the comparison would measure the compiler for one side only. Lambda is another matter: the
    layer ships no `.pyc` (see README), so there both sides compile.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_GATEWAY_", "POWERTOOLS_"))
           and not k.endswith(("_API_KEY", "_BASE_URL", "_MODELS")) and k != "PYTHONDONTWRITEBYTECODE"}
    ours = {"OPENAI_API_KEY": "bench-provider-key", "LLM_GATEWAY_API_KEYS": CLIENT_KEY,
            "POWERTOOLS_METRICS_NAMESPACE": "LlmGateway", "PYDANTIC_DISABLE_PLUGINS": "__all__"}  # as template.yaml
    if AS_LAMBDA_PATH:  # a built layer (+ a runtime dir with boto3), read-only: no bytecode written
        env = {k: v for k, v in env.items() if not k.startswith("PYTHON")}
        return {**env, **ours, "PYTHONPATH": AS_LAMBDA_PATH, "PYTHONDONTWRITEBYTECODE": "1", **extra}
    return {**env, **ours, "PYTHONPYCACHEPREFIX": _PYCACHE, **extra}


def _run(code: str, env: dict[str, str]) -> Run:
    command = [AS_LAMBDA_PYTHON, "-S", "-c", code] if AS_LAMBDA_PATH else [sys.executable, "-c", code]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"cold-start child failed:\n{done.stderr[-3000:]}")
    return Run(**json.loads(done.stdout.strip().splitlines()[-1]))


def _median(runs: list[Run], field: str) -> float:
    return statistics.median(getattr(r, field) for r in runs)


def measure(runs: int = RUNS, *, with_table: bool = True) -> dict[str, list[Run]]:
    """Alternating fresh interpreters; {row name: runs}."""
    baseline, gateway = _scripts()
    streaming = _streaming_script()
    real = {"BENCH_REAL_CLIENTS": "1"}
    children: dict[str, tuple[str, dict[str, str]]] = {
        BASELINE_ROW: (baseline, {}), MEMORY_ROW: (gateway, {}), STREAMING_ROW: (streaming, {}),
        REAL_BASELINE_ROW: (baseline, real), REAL_MEMORY_ROW: (gateway, real), REAL_STREAMING_ROW: (streaming, real),
    }
    dynamo = secrets = None
    if with_table:
        dynamo = _start_dynamodb()
        table = {
            "LLM_GATEWAY_STATE_TABLE": dynamo.table_name, "LLM_GATEWAY_DYNAMODB_ENDPOINT": dynamo.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        children[DYNAMODB_ROW] = (gateway, table)
        secrets, secret_env = _start_secrets()
        children[PRODUCTION_ROW] = (gateway, {**table, **secret_env})
    results: dict[str, list[Run]] = {name: [] for name in children}
    try:
        for code, extra in children.values():
            _run(code, _child_env(extra))  # warm the bytecode cache (see _child_env)
        for _ in range(runs):
            for name, (code, extra) in children.items():
                results[name].append(_run(code, _child_env(extra)))
    finally:
        if dynamo is not None:
            dynamo.stop()
        if secrets is not None:
            secrets.stop()
    return results


def _start_dynamodb():  # type: ignore[no-untyped-def]
    from sandbox.local_dynamodb import start_local_dynamodb

    return start_local_dynamodb(table_name="bench-cold-start")


def _start_secrets():  # type: ignore[no-untyped-def]
    """moto's server holding the chat function's two secrets; the child's environment names them
    (the provider key and client key then come from the secrets, as on AWS)."""
    from sandbox.local_secrets import start_local_secrets

    secrets = start_local_secrets({"OPENAI_API_KEY": "bench-provider-key"}, {"LLM_GATEWAY_API_KEYS": CLIENT_KEY})
    return secrets, {**secrets.env(), "OPENAI_API_KEY": "", "LLM_GATEWAY_API_KEYS": ""}  # empty = unset: from the secrets


def report(results: dict[str, list[Run]]) -> None:
    n = len(results[BASELINE_ROW])
    where = f"; as Lambda: {AS_LAMBDA_PYTHON} on {AS_LAMBDA_PATH}" if AS_LAMBDA_PATH else ""
    print(f"\nCold start: fresh interpreter to first answer, median of {n} alternating runs "
          f"(load average {os.getloadavg()[0]:.2f}; x = against the baseline of the same kind{where})")
    print(f"{'':<52}{'wall ms':>9}{'cpu ms':>9}{'peak RSS':>11}{'wall x':>8}{'cpu x':>7}")
    for name, runs in results.items():
        base = results[REAL_BASELINE_ROW if name.startswith(REAL_PREFIX) else BASELINE_ROW]
        wall, cpu, rss = _median(runs, "wall_ms"), _median(runs, "cpu_ms"), _median(runs, "rss_mib")
        ratio_wall, ratio_cpu = wall / _median(base, "wall_ms"), cpu / _median(base, "cpu_ms")
        print(f"{name:<52}{wall:9.0f}{cpu:9.0f}{rss:8.1f} MiB{ratio_wall:8.2f}{ratio_cpu:7.2f}")
        if runs[0].init_ms is not None:
            print(f"{'  of which import + build (init)':<52}{_median(runs, 'init_ms'):9.0f}")
            print(f"{'  of which first request':<52}{_median(runs, 'first_request_ms'):9.0f}")
    mem, base = results[MEMORY_ROW], results[BASELINE_ROW]
    ratio, rss = _median(mem, "wall_ms") / _median(base, "wall_ms"), _median(mem, "rss_mib")
    print(f"target (memory state, MockTransport clients): <= {TARGET_RATIO}x wall, <= {TARGET_RSS_MIB:.0f} MiB: "
          f"{ratio:.2f}x and {rss:.1f} MiB ({'met' if ratio <= TARGET_RATIO and rss <= TARGET_RSS_MIB else 'NOT met'})")
    ratios = sorted(g.wall_ms / b.wall_ms for g, b in zip(mem, base, strict=True))
    print(f"per-pair wall ratios (memory state / baseline): {', '.join(f'{r:.2f}' for r in ratios)}")


def main() -> None:
    report(measure())


if __name__ == "__main__":
    main()
