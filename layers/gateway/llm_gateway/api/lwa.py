"""The HTTP server inside the chat Lambda that the AWS Lambda Web Adapter (LWA) talks to.

    python -m llm_gateway.api.lwa app:stream_handler        (functions/chat/run.sh, on AWS)

Why: API Gateway REST streams a response only from a function invoked through
`InvokeWithResponseStream`, and Python's managed runtime cannot write one (no native response
streaming for Python: aws.md §4). LWA (a Lambda layer, `AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap`,
`AWS_LWA_INVOKE_MODE=response_stream`) runs the function's startup script, turns each invocation
into an HTTP request to 127.0.0.1:$PORT and streams the HTTP response back, writing the prelude
API Gateway needs (wave2.md §6). It adds the API Gateway request context and the Lambda context
as the JSON headers `x-amzn-request-context` and `x-amzn-lambda-context`
(awslabs/aws-lambda-web-adapter src/lib.rs, docs/guide/src/features/request-context.md).

This server turns that request back into the API Gateway REST event the handler has always
taken (`rest_event`, the same function `make dev` builds its events with) and sends the
handler's `LiveResponse` chunk by chunk with chunked transfer encoding. So every route runs the
same handler code as a buffered invocation; only a `stream: true` chat answer differs, in being
sent as it is produced. A write that fails (the caller went away, and LWA with it) closes the
body, which closes the provider's stream.

Only the standard library: no web framework in the layer (cold start), one invocation at a time
per container as Lambda runs them (threads only so a readiness probe is never stuck behind one).
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from llm_gateway.api.live import LiveResponse

READY_PATH = "/_lwa/ready"  # AWS_LWA_READINESS_CHECK_PATH in template.yaml; answered here, not by the app
TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded")
DEFAULT_TIMEOUT_MS = 29_000
# Hop-by-hop or recomputed: never forwarded from the handler's headers.
_SKIP = {"content-length", "connection", "transfer-encoding", "keep-alive"}

StreamHandler = Callable[[dict[str, Any], Any], LiveResponse]


def rest_event(method: str, raw_path: str, headers: Mapping[str, str], body: bytes,
               request_context: Mapping[str, Any]) -> dict[str, Any]:
    """An API Gateway REST (payload v1) proxy event for this HTTP request; a body that is not
    text (whatever it claims) travels base64-encoded, as API Gateway sends binary media types."""
    path, _, query = raw_path.partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True)) if query else None
    lowered = {k.lower(): v for k, v in headers.items()}
    content_type = lowered.get("content-type", "")
    is_text = not body or any(content_type.startswith(t) for t in TEXT_TYPES)
    if is_text and body:
        try:
            body.decode()
        except UnicodeDecodeError:
            is_text = False
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": dict(headers),
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": params,
        "multiValueQueryStringParameters": {k: [v] for k, v in params.items()} if params else None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": dict(request_context),
        "body": (body.decode() if is_text else base64.b64encode(body).decode()) if body else None,
        "isBase64Encoded": bool(body) and not is_text,
    }


class LwaContext:
    """The `LambdaContext` attributes Powertools and the handler read, from LWA's
    `x-amzn-lambda-context` (the Rust runtime's Context: request_id, deadline in epoch ms,
    invoked_function_arn, env_config). Missing fields fall back to the runtime's environment."""

    def __init__(self, raw: str | None) -> None:
        data: dict[str, Any] = {}
        if raw:
            try:
                data = json.loads(raw)
            except ValueError:
                data = {}
        env_config = data.get("env_config") or {}
        self.aws_request_id = str(data.get("request_id") or uuid.uuid4())
        self.invoked_function_arn = str(data.get("invoked_function_arn") or "")
        self.function_name = str(env_config.get("function_name") or os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "chat"))
        self.function_version = str(env_config.get("version") or os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"))
        self.memory_limit_in_mb = int(env_config.get("memory") or os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 0))
        self.log_group_name = str(env_config.get("log_group") or os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", ""))
        self.log_stream_name = str(env_config.get("log_stream") or os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", ""))
        deadline = data.get("deadline") or data.get("deadline_ms")
        self._deadline_s = float(deadline) / 1000 if deadline else time.time() + DEFAULT_TIMEOUT_MS / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline_s - time.time()) * 1000))


class LwaServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, handler: StreamHandler, host: str = "127.0.0.1") -> None:
        self.handler = handler
        super().__init__((host, port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: LwaServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # the handler logs each request itself
        return

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path == READY_PATH:
            send_live(self, LiveResponse(200, {"content-type": "text/plain"}, (b"ready",)))
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("x-amzn-request-context", "x-amzn-lambda-context")}
        try:
            request_context = json.loads(self.headers.get("x-amzn-request-context") or "{}")
        except ValueError:
            request_context = {}
        event = rest_event(self.command, self.path, headers, body, request_context)
        response = self.server.handler(event, LwaContext(self.headers.get("x-amzn-lambda-context")))
        send_live(self, response)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle


def send_live(handler: BaseHTTPRequestHandler, response: LiveResponse) -> bool:
    """Write `response` chunked, each chunk as soon as the body yields it; False (and the body
    closed) if the peer went away first.

    The answer to a HEAD request is its headers alone (RFC 9110 §9.3.2): its client reads no body,
    so a body written after it would be read as the status line of the connection's next response
    (LWA keeps its connection to this server from one invocation to the next)."""
    try:
        handler.send_response(response.status)
        for key, value in response.headers.items():
            if key.lower() not in _SKIP:
                handler.send_header(key, value)
        handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()
        if handler.command != "HEAD":
            for chunk in response.body:
                if chunk:
                    handler.wfile.write(b"%X\r\n%s\r\n" % (len(chunk), chunk))
                    handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()
        return True
    except OSError:
        handler.close_connection = True
        return False
    finally:
        response.close()


def load_stream_handler(spec: str) -> StreamHandler:
    """`module:function`, the module imported from the current directory (the function's code)."""
    module_name, _, attribute = spec.partition(":")
    sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    handler: StreamHandler = getattr(module, attribute or "stream_handler")
    return handler


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m llm_gateway.api.lwa module:stream_handler", file=sys.stderr)
        return 2
    handler = load_stream_handler(argv[0])  # cold start first: LWA's readiness check waits for it
    port = int(os.environ.get("AWS_LWA_PORT") or os.environ.get("PORT") or 8080)
    server = LwaServer(port, handler)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
