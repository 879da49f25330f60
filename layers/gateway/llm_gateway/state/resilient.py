"""Degraded mode: keep serving on in-container state when the shared store fails.

The gateway never fails a request only because DynamoDB is throttled or unreachable. When the
primary store is throttled or cannot be reached (throttling error codes, connection errors,
timeouts, unprocessed keys), this wrapper answers from a per-container `MemoryStore` whose
ceilings are scaled down to this container's share, `fraction` (the composition root passes
1 / `LLM_GATEWAY_MAX_CONTAINERS`), because other containers keep spending the same provider quota
where we cannot see it: together they never admit more than the limit. Any other error (a validation error is a bug, not an
outage) is raised. Each fall-back logs a warning and calls `on_degraded(operation, error)` so the
caller can publish a metric without this module depending on the metrics code.

After a failure the primary is left alone for `retry_after_s` (no point paying a timeout on every
request); then the next call tries it again. Items that are put or extended (cooldowns, header
snapshots, failure marks) are always written to the local store too, so a container that degrades
still remembers the 429s it has seen. A reservation made locally and reconciled after the primary
came back moves the primary's counter by the estimate error of that one request: bounded, and
accepted.

Records that must not be lost (the usage ledger: `durable(pk)` says which items) are kept when the
primary did not take them, and written once it answers again (`DeferredAdds`). Only adds that
cannot have been applied are kept (skipped while degraded, refused by throttling, or no connection
made): a write that may have landed (a timeout, a 5xx) is never sent again, so nothing counts
twice, and is logged whole instead, so nothing is lost either.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from llm_gateway.state.aws_client import RETRY_CODES, AwsUnreachable, error_code, is_aws_failure
from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.metering import share_of
from llm_gateway.state.store import CounterAdd, Item, StateStore, StateUnavailable

LOG = logging.getLogger("llm_gateway.state")
T = TypeVar("T")
_OUTAGE_CODES = RETRY_CODES | {"TransactionConflictException"}


def is_outage(exc: BaseException) -> bool:
    """Throttling, any server error (a 5xx, whatever its code or body) and transport failures
    degrade; anything else (a 4xx: a validation error is a bug) is raised."""
    code = error_code(exc)
    if code is not None:
        return code in _OUTAGE_CODES or _status(exc) >= 500
    return isinstance(exc, StateUnavailable) or is_aws_failure(exc)


def not_applied(exc: BaseException) -> bool:
    """Whether a failed write of counters (an ADD, never resent by the clients) certainly changed
    nothing: throttled (refused before it was applied) or no connection made. A timeout or a 5xx
    may have landed."""
    code = error_code(exc)
    if code is not None:
        return code in _REFUSED_CODES and _status(exc) < 500
    if isinstance(exc, AwsUnreachable):
        return not exc.sent
    botocore = sys.modules.get("botocore.exceptions")  # no connection made (not its SSLError: that may come mid-read)
    return botocore is not None and isinstance(exc, (botocore.EndpointConnectionError, botocore.ConnectTimeoutError))


_REFUSED_CODES = (RETRY_CODES - {"InternalServerError", "ServiceUnavailable"}) | {"TransactionConflictException"}


def _status(exc: BaseException) -> int:
    """The HTTP status of an `AwsError` or a botocore `ClientError` (0 when not given)."""
    response = getattr(exc, "response", None)
    meta = response.get("ResponseMetadata") if isinstance(response, dict) else None
    status = meta.get("HTTPStatusCode") if isinstance(meta, dict) else None
    return status if isinstance(status, int) else 0


class ResilientStore:
    """A `StateStore` that prefers `primary` and falls back to conservative local state."""

    def __init__(
        self,
        primary: StateStore,
        fallback: MemoryStore,
        *,
        on_degraded: Callable[[str, BaseException], None],
        durable: Callable[[str], bool],
        fraction: float = 0.5,
        retry_after_s: float = 30.0,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.fraction = fraction
        self.retry_after_s = retry_after_s
        self.on_degraded = on_degraded
        self.durable = durable
        self.deferred = DeferredAdds()
        self._skip_primary_until = float("-inf")

    def degraded(self, now: float) -> bool:
        return now < self._skip_primary_until

    def _try(self, operation: str, now: float, call: Callable[[], T],
             failed: Callable[[BaseException], None] | None = None) -> tuple[bool, T | None]:
        """(True, result) from the primary, or (False, None) after recording an outage (and
        telling `failed` which)."""
        if self.degraded(now):
            return False, None
        try:
            return True, call()
        except Exception as exc:
            if not is_outage(exc):
                raise
            self._skip_primary_until = now + self.retry_after_s
            LOG.warning(
                "state store degraded: %s failed (%s); serving on in-container state at %.0f%% of limits for %.0fs",
                operation, type(exc).__name__, self.fraction * 100, self.retry_after_s,
            )
            self.on_degraded(operation, exc)
            if failed is not None:
                failed(exc)
            return False, None

    def load(self, pks: Sequence[str], now: float, *, consistent: bool = False) -> dict[str, Item]:
        ok, items = self._try("load", now, lambda: self.primary.load(pks, now, consistent=consistent))
        if ok and items is not None:
            return items
        return self.fallback.load(pks, now)

    def add(self, adds: Sequence[CounterAdd], now: float) -> bool:
        if len(adds) == 1 and not adds[0].ceilings and self.durable(adds[0].pk):
            return self._add_durable(adds[0], now)
        ok, done = self._try("add", now, lambda: self.primary.add(adds, now))
        if ok:
            return bool(done)
        scaled = [
            replace(add, ceilings={u: share_of(c, self.fraction) for u, c in add.ceilings.items()})
            for add in adds
        ]
        return self.fallback.add(scaled, now)

    def put(self, pk: str, item: Item, expires_at: int, now: float) -> None:
        self.fallback.put(pk, item, expires_at, now)
        self._try("put", now, lambda: self.primary.put(pk, item, expires_at, now))

    def extend(self, pk: str, item: Item, until: float, expires_at: int, now: float) -> None:
        self.fallback.extend(pk, item, until, expires_at, now)
        self._try("extend", now, lambda: self.primary.extend(pk, item, until, expires_at, now))

    def _add_durable(self, add: CounterAdd, now: float) -> bool:
        """An add that must not be lost, in one write with what is deferred for its item; once the
        primary took it, one more deferred item (a backlog drains by one write a request, never
        a burst the caller waits for)."""
        written = self._write_durable(self.deferred.take(add), now)
        if written is not WRITTEN:
            self.fallback.add([add], now)  # this container's degraded reads still see it
            if written is DEFERRED:  # logged as it is: what is merged with it was logged before
                LOG.warning("counter write deferred until the state table answers",
                            extra={"pk": add.pk, "amounts": dict(add.amounts)})
            return True
        backlog = self.deferred.oldest()
        if backlog is not None:
            with contextlib.suppress(Exception):  # logged whole with its traceback; this add was written
                self._write_durable(backlog, now)
        return True

    def _write_durable(self, write: CounterAdd, now: float) -> str:
        """`WRITTEN` when the primary took `write`; else `DEFERRED` (it cannot have been applied: kept
        for a later write) or `UNKNOWN` (it may have been: logged whole, never sent again)."""
        failures: list[BaseException] = []
        try:
            ok, _ = self._try("add", now, lambda: self.primary.add([write], now), failures.append)
        except Exception:  # not an outage: raised, but `write` may carry deferred adds kept nowhere else
            LOG.error("a counter write failed and is not kept: check the item and add what it lacks "
                      "(it holds any write deferred for the item before)",
                      extra={"pk": write.pk, "amounts": dict(write.amounts)}, exc_info=True)
            raise
        if ok:
            return WRITTEN
        if not failures or not_applied(failures[0]):
            return DEFERRED if self.deferred.keep(write) else UNKNOWN
        LOG.error("a counter write may or may not have landed; it is not sent again (it would count twice): "
                  "check the item and add what it lacks (it holds any write deferred for the item before)",
                  extra={"pk": write.pk, "amounts": dict(write.amounts), "error": type(failures[0]).__name__})
        return UNKNOWN


WRITTEN, DEFERRED, UNKNOWN = "written", "deferred", "unknown"  # what became of a durable write


class DeferredAdds:
    """Unconditional adds the primary has not taken, merged per item, oldest item first. Bounded
    (`limit` items): past it an add is logged whole instead of kept. The store logs each add it
    defers, so a container that ends before the primary answers again loses nothing the logs do
    not hold."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._adds: dict[str, CounterAdd] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._adds)

    def take(self, add: CounterAdd) -> CounterAdd:
        """`add` with what is deferred for its item (no longer deferred: the caller writes it)."""
        if not self._adds:  # the usual case, on every served request: no lock taken
            return add
        with self._lock:
            kept = self._adds.pop(add.pk, None)
        return add if kept is None else kept.plus(add)

    def keep(self, add: CounterAdd) -> bool:
        """Defer `add` (merged with its item's); False when the bound is reached (logged whole)."""
        with self._lock:
            kept = self._adds.get(add.pk)
            if kept is None and len(self._adds) >= self.limit:
                LOG.error("a counter write is lost to the table (too many deferred): add it by hand",
                          extra={"pk": add.pk, "amounts": dict(add.amounts)})
                return False
            self._adds[add.pk] = add if kept is None else kept.plus(add)
            return True

    def oldest(self) -> CounterAdd | None:
        """The item deferred longest (no longer deferred: the caller writes it)."""
        if not self._adds:
            return None
        with self._lock:
            if not self._adds:
                return None
            pk = next(iter(self._adds))
            return self._adds.pop(pk)
