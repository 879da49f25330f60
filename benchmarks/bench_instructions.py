"""Instruction counts (valgrind), for when a shared machine's timings cannot separate an effect.

Exact and repeatable, unlike wall time on a loaded 2-core machine: each figure is the number of
instructions valgrind (`--tool=cachegrind --cache-sim=no`) counts in a fresh interpreter, with
`PYTHONHASHSEED=0` so set and dict orders (and so the count) do not vary between runs.

- `cold` (default): the children of `bench_cold_start.py` (baseline, chat handler with memory
  state, with a DynamoDB state table, with the table and both secrets), each run once to warm its
  bytecode and once under valgrind; printed with their ratio to the baseline. Honours
  `BENCH_COLD_AS_LAMBDA` / `BENCH_COLD_PYTHON` as that benchmark does.
- `request`: instructions per request of `bench_overhead.py`'s rows (the bare adapter + engine
  call, the gateway pinned and `auto`, and `wide`: `auto` with five providers): a process
  serving 60 warm-up requests and then N more, less one serving the warm-up only, divided by N. The gateways run on a virtual clock (50 ms a
  request from a fixed moment), so their windows fill and roll over alike in every run: on the
  real clock, how far a run under valgrind got into the next minute changed the count (the
  five-provider row by about 10 %, run to run).

Needs valgrind on the PATH: `.venv/bin/python -m benchmarks.bench_instructions [cold|request]`.

Last `cold` run (2026-11-30, branch cold5 on main 458a178, one run each; main 458a178 run the same
way before it, in brackets):

| | Python 3.13, the Makefile's layer, boto3 from a runtime dir | Python 3.11, this venv |
|---|---|---|
| baseline | 1.064 G (1.060 G) | 0.969 G (0.976 G) |
| memory state | 1.419 G, 1.333x (1.544 G, 1.456x) | 1.397 G, 1.442x (1.532 G, 1.569x) |
| DynamoDB state | 1.445 G, 1.357x (1.570 G, 1.481x) | 1.426 G, 1.472x (1.557 G, 1.595x) |
| DynamoDB + both secrets | 1.456 G, 1.368x (1.581 G, 1.491x) | 1.434 G, 1.481x (1.569 G, 1.607x) |

An earlier `request` run (2026-11-30, `main` after the fifth pass's merges, PYTHONHASHSEED=0; the `wide`
row with LLM_GATEWAY_FREE_WAIT_S=0): bare 1.173 M, pinned 2.369 M, auto 2.736 M, wide 6.729 M
(branch perf5 before/after, before the free-tier wait: pinned 2.460/2.405, auto 2.808/2.752, wide
9.67/6.51 M; with free-tier waits the wide row counts 7.58 M, a review found).

Branch core6 (per-request CPU in the core library), 2026-11-30, the same command before (main at
4d8ad8f) and after, PYTHONHASHSEED=0, the `wide` row with LLM_GATEWAY_FREE_WAIT_S=0: bare 1.174 /
1.172 M, pinned 2.405 / 2.315 M, auto 2.765 / 2.477 M (added by the gateway 1.591 -> 1.305 M,
0.82x), wide 6.794 / 5.596 M (0.82x). What it cut: chat preparation ranks a request shape's
candidates once per available set (removed since, see below) and reads each model's static fields once; token counting asked
pydantic for fields a message's role lacks (an AttributeError raised and caught per message); a plan
step's reason is formatted only when read; breaker names come from a per-model cache; a window's carry
decay sums each earlier window's slots once (`metering._Carry`); log lines reuse one JSONEncoder.
`make bench-litellm` after it, three runs at load 3.2-4.6 (other processes on the 2 cores): like for
like 7.6x, 8.3x, 7.9x (LiteLLM 2.26-2.30 ms, ours without HTTP 0.28-0.30 ms): the 10x target is not met.

Then on `main` (d11dab7: core6 merged, and a call on two quiet closed circuits runs without
Powertools' two handlers), the same command: bare 1.174 M, pinned 2.190 M, auto 2.357 M (added by
the gateway 1.183 M), wide 5.493 M. A review then found that core6's cache of ranked candidates per
request shape hit only because these rows repeat one request (its key holds the exact prompt token
count; varied traffic almost never hits it) and held ~21 MB when full: removed. Without it (main
at e09089a): bare 1.175 M, pinned 2.233 M, auto 2.498 M (added by the gateway 1.323 M: 0.83x of
main's 1.591 M before core6), wide 6.123 M (0.90x of 6.794 M).

2026-11-30 afternoon (main at ba2c857: the provider client keeps no cookies and parses each
endpoint URL once, both in the bare call too; the rows now use `build_http_client` on the in-process
transport, as production's class): bare 0.812 M, pinned 1.879 M, auto 2.137 M (added by the
gateway 1.325 M), wide 5.816 M. The bare call alone: 1.175 M before, 0.913 M without the cookie jar,
0.812 M with the URLs parsed once.

Branch perf8 (2026-11-30, late afternoon; on `main` at be53685, after it at 25adf13), the same
command: bare 0.810 / 0.810 M, pinned 1.948 / 1.834 M, auto 2.188 / 2.087 M (added by the gateway
1.378 -> 1.277 M), wide 5.858 / 5.772 M. The `auto` row run with production's metrics
(`EmfMetrics`, stdout to /dev/null) instead of the in-memory recorder: 2.216 / 2.096 M, that is
0.028 M (before) and 0.009 M (after) a request more than the row counts. What it cut: the
answer's body built from the completion's fields (`api/response_body.py`, 78 -> 39 k), one C JSON
encoder per log formatter and no None-dropping copy of the line (the line 134 -> 112 k), a whole
answer priced once (23 k), the frozen dataclasses made per request or attempt (`ServedRequest`,
`AttemptRecord`, `AttemptContext`) as NamedTuples (about 9, 8 and 3 k), EMF's kept-line path
without a call, a model's circuit names formatted once, headers built in place. The rows move by
a few thousand instructions between runs of the same code (`auto` 2.106 and 2.110 M at 0a9a657).

Branch perf9 (2026-11-30, evening; before: `main` at 5e21c47, after: 28d370e), the same command
run back to back in one tree (the old code checked out into it for the first): bare 0.830 /
0.824 M, pinned 1.756 / 1.664 M (added by the gateway 0.926 -> 0.840 M), auto 2.016 / 1.802 M
(added by the gateway 1.186 -> 0.978 M, 0.82x), wide 5.665 / 5.117 M. The bare call's 6 k is
`RateLimitInfo.is_empty` written without a generator, which both sides ask. What it cut, in
`auto`'s instructions (each the `auto` row alone before and after, 400 requests as here, one run
each, minutes apart):
a plan step's estimated cost formatted into its reason only when the reason is read (-24 k); the
preparation's candidate loop on per-model values read once, sorted by keys made in the loop (-27 k,
with `analyze` passing no `**needs` dict and a key with no allow-list asking no `allows` per
candidate); a reservation with no windows not reconciled, the header checks without generators,
the memory store's add looking each item up once (-23 k); a candidate set's state items listed
once per set (a cache keyed by the keys tuple, bounded), decode skipping models with no item,
`capacity` of a model with neither windows nor state answered at once, ties looked for without
`groupby` (-94 k: the largest); fast paths for what is usually absent (a load that found nothing,
no window, a first turn, no answer cut, and in the in-memory stores these rows run on, not
production's DynamoDB, no item and no breaker record stored: about -30 k); a log line's formatter
keys filled in once per call site (-78 opcodes, about -5 k); the needs-drop cache keyed by a plain
tuple and reason heads kept per model (-101 opcodes). Opcode counts (a tracer counting bytecodes
per function, deterministic) guided the small ones: these rows move by up to 10 k from run to run
of the same code under load (suspected, not proven: paths that read the real clock, such as the
log stamp and Powertools' breaker cache), which is the size of several of the steps above.

`capacity` had a cache (`_ROOMS`, from da476ac) keyed by the usages' ids and the exact ask
(prompt + expected output tokens): the rows hit it because they repeat one request, which real
traffic seldom does. Removed after the merge (main at 65f5824 + this change, the same command):
bare 0.829 M, pinned 1.663 M, auto 1.802 M (the gateway's share 0.973 M), wide 5.160 M: `auto`
and pinned as with it, `wide` +43 k (5.117 M with it, perf9's run).

Review rev9 (after aaa92a7): perf9's per-call-site log keys (`_Site`, 7e0fa82) are reverted. They
held only while the formatter's keys stayed equal and all str: these rows call `gateway.chat`
without `inject_lambda_context`, so they always hit (about -4 k a line); in Lambda and `make dev`
that decorator appends a bool `cold_start` and a new `function_request_id` every invocation, so
the site was never kept and was built and thrown away on every line: +22 k instructions a
`request served` line against 5e21c47 (valgrind, a line with Lambda's keys appended per line).

Baselines differ by up to 0.7 % between the two trees' runs (their children's scripts hold paths
of other lengths; main's 3.11 run had its checkout first on PYTHONPATH, one more directory looked
in for every import on both sides), so compare ratios.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import bench_cold_start as cold

ROOT = Path(__file__).resolve().parent.parent
VALGRIND = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
REQUESTS = int(os.environ.get("BENCH_INSTRUCTIONS_REQUESTS", "400"))

PER_REQUEST = """
import contextlib, os, sys
sys.path.insert(0, {root!r})
import httpx
from benchmarks import bench_overhead as b
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.config import load_settings
from llm_gateway.gateway import build_gateway
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.providers.engine import ProviderEngine, build_http_client
from llm_gateway.compose import Clocks
moment = [1_764_000_030.0]  # a fixed virtual clock, 50 ms a request: windows fill and roll alike every run


def sleep(seconds):
    moment[0] += seconds


clocks = Clocks(monotonic=lambda: moment[0], wall=lambda: moment[0], sleep=sleep, rand=lambda: 0.5)
client = build_http_client(b._recorded_transport())
env = {{"OPENAI_API_KEY": "bench-key", "LLM_GATEWAY_API_KEYS": b.CLIENT_KEY}}
gateway = build_gateway(load_settings(env), metrics=RecordingMetrics(), http_client=client, clocks=clocks)
caller = gateway.authenticate(f"Bearer {{b.CLIENT_KEY}}")
adapter = gateway.router.adapters.current().adapters["openai"]
engine = ProviderEngine(client)
request = ChatCompletionRequest.model_validate(b.BODY)
every = {{f"{{name.upper()}}_API_KEY": "bench-key" for name in b.PROVIDERS}}
# no free-tier waits: the row counts the gateway's work, not its waits for Mistral's next second
wide = build_gateway(load_settings({{**every, "LLM_GATEWAY_FREE_WAIT_S": "0", "LLM_GATEWAY_API_KEYS": b.CLIENT_KEY}}),
                     metrics=RecordingMetrics(),
                     http_client=build_http_client(b._five_provider_transport()), clocks=clocks)
rows = {{"bare": lambda: engine.complete(adapter, request, "gpt-4o-mini", 10),
        "pinned": lambda: gateway.chat(ChatCompletionRequest.model_validate(b.BODY), caller, "b"),
        "auto": lambda: gateway.chat(ChatCompletionRequest.model_validate({{**b.BODY, "model": "auto"}}), caller, "b"),
        "wide": lambda: wide.chat(ChatCompletionRequest.model_validate({{**b.BODY, "model": "auto"}}), caller, "b")}}
serve = rows[{row!r}]
with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
    for _ in range(60 + {n}):
        serve()
        moment[0] += 0.05
"""


def instructions(command: list[str], env: dict[str, str]) -> int:
    done = subprocess.run([*VALGRIND, *command], capture_output=True, text=True, env=env, cwd=ROOT)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"valgrind run failed:\n{done.stderr[-3000:]}")
    return int(found.group(1).replace(",", ""))


def _script(code: str) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as file:
        file.write(code)
    return file.name


def cold_start() -> None:
    baseline, gateway = cold._scripts()
    rows = {cold.BASELINE_ROW: (baseline, {}), cold.MEMORY_ROW: (gateway, {})}
    dynamo = cold._start_dynamodb()
    secrets, secret_env = cold._start_secrets()
    table = {"LLM_GATEWAY_STATE_TABLE": dynamo.table_name, "LLM_GATEWAY_DYNAMODB_ENDPOINT": dynamo.endpoint_url,
             "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
             "AWS_DEFAULT_REGION": "us-east-1"}
    rows[cold.DYNAMODB_ROW] = (gateway, table)
    rows[cold.PRODUCTION_ROW] = (gateway, {**table, **secret_env})
    python = [cold.AS_LAMBDA_PYTHON, "-S"] if cold.AS_LAMBDA_PATH else [sys.executable]
    counts: dict[str, int] = {}
    try:
        for name, (code, extra) in rows.items():
            env = {**cold._child_env(extra), "PYTHONHASHSEED": "0"}
            path = _script(code)
            subprocess.run([*python, path], capture_output=True, env=env, cwd=ROOT, check=True)  # warm bytecode
            counts[name] = instructions([*python, path], env)
    finally:
        dynamo.stop()
        secrets.stop()
    where = f" as Lambda: {cold.AS_LAMBDA_PYTHON} on {cold.AS_LAMBDA_PATH}" if cold.AS_LAMBDA_PATH else ""
    print(f"\nCold start in instructions (valgrind, one run each{where})")
    base = counts[cold.BASELINE_ROW]
    for name, count in counts.items():
        print(f"{name:<52}{count / 1e9:8.3f} G{count / base:8.3f}x")


def per_request() -> None:
    print(f"\nInstructions per request (valgrind; ({60 + REQUESTS} requests) - (60 requests), / {REQUESTS})")
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for row in ("bare", "pinned", "auto", "wide"):
        warm, full = (_script(PER_REQUEST.format(root=str(ROOT), row=row, n=n)) for n in (0, REQUESTS))
        subprocess.run([sys.executable, warm], capture_output=True, env=env, cwd=ROOT, check=True)  # bytecode
        per = (instructions([sys.executable, full], env) - instructions([sys.executable, warm], env)) / REQUESTS
        print(f"  {row:<8}{per / 1e6:8.3f} M")


def main() -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    what = sys.argv[1] if len(sys.argv) > 1 else "cold"
    {"cold": cold_start, "request": per_request}[what]()


if __name__ == "__main__":
    main()
