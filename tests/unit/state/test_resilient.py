"""Degraded mode: an outage of the primary never fails a request, local limits are conservative,
and anything that is not an outage (a bug) is raised instead of hidden."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from llm_gateway.providers.base import RateLimitInfo
from llm_gateway.state.aws_client import AwsError, AwsUnreachable
from llm_gateway.state.items import is_usage_pk, meter_pk, windows_of
from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.metering import REQUESTS, TOKENS, Meter, WindowLimit, model_counter, slot_of, usage_of
from llm_gateway.state.resilient import ResilientStore, is_outage, not_applied
from llm_gateway.state.shared import SharedState
from llm_gateway.state.store import CounterAdd, ModelKey, StateUnavailable
from llm_gateway.tenancy.usage import ServedRequest, UsageLedger

KEY = ModelKey("groq", "m")
METER = Meter(model_counter("groq", "m"), WindowLimit.of(60, requests=10))
NOW = 1_700_000_040.0


class Broken:
    """A primary whose every call raises, counting calls."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            raise self.error

        return fail


class Switchable(MemoryStore):
    """A working primary that can be made to fail with `error`."""

    def __init__(self) -> None:
        super().__init__()
        self.error: Exception | None = None

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def load(self, pks: Any, now: float, *, consistent: bool = False) -> Any:
        self._check()
        return super().load(pks, now, consistent=consistent)

    def add(self, adds: Any, now: float) -> bool:
        self._check()
        return super().add(adds, now)


def client_error(code: str, operation: str = "UpdateItem") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


THROTTLED = client_error("ProvisionedThroughputExceededException", "BatchGetItem")


def resilient(primary: Any, seen: list[str] | None = None, **kwargs: Any) -> ResilientStore:
    return ResilientStore(primary, MemoryStore(), on_degraded=lambda op, exc: (seen if seen is not None else []).append(op),
                          durable=is_usage_pk, **kwargs)


def window(state: SharedState, now: float = NOW) -> list:
    return [usage_of(METER, state.load([METER], [KEY], now).counters, now)]


@pytest.mark.parametrize("error", [THROTTLED, EndpointConnectionError(endpoint_url="http://x"),
                                   ReadTimeoutError(endpoint_url="http://x"), StateUnavailable("unprocessed keys")])
def test_outages_degrade_to_half_the_limits(error: Exception, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []
    state = SharedState(resilient(Broken(error), seen), fold_reconcile=True)
    snapshot = state.load([METER], [KEY], NOW)
    assert snapshot.degraded
    admitted = [state.reserve(window(state), {REQUESTS: 1}, NOW) is not None for _ in range(10)]
    assert sum(admitted) == 5  # other containers spend the same quota unseen: half of it here
    assert seen == ["load"] and "degraded" in caplog.text


def test_throttled_writes_degrade_too() -> None:
    seen: list[str] = []
    primary = Switchable()
    store = resilient(primary, seen)
    primary.error = client_error("ProvisionedThroughputExceededException")
    add = CounterAdd("rl#x", {REQUESTS: 1}, int(NOW) + 60, {REQUESTS: 4})
    assert [store.add([add], NOW) for _ in range(3)] == [True, True, False]  # ceiling 4 → 2 locally
    assert seen == ["add"] and store.degraded(NOW) and store.fallback.load(["rl#x"], NOW) == {"rl#x": {REQUESTS: 2}}


@pytest.mark.parametrize("code", ["ValidationException", "ResourceNotFoundException", "AccessDeniedException"])
def test_errors_that_are_not_outages_are_raised_not_hidden(code: str) -> None:
    """A validation error is a bug in our request, not an outage: serving on local state would hide it."""
    seen: list[str] = []
    primary = Switchable()
    primary.error = client_error(code)
    store = resilient(primary, seen)
    with pytest.raises(ClientError, match=code):
        store.add([CounterAdd("rl#x", {REQUESTS: 1}, int(NOW) + 60, {REQUESTS: 4})], NOW)
    with pytest.raises(ClientError):
        store.load(["rl#x"], NOW)
    assert seen == [] and not store.degraded(NOW) and store.fallback.load(["rl#x"], NOW) == {}
    assert not is_outage(client_error(code))
    assert is_outage(client_error("ProvisionedThroughputExceededException"))
    assert is_outage(client_error("ThrottlingException")) and is_outage(ConnectionResetError())


def test_primary_is_retried_after_the_pause() -> None:
    primary = Broken(THROTTLED)
    store = resilient(primary, retry_after_s=30)
    store.load(["a"], NOW)
    store.load(["a"], NOW + 10)
    assert primary.calls == 1 and store.degraded(NOW + 10)
    store.load(["a"], NOW + 31)
    assert primary.calls == 2


def test_a_recovered_primary_is_used_again() -> None:
    primary = Switchable()
    state = SharedState(resilient(primary, retry_after_s=30), fold_reconcile=False)
    primary.error = THROTTLED
    assert state.load([METER], [KEY], NOW).degraded
    primary.error = None
    assert state.load([METER], [KEY], NOW + 10).degraded  # still paused
    assert state.reserve(window(state, NOW + 31), {REQUESTS: 1}, NOW + 31) is not None
    assert not state.load([METER], [KEY], NOW + 31).degraded
    assert METER.pk(METER.limit.period.start(NOW + 31)) in windows_of(  # written to the primary
        primary.load([meter_pk(METER.counter)], NOW + 31))


def test_healthy_primary_is_used_and_cooldowns_are_kept_locally() -> None:
    primary = MemoryStore()
    state = SharedState(resilient(primary), fold_reconcile=False)
    reservation = state.reserve(window(state), {REQUESTS: 1, TOKENS: 5}, NOW)
    assert reservation is not None
    state.reconcile(reservation, {REQUESTS: 1, TOKENS: 7}, NOW)
    state.cool_down(KEY, NOW + 20, "429", NOW)
    state.record_headers(KEY, RateLimitInfo(remaining_requests=1), NOW)
    snap = state.load([METER], [KEY], NOW)
    assert not snap.degraded and snap.counters[METER.pk(int(NOW))] == {REQUESTS: 1, TOKENS: 7}
    assert METER.pk(int(NOW)) in windows_of(primary.load([meter_pk(METER.counter)], NOW))  # in the primary only
    fallback = SharedState(state.store.fallback, fold_reconcile=False)  # type: ignore[attr-defined]
    assert fallback.load([METER], [KEY], NOW).counters == {}
    remembered = fallback.load([], [KEY], NOW).models[KEY]  # a later outage still knows the 429
    assert remembered.cooldown is not None and remembered.headers is not None


def test_a_local_reservation_reconciled_after_recovery_moves_the_primary_by_the_error_only() -> None:
    """Documented and accepted: the estimate error of that one request lands in the primary."""
    primary = Switchable()
    state = SharedState(resilient(primary, retry_after_s=30), fold_reconcile=False)
    primary.error = THROTTLED
    reservation = state.reserve(window(state), {REQUESTS: 1, TOKENS: 5}, NOW)
    assert reservation is not None
    primary.error = None
    state.reconcile(reservation, {REQUESTS: 1, TOKENS: 9}, NOW + 31)
    pk = METER.pk(int(NOW))
    item = [meter_pk(METER.counter)]
    assert windows_of(primary.load(item, NOW + 31)) == {pk: {TOKENS: 4}}  # +4 tokens, no request
    assert windows_of(state.store.fallback.load(item, NOW + 31)) == {  # type: ignore[attr-defined]
        pk: {REQUESTS: 1, TOKENS: 5, "last_at": NOW, f"{REQUESTS}@{slot_of(METER.limit.period, int(NOW), NOW)}": 1}}


@pytest.mark.parametrize("containers", [2, 3, 4, 20])
def test_n_degraded_containers_together_never_admit_more_than_the_limit(containers: int) -> None:
    """Each container takes 1/N of every limit while it cannot see the others, rounded down."""
    total = 0
    for _ in range(containers):  # each its own process: its own fallback, the same dead table
        state = SharedState(resilient(Broken(THROTTLED), fraction=1 / containers), fold_reconcile=True)
        state.load([METER], [KEY], NOW)
        total += sum(state.reserve(window(state), {REQUESTS: 1}, NOW) is not None for _ in range(10))
    assert total <= 10
    assert total == 10 // containers * containers  # and each uses its whole share


def test_the_composition_root_gives_each_container_its_share(monkeypatch: pytest.MonkeyPatch) -> None:
    from llm_gateway.compose import build_core
    from llm_gateway.config import load_settings
    from llm_gateway.observability.metrics import RecordingMetrics

    settings = load_settings({"LLM_GATEWAY_STATE_TABLE": "state", "LLM_GATEWAY_MAX_CONTAINERS": "20",
                              "AWS_DEFAULT_REGION": "us-east-1"})
    core = build_core(settings, metrics=RecordingMetrics(), dynamodb_client=object())
    assert isinstance(core.state.store, ResilientStore) and core.state.store.fraction == pytest.approx(1 / 20)


# --- the usage ledger through an outage: nothing lost, nothing counted twice ---------------------------
def _ledger_usage(primary: Any, user: str, day: str = "2023-11-14") -> dict[str, Any]:
    return dict(MemoryStore.load(primary, [f"usage#{user}#{day}"], NOW).get(f"usage#{user}#{day}", {}))


def _served(user: str, cost: float = 0.001) -> ServedRequest:
    return ServedRequest(user, "groq", "m", free=False, cost_usd=cost, tokens_in=10, tokens_out=5)


@pytest.mark.parametrize("error", [
    client_error("ThrottlingException"), client_error("ProvisionedThroughputExceededException"),
    EndpointConnectionError(endpoint_url="http://x"), AwsUnreachable("UpdateItem: ConnectError", sent=False),
])
def test_usage_records_the_table_refused_or_never_got_reach_it_once_it_answers(error: Exception) -> None:
    """Found by a failure-injection pass: a record whose write failed (or was skipped while the
    store was degraded) stayed in the container's memory only, missing from `/v1/usage` and the
    reports for good. Writes that cannot have been applied are kept and written later."""
    primary = Switchable()
    store = resilient(primary, retry_after_s=30)
    ledger = UsageLedger(store)
    primary.error = error
    ledger.record(_served("ann"), NOW)  # refused: the store degrades
    primary.error = None
    ledger.record(_served("ann"), NOW + 1)  # degraded: the primary is not asked
    ledger.record(_served("bob"), NOW + 2)
    assert _ledger_usage(primary, "ann") == {}
    ledger.record(_served("ann"), NOW + 31)  # the primary again: ann's three in one write, then bob's
    assert _ledger_usage(primary, "ann")["requests"] == 3
    assert _ledger_usage(primary, "ann")["cost_e8"] == 300_000
    assert _ledger_usage(primary, "bob")["requests"] == 1
    assert len(store.deferred) == 0


def test_a_backlog_drains_one_item_a_write() -> None:
    primary = Switchable()
    store = resilient(primary, retry_after_s=30)
    ledger = UsageLedger(store)
    primary.error = client_error("ThrottlingException")
    for user in ("a", "b", "c"):
        ledger.record(_served(user), NOW)
    primary.error = None
    ledger.record(_served("d"), NOW + 31)
    assert [bool(_ledger_usage(primary, u)) for u in "abcd"] == [True, False, False, True]
    ledger.record(_served("d"), NOW + 32)
    ledger.record(_served("d"), NOW + 33)
    assert [_ledger_usage(primary, u).get("requests") for u in "abcd"] == [1, 1, 1, 3]


@pytest.mark.parametrize("error", [ReadTimeoutError(endpoint_url="http://x"), client_error("InternalServerError"),
                                   AwsUnreachable("UpdateItem: ReadTimeout", sent=True)])
def test_a_usage_write_that_may_have_landed_is_logged_not_sent_again(error: Exception,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """A timeout or a 5xx may have been applied: writing it again could count it twice. It is
    logged whole (item and amounts) for the operator instead."""
    primary = Switchable()
    store = resilient(primary, retry_after_s=30)
    ledger = UsageLedger(store)
    primary.error = error
    with caplog.at_level("ERROR", logger="llm_gateway.state"):
        ledger.record(_served("ann"), NOW)
    primary.error = None
    ledger.record(_served("ann"), NOW + 31)
    assert _ledger_usage(primary, "ann")["requests"] == 1
    logged = [r for r in caplog.records if "may or may not have landed" in r.getMessage()]
    assert len(logged) == 1 and logged[0].pk == "usage#ann#2023-11-14" and logged[0].amounts["requests"] == 1


def test_other_adds_are_not_deferred() -> None:
    """Windows and give-backs are not kept through an outage: a window written late would count
    against a later window's requests (the fallback's scaled limits already held the outage's)."""
    primary = Switchable()
    store = resilient(primary, retry_after_s=30)
    primary.error = client_error("ThrottlingException")
    store.add([CounterAdd(meter_pk(METER), {"requests": 1}, int(NOW) + 60)], NOW)
    assert len(store.deferred) == 0


def test_deferred_adds_are_bounded_and_what_is_past_the_bound_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    primary = Switchable()
    store = resilient(primary, retry_after_s=30)
    store.deferred.limit = 2
    ledger = UsageLedger(store)
    primary.error = client_error("ThrottlingException")
    with caplog.at_level("WARNING", logger="llm_gateway.state"):
        for user in ("a", "b", "c", "a"):
            ledger.record(_served(user), NOW)
    assert len(store.deferred) == 2
    lost = [r for r in caplog.records if "lost to the table" in r.getMessage()]
    assert [r.pk for r in lost] == ["usage#c#2023-11-14"]
    deferred = [r.pk for r in caplog.records if "deferred until" in r.getMessage()]
    assert deferred == ["usage#a#2023-11-14", "usage#b#2023-11-14", "usage#a#2023-11-14"]


def test_not_applied_tells_refusals_from_writes_that_may_have_landed() -> None:
    assert not_applied(client_error("ThrottlingException"))
    assert not_applied(AwsError("ProvisionedThroughputExceededException", "", 400))
    assert not_applied(AwsUnreachable("x", sent=False))
    assert not_applied(EndpointConnectionError(endpoint_url="http://x"))
    assert not not_applied(AwsError("InternalServerError", "", 500))
    assert not not_applied(AwsUnreachable("x", sent=True))
    assert not not_applied(ReadTimeoutError(endpoint_url="http://x"))
    assert not not_applied(client_error("ValidationException"))


class FailsOn(Switchable):
    """A primary whose add of one item raises `error` (the others are written)."""

    def __init__(self, pk: str, error: Exception) -> None:
        super().__init__()
        self.pk, self.failing = pk, error

    def add(self, adds: Any, now: float) -> bool:
        if any(add.pk == self.pk for add in adds):
            raise self.failing
        return super().add(adds, now)


def test_deferred_records_a_write_that_is_not_an_outage_failed_are_logged_whole(
        caplog: pytest.LogCaptureFixture) -> None:
    """A write that fails with an error that is not an outage (refused access, a validation
    error) is raised, but the records deferred for its item that it carried are no longer kept:
    they are logged whole with it, or they would be lost with nothing but the earlier 'deferred'
    warnings (which say they would be written) to find them by."""
    primary = FailsOn("usage#ann#2023-11-14", client_error("ThrottlingException"))
    store = resilient(primary, retry_after_s=30)
    ledger = UsageLedger(store)
    ledger.record(_served("ann"), NOW)  # throttled: deferred
    assert len(store.deferred) == 1
    primary.failing = client_error("AccessDeniedException")
    with caplog.at_level("ERROR", logger="llm_gateway.state"):
        ledger.record(_served("ann"), NOW + 31)  # refused for good: the deferred one goes with it
    assert len(store.deferred) == 0
    logged = [r for r in caplog.records if r.levelname == "ERROR" and getattr(r, "pk", None) == primary.pk]
    assert len(logged) == 1 and logged[0].amounts["requests"] == 2


def test_a_backlog_item_whose_write_is_not_an_outage_is_logged_whole(caplog: pytest.LogCaptureFixture) -> None:
    """The same for the backlog item written after a record: and that record, which the table
    took, is not reported as failed."""
    primary = FailsOn("usage#ann#2023-11-14", client_error("ThrottlingException"))
    store = resilient(primary, retry_after_s=30)
    ledger = UsageLedger(store)
    ledger.record(_served("ann"), NOW)
    primary.failing = client_error("AccessDeniedException")
    with caplog.at_level("WARNING"):
        ledger.record(_served("bob"), NOW + 31)  # bob's written, then ann's backlog item refused
    assert _ledger_usage(primary, "bob")["requests"] == 1 and len(store.deferred) == 0
    logged = [r for r in caplog.records if r.levelname == "ERROR" and getattr(r, "pk", None) == primary.pk]
    assert len(logged) == 1 and logged[0].amounts["requests"] == 1
    assert not [r for r in caplog.records if "usage write failed" in r.getMessage()]
