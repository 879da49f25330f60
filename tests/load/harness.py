"""`llm-gateway serve` as the load tests (and `benchmarks/bench_load_memory.py`) run it.

- `catalog_limited_fakes`: the default fake providers, except that every free model and every
  free organisation enforces the catalog's own free-tier limits (exact sliding windows, as the
  real providers count). A request the gateway sends beyond a window is answered 429 by the
  fake and counted there, so "no window exceeded" is what the providers saw, not what the
  gateway believes. Paid models have no limit the catalog knows, so their fakes get none that
  binds (`PAID_LIMITS`; the fakes' own default, 1,000 a minute, would bind on a soak).
- `Served`: the server as a subprocess, as `make dev` runs it, with its process tree read from
  /proc (the front, the container hosts, the fakes, the embedded DynamoDB and S3) so that a
  test can take each process's resident memory.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from llm_gateway.selection.catalog import load_catalog
from sandbox.fakes import config as fake_config
from sandbox.fakes.limits import DIMENSIONS
from tests.gateway_env import without_gateway_settings

REPO = Path(__file__).resolve().parents[2]
PAID_LIMITS = {"rpm": 1_000_000, "tpm": 1_000_000_000}


def _limits(block: Any, where: str) -> dict[str, int]:
    values = {k: v for k, v in (block.model_dump() if block is not None else {}).items() if v is not None}
    unknown = set(values) - set(DIMENSIONS)
    if unknown:  # a limit the fakes cannot count would silently go unchecked
        raise ValueError(f"{where}: the fakes do not count {sorted(unknown)}")
    return values


def catalog_limited_fakes(latency_ms: float = 0.0) -> dict[str, Any]:
    """The default fakes config with the catalog's free-tier limits enforced (see module doc)."""
    raw = fake_config.load_raw(None)
    catalog = load_catalog()
    for name, provider in raw["providers"].items():
        provider["latency_ms"] = latency_ms
        provider["limits"]["default"] = dict(PAID_LIMITS)  # models the loop below does not list
        info = catalog.data.providers.get(name)
        org = _limits(info.free_tier if info is not None else None, f"{name} free_tier")
        if org:
            provider["org_limits"] = org
        for entry in catalog.entries:
            if entry.provider == name and entry.is_free:
                limits = _limits(entry.free_tier, f"{name}/{entry.model} free_tier")
                if limits:
                    provider["limits"][entry.model] = limits
    return raw


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "children").read_text().split()
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
        found += [int(p) for p in text]
    return found


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")


def rss_kib(pid: int) -> int:
    """Resident set size now (VmRSS), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError(f"no VmRSS for {pid}")


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    _roles: dict[str, int] = field(default_factory=dict)

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/_sandbox/stats", timeout=10, trust_env=False).json()

    def processes(self) -> dict[str, int]:
        """Role → pid: `front`, `host w1`, `host w2`, …, `fakes`, `dynamodb`, `s3` (read once: they
        start before the server answers and live as long as it does)."""
        if self._roles:
            return self._roles
        roles = {"front": self.process.pid}
        for pid in _children(self.process.pid):
            args = _cmdline(pid)
            if "sandbox.container_host" in args:
                roles[f"host {args[args.index('--name') + 1]}"] = pid
            elif "sandbox.stand_ins" in args:
                kind = next(a for a in args[args.index("sandbox.stand_ins") + 1:] if not a.startswith("-")
                            and not a.isdigit())
                roles[kind] = pid
        self._roles = roles
        return roles

    def rss(self) -> dict[str, int]:
        """Role → resident memory now, KiB."""
        return {role: rss_kib(pid) for role, pid in self.processes().items()}

    def fakes(self) -> dict[str, dict[str, Any]]:
        """Per fake provider: its stats (what it received, served, rejected) and its limits' usage."""
        out = {}
        for name, described in self.stats()["fakes"].items():
            root = "/".join(described["base_url"].split("/")[:3])
            out[name] = {"stats": httpx.get(f"{root}/_sandbox/stats", timeout=10, trust_env=False).json(),
                         "limits": httpx.get(f"{root}/_sandbox/limits", timeout=10, trust_env=False).json()}
        return out

    def degraded(self) -> int:
        """State operations that fell back to in-container state (the StateDegraded metric)."""
        return self.log.read_text(errors="replace").count('"StateDegraded":[')


def rate_limited_by_fakes(fakes: dict[str, dict[str, Any]]) -> Counter[str]:
    """429s the fake providers answered, per provider: each is a call the gateway sent beyond a window."""
    return Counter({name: f["stats"]["by_status"].get("429", 0) for name, f in fakes.items()
                    if f["stats"]["by_status"].get("429", 0)})


@contextmanager
def served(tmp: Path, *, containers: int, workers: int = 2, fakes: dict[str, Any] | None = None,
           env: dict[str, str] | None = None, start_timeout_s: float = 90) -> Iterator[Served]:
    """`llm-gateway serve` in a subprocess of its own session; stopped (SIGTERM, drained) at exit."""
    config = tmp / "fakes.json"  # JSON is YAML
    config.write_text(json.dumps(fakes if fakes is not None else catalog_limited_fakes()))
    log_path = tmp / "serve.log"
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "sandbox.cli", "serve", "--port", str(port), "--containers", str(containers),
             "--workers", str(workers), "--fakes-config", str(config)],
            cwd=REPO, env={**without_gateway_settings(), **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = Served(f"http://127.0.0.1:{port}", process, log_path)
        try:
            deadline = time.monotonic() + start_timeout_s
            while True:
                assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
                try:
                    if server.stats().get("hosts"):
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait(10)


HOSTS = "host "  # role prefix of the container hosts in `Served.processes`


@dataclass
class Soak:
    """Resident memory of every process, after a warm-up and after each further chunk of requests."""

    warmup: int
    samples: list[tuple[int, dict[str, int]]]  # (requests sent after the warm-up, role → RSS KiB)
    reports: list[Any]  # a loadgen Report per chunk (the warm-up's first)

    @property
    def requests(self) -> int:
        return self.samples[-1][0]

    def growth_kib(self, role: str) -> int:
        """RSS at the end less RSS after the warm-up."""
        return self.samples[-1][1][role] - self.samples[0][1][role]

    def hosts_growth_kib(self) -> int:
        return sum(self.growth_kib(r) for r in self.samples[0][1] if r.startswith(HOSTS))

    def failures(self) -> int:
        return sum(len(r.failures) for r in self.reports)

    def table(self) -> str:
        roles = list(self.samples[0][1])
        lines = ["requests " + " ".join(f"{r:>10}" for r in roles)]
        for done, rss in self.samples:
            lines.append(f"{done:>8} " + " ".join(f"{rss[r] / 1024:>8.1f}Mi" for r in roles))
        return "\n".join(lines)


def soak(server: Served, *, warmup: int, requests: int, chunk: int, concurrency: int,
         mix: dict[str, int] | None, bodies: list[dict[str, Any]] | None = None) -> Soak:
    """Send `warmup` requests, take every process's RSS, then `requests` more in chunks of `chunk`,
    taking it again after each: what a leak of a few hundred bytes per request would show."""
    import asyncio

    from sandbox.loadgen import run

    def send(n: int, kinds: dict[str, int] | None = mix) -> Any:
        return asyncio.run(run(server.url, "local-dev-key", n, concurrency, body=bodies, timeout_s=60, mix=kinds))

    # Containers are created on first need, as Lambda's are: `concurrency` transcriptions at once
    # make every transcription container there will be, so none is born during the measurement.
    reports = [send(concurrency, {"transcription": 1})] if mix and mix.get("transcription") else []
    reports.append(send(warmup))
    samples = [(0, server.rss())]
    done = 0
    while done < requests:
        n = min(chunk, requests - done)
        reports.append(send(n))
        done += n
        samples.append((done, server.rss()))
    return Soak(warmup, samples, reports)
