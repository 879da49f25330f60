"""Where uploaded audio (and large job results) live: a small protocol, S3 behind it in AWS.

`presign_put` answers a URL the client PUTs the bytes to, once, with the size, the content type,
the announced size and the owner (the user who asked for the URL) signed in (S3 refuses any other
size, and the client cannot name another owner, nor replace the bytes once written); `read` gives the bytes back, with their owner,
only if they are what was announced and not older than `max_age_s` (the bucket's lifecycle
deletes them within a day, lazily, so the age is checked here too); `owner` answers whose an
uploaded object is (`ObjectMissing` if none is there); `presign_get` lends a provider a URL to
fetch them itself; `delete` removes them after use. An object with no owner recorded (uploaded
before owners were) has owner None: `uploads/service.py` lets no one use it. `MemoryAudioObjects`
is the same contract in memory, for tests: `complete_upload` plays the client's PUT, refusing
what S3 would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import quote

UPLOAD_PREFIX = "uploads/"
RESULT_PREFIX = "results/"
DOWNLOAD_URL_TTL_S = 3600  # providers that fetch audio themselves may queue it for a while
MAX_METADATA_BYTES = 2048  # S3's user metadata: its keys and values, UTF-8
METADATA_PREFIX = "x-amz-meta-"  # counted with each key: the stricter reading of S3's rule
MAX_AGE_S = 86_400  # the bucket's lifecycle rule expires objects after 1 day


class ObjectMissing(Exception):
    """No such object, or it expired."""


class ObjectRejected(Exception):
    """The object is not what was announced (size), or is larger than the gateway reads."""


class StorageUnavailable(Exception):
    """The object store could not be reached or refused the gateway (not the caller's fault)."""


@dataclass(frozen=True, slots=True)
class PresignedPut:
    url: str = field(repr=False)
    headers: dict[str, str]
    expires_at: int


@dataclass(frozen=True, slots=True)
class StoredAudio:
    data: bytes = field(repr=False)
    filename: str
    content_type: str
    owner: str | None  # the user who created the upload; None: recorded before owners were


class AudioObjects(Protocol):
    def presign_put(self, object_id: str, size: int, content_type: str, *, filename: str,
                    owner: str) -> PresignedPut:
        """`ObjectRejected` when the name and owner are more metadata than S3 keeps (2 KB)."""
        ...

    def read(self, object_id: str, *, max_bytes: int, owner: str) -> StoredAudio:
        """The object, if `owner` uploaded it (else `ObjectMissing`, checked before its size)."""
        ...

    def presign_get(self, object_id: str) -> str: ...

    def delete(self, object_id: str) -> None: ...

    def owner(self, object_id: str) -> str | None:
        """Whose uploaded object this is (None: no owner recorded); `ObjectMissing` if none is
        there, or it is older than `max_age_s`."""
        ...

    def put_result(self, job_id: str, data: bytes, content_type: str) -> None: ...

    def read_result(self, job_id: str) -> bytes: ...


@dataclass
class _Announced:
    size: int
    content_type: str
    filename: str
    owner: str | None
    url_expires_at: float
    data: bytes | None = None
    stored_at: float = 0.0


class MemoryAudioObjects:
    """The contract in memory (tests, and runs without a bucket where uploads are never used)."""

    def __init__(self, url_ttl_s: int = 900, wall: Callable[[], float] = time.time, max_age_s: float = MAX_AGE_S) -> None:
        self._url_ttl_s = url_ttl_s
        self._wall = wall
        self._max_age_s = max_age_s
        self._objects: dict[str, _Announced] = {}
        self._results: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def presign_put(self, object_id: str, size: int, content_type: str, *, filename: str,
                    owner: str) -> PresignedPut:
        check_metadata(upload_metadata(size, filename, owner))
        expires_at = int(self._wall()) + self._url_ttl_s
        with self._lock:
            self._objects[object_id] = _Announced(size, content_type, filename, owner, expires_at)
        headers = {"Content-Type": content_type, "Content-Length": str(size), "If-None-Match": "*"}
        return PresignedPut(f"memory://{UPLOAD_PREFIX}{object_id}", headers, expires_at)

    def complete_upload(self, object_id: str, data: bytes) -> None:
        """The client's PUT: refused (ValueError) as S3 would refuse it: late, another size, or a
        second write (the URL signs `If-None-Match: *`)."""
        with self._lock:
            announced = self._objects.get(object_id)
            if announced is None or self._wall() > announced.url_expires_at:
                raise ValueError("AccessDenied: the upload URL expired or was never issued")
            if len(data) != announced.size:
                raise ValueError("SignatureDoesNotMatch: Content-Length differs from the signed one")
            if announced.data is not None:
                raise ValueError("PreconditionFailed: the object exists (If-None-Match: *)")
            announced.data, announced.stored_at = data, self._wall()

    def read(self, object_id: str, *, max_bytes: int, owner: str) -> StoredAudio:
        with self._lock:
            announced = self._objects.get(object_id)
        if announced is None or announced.data is None or self._wall() - announced.stored_at > self._max_age_s:
            raise ObjectMissing(object_id)
        if not owned_by(announced.owner, owner):
            raise ObjectMissing(object_id)
        if len(announced.data) > min(announced.size, max_bytes):
            raise ObjectRejected(f"{len(announced.data)} bytes stored, {announced.size} announced")
        return StoredAudio(announced.data, announced.filename, announced.content_type, announced.owner)

    def presign_get(self, object_id: str) -> str:
        return f"memory://{UPLOAD_PREFIX}{object_id}?download"

    def delete(self, object_id: str) -> None:
        with self._lock:
            self._objects.pop(object_id, None)

    def owner(self, object_id: str) -> str | None:
        with self._lock:
            announced = self._objects.get(object_id)
        if announced is None or announced.data is None or self._wall() - announced.stored_at > self._max_age_s:
            raise ObjectMissing(object_id)
        return announced.owner

    def put_legacy(self, object_id: str, data: bytes, content_type: str, *, filename: str) -> None:
        """An object as uploads made before owners were recorded left it (tests): no owner."""
        with self._lock:
            self._objects[object_id] = _Announced(len(data), content_type, filename, None, self._wall(), data,
                                                  self._wall())

    def put_result(self, job_id: str, data: bytes, content_type: str) -> None:
        with self._lock:
            self._results[job_id] = data

    def read_result(self, job_id: str) -> bytes:
        with self._lock:
            if job_id not in self._results:
                raise ObjectMissing(job_id)
            return self._results[job_id]


def upload_metadata(size: int, filename: str, owner: str) -> dict[str, str]:
    """The S3 user metadata an upload URL signs in (names without `x-amz-meta-`): the announced
    size, and the name and owner URL-encoded (metadata is sent as header text)."""
    return {"announced-bytes": str(size), "filename": quote(filename, safe=""), "owner": quote(owner, safe="")}


def check_metadata(metadata: dict[str, str]) -> None:
    """`ObjectRejected` for metadata larger than S3 keeps: S3 would refuse every PUT of the URL."""
    size = sum(len(METADATA_PREFIX) + len(key.encode()) + len(value.encode()) for key, value in metadata.items())
    if size > MAX_METADATA_BYTES:
        raise ObjectRejected(f"its metadata would be {size} bytes once encoded; S3 keeps {MAX_METADATA_BYTES}")


def owned_by(owner: str | None, user: str) -> bool:
    """An upload is `user`'s only if it says so; one with no owner recorded is no one's."""
    return owner is not None and owner == user
