"""`POST /v1/audio/jobs`, `GET /v1/audio/jobs/{id}` and the job runner, over a `JobStore`.

Submit refuses what it can before any audio is read (a 4xx now beats a failed job later): a model
unknown, unable to do what is asked or not allowed for the caller's key, and an upload that does
not exist or is not the caller's own. It writes the job `queued` with its creator (the caller's
user and key id) and launches its run; a launch that fails marks the job failed and answers 503. Only the creator's user reads a job (an
admin key reads any: operators look into a user's failed job); to anyone else it is the same 404
`job_not_found` as an unknown id. The runner claims the job (only one runner ever does), resolves
its creator's key as it stands now (`jobs/callers.py`: revoked → the job fails), transcribes the
creator's upload with the job transcriber as that caller (the same façade, so the same failover,
limits, budgets, allow-list and usage ledger as a request, with the job path's longer deadline),
and records the answer: its body (JSON parsed back for the API) or, when too large for a
DynamoDB item, in the object store. Reading a job whose lease is over (its run never came, or
died with Lambda's timeout) records it failed, so no job stays `queued` or `running` forever.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from llm_gateway.api.audio_schemas import TranscriptionJobRequest, TranscriptionRequest
from llm_gateway.api.auth import Caller
from llm_gateway.api.errors import GatewayError, NotFound
from llm_gateway.jobs.callers import CallerResolver
from llm_gateway.jobs.launcher import JobLauncher
from llm_gateway.jobs.store import Finish, Job, JobStore, JobStoreUnavailable
from llm_gateway.transcription.gateway import TranscriptionOutcome
from llm_gateway.uploads.desk import TranscriberLike
from llm_gateway.uploads.ids import JOB_PREFIX, is_id, new_id
from llm_gateway.uploads.objects import ObjectMissing, StorageUnavailable
from llm_gateway.uploads.service import Uploads, storage_unavailable

LOG = logging.getLogger("llm_gateway.jobs")


class Admit(Protocol):
    def __call__(self, request: TranscriptionRequest, *, translate: bool, caller: Caller) -> None: ...


QUEUE_S = 900.0  # a launched job must start running within this (the template's MaximumEventAgeInSeconds)
LEASE_MARGIN_S = 60.0  # a running job's lease: the job deadline plus this (past Lambda's 900 s timeout)
MAX_ITEM_RESULT_BYTES = 300_000  # DynamoDB items hold 400 KB; larger answers go to the object store
GATEWAY_HEADERS = ("x-gateway-provider", "x-gateway-model", "x-gateway-attempts", "x-gateway-cost-usd")


def job_not_found(job_id: str) -> NotFound:
    shown = job_id if is_id(job_id, JOB_PREFIX) else job_id[:40]
    return NotFound(f"No job '{shown}': it does not exist or has expired (jobs are kept for a day).",
                    param="id", code="job_not_found")


class JobService:
    def __init__(self, store: JobStore, launcher: JobLauncher, uploads: Uploads,
                 transcriber: Callable[[], TranscriberLike], callers: CallerResolver, *, admit: Admit, ttl_s: int,
                 job_deadline_s: float, wall: Callable[[], float] = time.time) -> None:
        self.store = store
        self.admit = admit  # the API path's façade's: what submit can refuse before the audio is read
        self.launcher = launcher
        self.uploads = uploads
        self._transcriber = transcriber  # built on first use: only job runs need it
        self.callers = callers  # who a job runs as: its creator's key, read again at run time
        self.ttl_s = ttl_s
        self.lease_s = job_deadline_s + LEASE_MARGIN_S
        self.wall = wall

    # --- API ----------------------------------------------------------------------------------
    def submit(self, request: TranscriptionJobRequest, *, caller: Caller, function: str | None) -> dict[str, Any]:
        try:
            return self._submit(request, caller, function)
        except JobStoreUnavailable as exc:
            raise _store_unavailable() from exc

    def get(self, job_id: str, *, caller: Caller) -> dict[str, Any]:
        try:
            return self._get(job_id, caller)
        except JobStoreUnavailable as exc:
            raise _store_unavailable() from exc

    def _submit(self, request: TranscriptionJobRequest, caller: Caller, function: str | None) -> dict[str, Any]:
        self.admit(request.transcription(), translate=request.translate, caller=caller)
        self.uploads.check(request.file_id, user=caller.user)
        now = self.wall()
        job = Job(id=new_id(JOB_PREFIX), status="queued", created_at=now, updated_at=now,
                  lease_until=now + QUEUE_S, expires_at=self._expiry(now),
                  request=request.model_dump(mode="json"), user=caller.user, key_id=caller.key_id)
        self.store.create(job)
        try:
            self.launcher.launch(job.id, function)
        except Exception as exc:
            LOG.warning("job launch failed", extra={"job_id": job.id, "error": type(exc).__name__})
            error = GatewayError("The job could not be started; submit it again.", code="job_launch_failed",
                                 status=503, headers={"retry-after": "2"})
            # "now" = the end of its queue lease, so the expiry's condition (lease over) holds at once
            self.store.expire(job.id, error.body()["error"], job.lease_until, self._expiry(now))
            raise error from None
        return self.view(job)

    def _get(self, job_id: str, caller: Caller) -> dict[str, Any]:
        if not is_id(job_id, JOB_PREFIX):
            raise job_not_found(job_id)
        now = self.wall()
        job = self.store.get(job_id, now)
        if job is None or not (job.user == caller.user or caller.admin):
            raise job_not_found(job_id)
        if not job.finished and job.lease_until <= now:
            self.store.expire(job_id, _lost(job).body()["error"], now, self._expiry(now))
            job = self.store.get(job_id, now) or job
        return self.view(job)

    def view(self, job: Job) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": job.id, "object": "audio.transcription.job", "status": job.status,
            "created_at": int(job.created_at), "updated_at": int(job.updated_at), "expires_at": job.expires_at,
            "model": job.request.get("model"), "response_format": job.request.get("response_format"),
            "translate": bool(job.request.get("translate")),
        }
        if job.status == "succeeded":
            out["result"] = self._result(job)
            if job.gateway:
                out["gateway"] = job.gateway
        if job.error is not None:
            out["error"] = job.error
        return out

    # --- runner -------------------------------------------------------------------------------
    def run(self, job_id: str, *, runner: str, remaining_s: float | None) -> str:
        """Run one job to its end; answers the status it ended in ('skipped' if not claimable)."""
        if not is_id(job_id, JOB_PREFIX):
            return "skipped"
        now = self.wall()
        try:
            job = self.store.claim(job_id, runner, now, now + self.lease_s, self._expiry(now))
        except JobStoreUnavailable:
            LOG.warning("job not claimed: job state unavailable (its lease will report it)", extra={"job_id": job_id})
            return "skipped"
        if job is None:
            LOG.warning("job not claimable (already run, or its launch came too late)", extra={"job_id": job_id})
            return "skipped"
        outcome = self._transcribe(job, remaining_s)
        try:
            recorded = self.store.finish(job_id, runner, outcome, self.wall(), self._expiry(self.wall()))
        except JobStoreUnavailable:
            recorded = False
        if not recorded:
            LOG.warning("job result not recorded (no longer this runner's, or state unavailable)",
                        extra={"job_id": job_id})
            return "unrecorded"
        if outcome.status == "succeeded":
            self.uploads.discard(job.request["file_id"])
        return outcome.status

    def _transcribe(self, job: Job, remaining_s: float | None) -> Finish:
        try:
            request = TranscriptionJobRequest.model_validate(job.request)
            caller = self.callers.resolve(job.user, job.key_id)
            audio = self.uploads.audio(request.file_id, user=job.user)
            answer = self._transcriber().transcribe(request.transcription(), audio, translate=request.translate,
                                                    request_id=job.id, remaining_s=remaining_s, caller=caller)
        except GatewayError as exc:
            return Finish(status="failed", error=exc.body()["error"])
        except Exception:
            LOG.exception("job failed with an internal error", extra={"job_id": job.id})
            error = GatewayError("The job hit an internal error. It has been logged.", code="internal_error")
            return Finish(status="failed", error=error.body()["error"])
        return self._finish(job, answer)

    def _finish(self, job: Job, answer: TranscriptionOutcome) -> Finish:
        gateway = {k.removeprefix("x-gateway-"): v for k, v in answer.headers.items() if k.lower() in GATEWAY_HEADERS}
        if answer.status >= 400:
            return Finish(status="failed", error=_error_object(answer), gateway=gateway)
        data = answer.body.encode("utf-8")
        if len(data) <= MAX_ITEM_RESULT_BYTES:
            return Finish(status="succeeded", result=answer.body, result_type=answer.content_type, gateway=gateway)
        store = self.uploads.objects
        if store is None:
            return Finish(status="failed", gateway=gateway, error=GatewayError(
                "The transcript is too large to keep without an object store.", code="result_too_large",
                status=500).body()["error"])
        try:
            store.put_result(job.id, data, answer.content_type)
        except StorageUnavailable:
            return Finish(status="failed", gateway=gateway, error=GatewayError(
                "The transcript could not be stored; submit the job again.", code="storage_unavailable",
                status=503).body()["error"])
        return Finish(status="succeeded", result_type=answer.content_type, result_in_store=True, gateway=gateway)

    def _result(self, job: Job) -> Any:
        text = job.result
        if job.result_in_store and self.uploads.objects is not None:
            try:
                text = self.uploads.objects.read_result(job.id).decode("utf-8")
            except ObjectMissing:
                text = None
            except StorageUnavailable as exc:  # the result is there: "succeeded" with a null one would lose it
                raise storage_unavailable() from exc
        if text is None:
            return None
        if (job.result_type or "").startswith("application/json"):
            try:
                return json.loads(text)
            except ValueError:
                return text
        return text

    def _expiry(self, now: float) -> int:
        return int(now + self.ttl_s)


def _store_unavailable() -> GatewayError:
    return GatewayError("Job state is unavailable right now; try again shortly.", code="state_unavailable",
                        status=503, headers={"retry-after": "2"})


def _lost(job: Job) -> GatewayError:
    if job.status == "queued":
        return GatewayError("The job never started (its run was not delivered in time); submit it again.",
                            code="job_not_started", status=503)
    return GatewayError("The job's run stopped before finishing (it outlived the function's time limit, or its "
                        "container failed); submit it again, or use shorter audio.", code="job_timeout", status=504)


def _error_object(answer: TranscriptionOutcome) -> dict[str, Any]:
    try:
        body = json.loads(answer.body)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            return dict(error)
    except ValueError:
        pass
    fallback: dict[str, Any] = GatewayError(answer.body[:500] or "The transcription failed.",
                                            status=answer.status).body()["error"]
    return fallback
