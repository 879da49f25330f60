"""Mutable per-provider state of a fake: injected faults and request statistics (rate limits:
`limits.py`).

Every class here is thread-safe (one lock each) because the HTTP server handles requests on
many threads. Randomness (fault `rate`) comes from a seeded `random.Random`, so a test that
sends the same requests in the same order sees the same faults.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass
from typing import Any

FAULT_KINDS = ("429", "500", "503", "401", "timeout", "reset", "malformed", "cut_stream", "trickle", "slow_stream",
               "slow_job", "fail_job")  # fmt: skip
JOB_FAULTS = ("slow_job", "fail_job")  # only consumed where a job starts (a Replicate prediction)


@dataclass
class Fault:
    fault: str
    rate: float = 1.0
    model: str | None = None
    count: int | None = None
    after_chunks: int = 1
    retry_after: float | None = None
    hang_seconds: float = 30.0
    byte_delay_s: float = 0.05  # `trickle`: the pause after each byte of the body
    job_seconds: float = 5.0  # `slow_job` / `fail_job`: how long the job runs before it ends
    message: str = "Prediction failed (fake fault)"  # `fail_job`: the job's error
    delay_ms: float = 100.0  # `slow_stream`: the pause after each stream chunk
    fired: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        kind = str(data.get("fault", ""))
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        rate = float(data.get("rate", 1.0))
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0.0 and 1.0")
        count = data.get("count")
        return cls(
            fault=kind,
            rate=rate,
            model=data.get("model"),
            count=None if count is None else int(count),
            after_chunks=int(data.get("after_chunks", 1)),
            retry_after=None if data.get("retry_after") is None else float(data["retry_after"]),
            hang_seconds=float(data.get("hang_seconds", 30.0)),
            byte_delay_s=float(data.get("byte_delay_s", 0.05)),
            job_seconds=float(data.get("job_seconds", 5.0 if kind == "slow_job" else 0.0)),
            message=str(data.get("message", "Prediction failed (fake fault)")),
            delay_ms=float(data.get("delay_ms", 100.0)),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultBook:
    """Active faults; `pick` decides (deterministically for a given seed) which one fires."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._rng = random.Random(seed)

    def add(self, data: dict[str, Any]) -> Fault:
        fault = Fault.from_dict(data)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._rng = random.Random(self._seed)

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults]

    def pick(self, model: str | None, jobs: bool = False) -> Fault | None:
        """The fault to fire for a request for `model`; job faults only when `jobs` (the request
        starts a job), so polling does not use them up."""
        with self._lock:
            for fault in self._faults:
                if fault.fault in JOB_FAULTS and not jobs:
                    continue
                if fault.model is not None and fault.model != model:
                    continue
                if fault.count is not None and fault.fired >= fault.count:
                    continue
                if fault.rate < 1.0 and self._rng.random() >= fault.rate:
                    continue
                fault.fired += 1
                return fault
        return None


class Stats:
    """Counters behind GET /_sandbox/stats."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        self._data: dict[str, Any] = {
            "received": 0, "served": 0, "rejected": 0,
            "by_status": {}, "by_model": {}, "faults_fired": {},
            "streams_abandoned": 0,  # streams whose client closed the connection before the end
        }  # fmt: skip

    def _model(self, model: str | None) -> dict[str, int] | None:
        if not model:
            return None
        return self._data["by_model"].setdefault(model, {"received": 0, "served": 0, "rejected": 0})

    def received(self, model: str | None) -> None:
        with self._lock:
            self._data["received"] += 1
            entry = self._model(model)
            if entry is not None:
                entry["received"] += 1

    def responded(self, model: str | None, status: int) -> None:
        key = "served" if status < 400 else "rejected"
        with self._lock:
            self._data[key] += 1
            by_status = self._data["by_status"]
            by_status[str(status)] = by_status.get(str(status), 0) + 1
            entry = self._model(model)
            if entry is not None:
                entry[key] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            fired = self._data["faults_fired"]
            fired[kind] = fired.get(kind, 0) + 1

    def abandoned(self) -> None:
        with self._lock:
            self._data["streams_abandoned"] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            data = self._data
            return {
                "received": data["received"],
                "served": data["served"],
                "rejected": data["rejected"],
                "by_status": dict(data["by_status"]),
                "by_model": {m: dict(v) for m, v in data["by_model"].items()},
                "faults_fired": dict(data["faults_fired"]),
                "streams_abandoned": data["streams_abandoned"],
            }
