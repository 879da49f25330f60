"""What a cold start loads: the chat handler imports only what its configuration uses.

Not timed (timings live in `benchmarks/bench_cold_start.py`); these pin the structural wins so
a later import cannot quietly undo them: no boto3 (about 100 ms; with a state table and
secrets neither, `tests/integration/test_cold_start_production_imports.py`), no tiktoken `Encoding` for an ordinary request (about 60 ms and 20 MiB), no `regex` module for
an ASCII prompt, no tenacity until a request needs a retry, no module of a provider without a key
nor transcription's, and the first request still answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from llm_gateway.providers.registry import PROVIDERS
from tests.gateway_env import without_gateway_settings

ROOT = Path(__file__).resolve().parents[2]
KEY = "cold-start-test-key-" + "0" * 20

SERVE_FIRST_REQUEST = f"""
import json, sys
import httpx
body = open({str(ROOT / "tests/fixtures/providers/openai/chat_text.json")!r}, "rb").read()
answer = lambda request: httpx.Response(200, content=body, headers={{"content-type": "application/json"}})
import llm_gateway.providers.engine as engine
engine.build_http_client = lambda: httpx.Client(transport=httpx.MockTransport(answer), trust_env=False)
sys.path.insert(0, {str(ROOT / "functions/chat")!r})
import app
event = json.load(open({str(ROOT / "events/chat.json")!r}))
event["headers"]["Authorization"] = "Bearer {KEY}"
event["multiValueHeaders"]["Authorization"] = ["Bearer {KEY}"]
class Context:
    function_name = "chat"; memory_limit_in_mb = 512; function_version = "1"; aws_request_id = "t"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:chat"
    log_group_name = "g"; log_stream_name = "s"
    def get_remaining_time_in_millis(self):
        return 29_000
status = app.lambda_handler(event, Context())["statusCode"]
modules = sorted(m for m in sys.modules
                 if m.split(".")[0] in ("boto3", "botocore", "s3transfer", "tiktoken", "regex", "tenacity")
                 or m.startswith(("llm_gateway.providers.", "llm_gateway.transcription")))
from llm_gateway.selection.tokens import cl100k_encoding
print(json.dumps({{"status": status, "modules": modules, "encoding_built": cl100k_encoding.cache_info().currsize}}))
"""


def _serve(extra_env: dict[str, str]) -> dict:
    env = without_gateway_settings()
    env.update({"OPENAI_API_KEY": "test-provider-key", "LLM_GATEWAY_API_KEYS": KEY, **extra_env})
    done = subprocess.run([sys.executable, "-c", SERVE_FIRST_REQUEST], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_memory_state_container_serves_without_boto3_or_tiktoken_tables() -> None:
    seen = _serve({})
    assert seen["status"] == 200
    assert not [m for m in seen["modules"] if m.startswith(("boto3", "s3transfer"))], seen["modules"]
    assert seen["encoding_built"] == 0
    assert not [m for m in seen["modules"] if m.startswith(("tiktoken", "regex"))], seen["modules"]  # ASCII prompt
    assert not [m for m in seen["modules"] if m.startswith("tenacity")], seen["modules"]  # no retry was needed
    # Only the configured provider's module (OpenAI's key is set), none of the other six.
    others = {f"llm_gateway.providers.{kind}" for kind in PROVIDERS if kind != "openai"}
    assert "llm_gateway.providers.openai" in seen["modules"]
    assert not others & set(seen["modules"]), seen["modules"]
    # Nor transcription's types and helpers: a chat request needs none.
    assert not [m for m in seen["modules"] if m.startswith(("llm_gateway.transcription", "llm_gateway.providers.transcri"))], \
        seen["modules"]


def test_deferred_powertools_package_still_offers_its_dynamodb_layer() -> None:
    """The gateway defers Powertools' breaker `persistence` package (its `__init__` imports boto3);
    anyone importing Powertools' own DynamoDB layer from it still gets it."""
    code = (
        "import llm_gateway.routing.breaker_store as store, sys\n"
        "assert 'boto3' not in sys.modules\n"
        "from aws_lambda_powertools.utilities.circuit_breaker.persistence import CircuitBreakerDynamoDBPersistence\n"
        "from llm_gateway.routing.breaker_store import BreakerStore, DynamoDBBreakerPersistence\n"
        "assert issubclass(DynamoDBBreakerPersistence, BreakerStore) and CircuitBreakerDynamoDBPersistence\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
