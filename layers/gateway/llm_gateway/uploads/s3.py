"""`AudioObjects` on S3: presigned PUT/GET URLs (SigV4), the announced size signed into the PUT.

The PUT URL signs `Content-Length`, `Content-Type` and three metadata headers (`x-amz-meta-
announced-bytes`, `x-amz-meta-filename`, `x-amz-meta-owner`), so a client can upload exactly the
bytes it announced, as the user who asked for the URL, and nothing else: another size, type, name
or owner breaks the signature (S3 refuses a signed request carrying a metadata header the
signature does not cover, so one cannot be added either). It also signs `If-None-Match: *`, so
the URL writes its key once: the bytes the gateway measured are the bytes a provider later
fetches by URL (a second PUT of other audio of the same size, but longer, is refused with 412
instead of replacing what was measured and billed). `read` checks the stored
size against the announced one anyway (defence in depth) and refuses objects older than the
bucket's lifecycle (S3 expires them lazily). The client variable is `s3`, never `client`: the
template test derives the DynamoDB actions from `client.<operation>(` calls in the layer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from llm_gateway.uploads.objects import (
    DOWNLOAD_URL_TTL_S,
    MAX_AGE_S,
    METADATA_PREFIX,
    RESULT_PREFIX,
    UPLOAD_PREFIX,
    ObjectMissing,
    ObjectRejected,
    PresignedPut,
    StorageUnavailable,
    StoredAudio,
    check_metadata,
    owned_by,
    upload_metadata,
)

LOG = logging.getLogger("llm_gateway.uploads")
_MISSING = {"404", "NoSuchKey", "NotFound"}


def s3_client(endpoint_url: str | None = None) -> Any:
    """A SigV4 client; path-style addressing against a local endpoint (the embedded S3)."""
    import boto3

    config = Config(signature_version="s3v4", connect_timeout=2, read_timeout=30,
                    retries={"max_attempts": 3, "mode": "standard"},
                    s3={"addressing_style": "path" if endpoint_url else "virtual"})
    return boto3.client("s3", endpoint_url=endpoint_url, config=config)


class S3AudioObjects:
    def __init__(self, s3: Any, bucket: str, *, url_ttl_s: int = 900, max_age_s: float = MAX_AGE_S,
                 wall: Callable[[], float] = time.time) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._url_ttl_s = url_ttl_s
        self._max_age_s = max_age_s
        self._wall = wall
        self._write_once = _signs_if_none_match(s3)

    def presign_put(self, object_id: str, size: int, content_type: str, *, filename: str,
                    owner: str) -> PresignedPut:
        metadata = upload_metadata(size, filename, owner)
        check_metadata(metadata)
        once = {"IfNoneMatch": "*"} if self._write_once else {}
        url = self._call(
            self._s3.generate_presigned_url, ClientMethod="put_object",
            Params={"Bucket": self._bucket, "Key": UPLOAD_PREFIX + object_id, "ContentLength": size,
                    "ContentType": content_type, "Metadata": metadata, **once},
            ExpiresIn=self._url_ttl_s,
        )
        headers = {"Content-Type": content_type, "Content-Length": str(size),
                   **{METADATA_PREFIX + key: value for key, value in metadata.items()}}
        if once:
            headers["If-None-Match"] = "*"
        return PresignedPut(url, headers, int(self._wall()) + self._url_ttl_s)

    def _head(self, object_id: str) -> tuple[dict[str, Any], dict[str, str]]:
        """The object's HEAD and its metadata (lower-case names); `ObjectMissing` past `max_age_s`."""
        head = self._call(self._s3.head_object, Bucket=self._bucket, Key=UPLOAD_PREFIX + object_id)
        metadata = {str(k).lower(): str(v) for k, v in (head.get("Metadata") or {}).items()}
        modified = head.get("LastModified")
        if modified is not None and self._wall() - modified.timestamp() > self._max_age_s:
            raise ObjectMissing(object_id)
        return head, metadata

    def read(self, object_id: str, *, max_bytes: int, owner: str) -> StoredAudio:
        key = UPLOAD_PREFIX + object_id
        head, metadata = self._head(object_id)
        if not owned_by(_owner(metadata), owner):
            raise ObjectMissing(object_id)
        size, announced = int(head["ContentLength"]), int(metadata.get("announced-bytes", -1))
        if size != announced or size > max_bytes:
            raise ObjectRejected(f"{size} bytes stored, {announced} announced, {max_bytes} at most")
        body = self._call(self._s3.get_object, Bucket=self._bucket, Key=key, Range=f"bytes=0-{max_bytes}")["Body"]
        data = _read_body(body, max_bytes + 1)
        if len(data) != size:  # the HEAD showed the object whole: a body cut short is S3's (or the network's)
            raise StorageUnavailable(f"S3 sent {len(data)} of the object's {size} bytes")
        content_type = str(head.get("ContentType") or "application/octet-stream")
        return StoredAudio(data, unquote(metadata.get("filename", "")) or "audio", content_type, _owner(metadata))

    def presign_get(self, object_id: str) -> str:
        return str(self._call(
            self._s3.generate_presigned_url, ClientMethod="get_object", Params={"Bucket": self._bucket, "Key": UPLOAD_PREFIX + object_id},
            ExpiresIn=DOWNLOAD_URL_TTL_S,
        ))

    def delete(self, object_id: str) -> None:
        self._call(self._s3.delete_object, Bucket=self._bucket, Key=UPLOAD_PREFIX + object_id)

    def owner(self, object_id: str) -> str | None:
        return _owner(self._head(object_id)[1])

    def put_result(self, job_id: str, data: bytes, content_type: str) -> None:
        self._call(self._s3.put_object, Bucket=self._bucket, Key=RESULT_PREFIX + job_id, Body=data,
                   ContentType=content_type)

    def read_result(self, job_id: str) -> bytes:
        response = self._call(self._s3.get_object, Bucket=self._bucket, Key=RESULT_PREFIX + job_id)
        return _read_body(response["Body"])

    @staticmethod
    def _call(operation: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return operation(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if str(error.get("Code")) in _MISSING:
                raise ObjectMissing(str(kwargs.get("Key"))) from None
            raise StorageUnavailable(f"S3 {error.get('Code', 'error')}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"S3 unreachable: {type(exc).__name__}") from exc


def _signs_if_none_match(s3: Any) -> bool:
    """Whether this botocore knows S3's conditional PUT (`IfNoneMatch`, from August 2024). The
    functions use the Lambda runtime's boto3, not one of ours: on an older one the parameter is
    refused on every upload URL (every upload a 503), so there URLs are signed without it, and an
    upload URL could then be written more than once within its 15 minutes (logged at start)."""
    try:
        known = "IfNoneMatch" in s3.meta.service_model.operation_model("PutObject").input_shape.members
    except AttributeError:  # not a botocore client
        return False
    if not known:
        LOG.warning("this botocore cannot sign If-None-Match: upload URLs are not write-once")
    return bool(known)


def _read_body(body: Any, limit: int | None = None) -> bytes:
    """A GET's body; a connection that drops or times out after the headers (botocore raises
    that from `read`, after the call returned) is the store unavailable, as a failed call is."""
    try:
        return bytes(body.read(limit) if limit is not None else body.read())
    except (BotoCoreError, OSError) as exc:
        raise StorageUnavailable(f"S3 body read failed: {type(exc).__name__}") from exc


def _owner(metadata: dict[str, str]) -> str | None:
    """The signed `x-amz-meta-owner` (None: an object uploaded before owners were recorded)."""
    raw = metadata.get("owner")
    return unquote(raw) if raw else None
