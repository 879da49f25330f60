"""`llm-gateway loadgen`: fire chat requests at a running gateway, N at a time, and report.

    llm-gateway loadgen --concurrency 50 --requests 500 [--url http://127.0.0.1:3000]

This is how the README's local-server figures were measured, and what the load test drives.
It records each request's start and end, so besides throughput and latency percentiles it
reports the largest number of requests that were really open at the same moment (a client
that says "50 concurrent" but waits on a pool of 4 would show 4 here).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

DEFAULT_BODY: dict[str, Any] = {"model": "auto", "messages": [{"role": "user", "content": "Say hello"}]}


@dataclass(frozen=True)
class Result:
    status: int  # 0 = no HTTP answer (connection error or timeout)
    started: float
    ended: float
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Report:
    results: list[Result]
    elapsed_s: float

    @property
    def statuses(self) -> Counter[int]:
        return Counter(r.status for r in self.results)

    @property
    def throughput(self) -> float:
        return len(self.results) / self.elapsed_s if self.elapsed_s else 0.0

    def latency_ms(self, quantile: float) -> float:
        ordered = sorted((r.ended - r.started) * 1000 for r in self.results)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] if ordered else 0.0

    @property
    def max_in_flight(self) -> int:
        """The most requests open at one instant, from their start and end times."""
        events = sorted([(r.started, 1) for r in self.results] + [(r.ended, -1) for r in self.results],
                        key=lambda e: (e[0], e[1]))  # at a tie an end frees its place first
        peak = current = 0
        for _, step in events:
            current += step
            peak = max(peak, current)
        return peak

    def summary(self) -> str:
        statuses = ", ".join(f"{status or 'no answer'}: {n}" for status, n in sorted(self.statuses.items()))
        return (f"{len(self.results)} requests in {self.elapsed_s:.1f} s = {self.throughput:.1f} req/s; "
                f"latency p50 {self.latency_ms(0.5):.0f} ms, p95 {self.latency_ms(0.95):.0f} ms, "
                f"p99 {self.latency_ms(0.99):.0f} ms; at most {self.max_in_flight} in flight at once; "
                f"status {statuses}")


async def _one(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> Result:
    started = time.monotonic()
    try:
        response = await client.post(url, json=body)
    except httpx.HTTPError as exc:
        return Result(0, started, time.monotonic(), error=type(exc).__name__)
    return Result(response.status_code, started, time.monotonic(), dict(response.headers))


async def run(url: str, key: str, requests: int, concurrency: int, body: dict[str, Any] | None = None,
              timeout_s: float = 60.0, ramp_s: float = 0.0) -> Report:
    """Send `requests` chat requests, at most `concurrency` open at once, each on its own connection.

    With `ramp_s`, request i is not sent before i * ramp_s / requests seconds: arrivals at a steady
    rate, as traffic ramps up, instead of one instant in which every request hits the same state."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    endpoint = url.rstrip("/") + "/v1/chat/completions"
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, limits=limits,
                                 timeout=timeout_s, trust_env=False) as client:

        async def gated(i: int) -> Result:
            if ramp_s:
                await asyncio.sleep(i * ramp_s / requests)
            async with gate:
                return await _one(client, endpoint, body or DEFAULT_BODY)

        began = time.monotonic()
        results = await asyncio.gather(*(gated(i) for i in range(requests)))
        return Report(list(results), time.monotonic() - began)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="llm-gateway loadgen", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000", help="gateway base URL (without /v1)")
    parser.add_argument("--key", default="local-dev-key", help="a gateway API key")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--ramp", type=float, default=0.0, metavar="SECONDS",
                        help="spread the requests' starts over this many seconds (default: all at once)")
    parser.add_argument("--body", help="request body JSON file (default: a short 'auto' chat)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    body = json.loads(Path(args.body).read_text(encoding="utf-8")) if args.body else None
    report = asyncio.run(run(args.url, args.key, args.requests, args.concurrency, body, ramp_s=args.ramp))
    if args.json:
        print(json.dumps({"requests": len(report.results), "elapsed_s": round(report.elapsed_s, 3),
                          "throughput_rps": round(report.throughput, 1), "p50_ms": round(report.latency_ms(0.5)),
                          "p95_ms": round(report.latency_ms(0.95)), "p99_ms": round(report.latency_ms(0.99)),
                          "max_in_flight": report.max_in_flight,
                          "statuses": {str(k): v for k, v in report.statuses.items()}}))
    else:
        print(report.summary())
    return 0 if set(report.statuses) == {200} else 1
