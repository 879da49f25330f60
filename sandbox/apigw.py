"""API Gateway REST (payload v1) events and Lambda contexts, made locally.

The local server and `llm-gateway invoke` both go through here, so the handler code they run
is byte-for-byte the code Lambda runs, fed the same event shape.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from llm_gateway.api.lwa import rest_event

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
# A streaming invocation's function timeout: the template's ChatFunctionTimeout (default 310 s).
STREAM_TIMEOUT_MS = int(float(os.environ.get("LLM_GATEWAY_FUNCTION_TIMEOUT_S") or 310) * 1000)


@dataclass
class LocalContext:
    """The attributes of `LambdaContext` that Powertools and our handlers read."""

    function_name: str = "local"
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    timeout_ms: int = 29_000
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}:live"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.timeout_ms - (time.monotonic() - self.started) * 1000))


def load_handler_module(function: str, instance: str = "0") -> ModuleType:
    """Import `functions/<function>/app.py` as a fresh module: one import = one 'container'."""
    path = FUNCTIONS_DIR / function / "app.py"
    if not path.exists():
        raise FileNotFoundError(f"no handler at {path}")
    spec = importlib.util.spec_from_file_location(f"_lambda_{function}_{instance}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_event(
    method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str = "127.0.0.1"
) -> dict[str, Any]:
    """The event API Gateway would send for this request (built by the layer's `rest_event`, as
    the Lambda Web Adapter's requests are on AWS), with a request context of our own."""
    path = raw_path.partition("?")[0]
    request_context = {
        "resourcePath": "/{proxy+}",
        "httpMethod": method,
        "path": f"/local{path}",
        "stage": "local",
        "requestId": str(uuid.uuid4()),
        "requestTimeEpoch": int(time.time() * 1000),
        "accountId": "000000000000",
        "apiId": "local",
        "identity": {"sourceIp": source_ip, "userAgent": headers.get("user-agent")},
    }
    return rest_event(method, raw_path, headers, body, request_context)


def response_body(response: dict[str, Any]) -> bytes:
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode() if isinstance(body, str) else bytes(body)


def response_headers(response: dict[str, Any]) -> dict[str, str]:
    headers = {k: str(v) for k, v in (response.get("headers") or {}).items()}
    for key, values in (response.get("multiValueHeaders") or {}).items():
        if values:
            headers[key] = str(values[-1])
    return headers
