"""Uploads as the API sees them: announce → presigned PUT; `file_id` → the audio, then deletion.

Every upload belongs to the user who created it (`Caller.user`, signed into the upload URL), and
only that user can use it: another user's id is the same 404 `file_not_found` as an unknown,
expired, unfinished or malformed one, so an id never reveals that an upload exists. The static
keys are one user (`static`): they share their uploads. An object with no owner recorded (uploaded
before owners were; the bucket deletes it within a day) belongs to no one: 404 for every caller.
An object that is not what was announced is a 400; an unreachable store is a 503 (retryable).
Nothing here knows S3: it speaks `AudioObjects`.
"""

from __future__ import annotations

import logging
from typing import Any

from llm_gateway.api.audio_schemas import UploadRequest
from llm_gateway.api.errors import GatewayError, InvalidRequest, NotFound, PayloadTooLarge
from llm_gateway.transcription.gateway import AudioInput
from llm_gateway.uploads.ids import FILE_PREFIX, is_id, new_id
from llm_gateway.uploads.objects import (
    AudioObjects,
    ObjectMissing,
    ObjectRejected,
    StorageUnavailable,
    owned_by,
)

LOG = logging.getLogger("llm_gateway.uploads")


def not_configured() -> GatewayError:
    return GatewayError("Uploads are not configured on this gateway (LLM_GATEWAY_AUDIO_BUCKET is not set).",
                        code="uploads_not_configured", status=501)


def storage_unavailable() -> GatewayError:
    return GatewayError("The upload store is unavailable; try again shortly.", code="storage_unavailable",
                        status=503, headers={"retry-after": "2"})


def file_not_found(file_id: str) -> NotFound:
    shown = file_id if is_id(file_id, FILE_PREFIX) else file_id[:40]
    return NotFound(f"No uploaded file '{shown}': it does not exist, was not uploaded yet, was already "
                    "used, or has expired. Uploads are kept for a day.", param="file_id", code="file_not_found")


class Uploads:
    def __init__(self, objects: AudioObjects | None, *, max_upload_bytes: int) -> None:
        self.objects = objects
        self.max_upload_bytes = max_upload_bytes

    def _store(self) -> AudioObjects:
        if self.objects is None:
            raise not_configured()
        return self.objects

    def create(self, request: UploadRequest, *, owner: str) -> dict[str, Any]:
        """`POST /v1/audio/uploads`: an id and a URL to PUT exactly `request.bytes` bytes to, as `owner`."""
        if request.bytes > self.max_upload_bytes:
            raise PayloadTooLarge(f"Uploads are limited to {self.max_upload_bytes} bytes; {request.bytes} announced.",
                                  param="bytes", code="upload_too_large")
        store, file_id = self._store(), new_id(FILE_PREFIX)
        try:
            put = store.presign_put(file_id, request.bytes, request.content_type, filename=request.filename,
                                    owner=owner)
        except StorageUnavailable as exc:
            raise storage_unavailable() from exc
        except ObjectRejected as exc:  # S3 would refuse every PUT of its URL
            raise InvalidRequest(f"The filename is too long to keep with the upload ({exc}); use a shorter one.",
                                 param="filename", code="filename_too_long") from None
        return {"id": file_id, "object": "upload", "upload_url": put.url, "method": "PUT", "headers": put.headers,
                "expires_at": put.expires_at, "bytes": request.bytes, "filename": request.filename}

    def check(self, file_id: str, *, user: str) -> None:
        """404 now, rather than a failed job later, for an id that names no file `user` uploaded."""
        if not is_id(file_id, FILE_PREFIX):
            raise file_not_found(file_id)
        try:
            owner = self._store().owner(file_id)
        except ObjectMissing:
            raise file_not_found(file_id) from None
        except StorageUnavailable as exc:
            raise storage_unavailable() from exc
        if not owned_by(owner, user):
            raise file_not_found(file_id)

    def audio(self, file_id: str, *, user: str) -> AudioInput:
        """The bytes `user` uploaded, with a presigned GET URL of them for providers that fetch
        audio. The store checks the owner on the HEAD it reads the object's size from, before the
        size: nothing about another user's object (not even that it is not what was announced)
        shows, and one HEAD is made, not two."""
        if not is_id(file_id, FILE_PREFIX):
            raise file_not_found(file_id)
        store = self._store()
        try:
            stored = store.read(file_id, max_bytes=self.max_upload_bytes, owner=user)
            url = store.presign_get(file_id)
        except ObjectMissing:
            raise file_not_found(file_id) from None
        except ObjectRejected as exc:
            raise InvalidRequest(f"The uploaded file '{file_id}' is not what was announced ({exc}); upload it again.",
                                 param="file_id", code="upload_mismatch") from None
        except StorageUnavailable as exc:
            raise storage_unavailable() from exc
        return AudioInput(data=stored.data, filename=stored.filename, url=url)

    def discard(self, file_id: str) -> None:
        """Delete after use; a failure only leaves the object to the bucket's one-day lifecycle."""
        if self.objects is None:
            return
        try:
            self.objects.delete(file_id)
        except StorageUnavailable:
            LOG.warning("could not delete an used upload; the bucket lifecycle will", extra={"file_id": file_id})

