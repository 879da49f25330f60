"""The transcription routes through the local API (what `make dev` serves): uploads PUT over HTTP
to the embedded S3's presigned URL, and jobs started in a background thread of the container
that accepted them, with their state in the embedded DynamoDB.

Until the transcription router lands the façade answers 501, so a job ends `failed` with that
error; the path (routing, upload, launch, runner, state, polling) is what these tests check.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.transcribe_helpers import tone_wav

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": "Bearer local-dev-key"}


def test_upload_then_job_through_the_local_api(gateway_url):
    wav = tone_wav()
    announced = httpx.post(f"{gateway_url}/v1/audio/uploads", headers=AUTH, timeout=30,
                           json={"filename": "tone.wav", "bytes": len(wav), "content_type": "audio/wav"})
    assert announced.status_code == 200, announced.text
    upload = announced.json()
    assert upload["upload_url"].startswith("http://127.0.0.1:")
    put = httpx.put(upload["upload_url"], headers=upload["headers"], content=wav, timeout=30)
    assert put.status_code == 200, put.text

    submitted = httpx.post(f"{gateway_url}/v1/audio/jobs", headers=AUTH, json={"file_id": upload["id"]}, timeout=30)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    deadline, job = time.monotonic() + 30, {}
    while time.monotonic() < deadline:
        job = httpx.get(f"{gateway_url}/v1/audio/jobs/{job_id}", headers=AUTH, timeout=30).json()
        if job["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.2)
    assert job["status"] in ("succeeded", "failed"), job
    assert ("result" in job) if job["status"] == "succeeded" else job["error"]["code"]


def test_multipart_reaches_the_transcribe_function(gateway_url):
    response = httpx.post(f"{gateway_url}/v1/audio/transcriptions", headers=AUTH, timeout=30,
                          data={"model": "auto"}, files={"file": ("tone.wav", tone_wav(), "audio/wav")})
    assert response.status_code != 404 and response.headers["x-request-id"]
    assert response.status_code < 500 or response.json()["error"]["code"] in {"transcription_unavailable"} or (
        response.status_code in (502, 503))
    bad = httpx.post(f"{gateway_url}/v1/audio/transcriptions", headers=AUTH, data={"model": "auto"},
                     files={"file_id": (None, "file-nope")}, timeout=30)
    assert bad.status_code == 404 and bad.json()["error"]["code"] == "file_not_found"
