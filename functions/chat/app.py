"""Chat Lambda: HTTP in and out, nothing else. All logic lives in the `llm_gateway` layer.

The cyclic garbage collector is paused while the container initialises (imports, catalog,
gateway) and the survivors are then frozen: init only allocates what the container keeps, so
collections during it found nothing to free and cost a cold start about 10 % (measured with
`benchmarks/bench_cold_start.py`); frozen objects are also skipped by every later collection.
"""

from __future__ import annotations

import gc

_GC_WAS_ENABLED = gc.isenabled()
gc.disable()

from typing import Any
from urllib.parse import unquote

from llm_gateway.lazy_packages import defer_package_init

# Powertools' event_handler/__init__ imports every resolver (AppSync brings asyncio), and
# data_classes/__init__ every event type; this function needs the REST resolver's.
defer_package_init("aws_lambda_powertools.event_handler")
defer_package_init("aws_lambda_powertools.utilities.data_classes")

from aws_lambda_powertools.event_handler import content_types
from aws_lambda_powertools.event_handler.api_gateway import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from llm_gateway.api import live
from llm_gateway.api.admin import require_admin
from llm_gateway.api.auth import authenticate
from llm_gateway.api.body import parse_json_body
from llm_gateway.api.cache import TtlValue
from llm_gateway.api.errors import (
    InvalidRequest,
)
from llm_gateway.api.resolver_errors import register_error_handlers
from llm_gateway.api.response_body import json_text
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.config import load_settings
from llm_gateway.gateway import ChatOutcome, build_gateway
from llm_gateway.observability.logging import redact
from llm_gateway.rollout.cohorts import GATEWAY

try:
    gateway = build_gateway(load_settings())
finally:
    if _GC_WAS_ENABLED:
        gc.enable()
gc.freeze()
logger = gateway.logger
app = APIGatewayRestResolver()
status_cache: TtlValue[dict[str, Any]] = TtlValue(ttl_s=gateway.settings.status_cache_s)


def _request_id() -> str:
    return str(app.current_event.request_context.request_id or "")


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    text = json_text(body)
    if status >= 400:  # error text can quote what others sent us; no configured key leaves in it
        text = redact(text)
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=text,
        headers={"x-request-id": _request_id(), **(headers or {})},
    )


def _parse_body() -> dict[str, Any]:
    try:
        raw = app.current_event.decoded_body or ""
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest("The request body is not UTF-8 JSON.", code="invalid_json") from exc
    return parse_json_body(raw, gateway.settings.max_body_bytes)


def _outcome(outcome: ChatOutcome) -> Response:
    if outcome.sse_stream is not None:  # sent by stream_handler as it comes; status and headers now
        live.hand_over(outcome.sse_stream)
        return Response(
            status_code=outcome.status, content_type="text/event-stream", body="",
            headers={"cache-control": "no-cache", **outcome.headers},
        )
    if outcome.sse_body is not None:
        return Response(
            status_code=outcome.status, content_type="text/event-stream", body=outcome.sse_body,
            headers={"cache-control": "no-cache", **outcome.headers},
        )
    return _json(outcome.status, outcome.json_body or {}, outcome.headers)


@app.post("/v1/chat/completions")
def chat_completions() -> Response:
    caller = gateway.authenticate(app.current_event.headers.get("authorization"))
    request = ChatCompletionRequest.model_validate(_parse_body())
    cohort = gateway.cohort_for(caller, request)
    app.append_context(cohort=cohort)  # for handle_unexpected: a bug past here is this cohort's error
    remaining_s = app.lambda_context.get_remaining_time_in_millis() / 1000
    return _outcome(gateway.chat(request, caller, _request_id(), remaining_s=remaining_s, live=live.is_streaming(),
                                 cohort=cohort))


@app.get("/v1/models")
def list_models() -> Response:
    gateway.authenticate(app.current_event.headers.get("authorization"))
    return _json(200, gateway.list_models().model_dump())


MODEL_PATH = "/v1/models/"


# A regex rule, not `/v1/models/<model>`: Powertools' <param> matches one path segment, and model
# ids hold slashes (`groq/openai/gpt-oss-20b`). Current openai-python sends them percent-encoded
# as one segment (`groq%2Fopenai%2Fgpt-oss-20b`), older SDKs and curl users raw; API Gateway's
# greedy `/v1/models/{model+}` takes both, and the id is decoded here once.
@app.get(MODEL_PATH + ".+")
def retrieve_model() -> Response:
    gateway.authenticate(app.current_event.headers.get("authorization"))
    path = app.current_event.path
    model_id = unquote(path[path.index(MODEL_PATH) + len(MODEL_PATH):].rstrip("/"))
    return _json(200, gateway.retrieve_model(model_id).model_dump())


@app.get("/v1/status")
def status() -> Response:
    """Operators only (admin keys, static or issued), and cached: see api/admin.py and api/cache.py."""
    _admin()
    return _json(200, status_cache.get(gateway.status))


# --- users: keys (admin keys only) and usage (any key; admins for other users) ------------------------
def _admin() -> None:
    require_admin(gateway.core.keys.current(), app.current_event.headers.get("authorization"),
                  gateway.core.tenancy.directory)


def _key_body() -> dict[str, Any]:
    body = _parse_body()
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    return body


@app.post("/v1/admin/keys")
def create_key() -> Response:
    _admin()
    return _json(201, gateway.core.tenancy.admin.create(_key_body()))


@app.get("/v1/admin/keys")
def list_keys() -> Response:
    _admin()
    return _json(200, gateway.core.tenancy.admin.list(app.current_event.query_string_parameters.get("user")))


@app.patch("/v1/admin/keys/<key_id>")
def update_key(key_id: str) -> Response:
    _admin()
    return _json(200, gateway.core.tenancy.admin.update(key_id, _key_body()))


@app.delete("/v1/admin/keys/<key_id>")
def revoke_key(key_id: str) -> Response:
    _admin()
    return _json(200, gateway.core.tenancy.admin.revoke(key_id))


@app.get("/v1/usage")
def usage() -> Response:
    caller = authenticate(gateway.core.keys.current(), app.current_event.headers.get("authorization"),
                          gateway.core.tenancy.directory, admins_too=True)
    query = dict(app.current_event.query_string_parameters or {})
    return _json(200, gateway.core.tenancy.usage(user=caller.user, policy=caller.policy, admin=caller.admin,
                                                 query=query))


# A bug is counted with the request's cohort, the series the rollback alarms (ChatErrorRateAlarm,
# GatewayCohortErrorRateAlarm) read; a bug before the cohort is known (body parsing,
# authentication) is held against the gateway cohort, the new code.
register_error_handlers(app, _json, lambda: gateway.metrics, logger,
                        dimensions=lambda: {"cohort": app.context.get("cohort", GATEWAY)},
                        headers=lambda: {"x-gateway-cohort": app.context["cohort"]} if "cohort" in app.context else {})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A buffered invocation: every response whole (`stream: true` too, as one SSE body)."""
    return app.resolve(event, context)


def stream_handler(event: dict[str, Any], context: LambdaContext) -> live.LiveResponse:
    """A streaming invocation (AWS: API Gateway STREAM + Lambda Web Adapter, `llm_gateway/api/lwa.py`;
    locally: `make dev`): the same routes, and a `stream: true` chat answer is sent as it is produced."""
    with live.streaming() as body:
        result = lambda_handler(event, context)
    return live.LiveResponse.from_proxy(result, body)
