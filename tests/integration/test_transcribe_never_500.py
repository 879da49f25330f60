"""Nothing a caller sends crashes the transcribe handler: arbitrary bodies, content types,
boundaries, fields and ids on every route are answered below 500, in OpenAI's error shape.

In-memory uploads and jobs (no servers), a fake façade; the handler module is the real one.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_gateway.config import load_settings
from llm_gateway.jobs.callers import KeyCallers
from llm_gateway.jobs.store import MemoryJobStore
from llm_gateway.speech import build_speech
from llm_gateway.uploads.objects import MemoryAudioObjects
from sandbox.apigw import LocalContext, load_handler_module, make_event
from tests.transcribe_helpers import BOUNDARY, FakeTranscriber, NoLaunch, form_body

ROUTES = [("POST", "/v1/audio/transcriptions"), ("POST", "/v1/audio/translations"), ("POST", "/v1/audio/uploads"),
          ("POST", "/v1/audio/jobs"), ("GET", "/v1/audio/jobs/job-x"), ("GET", "/v1/audio/jobs/%00"),
          ("PUT", "/v1/audio/uploads"), ("POST", "/v1/audio/unknown")]
FIELDS = ["model", "language", "prompt", "temperature", "response_format", "timestamp_granularities[]", "file_id",
          "stream", "user", "file"]



@pytest.fixture(scope="module")
def handler():
    mp = pytest.MonkeyPatch()
    import os

    for name in list(os.environ):
        if name.startswith("LLM_GATEWAY_") or name.endswith(("_API_KEY", "_BASE_URL", "_MODELS")):
            mp.delenv(name)
    mp.setenv("LLM_GATEWAY_LOCAL", "1")
    mp.setenv("LLM_GATEWAY_MAX_BODY_BYTES", "20000")
    module = load_handler_module("transcribe", instance="never500")
    s = load_settings()
    fake = FakeTranscriber(s)
    module.speech = build_speech(s, transcriber=fake, job_transcriber=fake, objects=MemoryAudioObjects(),
                                 job_store=MemoryJobStore(), launcher=NoLaunch(), callers=KeyCallers(fake.key_store))
    yield module
    mp.undo()


def send(module: Any, method: str, path: str, body: bytes, content_type: str | None) -> tuple[int, Any]:
    headers = {"authorization": "Bearer local-dev-key"}
    if content_type is not None:
        headers["content-type"] = content_type
    result = module.lambda_handler(make_event(method, path, headers, body), LocalContext(function_name="transcribe"))
    return int(result["statusCode"]), result.get("body")


def check(status: int, body: Any) -> None:
    assert status < 500, (status, body)
    if status >= 400:
        error = json.loads(body)["error"]
        assert {"message", "type", "param", "code"} <= set(error)


content_types = st.one_of(
    st.none(), st.just(f"multipart/form-data; boundary={BOUNDARY}"), st.just("application/json"),
    st.text(max_size=80).map(lambda t: f"multipart/form-data; boundary={t}"),
    st.text(max_size=60),
)
values = st.one_of(st.text(max_size=50), st.sampled_from(["auto", "json", "xml", "-1", "1e999", "nan", "true",
                                                          "file-" + "A" * 32, "word", ""]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), body=st.binary(max_size=400), content_type=content_types)
def test_raw_bodies_never_500(handler, route, body, content_type):
    check(*send(handler, *route, body, content_type))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.dictionaries(st.sampled_from(FIELDS), values, max_size=6),
       file=st.one_of(st.none(), st.tuples(st.text(max_size=30), st.text(max_size=30), st.binary(max_size=64))),
       cut=st.integers(min_value=0, max_value=40), translate=st.booleans())
def test_forms_never_500(handler, fields, file, cut, translate):
    body = form_body(fields, file)
    if cut:
        body = body[:-cut]
    path = "/v1/audio/translations" if translate else "/v1/audio/transcriptions"
    check(*send(handler, "POST", path, body, f"multipart/form-data; boundary={BOUNDARY}"))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(["file_id", "model", "response_format", "filename", "bytes",
                                             "content_type", "translate", "temperature", "language"]),
                            st.one_of(values, st.integers(), st.floats(allow_nan=False), st.none(), st.booleans()),
                            max_size=6),
       path=st.sampled_from(["/v1/audio/uploads", "/v1/audio/jobs"]))
def test_json_routes_never_500(handler, body, path):
    check(*send(handler, "POST", path, json.dumps(body).encode(), "application/json"))
