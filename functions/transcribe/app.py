"""Transcribe Lambda: HTTP (and job events) in and out, nothing else. Logic lives in the layer.

Routes (API Gateway REST, `multipart/form-data` delivered base64-encoded via BinaryMediaTypes):
  POST /v1/audio/transcriptions, /v1/audio/translations   form: `file` or `file_id`, + fields
  POST /v1/audio/uploads                                  JSON: {filename, bytes, content_type}
  POST /v1/audio/jobs                                     JSON: TranscriptionJobRequest → 202
  GET  /v1/audio/jobs/{id}
and the job runner: an asynchronous self-invocation with `{"llm_gateway_job": "<id>"}`.
Every route authenticates the caller and passes it on: uploads and jobs belong to its user, and
a transcription is held to its limits (a job to its creator's, resolved again when it runs).

The garbage collector is paused during init and the survivors frozen, as in the chat handler.
"""

from __future__ import annotations

import gc

_GC_WAS_ENABLED = gc.isenabled()
gc.disable()

import json
from typing import Any

from llm_gateway.lazy_packages import defer_package_init

defer_package_init("aws_lambda_powertools.event_handler")
defer_package_init("aws_lambda_powertools.utilities.data_classes")

from aws_lambda_powertools.event_handler import content_types
from aws_lambda_powertools.event_handler.api_gateway import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from llm_gateway.api.audio_schemas import TranscriptionJobRequest, TranscriptionRequest, UploadRequest
from llm_gateway.api.body import parse_json_body
from llm_gateway.api.errors import InvalidRequest
from llm_gateway.api.forms import event_body, header, parse_form
from llm_gateway.api.resolver_errors import register_error_handlers
from llm_gateway.config import load_settings
from llm_gateway.jobs.launcher import job_id_of
from llm_gateway.observability.logging import redact
from llm_gateway.speech import build_speech
from llm_gateway.transcription.gateway import TranscriptionOutcome

JOB_REMAINING_S_LOCAL = None  # a local job thread has no Lambda clock: the job deadline alone applies


def _run_job_locally(job_id: str) -> None:
    speech.jobs.run(job_id, runner=f"local-{job_id[4:16]}", remaining_s=JOB_REMAINING_S_LOCAL)


try:
    speech = build_speech(load_settings(), run_locally=_run_job_locally)
finally:
    if _GC_WAS_ENABLED:
        gc.enable()
gc.freeze()
logger = speech.logger
app = APIGatewayRestResolver()


def _request_id() -> str:
    return str(app.current_event.request_context.request_id or "")


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    text = json.dumps(body)
    if status >= 400:  # error text can quote what others sent us; no configured key leaves in it
        text = redact(text)
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=text,
                    headers={"x-request-id": _request_id(), **(headers or {})})


def _outcome(outcome: TranscriptionOutcome) -> Response:
    body = redact(outcome.body) if outcome.status >= 400 else outcome.body
    return Response(status_code=outcome.status, content_type=outcome.content_type, body=body,
                    headers={"x-request-id": _request_id(), **outcome.headers})


def _remaining_s() -> float:
    return app.lambda_context.get_remaining_time_in_millis() / 1000


def _authenticate() -> Any:
    """The caller (`api.auth.Caller`): its limits and budgets apply to what it asks for."""
    return speech.authenticate(app.current_event.headers.get("authorization"))


def _json_body() -> dict[str, Any]:
    event = app.current_event
    raw = event_body(event.get("body"), bool(event.get("isBase64Encoded")), speech.settings.max_body_bytes)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("The request body is not UTF-8 JSON.", code="invalid_json") from exc
    return parse_json_body(text, speech.settings.max_body_bytes)


def _transcribe(translate: bool) -> Response:
    caller = _authenticate()
    event = app.current_event
    max_bytes = speech.settings.max_body_bytes
    body = event_body(event.get("body"), bool(event.get("isBase64Encoded")), max_bytes)
    form = parse_form(body, header(event.get("headers"), "content-type"), max_bytes=max_bytes)
    request = TranscriptionRequest.from_form(form.fields)
    return _outcome(speech.desk.transcribe(request, form.file, translate=translate, request_id=_request_id(),
                                           remaining_s=_remaining_s(), caller=caller))


@app.post("/v1/audio/transcriptions")
def transcriptions() -> Response:
    return _transcribe(translate=False)


@app.post("/v1/audio/translations")
def translations() -> Response:
    return _transcribe(translate=True)


@app.post("/v1/audio/uploads")
def uploads() -> Response:
    caller = _authenticate()
    return _json(200, speech.uploads.create(UploadRequest.model_validate(_json_body()), owner=caller.user))


@app.post("/v1/audio/jobs")
def submit_job() -> Response:
    caller = _authenticate()
    request = TranscriptionJobRequest.model_validate(_json_body())
    job = speech.jobs.submit(request, caller=caller, function=app.lambda_context.invoked_function_arn)
    return _json(202, job)


@app.get("/v1/audio/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    return _json(200, speech.jobs.get(job_id, caller=_authenticate()))


register_error_handlers(app, _json, lambda: speech.metrics, logger)


def _run_job(job_id: str, context: LambdaContext) -> dict[str, Any]:
    remaining_s = context.get_remaining_time_in_millis() / 1000
    status = speech.jobs.run(job_id, runner=context.aws_request_id, remaining_s=remaining_s)
    logger.info("job run ended", extra={"job_id": job_id, "status": status})
    return {"job_id": job_id, "status": status}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job_id = job_id_of(event)
    if job_id is not None:
        return _run_job(job_id, context)
    return app.resolve(event, context)
