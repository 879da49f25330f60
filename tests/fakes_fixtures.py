"""pytest fixtures for the fake providers (loaded by tests/conftest.py via `pytest_plugins`).

- `fake_fleet` (session): all five fakes, started once with the embedded default config.
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
