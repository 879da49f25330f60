"""How a job starts running: an asynchronous invocation of this same function, or a local thread.

Self-invocation, not SQS: a job needs one run, not a queue's throughput, and the job's record in
the state table already is its durable state. An `Event` invocation returns at once (Lambda
queues it), runs the same code version (the caller's ARN, alias included), and costs no polling
or extra resources; the template sets its retries to 0 and a maximum event age, and a job whose
run never came or died is reported failed by its lease (`jobs/store.py`). The event is
`{"llm_gateway_job": "<job id>"}`, nothing else: the job's request is read from its record.

Locally (`make dev`, `llm-gateway invoke`) there is no Lambda to invoke: `ThreadLauncher` runs the
job in a background thread of the container that accepted it, through the handler's job entry.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

JOB_EVENT_KEY = "llm_gateway_job"


def job_event(job_id: str) -> dict[str, str]:
    return {JOB_EVENT_KEY: job_id}


def job_id_of(event: Mapping[str, Any]) -> str | None:
    """The job id of a job-runner event, or None for any other event (API Gateway's)."""
    value = event.get(JOB_EVENT_KEY) if isinstance(event, Mapping) else None
    return value if isinstance(value, str) else None


class JobLauncher(Protocol):
    def launch(self, job_id: str, function: str | None) -> None: ...


class LambdaSelfInvoke:
    """`function`: the ARN the API request came in on (`context.invoked_function_arn`, alias included)."""

    def __init__(self, lambda_client: Callable[[], Any]) -> None:
        self._client_factory = lambda_client
        self._lambda: Any = None

    def launch(self, job_id: str, function: str | None) -> None:
        if not function:
            raise RuntimeError("no function ARN to invoke")
        if self._lambda is None:
            self._lambda = self._client_factory()
        self._lambda.invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(job_event(job_id)))


class ThreadLauncher:
    """Runs `run(job_id)` in a daemon thread (local runs: the job dies with the process)."""

    def __init__(self, run: Callable[[str], None]) -> None:
        self._run = run

    def launch(self, job_id: str, function: str | None) -> None:
        threading.Thread(target=self._run, args=(job_id,), name=f"job-{job_id[4:12]}", daemon=True).start()


def lambda_client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("lambda", config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2}))
