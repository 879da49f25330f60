"""The transcribe handler as Lambda runs it (a fresh module, API Gateway REST events), with the
transcription façade replaced by a fake (the routing core is not part of these tests), S3 and
DynamoDB as moto servers on loopback, and every upload PUT over HTTP to its presigned URL.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from llm_gateway.api.auth import Caller
from llm_gateway.api.errors import GatewayError
from llm_gateway.config import load_settings
from llm_gateway.jobs.callers import KeyCallers
from llm_gateway.jobs.dynamodb import DynamoJobStore
from llm_gateway.jobs.launcher import job_event
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.speech import build_speech
from llm_gateway.tenancy.keys import KeyRecord, issue, revise
from llm_gateway.tenancy.policy import Policy
from llm_gateway.transcription.gateway import AudioInput
from llm_gateway.uploads.objects import UPLOAD_PREFIX
from llm_gateway.uploads.s3 import S3AudioObjects
from sandbox.apigw import LocalContext, load_handler_module, make_event
from tests.transcribe_helpers import BOUNDARY, FakeTranscriber, form_body, tone_wav

DEV_KEY = "local-dev-key"  # locally, also an admin key
STATIC_KEY = "static-client-" + "s" * 32  # a static client key, not an admin's
_instances = iter(range(10**6))


@pytest.fixture(scope="module")
def aws() -> Iterator[dict[str, Any]]:
    from sandbox.local_dynamodb import start_local_dynamodb
    from sandbox.local_s3 import start_local_s3

    s3, dynamo = start_local_s3(), start_local_dynamodb()
    yield {"s3": s3, "dynamo": dynamo}
    s3.stop()
    dynamo.stop()


class Clock:
    def __init__(self) -> None:
        self.now = time.time()  # S3 stamps objects with the real time

    def __call__(self) -> float:
        return self.now


@dataclass
class RecordingLauncher:
    launched: list[tuple[str, str | None]] = field(default_factory=list)
    fail: bool = False

    def launch(self, job_id: str, function: str | None) -> None:
        if self.fail:
            raise RuntimeError("throttled")
        self.launched.append((job_id, function))


@dataclass
class Rig:
    module: ModuleType
    fake: FakeTranscriber
    launcher: RecordingLauncher
    clock: Clock
    s3: Any
    bucket: str

    def call(self, method: str, path: str, body: bytes = b"", content_type: str | None = None,
             key: str | None = DEV_KEY, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        sent = {"authorization": f"Bearer {key}"} if key else {}
        if content_type:
            sent["content-type"] = content_type
        sent.update(headers or {})
        event = make_event(method, path, sent, body)
        result = self.module.lambda_handler(event, LocalContext(function_name="transcribe"))
        out_headers = {k.lower(): v[-1] for k, v in (result.get("multiValueHeaders") or {}).items()}
        out_headers.update({k.lower(): v for k, v in (result.get("headers") or {}).items()})
        text = result.get("body") or ""
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        return int(result["statusCode"]), out_headers, parsed

    def transcribe(self, fields: dict[str, str], file: tuple[str, str, bytes] | None = None,
                   path: str = "/v1/audio/transcriptions", key: str = DEV_KEY) -> tuple[int, dict[str, str], Any]:
        return self.call("POST", path, form_body(fields, file), f"multipart/form-data; boundary={BOUNDARY}", key=key)

    def post_json(self, path: str, body: dict[str, Any], key: str = DEV_KEY) -> tuple[int, dict[str, str], Any]:
        return self.call("POST", path, json.dumps(body).encode(), "application/json", key=key)

    def upload(self, data: bytes, filename: str = "talk.wav", put: bytes | None = None, key: str = DEV_KEY) -> str:
        status, _, answer = self.post_json("/v1/audio/uploads", {"filename": filename, "bytes": len(data),
                                                                 "content_type": "audio/wav"}, key=key)
        assert status == 200, answer
        assert answer["method"] == "PUT"
        headers = dict(answer["headers"])
        if put is not None:  # another body than announced: its own Content-Length (S3 would refuse it)
            headers.pop("Content-Length")
        response = httpx.put(answer["upload_url"], headers=headers, content=data if put is None else put)
        assert response.status_code == 200, response.text
        return str(answer["id"])

    def exists(self, file_id: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=UPLOAD_PREFIX + file_id)
        except Exception:
            return False
        return True

    def run_job(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.module.lambda_handler(
            job_event(job_id), LocalContext(function_name="transcribe", timeout_ms=900_000))
        return result


@pytest.fixture
def rig(aws, clean_gateway_env) -> Rig:
    monkeypatch = clean_gateway_env
    monkeypatch.setenv("LLM_GATEWAY_LOCAL", "1")
    monkeypatch.setenv("LLM_GATEWAY_MAX_BODY_BYTES", "200000")
    monkeypatch.setenv("LLM_GATEWAY_API_KEYS", STATIC_KEY)
    module = load_handler_module("transcribe", instance=f"handler_{next(_instances)}")
    settings = load_settings()
    fake, launcher, clock = FakeTranscriber(settings), RecordingLauncher(), Clock()
    s3 = aws["s3"].client()
    objects = S3AudioObjects(s3, aws["s3"].bucket, wall=clock)
    store = DynamoJobStore(aws["dynamo"].client(), aws["dynamo"].table_name)
    module.speech = build_speech(settings, transcriber=fake, job_transcriber=fake, objects=objects, job_store=store,
                                 launcher=launcher, callers=KeyCallers(fake.key_store), wall=clock)
    return Rig(module, fake, launcher, clock, s3, aws["s3"].bucket)


def assert_error(status: int, body: Any, expected_status: int, code: str | None = None) -> dict[str, Any]:
    assert status == expected_status, (status, body)
    error = body["error"]
    assert {"message", "type", "param", "code"} <= set(error)
    if code is not None:
        assert error["code"] == code, error
    return dict(error)


# ------------------------------------------------------------------ transcriptions


def test_a_multipart_transcription_reaches_the_facade_and_comes_back(rig):
    wav = tone_wav()
    status, headers, body = rig.transcribe({"model": "auto", "language": "en", "response_format": "json"},
                                           ("tone.wav", "audio/wav", wav))
    assert status == 200, body
    assert body["text"] == f"{len(wav)} bytes from tone.wav"
    assert headers["x-gateway-provider"] == "fake" and headers["x-request-id"]
    (call,) = rig.fake.calls
    assert call["audio"].data == wav and call["audio"].url is None
    assert call["translate"] is False and call["request"].language == "en"
    assert call["remaining_s"] is not None and call["remaining_s"] > 0


def test_translations_ask_the_facade_to_translate(rig):
    status, _, _ = rig.transcribe({"model": "whisper-1"}, ("a.wav", "audio/wav", tone_wav()),
                                  path="/v1/audio/translations")
    assert status == 200 and rig.fake.calls[-1]["translate"] is True


def test_text_answers_keep_their_content_type(rig):
    rig.fake.content_type, rig.fake.text_body = "text/plain; charset=utf-8", "hello world"
    status, headers, body = rig.transcribe({"model": "auto", "response_format": "text"}, ("a.wav", "audio/wav", b"x"))
    assert status == 200 and body == "hello world" and headers["content-type"].startswith("text/plain")


def test_the_sdk_style_timestamp_granularities_array_is_read(rig):
    body = form_body({"model": "auto", "response_format": "verbose_json"}, ("a.wav", "audio/wav", b"x"),
                     repeated=[("timestamp_granularities[]", "word"), ("timestamp_granularities[]", "segment")])
    status, _, _ = rig.call("POST", "/v1/audio/transcriptions", body, f"multipart/form-data; boundary={BOUNDARY}")
    assert status == 200
    assert rig.fake.calls[-1]["request"].timestamp_granularities == ("word", "segment")


def test_no_key_is_a_401(rig):
    status, _, body = rig.call("POST", "/v1/audio/transcriptions", form_body({"model": "auto"}, None),
                               f"multipart/form-data; boundary={BOUNDARY}", key=None)
    assert_error(status, body, 401, "invalid_api_key")
    status, _, body = rig.call("GET", "/v1/audio/jobs/job-x", key="wrong-key-wrong-key-wrong-key-wrong")
    assert_error(status, body, 401)


@pytest.mark.parametrize(("content_type", "body", "code"), [
    (None, b"--x\r\n", "invalid_content_type"),
    ("application/json", b'{"model": "auto"}', "invalid_content_type"),
    ("multipart/form-data", b"--x\r\n", "invalid_content_type"),
    ("multipart/form-data; boundary=", b"--x\r\n", "invalid_content_type"),
    (f"multipart/form-data; boundary={BOUNDARY}", b"", "invalid_body"),
    (f"multipart/form-data; boundary={BOUNDARY}", b"no boundary anywhere in here", "invalid_multipart"),
    (f"multipart/form-data; boundary={BOUNDARY}",
     form_body({"model": "auto"}, ("a.wav", "audio/wav", b"abc"))[:-20], "invalid_multipart"),
    (f"multipart/form-data; boundary={BOUNDARY}", form_body({"model": "auto"}, None), "missing_file"),
    (f"multipart/form-data; boundary={BOUNDARY}", form_body({"model": "auto"}, ("a.wav", "audio/wav", b"")),
     "audio_empty"),  # the code the README documents for empty audio (it was `empty_file`)
    (f"multipart/form-data; boundary={BOUNDARY}",
     form_body({"model": "auto", "file_id": "file-" + "A" * 32}, ("a.wav", "audio/wav", b"x")), "invalid_value"),
    (f"multipart/form-data; boundary={BOUNDARY}", form_body({}, ("a.wav", "audio/wav", b"x")), None),
    (f"multipart/form-data; boundary={BOUNDARY}",
     form_body({"model": "auto", "response_format": "xml"}, ("a.wav", "audio/wav", b"x")), None),
    (f"multipart/form-data; boundary={BOUNDARY}",
     form_body({"model": "auto", "stream": "true"}, ("a.wav", "audio/wav", b"x")), None),
    (f"multipart/form-data; boundary={BOUNDARY}",
     form_body({"model": "auto", "temperature": "hot"}, ("a.wav", "audio/wav", b"x")), None),
    (f"multipart/form-data; boundary={BOUNDARY}",  # utf-7 read "+AGE-uto" as "auto"
     form_body({"model": "+AGE-uto"}, ("a.wav", "audio/wav", b"x")).replace(
         b'name="model"\r\n', b'name="model"\r\nContent-Type: text/plain; charset=utf-7\r\n'), "unsupported_charset"),
])
def test_bad_multipart_is_a_clean_400(rig, content_type, body, code):
    status, headers, answer = rig.call("POST", "/v1/audio/transcriptions", body, content_type)
    error = assert_error(status, answer, 400, code)
    assert error["type"] == "invalid_request_error" and headers["x-request-id"]
    assert not rig.fake.calls


def test_a_body_over_the_cap_is_a_413_before_parsing(rig):
    big = form_body({"model": "auto"}, ("a.wav", "audio/wav", b"\0" * 250_000))
    status, _, body = rig.call("POST", "/v1/audio/transcriptions", big, f"multipart/form-data; boundary={BOUNDARY}")
    error = assert_error(status, body, 413, "body_too_large")
    assert "/v1/audio/uploads" in error["message"]


def test_a_body_that_is_not_base64_is_a_400(rig):
    event = make_event("POST", "/v1/audio/transcriptions", {"authorization": f"Bearer {DEV_KEY}",
                       "content-type": f"multipart/form-data; boundary={BOUNDARY}"}, b"\xff\xfe")
    event["body"] = "!!! not base64 !!!"
    result = rig.module.lambda_handler(event, LocalContext(function_name="transcribe"))
    assert_error(int(result["statusCode"]), json.loads(result["body"]), 400, "invalid_body")


def test_a_facade_error_is_rendered_in_openai_format(rig):
    rig.fake.error = GatewayError("All providers failed.", code="all_providers_failed", status=503)
    status, _, body = rig.transcribe({"model": "auto"}, ("a.wav", "audio/wav", b"x"))
    assert_error(status, body, 503, "all_providers_failed")


def test_an_unexpected_exception_is_a_counted_500(rig):
    rig.fake.crash = True
    recording = RecordingMetrics()
    rig.fake.metrics = recording
    status, _, body = rig.transcribe({"model": "auto"}, ("a.wav", "audio/wav", b"x"))
    assert_error(status, body, 500, "internal_error")
    assert [(r.name, r.dimensions) for r in recording.records] == [("UserVisibleErrors", ())]


# ------------------------------------------------------------------ uploads


def test_upload_put_transcribe_by_file_id_then_the_object_is_gone(rig):
    wav = tone_wav()
    file_id = rig.upload(wav, filename="réunion.wav")
    assert file_id.startswith("file-") and len(file_id) >= 5 + 32 and rig.exists(file_id)
    status, _, body = rig.transcribe({"model": "auto", "file_id": file_id})
    assert status == 200, body
    audio: AudioInput = rig.fake.calls[-1]["audio"]
    assert audio.data == wav and audio.filename == "réunion.wav"
    assert audio.url and file_id in audio.url and "X-Amz-Signature=" in audio.url
    assert httpx.get(audio.url).content == wav or not rig.exists(file_id)
    assert not rig.exists(file_id)
    status, _, body = rig.transcribe({"model": "auto", "file_id": file_id})
    assert_error(status, body, 404, "file_not_found")


def test_a_failed_transcription_keeps_the_upload_for_a_retry(rig):
    file_id = rig.upload(tone_wav())
    rig.fake.error = GatewayError("Rate limited everywhere.", code="rate_limited", status=429)
    status, _, body = rig.transcribe({"model": "auto", "file_id": file_id})
    assert_error(status, body, 429)
    assert rig.exists(file_id)


def test_the_presigned_put_signs_the_size_type_and_name(rig):
    status, _, answer = rig.post_json("/v1/audio/uploads", {"filename": "a b.mp3", "bytes": 1234,
                                                            "content_type": "audio/mpeg"})
    assert status == 200
    signed = httpx.URL(answer["upload_url"]).params["X-Amz-SignedHeaders"].split(";")
    assert {"content-length", "content-type", "x-amz-meta-announced-bytes", "x-amz-meta-filename"} <= set(signed)
    assert int(httpx.URL(answer["upload_url"]).params["X-Amz-Expires"]) == 900
    assert answer["headers"]["Content-Length"] == "1234" and answer["expires_at"] == int(rig.clock.now) + 900


def test_an_upload_url_writes_its_object_once(rig):
    """A presigned PUT could be sent again, with the same signed size and headers, until it
    expired: after the gateway had measured the audio and lent a provider a GET URL of it (every
    upload over Replicate's 1 MB, Gemini's 14 MB or Groq's 25 MB inline limit is fetched by the
    provider), the same key could be overwritten with other audio of the same size but far longer
    (a lower bitrate), which the provider then transcribed and billed against the measured length.
    The URL now signs `If-None-Match: *`: S3 refuses a second write of the key."""
    status, _, answer = rig.post_json("/v1/audio/uploads", {"filename": "talk.wav", "bytes": 3,
                                                            "content_type": "audio/wav"})
    assert status == 200
    assert "if-none-match" in httpx.URL(answer["upload_url"]).params["X-Amz-SignedHeaders"].split(";")
    assert answer["headers"]["If-None-Match"] == "*"
    assert httpx.put(answer["upload_url"], headers=answer["headers"], content=b"abc").status_code == 200
    again = httpx.put(answer["upload_url"], headers=answer["headers"], content=b"xyz")
    assert again.status_code == 412
    stored = rig.s3.get_object(Bucket=rig.bucket, Key=UPLOAD_PREFIX + answer["id"])["Body"].read()
    assert stored == b"abc"


def test_a_filename_s3_cannot_keep_is_a_400_not_a_url_s3_refuses(rig):
    """S3 keeps at most 2 KB of user metadata (keys and values, UTF-8), and the filename goes there
    percent-encoded: 255 CJK characters are 2,295 bytes. The gateway answered 200 with an upload
    URL that S3 then refused (400 MetadataTooLarge, XML) on every PUT; moto does not check it."""
    status, _, body = rig.post_json("/v1/audio/uploads", {"filename": "語" * 255, "bytes": 3})
    error = assert_error(status, body, 400, "filename_too_long")
    assert error["param"] == "filename"
    status, _, answer = rig.post_json("/v1/audio/uploads", {"filename": "語" * 200 + ".wav", "bytes": 3})
    assert status == 200, answer


def test_an_object_that_is_not_what_was_announced_is_refused(rig):
    # moto does not check signatures; S3 would refuse this PUT. The gateway checks again anyway.
    file_id = rig.upload(b"0123456789", put=b"0123456789-and-more")
    status, _, body = rig.transcribe({"model": "auto", "file_id": file_id})
    assert_error(status, body, 400, "upload_mismatch")
    assert not rig.fake.calls


def test_an_upload_older_than_a_day_is_not_found(rig):
    file_id = rig.upload(b"abc")
    rig.clock.now += 2 * 86_400
    status, _, body = rig.transcribe({"model": "auto", "file_id": file_id})
    assert_error(status, body, 404, "file_not_found")


@pytest.mark.parametrize("file_id", ["file-nope", "file-" + "A" * 32, "../../etc/passwd", "x" * 128])
def test_unknown_file_ids_are_404(rig, file_id):
    status, _, body = rig.transcribe({"model": "auto", "file_id": file_id})
    assert_error(status, body, 404, "file_not_found")


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"filename": "a.wav", "bytes": 0}, 400, None),
    ({"filename": "", "bytes": 10}, 400, None),
    ({"filename": "a.wav", "bytes": 300 * 1024 * 1024}, 413, "upload_too_large"),
    ({"filename": "a.wav", "bytes": 2 * 1024**3}, 400, None),
])
def test_bad_upload_announcements(rig, body, status, code):
    got, _, answer = rig.post_json("/v1/audio/uploads", body)
    assert_error(got, answer, status, code)


@pytest.mark.parametrize("content_type", ["audio/mpeg\r\nX-Evil: 1", "", " ", "audio/mp\u00e9g", "audio/mpeg\u0000",
                                          "mpeg", "audio/", "audio/mpeg\r\n;X-Evil: 1", "audio/mpeg\n;a=b",
                                          "audio/mpeg\u2028;a=b", "audio/mpeg\u00a0;a=b"])
def test_an_upload_content_type_no_http_header_can_carry_is_a_400(rig, content_type):
    """The answer's `headers` must be sent as they are and are signed into the URL: a value with a
    line break, a control or non-ASCII character, or no `type/subtype` at all, cannot be sent (or
    is dropped, as curl drops an empty header), so the upload could only fail at S3. It was a 200."""
    got, _, answer = rig.post_json("/v1/audio/uploads", {"filename": "a.mp3", "bytes": 10,
                                                         "content_type": content_type})
    assert_error(got, answer, 400)
    assert answer["error"]["param"] == "content_type"


@pytest.mark.parametrize("content_type", ["audio/mpeg", "audio/webm;codecs=opus", 'audio/ogg; codecs="opus"',
                                          "application/octet-stream", "audio/x-m4a"])
def test_ordinary_upload_content_types_are_accepted(rig, content_type):
    got, _, answer = rig.post_json("/v1/audio/uploads", {"filename": "a.mp3", "bytes": 10,
                                                         "content_type": content_type})
    assert got == 200 and answer["headers"]["Content-Type"] == content_type


def test_upload_body_must_be_json(rig):
    status, _, body = rig.call("POST", "/v1/audio/uploads", b"not json", "application/json")
    assert_error(status, body, 400, "invalid_json")


# ------------------------------------------------------------------ jobs


def submit(rig: Rig, file_id: str, key: str = DEV_KEY, **fields: Any) -> str:
    status, _, body = rig.post_json("/v1/audio/jobs", {"file_id": file_id, **fields}, key=key)
    assert status == 202, body
    assert body["status"] == "queued" and body["id"].startswith("job-")
    return str(body["id"])


def get_job(rig: Rig, job_id: str, key: str = DEV_KEY) -> dict[str, Any]:
    status, _, body = rig.call("GET", f"/v1/audio/jobs/{job_id}", key=key)
    assert status == 200, body
    return dict(body)


def test_job_lifecycle_queued_running_succeeded(rig):
    wav = tone_wav()
    file_id = rig.upload(wav)
    job_id = submit(rig, file_id, model="auto", response_format="verbose_json")
    assert rig.launcher.launched == [(job_id, "arn:aws:lambda:us-east-1:000000000000:function:transcribe:live")]
    assert get_job(rig, job_id)["status"] == "queued"

    rig.fake.block = threading.Event()
    runner = threading.Thread(target=rig.run_job, args=(job_id,))
    runner.start()
    assert rig.fake.entered.wait(10)
    assert get_job(rig, job_id)["status"] == "running"
    rig.fake.block.set()
    runner.join(10)

    job = get_job(rig, job_id)
    assert job["status"] == "succeeded", job
    assert job["result"] == {"text": f"{len(wav)} bytes from talk.wav"}
    assert job["gateway"]["provider"] == "fake" and job["gateway"]["attempts"] == "1"
    assert job["response_format"] == "verbose_json" and "error" not in job
    assert job["expires_at"] >= rig.clock.now + 86_000
    assert rig.fake.calls[-1]["request"].response_format == "verbose_json"
    assert not rig.exists(file_id)
    assert rig.run_job(job_id) == {"job_id": job_id, "status": "skipped"}  # a second run never runs it again


def test_a_failed_job_carries_the_openai_error(rig):
    file_id = rig.upload(b"abc")
    job_id = submit(rig, file_id)
    rig.fake.error = GatewayError("The audio is not audio.", code="invalid_audio", status=400,
                                  error_type="invalid_request_error")
    assert rig.run_job(job_id)["status"] == "failed"
    job = get_job(rig, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "invalid_audio" and "result" not in job
    assert rig.exists(file_id)


def test_a_job_whose_runner_died_is_reported_failed(rig):
    job_id = submit(rig, rig.upload(b"abc"))
    now = rig.clock.now
    assert rig.module.speech.jobs.store.claim(job_id, "dead-runner", now, now + 900, int(now) + 86_400)
    rig.clock.now += 899
    assert get_job(rig, job_id)["status"] == "running"
    rig.clock.now += 2
    job = get_job(rig, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "job_timeout"
    # the late runner cannot overwrite it
    from llm_gateway.jobs.store import Finish

    assert not rig.module.speech.jobs.store.finish(job_id, "dead-runner", Finish("succeeded", result="x"),
                                                   rig.clock.now, int(rig.clock.now) + 10)


def test_a_job_whose_run_never_came_is_reported_failed_and_never_runs(rig):
    job_id = submit(rig, rig.upload(b"abc"))
    rig.clock.now += 901
    job = get_job(rig, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "job_not_started"
    assert rig.run_job(job_id)["status"] == "skipped" and not rig.fake.calls


def test_a_job_that_cannot_be_launched_is_a_503_and_recorded_failed(rig):
    rig.launcher.fail = True
    status, headers, body = rig.post_json("/v1/audio/jobs", {"file_id": rig.upload(b"abc")})
    assert_error(status, body, 503, "job_launch_failed")
    assert headers["retry-after"]


def test_a_job_for_a_missing_upload_is_a_404_at_once(rig):
    status, _, body = rig.post_json("/v1/audio/jobs", {"file_id": "file-" + "B" * 32})
    assert_error(status, body, 404, "file_not_found")
    assert not rig.launcher.launched


def test_a_large_result_goes_to_the_object_store(rig):
    rig.fake.content_type = "text/plain"
    rig.fake.text_body = "word " * 100_000  # 500 KB: more than a DynamoDB item holds
    job_id = submit(rig, rig.upload(b"abc"), response_format="text")
    assert rig.run_job(job_id)["status"] == "succeeded"
    assert get_job(rig, job_id)["result"] == "word " * 100_000


def test_a_stored_result_the_store_cannot_give_back_now_is_a_503_not_a_null_result(rig):
    """A succeeded job whose transcript is in S3 read as `succeeded` with `result: null` while S3
    was unreachable: a client takes that as the (empty) transcript and never asks again. It is a
    retryable 503 now, and the same GET answers the transcript once S3 is back."""
    import boto3
    from botocore.config import Config

    rig.fake.content_type = "text/plain"
    rig.fake.text_body = "word " * 100_000
    job_id = submit(rig, rig.upload(b"abc"), response_format="text")
    assert rig.run_job(job_id)["status"] == "succeeded"
    uploads = rig.module.speech.uploads
    reachable = uploads.objects
    dead = boto3.client("s3", endpoint_url="http://127.0.0.1:9", region_name="us-east-1", aws_access_key_id="x",
                        aws_secret_access_key="x",
                        config=Config(connect_timeout=0.2, read_timeout=0.2, retries={"max_attempts": 1}))
    uploads.objects = S3AudioObjects(dead, rig.bucket, wall=rig.clock)
    status, headers, body = rig.call("GET", f"/v1/audio/jobs/{job_id}")
    assert_error(status, body, 503, "storage_unavailable")
    assert headers["retry-after"]
    uploads.objects = reachable
    assert get_job(rig, job_id)["result"] == "word " * 100_000


@pytest.mark.parametrize("job_id", ["job-nope", "job-" + "C" * 32, "file-" + "A" * 32])
def test_unknown_jobs_are_404(rig, job_id):
    status, _, body = rig.call("GET", f"/v1/audio/jobs/{job_id}")
    assert_error(status, body, 404, "job_not_found")


@pytest.mark.parametrize("body", [{}, {"file_id": ""}, {"file_id": "f", "response_format": "xml"},
                                  {"file_id": "f", "temperature": 3}])
def test_bad_job_requests_are_400(rig, body):
    status, _, answer = rig.post_json("/v1/audio/jobs", body)
    assert_error(status, answer, 400)


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/audio/jobs", {"file_id": "f", "respone_format": "text"}, "respone_format"),
    ("/v1/audio/jobs", {"file_id": "f", "stream": True}, "stream"),
    ("/v1/audio/uploads", {"filename": "a.mp3", "bytes": 10, "purpose": "x"}, "purpose"),
])
def test_a_field_the_gateways_own_json_api_does_not_know_is_a_400_naming_it(rig, path, body, field):
    """Jobs and uploads are the gateway's own JSON API (no SDK adds fields to them): a misspelt
    `respone_format` was accepted with 202 and the job ran with the default format."""
    status, _, answer = rig.post_json(path, body)
    error = assert_error(status, answer, 400, "unknown_parameter")
    assert error["param"] == field


def test_job_runner_events_with_junk_ids_do_nothing(rig):
    for junk in ("", "job-../../x", "job-" + "D" * 32):
        assert rig.run_job(junk)["status"] == "skipped"


def test_the_event_file_runs_through_the_handler(rig):
    event = json.loads((Path(__file__).resolve().parents[2] / "events" / "transcribe.json").read_text(encoding="utf-8"))
    result = rig.module.lambda_handler(event, LocalContext(function_name="transcribe"))
    assert result["statusCode"] == 200, result
    audio = rig.fake.calls[-1]["audio"]
    assert audio.filename == "tone.wav" and audio.data.startswith(b"RIFF")
    assert base64.b64decode(event["body"]).count(audio.data) == 1


def test_job_state_unavailable_is_a_503_not_a_500(rig):
    import boto3
    from botocore.config import Config

    dead = boto3.client("dynamodb", endpoint_url="http://127.0.0.1:9", region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="x",
                        config=Config(connect_timeout=0.2, read_timeout=0.2, retries={"max_attempts": 1}))
    rig.module.speech.jobs.store = DynamoJobStore(dead, "missing")
    status, _, body = rig.call("GET", "/v1/audio/jobs/job-" + "E" * 32)
    assert_error(status, body, 503, "state_unavailable")
    status, _, body = rig.post_json("/v1/audio/jobs", {"file_id": rig.upload(b"abc")})
    assert_error(status, body, 503, "state_unavailable")


# ------------------------------------------------------------------ owners: uploads and jobs are their user's


def issued(rig: Rig, user: str, **policy: Any) -> tuple[str, KeyRecord]:
    """A key issued to `user` (the façade authenticates it as the real one does)."""
    return issue(rig.fake.key_store, user, Policy(**policy), "", time.time())


def test_the_upload_url_signs_its_owner(rig):
    key, _ = issued(rig, "alice")
    status, _, answer = rig.post_json("/v1/audio/uploads", {"filename": "a.wav", "bytes": 3,
                                                            "content_type": "audio/wav"}, key=key)
    assert status == 200, answer
    assert answer["headers"]["x-amz-meta-owner"] == "alice"
    signed = httpx.URL(answer["upload_url"]).params["X-Amz-SignedHeaders"].split(";")
    assert "x-amz-meta-owner" in signed


def test_another_users_file_id_is_a_404_as_if_it_did_not_exist(rig):
    alice, _ = issued(rig, "alice")
    bob, _ = issued(rig, "bob")
    file_id = rig.upload(tone_wav(), key=alice)
    unknown = "file-" + "A" * 32
    for key in (bob, STATIC_KEY, DEV_KEY):  # another user, the static user, an admin: uploads have no exception
        status, _, body = rig.transcribe({"model": "auto", "file_id": file_id}, key=key)
        error = assert_error(status, body, 404, "file_not_found")
        _, _, missing = rig.transcribe({"model": "auto", "file_id": unknown}, key=key)
        assert error["message"] == missing["error"]["message"].replace(unknown, file_id)  # says nothing more
        status, _, body = rig.post_json("/v1/audio/jobs", {"file_id": file_id}, key=key)
        assert_error(status, body, 404, "file_not_found")
    assert not rig.fake.calls and not rig.launcher.launched
    assert rig.exists(file_id)  # untouched: its owner can still use it
    status, _, body = rig.transcribe({"model": "auto", "file_id": file_id}, key=alice)
    assert status == 200, body
    assert rig.fake.calls[-1]["caller"].user == "alice"


def test_a_users_keys_share_its_uploads(rig):
    first, _ = issued(rig, "alice")
    second, _ = issued(rig, "alice")
    file_id = rig.upload(b"abc", key=first)
    status, _, body = rig.transcribe({"model": "auto", "file_id": file_id}, key=second)
    assert status == 200, body


def test_an_upload_with_no_owner_recorded_is_no_ones(rig):
    """Objects uploaded before owners were recorded (they live a day at most): 404 for everyone."""
    alice, _ = issued(rig, "alice")
    file_id = "file-" + "L" * 32
    rig.s3.put_object(Bucket=rig.bucket, Key=UPLOAD_PREFIX + file_id, Body=b"abc", ContentType="audio/wav",
                      Metadata={"announced-bytes": "3", "filename": "old.wav"})
    for key in (STATIC_KEY, alice):
        status, _, body = rig.transcribe({"model": "auto", "file_id": file_id}, key=key)
        assert_error(status, body, 404, "file_not_found")
        status, _, body = rig.post_json("/v1/audio/jobs", {"file_id": file_id}, key=key)
        assert_error(status, body, 404, "file_not_found")
    assert not rig.fake.calls


def test_another_users_mismatched_upload_says_only_not_found(rig):
    alice, _ = issued(rig, "alice")
    file_id = rig.upload(b"0123456789", put=b"0123456789-and-more", key=alice)
    status, _, body = rig.transcribe({"model": "auto", "file_id": file_id}, key=STATIC_KEY)
    assert_error(status, body, 404, "file_not_found")


def test_another_users_job_is_a_404_and_its_creator_reads_it(rig):
    alice, _ = issued(rig, "alice")
    alice_again, _ = issued(rig, "alice")
    bob, _ = issued(rig, "bob")
    admin, _ = issued(rig, "root", admin=True)
    job_id = submit(rig, rig.upload(b"abc", key=alice), key=alice)
    unknown = "job-" + "C" * 32
    for key in (bob, STATIC_KEY):
        status, _, body = rig.call("GET", f"/v1/audio/jobs/{job_id}", key=key)
        error = assert_error(status, body, 404, "job_not_found")
        _, _, missing = rig.call("GET", f"/v1/audio/jobs/{unknown}", key=key)
        assert error["message"] == missing["error"]["message"].replace(unknown, job_id)
    assert get_job(rig, job_id, key=alice)["status"] == "queued"
    assert get_job(rig, job_id, key=alice_again)["status"] == "queued"  # the user's, not only the key's
    assert get_job(rig, job_id, key=admin)["status"] == "queued"  # operators may look into any job
    assert get_job(rig, job_id, key=DEV_KEY)["status"] == "queued"  # the local dev key is an admin's
    assert rig.run_job(job_id)["status"] == "succeeded"
    assert get_job(rig, job_id, key=alice)["result"] == {"text": "3 bytes from talk.wav"}
    status, _, body = rig.call("GET", f"/v1/audio/jobs/{job_id}", key=bob)
    assert_error(status, body, 404, "job_not_found")


def test_a_job_runs_as_its_creators_key_as_it_stands_at_run_time(rig):
    alice, record = issued(rig, "alice", models=("groq/*",))
    job_id = submit(rig, rig.upload(b"abc", key=alice), key=alice)
    revise(rig.fake.key_store, record, time.time(), policy=Policy(models=("mistral/*",), daily_budget_usd=1.0))
    assert rig.run_job(job_id)["status"] == "succeeded"
    caller = rig.fake.calls[-1]["caller"]
    assert (caller.user, caller.key_id) == ("alice", record.id)
    assert caller.policy == Policy(models=("mistral/*",), daily_budget_usd=1.0)  # the policy now, not at submit


def test_a_job_whose_key_was_revoked_before_it_ran_fails_cleanly(rig):
    alice, record = issued(rig, "alice")
    alice_other, _ = issued(rig, "alice")
    file_id = rig.upload(b"abc", key=alice)
    job_id = submit(rig, file_id, key=alice)
    revise(rig.fake.key_store, record, time.time(), revoke=True)
    assert rig.run_job(job_id)["status"] == "failed"
    assert not rig.fake.calls  # nothing was transcribed, or billed
    job = get_job(rig, job_id, key=alice_other)
    assert job["status"] == "failed" and "result" not in job
    error = job["error"]
    assert {"message", "type", "param", "code"} <= set(error) and error["code"] == "invalid_api_key"
    assert "revoked" in error["message"] and record.id in error["message"]
    assert rig.exists(file_id)


def test_a_static_keys_job_runs_as_the_static_user(rig):
    job_id = submit(rig, rig.upload(b"abc"))
    assert rig.run_job(job_id)["status"] == "succeeded"
    assert rig.fake.calls[-1]["caller"] == Caller()


def test_a_job_item_from_before_creators_were_recorded_is_the_static_users(rig, aws):
    """Items written by the previous version have no `user`/`key_id`: read and run as `static`."""
    alice, _ = issued(rig, "alice")
    file_id = rig.upload(b"abc")  # the static user's
    job_id = "job-" + "O" * 32
    now = rig.clock.now
    aws["dynamo"].client().put_item(TableName=aws["dynamo"].table_name, Item={
        "pk": {"S": f"job#{job_id}"}, "status": {"S": "queued"}, "created_at": {"N": str(now)},
        "updated_at": {"N": str(now)}, "lease_until": {"N": str(now + 900)}, "expires_at": {"N": str(int(now) + 86_400)},
        "request": {"S": json.dumps({"file_id": file_id, "model": "auto"})}, "gateway": {"S": "{}"},
        "result_in_store": {"BOOL": False},
    })
    status, _, body = rig.call("GET", f"/v1/audio/jobs/{job_id}", key=alice)
    assert_error(status, body, 404, "job_not_found")
    assert get_job(rig, job_id, key=STATIC_KEY)["status"] == "queued"
    assert rig.run_job(job_id)["status"] == "succeeded"
    assert rig.fake.calls[-1]["caller"] == Caller()
