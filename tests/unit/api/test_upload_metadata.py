"""An upload the gateway answers 200 for can be made: S3 refuses a PUT whose user-defined metadata
(the `x-amz-meta-*` headers signed into the upload URL) passes 2 KB, counted as the UTF-8 bytes of
each name and value, with 400 MetadataTooLarge. The file name travels there URL-encoded, so a
name of 255 characters took up to 255 x 12 bytes (an emoji is 4 UTF-8 bytes, each `%XX`): the
gateway signed a URL that no PUT could use, and the caller learnt it only from S3. A name too
long for the metadata is refused when the URL is made (`ObjectRejected`: the handler's 400
`filename_too_long` naming `filename`, tests/integration/test_transcribe_handler.py); the
presigned headers are built by the real S3 code (presigning is local: nothing is sent).
"""

from __future__ import annotations

import pytest

from llm_gateway.api.audio_schemas import UploadRequest
from llm_gateway.uploads.objects import ObjectRejected
from llm_gateway.uploads.s3 import S3AudioObjects, s3_client

S3_METADATA_LIMIT = 2048
LONGEST_OWNER = "a" + "@" * 127  # a user id (tenancy/admin.py USER_ID), every `@` URL-encoded as %40


def _metadata_bytes(headers: dict[str, str]) -> int:
    """S3's count, and the `x-amz-meta-` prefix counted too: the stricter reading."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in headers.items() if k.lower().startswith("x-amz-meta-"))


@pytest.fixture
def objects(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return S3AudioObjects(s3_client("http://127.0.0.1:9"), "audio-bucket")


@pytest.mark.parametrize("filename", ["😀" * 255, "語" * 255, "語" * 200, "/" * 255, "a" * 255, "réunion.wav"])
def test_every_filename_accepted_fits_the_upload_metadata(objects, filename):
    request = UploadRequest.model_validate({"filename": filename, "bytes": 1024 ** 3})
    try:
        put = objects.presign_put("file-0123456789abcdef", request.bytes, request.content_type,
                                  filename=request.filename, owner=LONGEST_OWNER)
    except ObjectRejected:
        assert filename not in ("a" * 255, "réunion.wav")  # what always fits is never refused
        return
    assert _metadata_bytes(put.headers) <= S3_METADATA_LIMIT


@pytest.mark.parametrize("filename", ["a" * 255, "/" * 255, "réunion.wav", "語" * 150])
def test_names_that_fit_are_still_accepted(objects, filename):
    request = UploadRequest.model_validate({"filename": filename, "bytes": 1024 ** 3})
    put = objects.presign_put("file-0123456789abcdef", request.bytes, request.content_type,
                              filename=request.filename, owner=LONGEST_OWNER)
    assert _metadata_bytes(put.headers) <= S3_METADATA_LIMIT


def test_a_botocore_that_cannot_sign_if_none_match_still_makes_upload_urls(objects):
    """The functions run on the Lambda runtime's boto3, and S3's conditional PUT (`IfNoneMatch`)
    came in August 2024: a botocore without it refused the parameter, so every upload URL was a
    503 (found in review). There the URL is signed without it (write-once is then not promised)."""
    client = s3_client("http://127.0.0.1:9")
    members = client.meta.service_model.operation_model("PutObject").input_shape.members
    del members["IfNoneMatch"]  # as an older botocore's model is
    put = S3AudioObjects(client, "audio-bucket").presign_put("file-0123456789abcdef", 3, "audio/wav",
                                                             filename="a.wav", owner="alice")
    assert "If-None-Match" not in put.headers and "if-none-match" not in put.url.lower()
    assert "If-None-Match" in objects.presign_put("file-0123456789abcdef", 3, "audio/wav",
                                                  filename="a.wav", owner="alice").headers
