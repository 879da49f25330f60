"""The transcribe function's composition: the transcription façade, uploads and jobs, built once.

The façade comes from `llm_gateway.transcription.gateway.build_transcriber(settings, **overrides)`;
tests pass their own `transcriber`. Jobs get a second façade built with the
job path's deadline and attempt timeout (a job may run for minutes; the API path has 29 s), and
only when a job first runs in this container.

The object store is S3 when `LLM_GATEWAY_AUDIO_BUCKET` is set (none: uploads answer 501); job
state is the state table when `LLM_GATEWAY_STATE_TABLE` is set (none: in this container's
memory). Jobs start by self-invocation in Lambda and in a thread locally (`jobs/launcher.py`).
A job runs as its creator, whose key is read again when it runs (`jobs/callers.py`) from the
issued keys' store of the façade's core (the state table's, when there is one); tests with a
fake façade pass their own `callers`.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llm_gateway.config import Settings
from llm_gateway.jobs.callers import CallerResolver, KeyCallers
from llm_gateway.jobs.launcher import JobLauncher, LambdaSelfInvoke, ThreadLauncher, lambda_client
from llm_gateway.jobs.service import JobService
from llm_gateway.jobs.store import JobStore, MemoryJobStore
from llm_gateway.tenancy.keys import KeyStore
from llm_gateway.uploads.desk import TranscriberLike, TranscriptionDesk
from llm_gateway.uploads.objects import AudioObjects
from llm_gateway.uploads.service import Uploads


def build_transcriber(settings: Settings, **overrides: Any) -> TranscriberLike:
    """The one place the façade is built (the routing core's builder)."""
    from llm_gateway.transcription.gateway import build_transcriber as build

    return build(settings, **overrides)


def job_settings(settings: Settings) -> Settings:
    """The job path's settings: its own deadline and attempt timeout instead of the API path's."""
    return dataclasses.replace(settings, deadline_s=settings.job_deadline_s,
                               attempt_timeout_s=settings.job_attempt_timeout_s)


@dataclass
class Speech:
    settings: Settings
    transcriber: TranscriberLike
    desk: TranscriptionDesk
    uploads: Uploads
    jobs: JobService

    @property
    def logger(self) -> Any:
        return self.transcriber.logger

    @property
    def metrics(self) -> Any:
        return self.transcriber.metrics

    def authenticate(self, authorization: str | None) -> Any:
        return self.transcriber.authenticate(authorization)


class _Lazy:
    """Builds a value on first use, once, even when two threads ask at the same time."""

    def __init__(self, build: Callable[[], TranscriberLike]) -> None:
        self._build = build
        self._value: TranscriberLike | None = None
        self._lock = threading.Lock()

    def __call__(self) -> TranscriberLike:
        with self._lock:
            if self._value is None:
                self._value = self._build()
            return self._value


def build_speech(
    settings: Settings,
    *,
    transcriber: TranscriberLike | None = None,
    job_transcriber: TranscriberLike | None = None,
    objects: AudioObjects | None = None,
    job_store: JobStore | None = None,
    launcher: JobLauncher | None = None,
    run_locally: Callable[[str], None] | None = None,
    callers: CallerResolver | None = None,
    wall: Callable[[], float] = time.time,
) -> Speech:
    """Cold-start composition. `run_locally(job_id)`: the handler's job entry, for local runs
    (`settings.local_mode`), where jobs start in a thread instead of a Lambda invocation.
    `callers`: who jobs run as; by default their creators' keys in the façade's key store (a
    fake façade has none: pass it)."""
    transcriber = transcriber or build_transcriber(settings)
    callers = callers or KeyCallers(_key_store(transcriber))
    uploads = Uploads(objects if objects is not None else _objects(settings, wall),
                      max_upload_bytes=settings.max_upload_bytes)
    if launcher is None:
        if settings.local_mode and run_locally is not None:
            launcher = ThreadLauncher(run_locally)
        else:
            launcher = LambdaSelfInvoke(lambda_client)
    lazy_job_transcriber = _Lazy(lambda: job_transcriber or build_transcriber(job_settings(settings)))
    jobs = JobService(job_store or _job_store(settings), launcher, uploads, lazy_job_transcriber, callers,
                      admit=transcriber.admit, ttl_s=settings.job_ttl_s, job_deadline_s=settings.job_deadline_s, wall=wall)
    return Speech(settings, transcriber, TranscriptionDesk(transcriber, uploads), uploads, jobs)


def _key_store(transcriber: TranscriberLike) -> KeyStore:
    """The issued keys the façade authenticates with (its core's tenancy)."""
    from llm_gateway.transcription.gateway import Transcriber

    if not isinstance(transcriber, Transcriber):
        raise TypeError("build_speech needs `callers` with a transcriber that is not the gateway's own")
    return transcriber.core.tenancy.keys


def _objects(settings: Settings, wall: Callable[[], float]) -> AudioObjects | None:
    if not settings.audio_bucket:
        return None
    from llm_gateway.uploads.s3 import S3AudioObjects, s3_client

    return S3AudioObjects(s3_client(settings.s3_endpoint), settings.audio_bucket,
                          url_ttl_s=settings.upload_url_ttl_s, wall=wall)


def _job_store(settings: Settings) -> JobStore:
    if not settings.state_table:
        return MemoryJobStore()
    from llm_gateway.jobs.dynamodb import DynamoJobStore
    from llm_gateway.state.dynamodb import boto3_client

    return DynamoJobStore(boto3_client(settings.dynamodb_endpoint), settings.state_table)
