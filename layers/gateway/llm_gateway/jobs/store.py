"""A transcription job's record, and where it is kept: one protocol, DynamoDB and memory behind it.

A job moves `queued → running → succeeded | failed`, each step a conditional write, so two
runners can never both run one job and a stale runner cannot overwrite a newer outcome:

- `claim`: queued and its queue lease not over → running, owned by `runner`, leased until `lease_until`.
- `finish`: running and owned by `runner` → succeeded/failed with the result or error.
- `expire`: queued or running whose lease is over → failed (the runner never came, or died:
  Lambda timeouts and crashes run no `finally`). The API calls it when it reads such a job.

A job records who created it (`user`, `key_id`: the submitting caller's user and key id, never
the key): only that user reads it, and it runs as that key's current record (`jobs/callers.py`).
Jobs recorded before creators were have neither, and count as the static user's (`static`).

The item is `job#<id>` in the state table, TTL attribute `expires_at` (reset on every change);
reads check `expires_at` themselves because TTL deletion is lazy. Time is passed in.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from llm_gateway.api.auth import STATIC_USER

Status = Literal["queued", "running", "succeeded", "failed"]
JOB_PK_PREFIX = "job#"


def job_pk(job_id: str) -> str:
    return JOB_PK_PREFIX + job_id


class JobStoreUnavailable(Exception):
    """The job store could not be reached or refused the call (throttling, network)."""


@dataclass(frozen=True)
class Job:
    id: str
    status: Status
    created_at: float
    updated_at: float
    lease_until: float  # queued: the launch must claim it by then; running: the runner's deadline
    expires_at: int
    request: dict[str, Any]  # TranscriptionJobRequest, as JSON
    runner: str | None = None
    result: str | None = field(default=None, repr=False)  # the answer's body (None when in S3)
    result_type: str | None = None  # its content type
    result_in_store: bool = False  # the body is in the object store (too large for an item)
    error: dict[str, Any] | None = None  # OpenAI's error object
    gateway: dict[str, str] = field(default_factory=dict)  # who answered: the x-gateway-* headers
    user: str = STATIC_USER  # who created it (its reader, and whose limits, budgets and ledger it runs on)
    key_id: str = STATIC_USER  # the key it was created with (resolved again when it runs)

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed")


@dataclass(frozen=True)
class Finish:
    status: Literal["succeeded", "failed"]
    result: str | None = None
    result_type: str | None = None
    result_in_store: bool = False
    error: dict[str, Any] | None = None
    gateway: dict[str, str] = field(default_factory=dict)


class JobStore(Protocol):
    def create(self, job: Job) -> None: ...

    def get(self, job_id: str, now: float) -> Job | None: ...

    def claim(self, job_id: str, runner: str, now: float, lease_until: float, expires_at: int) -> Job | None: ...

    def finish(self, job_id: str, runner: str, outcome: Finish, now: float, expires_at: int) -> bool: ...

    def expire(self, job_id: str, error: dict[str, Any], now: float, expires_at: int) -> bool: ...


class MemoryJobStore:
    """The same transitions under one lock (tests; local runs with `--state memory`)."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def create(self, job: Job) -> None:
        with self._lock:
            if job.id in self._jobs:
                raise ValueError(f"job {job.id} exists")
            self._jobs[job.id] = job

    def get(self, job_id: str, now: float) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.expires_at > now else None

    def claim(self, job_id: str, runner: str, now: float, lease_until: float, expires_at: int) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status != "queued" or job.lease_until <= now:
                return None
            claimed = replace(job, status="running", runner=runner, updated_at=now, lease_until=lease_until,
                              expires_at=expires_at)
            self._jobs[job_id] = claimed
            return claimed

    def finish(self, job_id: str, runner: str, outcome: Finish, now: float, expires_at: int) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status != "running" or job.runner != runner:
                return False
            self._jobs[job_id] = replace(
                job, status=outcome.status, updated_at=now, expires_at=expires_at, result=outcome.result,
                result_type=outcome.result_type, result_in_store=outcome.result_in_store, error=outcome.error,
                gateway=dict(outcome.gateway),
            )
            return True

    def expire(self, job_id: str, error: dict[str, Any], now: float, expires_at: int) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.finished or job.lease_until > now:
                return False
            self._jobs[job_id] = replace(job, status="failed", updated_at=now, error=error, expires_at=expires_at)
            return True
