"""API Gateway REST (payload v1) events and Lambda contexts, made locally.

The local server and `llm-gateway invoke` both go through here, so the handler code they run
is byte-for-byte the code Lambda runs, fed the same event shape.
"""

from __future__ import annotations

import base64
import importlib.util
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded")


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
    path, _, query = raw_path.partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True)) if query else None
    content_type = headers.get("content-type", headers.get("Content-Type", ""))
    is_text = not body or any(content_type.startswith(t) for t in TEXT_TYPES)
    if is_text and body:
        try:
            body.decode()
        except UnicodeDecodeError:
            is_text = False  # not text whatever it claims: pass it on base64-encoded, untouched
    request_id = str(uuid.uuid4())
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": params,
        "multiValueQueryStringParameters": {k: [v] for k, v in params.items()} if params else None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/local{path}",
            "stage": "local",
            "requestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "accountId": "000000000000",
            "apiId": "local",
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("user-agent")},
        },
        "body": (body.decode() if is_text else base64.b64encode(body).decode()) if body else None,
        "isBase64Encoded": bool(body) and not is_text,
    }


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
