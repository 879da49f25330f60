"""S3 failing while an upload is read back: the connection drops after the object's headers, in
the middle of its body. The HEAD showed the object whole (its size the announced one), so that is
the store being unavailable, like a failed HEAD or GET: a retryable 503 `storage_unavailable` in
OpenAI's format, the upload kept for a retry. Not a 400 `upload_mismatch` telling the caller to
upload again (what a short read used to be: botocore's `read(n)` returns the bytes that came,
without checking them against the Content-Length), and not the handler's last-resort 500 (what
botocore raises from `read()` when the drop or a timeout surfaces there, after the GET returned).

Over loopback HTTP: the transcribe handler, its S3 a stand-in that answers the HEAD as S3 does and
cuts every GET's body in half.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import pytest

from llm_gateway.config import load_settings
from llm_gateway.jobs.callers import KeyCallers
from llm_gateway.speech import build_speech
from llm_gateway.uploads.ids import FILE_PREFIX, new_id
from llm_gateway.uploads.s3 import S3AudioObjects, s3_client
from tests.integration.test_transcribe_handler import (
    DEV_KEY,
    Clock,
    RecordingLauncher,
    Rig,
    assert_error,
)
from tests.loopback import QuietHandler, serving
from tests.transcribe_helpers import FakeTranscriber, tone_wav

BUCKET = "audio"
AUDIO = tone_wav()
_instances = iter(range(10**6))


class _CutS3(QuietHandler):
    """HEAD: an upload of `AUDIO` owned by the static user; GET: its headers, then half its body."""

    protocol_version = "HTTP/1.1"
    gets = 0

    def _head(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "audio/wav")
        self.send_header("Content-Length", str(len(AUDIO)))
        self.send_header("Last-Modified", formatdate(time.time(), usegmt=True))
        self.send_header("ETag", '"0"')
        self.send_header("x-amz-meta-owner", "static")
        self.send_header("x-amz-meta-announced-bytes", str(len(AUDIO)))
        self.send_header("x-amz-meta-filename", "talk.wav")
        self.end_headers()

    def do_HEAD(self) -> None:
        self._head()

    def do_GET(self) -> None:
        type(self).gets += 1
        self._head()
        self.wfile.write(AUDIO[: len(AUDIO) // 2])
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def cut_s3() -> Iterator[str]:
    with serving(_CutS3) as url:
        yield url


@pytest.fixture
def rig(clean_gateway_env, cut_s3, monkeypatch) -> Rig:
    from sandbox.apigw import load_handler_module

    clean_gateway_env.setenv("LLM_GATEWAY_LOCAL", "1")
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    module = load_handler_module("transcribe", instance=f"cut_s3_{next(_instances)}")
    settings = load_settings()
    fake, launcher, clock = FakeTranscriber(settings), RecordingLauncher(), Clock()
    objects = S3AudioObjects(s3_client(cut_s3), BUCKET, wall=clock)
    module.speech = build_speech(settings, transcriber=fake, job_transcriber=fake, objects=objects,
                                 launcher=launcher, callers=KeyCallers(fake.key_store), wall=clock)
    return Rig(module, fake, launcher, clock, objects, BUCKET)


def test_an_upload_whose_read_is_cut_short_is_a_503_not_a_500(rig: Rig) -> None:
    file_id = new_id(FILE_PREFIX)
    status, headers, body = rig.transcribe({"model": "auto", "file_id": file_id}, key=DEV_KEY)
    assert status != 500, body
    error: dict[str, Any] = assert_error(status, body, 503, "storage_unavailable")
    assert "retry-after" in headers
    assert "internal" not in error["message"]
    assert _CutS3.gets >= 1 and not rig.fake.calls  # the GET was made, and no half-read audio was transcribed
