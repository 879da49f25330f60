"""Reading an upload for a transcription costs one HEAD, one ranged GET and a presign: the owner
is checked on the HEAD the read makes anyway (it used to be a HEAD of its own first), and still
before anything about the object can show to another user (not even that it is not what was
announced). On moto's S3, in process, every S3 call counted."""

from __future__ import annotations

from collections import Counter
from typing import Any

import boto3
import pytest
from moto import mock_aws

from llm_gateway.api.audio_schemas import UploadRequest
from llm_gateway.api.errors import GatewayError
from llm_gateway.uploads.objects import UPLOAD_PREFIX
from llm_gateway.uploads.s3 import S3AudioObjects
from llm_gateway.uploads.service import Uploads

BUCKET = "audio-test"


class Counting:
    """The S3 client, counting the calls made through it."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return method(*args, **kwargs)

        return counted


@pytest.fixture
def uploads(monkeypatch: pytest.MonkeyPatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        counting = Counting(client)
        yield Uploads(S3AudioObjects(counting, BUCKET), max_upload_bytes=1000), client, counting


def _upload(service: Uploads, client: Any, data: bytes, *, owner: str, announced: int | None = None) -> str:
    size = len(data) if announced is None else announced
    made = service.create(UploadRequest(bytes=size, filename="a.wav", content_type="audio/wav"), owner=owner)
    head = made["headers"]
    client.put_object(Bucket=BUCKET, Key=UPLOAD_PREFIX + made["id"], Body=data, ContentType=head["Content-Type"],
                      Metadata={"announced-bytes": head["x-amz-meta-announced-bytes"],
                                "filename": head["x-amz-meta-filename"], "owner": head["x-amz-meta-owner"]})
    return str(made["id"])


def test_a_read_heads_the_object_once(uploads) -> None:
    service, client, counting = uploads
    file_id = _upload(service, client, b"RIFF1234", owner="ana")
    counting.calls.clear()
    audio = service.audio(file_id, user="ana")
    assert audio.data == b"RIFF1234"
    assert counting.calls["head_object"] == 1 and counting.calls["get_object"] == 1


def test_another_user_learns_nothing_not_even_that_the_object_is_not_what_was_announced(uploads) -> None:
    service, client, counting = uploads
    file_id = _upload(service, client, b"RIFF", owner="ana", announced=9)  # 4 bytes stored, 9 announced
    counting.calls.clear()
    with pytest.raises(GatewayError) as other:
        service.audio(file_id, user="bo")
    assert (other.value.status, other.value.code) == (404, "file_not_found")
    assert counting.calls["get_object"] == 0  # refused on the HEAD
    with pytest.raises(GatewayError) as own:
        service.audio(file_id, user="ana")
    assert own.value.code == "upload_mismatch"

