"""pytest fixtures for the fake providers (loaded by tests/conftest.py via `pytest_plugins`).

- `fake_fleet` (session): every fake of the registry (`sandbox.fakes.FAKES`), started once with
  the embedded default config.
- `fakes` (function): the same fleet, with every provider `reset()` (stats, rate-limit counters,
  faults) before the test, so each test starts clean.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.fakes import FakeFleet, start_fakes


@pytest.fixture(scope="session")
def fake_fleet() -> Iterator[FakeFleet]:
    fleet = start_fakes()
    try:
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture
def fakes(fake_fleet: FakeFleet) -> FakeFleet:
    fake_fleet.reset()
    return fake_fleet


class RemoteFake:
    """A fake provider running in another process, driven over its `/_sandbox` HTTP API."""

    def __init__(self, name: str, base_url: str, models: list[str]) -> None:
        self.name = name
        self.base_url = base_url
        self.models = models
        self.root_url = "/".join(base_url.split("/")[:3])

    def add_fault(self, **fault: object) -> None:
        import httpx

        httpx.post(f"{self.root_url}/_sandbox/faults", json=fault, timeout=5).raise_for_status()

    def clear_faults(self) -> None:
        import httpx

        httpx.delete(f"{self.root_url}/_sandbox/faults", timeout=5).raise_for_status()

    def stats(self) -> dict[str, object]:
        import httpx

        response = httpx.get(f"{self.root_url}/_sandbox/stats", timeout=5)
        response.raise_for_status()
        return dict(response.json())


class RemoteFleet:
    def __init__(self, providers: dict[str, RemoteFake]) -> None:
        self.providers = providers


@pytest.fixture(scope="module")
def remote_fake_fleet() -> Iterator[RemoteFleet]:
    """The fakes in their own process (`llm-gateway fakes --json`), as real providers are.

    Timing tests use it: fake servers sharing the test's interpreter compete with the gateway's
    threads for the GIL, which would measure our test rig, not the gateway.
    """
    import json
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "sandbox.cli", "fakes", "--json"],
                               stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline() if process.stdout else ""
        described = json.loads(line)
        yield RemoteFleet({name: RemoteFake(name, d["base_url"], d["models"]) for name, d in described.items()})
    finally:
        process.terminate()
        process.wait(timeout=10)
