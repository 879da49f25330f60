"""DynamoDB `StateStore`: the rate-limit state every Lambda container shares.

One table, partition key `pk` (string), TTL attribute `expires_at` (epoch seconds). Items:
- `rl#{provider}#{model}#{window_s}#{start}`: `requests`, `tokens` of one fixed window. Requests
  and tokens of the same window length share an item, so one condition guards both.
- `hdr#{provider}#{model}`: the provider's last rate-limit headers (`observed_at` + fields).
- `cd#{provider}#{model}`: a cooldown (`until`, `reason`).
- breaker items (`cb#…`) belong to routing; `load` only reads them in the same round trip.

Calls per request (the budget DESIGN.md sets): `load` is one BatchGetItem (another only per 100
keys, or to retry UnprocessedKeys); `reserve` is one conditional UpdateItem for a single window or
one TransactWriteItems when minute and day windows must move together. The condition
(`attribute_not_exists(n) OR n <= limit - ask`) is evaluated by DynamoDB atomically, so no number
of concurrent containers can push a window past its limit. TTL deletion is lazy (up to 48 h), so
every read checks `expires_at` itself.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config
from botocore.exceptions import ClientError

from llm_gateway.providers.base import RateLimitInfo
from llm_gateway.state.rate_limits import snapshot_expiry
from llm_gateway.state.store import (
    Cooldown,
    HeaderSnapshot,
    ModelKey,
    ModelState,
    Reservation,
    StateSnapshot,
    StateUnavailable,
    WindowLimit,
    WindowUsage,
)

WINDOW_MARGIN_S = 60
BATCH_LIMIT = 100
UNPROCESSED_RETRIES = 4
CONFLICT_RETRIES = 3
_HDR_FIELDS = ("limit_requests", "remaining_requests", "reset_requests_s", "limit_tokens",
               "remaining_tokens", "reset_tokens_s", "retry_after_s", "requests_window_s", "tokens_window_s")
_DESER = TypeDeserializer()


def client_config() -> Config:
    """Short timeouts and few SDK retries: state must never hold a request hostage."""
    return Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 2, "mode": "standard"})


def create_table(client: Any, name: str) -> None:
    """Create the state table (on-demand, TTL on `expires_at`) and wait until it is active."""
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )


def window_pk(key: ModelKey, limit: WindowLimit, start: int) -> str:
    return f"rl#{key.provider}#{key.model}#{limit.seconds}#{start}"


def header_pk(key: ModelKey) -> str:
    return f"hdr#{key.provider}#{key.model}"


def cooldown_pk(key: ModelKey) -> str:
    return f"cd#{key.provider}#{key.model}"


def _num(item: Mapping[str, Any], name: str) -> float | None:
    value = item.get(name)
    return float(value["N"]) if value is not None and "N" in value else None


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, set, tuple)):
        return [_plain(v) for v in value]
    return value


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoStateStore:
    """StateStore over one DynamoDB table through a low-level boto3 client (shared, thread-safe)."""

    def __init__(self, client: Any, table: str, *, consistent_read: bool = False) -> None:
        self.client = client
        self.table = table
        self.consistent_read = consistent_read

    # --- load ------------------------------------------------------------------------------------
    def _batch_get(self, pks: list[str]) -> dict[str, dict[str, Any]]:
        """BatchGetItem in chunks of 100, retrying UnprocessedKeys with a short backoff."""
        found: dict[str, dict[str, Any]] = {}
        for offset in range(0, len(pks), BATCH_LIMIT):
            request: dict[str, Any] = {
                self.table: {"Keys": [{"pk": {"S": pk}} for pk in pks[offset : offset + BATCH_LIMIT]],
                             "ConsistentRead": self.consistent_read}
            }
            for attempt in range(UNPROCESSED_RETRIES + 1):
                response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table, []):
                    found[item["pk"]["S"]] = item
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                if attempt == UNPROCESSED_RETRIES:
                    raise StateUnavailable(f"DynamoDB left {len(request[self.table]['Keys'])} keys unprocessed")
                time.sleep(0.01 * 2**attempt)
        return found

    def load(
        self, limits: Mapping[ModelKey, Sequence[WindowLimit]], now: float, breaker_ids: Sequence[str] = ()
    ) -> StateSnapshot:
        """One BatchGetItem (per 100 keys) for windows, headers, cooldowns and breakers."""
        pks: dict[str, None] = {}
        for key, lims in limits.items():
            for lim in lims:
                pks[window_pk(key, lim, lim.start(now))] = None
                pks[window_pk(key, lim, lim.start(now) - lim.seconds)] = None  # for the sliding estimate
            pks[header_pk(key)] = None
            pks[cooldown_pk(key)] = None
        for bid in breaker_ids:
            pks[bid] = None
        items = {
            pk: item for pk, item in self._batch_get(list(pks)).items()
            if (_num(item, "expires_at") or float("inf")) > now
        }
        models = {key: self._model_state(key, lims, items, now) for key, lims in limits.items()}
        breakers = {
            bid: {k: _plain(_DESER.deserialize(v)) for k, v in items[bid].items()}
            for bid in breaker_ids if bid in items
        }
        return StateSnapshot(models=models, breakers=breakers)

    @staticmethod
    def _model_state(
        key: ModelKey, lims: Sequence[WindowLimit], items: Mapping[str, Mapping[str, Any]], now: float
    ) -> ModelState:
        def usage(lim: WindowLimit, start: int) -> WindowUsage:
            item = items.get(window_pk(key, lim, start), {})
            return WindowUsage(lim, start, int(_num(item, "requests") or 0), int(_num(item, "tokens") or 0))

        windows = tuple(usage(lim, lim.start(now)) for lim in lims)
        previous = tuple(usage(lim, lim.start(now) - lim.seconds) for lim in lims)
        cooldown = None
        cd = items.get(cooldown_pk(key))
        if cd is not None and (_num(cd, "until") or 0) > now:
            cooldown = Cooldown(until=_num(cd, "until") or 0.0, reason=cd.get("reason", {}).get("S", ""))
        headers = None
        hdr = items.get(header_pk(key))
        if hdr is not None:
            fields: dict[str, Any] = {name: _num(hdr, name) for name in _HDR_FIELDS}
            for name in ("limit_requests", "remaining_requests", "limit_tokens", "remaining_tokens"):
                fields[name] = None if fields[name] is None else int(fields[name])
            for name in ("requests_window_s", "tokens_window_s"):
                fields[name] = int(fields[name] or 60)
            headers = HeaderSnapshot(RateLimitInfo(**fields), observed_at=_num(hdr, "observed_at") or now)
        return ModelState(key, windows=windows, cooldown=cooldown, headers=headers, previous=previous)

    # --- reserve / reconcile -----------------------------------------------------------------------
    def _window_update(self, key: ModelKey, lim: WindowLimit, start: int, tokens: int) -> dict[str, Any]:
        """An Update that adds 1 request and `tokens`, conditional on staying within the limits."""
        conditions = []
        values: dict[str, Any] = {
            ":one": {"N": "1"},
            ":tok": {"N": str(tokens)},
            ":exp": {"N": str(lim.expires_at(start))},
        }
        if lim.max_requests is not None:
            conditions.append("(attribute_not_exists(#r) OR #r <= :rmax)")
            values[":rmax"] = {"N": str(lim.max_requests - 1)}
        if lim.max_tokens is not None:
            conditions.append("(attribute_not_exists(#t) OR #t <= :tmax)")
            values[":tmax"] = {"N": str(lim.max_tokens - tokens)}
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"pk": {"S": window_pk(key, lim, start)}},
            "UpdateExpression": "SET #e = :exp ADD #r :one, #t :tok",
            "ExpressionAttributeNames": {"#r": "requests", "#t": "tokens", "#e": "expires_at"},
            "ExpressionAttributeValues": values,
        }
        if conditions:
            update["ConditionExpression"] = " AND ".join(conditions)
        return update

    def reserve(
        self, key: ModelKey, limits: Sequence[WindowLimit], tokens: int, now: float
    ) -> Reservation | None:
        """One conditional write: UpdateItem for one window, TransactWriteItems for several."""
        limits = tuple(limits)
        starts = tuple(lim.start(now) for lim in limits)
        reservation = Reservation(key=key, limits=limits, starts=starts, tokens=tokens)
        for lim in limits:
            if (lim.max_tokens is not None and tokens > lim.max_tokens) or lim.max_requests == 0:
                return None  # can never fit: do not spend a write finding out
        updates = [self._window_update(key, lim, s, tokens) for lim, s in zip(limits, starts, strict=True)]
        if not updates:
            return reservation
        if len(updates) == 1:
            try:
                self.client.update_item(**updates[0])
            except ClientError as exc:
                if _conditional_failed(exc):
                    return None
                raise
            return reservation
        return reservation if self._transact(updates) else None

    def _transact(self, updates: list[dict[str, Any]]) -> bool:
        """False when a condition failed; retries only transaction conflicts (nothing was written)."""
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                self.client.transact_write_items(TransactItems=[{"Update": u} for u in updates])
                return True
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                codes = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                if "ConditionalCheckFailed" in codes:
                    return False
                if attempt == CONFLICT_RETRIES:
                    raise
                time.sleep(0.005 * 2**attempt)
        return False

    def reconcile(self, reservation: Reservation, actual_tokens: int, now: float) -> None:
        """Move the tokens by (actual - reserved), unconditionally: usage already happened."""
        delta = actual_tokens - reservation.tokens
        if delta == 0 or not reservation.limits:
            return
        updates = [
            {
                "TableName": self.table,
                "Key": {"pk": {"S": window_pk(reservation.key, lim, start)}},
                "UpdateExpression": "SET #e = if_not_exists(#e, :exp) ADD #t :d",
                "ExpressionAttributeNames": {"#t": "tokens", "#e": "expires_at"},
                "ExpressionAttributeValues": {
                    ":d": {"N": str(delta)},
                    ":exp": {"N": str(lim.expires_at(start))},
                },
            }
            for lim, start in zip(reservation.limits, reservation.starts, strict=True)
        ]
        if len(updates) == 1:
            self.client.update_item(**updates[0])
        else:
            self._transact(updates)

    # --- cooldowns and headers -------------------------------------------------------------------
    def cool_down(self, key: ModelKey, until: float, reason: str, now: float) -> None:
        """Conditional: only extends (`attribute_not_exists(until) OR until < :new`)."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": cooldown_pk(key)}},
                UpdateExpression="SET #u = :u, #why = :why, #e = :exp",
                ConditionExpression="attribute_not_exists(#u) OR #u < :u",
                ExpressionAttributeNames={"#u": "until", "#why": "reason", "#e": "expires_at"},
                ExpressionAttributeValues={
                    ":u": {"N": repr(float(until))},
                    ":why": {"S": reason[:500]},
                    ":exp": {"N": str(int(until) + WINDOW_MARGIN_S)},
                },
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def record_headers(self, key: ModelKey, info: RateLimitInfo, now: float) -> None:
        """Last writer wins: the newest headers are the truest."""
        item: dict[str, Any] = {
            "pk": {"S": header_pk(key)},
            "observed_at": {"N": repr(float(now))},
            "expires_at": {"N": str(int(snapshot_expiry(info, now)) + 1)},
        }
        for name in _HDR_FIELDS:
            value = getattr(info, name)
            if value is not None:
                item[name] = {"N": repr(value)}
        self.client.put_item(TableName=self.table, Item=item)
