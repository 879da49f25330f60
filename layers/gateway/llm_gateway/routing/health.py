"""Provider health: passive (every outcome, per container) and active (a scheduled models list).

- Passive: the router records each attempt's outcome here; the status page shows the last
  error class per model, and nothing else needs it (the breakers already act on failures).
- Active: `run_active_checks` (the scheduled `functions/health` Lambda) calls each provider's
  cheapest endpoint, its models list. A 401/403 (or anything the classifier calls `auth`) marks
  the provider unavailable in the shared table (`health#{provider}`) until its configuration
  changes: the record carries a fingerprint of the config (a hash; never the key itself), and a
  rotated key or changed endpoint no longer matches it, so the provider is tried again at once.
  Other failures (timeouts, 5xx) are left to the breakers: they are transient, a bad key is not.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from llm_gateway.providers.base import ChatAdapter, ProviderError
from llm_gateway.retry.classifier import ErrorClass, classify
from llm_gateway.state.items import HEALTH_TTL_S, HealthRecord, decode_health, health_item, health_pk
from llm_gateway.state.store import ModelKey

CHECK_TIMEOUT_S = 5.0


def key_fingerprint(adapter: ChatAdapter) -> str:
    """Identifies a provider's configuration (kind, endpoint, key) without revealing the key."""
    config = adapter.config
    material = f"{config.kind}|{config.base_url}|{config.api_key}".encode()
    return hashlib.sha256(material).hexdigest()[:16]


class HealthStore(Protocol):
    def get_many(self, providers: Iterable[str]) -> dict[str, HealthRecord]: ...

    def put(self, record: HealthRecord) -> None: ...


class MemoryHealthStore:
    def __init__(self) -> None:
        self._records: dict[str, HealthRecord] = {}
        self._lock = threading.Lock()

    def get_many(self, providers: Iterable[str]) -> dict[str, HealthRecord]:
        with self._lock:
            return {p: self._records[p] for p in providers if p in self._records}

    def put(self, record: HealthRecord) -> None:
        with self._lock:
            self._records[record.provider] = record


class DynamoHealthStore:
    """`health#{provider}` items in the gateway's state table (pk `pk`, TTL `expires_at`)."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def get_many(self, providers: Iterable[str]) -> dict[str, HealthRecord]:
        from llm_gateway.state.dynamodb import DynamoStateStore

        pks = [health_pk(p) for p in dict.fromkeys(providers)]
        if not pks:
            return {}
        found = DynamoStateStore(self.client, self.table).load(pks, time.time())  # expired ones are left out
        return {record.provider: record for record in map(decode_health, found.values())}

    def put(self, record: HealthRecord) -> None:
        from llm_gateway.state.dynamodb import encode_value

        item = {name: encode_value(value) for name, value in health_item(record).items()}
        item.update({"pk": {"S": health_pk(record.provider)},
                     "expires_at": {"N": str(int(record.checked_at + HEALTH_TTL_S))}})
        self.client.put_item(TableName=self.table, Item=item)


def unavailable(records: Mapping[str, HealthRecord], adapters: Mapping[str, ChatAdapter]) -> dict[str, str]:
    """Provider → reason for providers an active check found unusable with their *current* config."""
    out: dict[str, str] = {}
    for name, record in records.items():
        adapter = adapters.get(name)
        if adapter is not None and not record.available and record.fingerprint == key_fingerprint(adapter):
            out[name] = f"unavailable: {record.reason}"
    return out


class HealthView:
    """The request path's view of active-check results, cached per container for `max_age_s`."""

    def __init__(self, store: HealthStore, adapters: Callable[[], Mapping[str, ChatAdapter]], max_age_s: float,
                 clock: Callable[[], float]) -> None:
        self.store = store
        self._adapters = adapters  # the providers configured now (keys may rotate)
        self._max_age_s = max_age_s
        self._clock = clock
        self._cached: tuple[float, dict[str, str]] | None = None
        self._lock = threading.Lock()

    def unavailable(self) -> dict[str, str]:
        with self._lock:
            if self._cached is not None and self._clock() - self._cached[0] < self._max_age_s:
                return self._cached[1]
        adapters = self._adapters()
        try:
            value = unavailable(self.store.get_many(adapters), adapters)
        except Exception:  # a health read must never fail a request
            value = {}
        with self._lock:
            self._cached = (self._clock(), value)
        return value


@dataclass
class PassiveStats:
    """One model's recent outcomes in this container, as requests saw them."""

    last_error_class: str | None = None
    last_error_at: float | None = None
    last_success_at: float | None = None
    consecutive_failures: int = 0
    successes: int = 0
    failures: int = 0


class PassiveHealth:
    """Outcome of every attempt, per model, in this container."""

    def __init__(self) -> None:
        self._stats: dict[ModelKey, PassiveStats] = {}
        self._lock = threading.Lock()

    def record(self, key: ModelKey, error_class: str | None, now: float) -> None:
        with self._lock:
            stats = self._stats.setdefault(key, PassiveStats())
            if error_class is None:
                stats.last_success_at, stats.consecutive_failures = now, 0
                stats.successes += 1
            else:
                stats.last_error_class, stats.last_error_at = error_class, now
                stats.consecutive_failures += 1
                stats.failures += 1

    def snapshot(self) -> dict[ModelKey, dict[str, Any]]:
        with self._lock:
            return {key: asdict(stats) for key, stats in self._stats.items()}


def check_provider(engine: Any, adapter: ChatAdapter, now: float, timeout_s: float = CHECK_TIMEOUT_S) -> HealthRecord:
    """One active check: list the provider's models; only an auth failure makes it unavailable."""
    fingerprint = key_fingerprint(adapter)
    try:
        models = engine.list_models(adapter, timeout_s)
    except ProviderError as error:
        error_class = classify(error).error_class
        bad_key = error.status in (401, 403) or error_class is ErrorClass.AUTH
        reason = f"models list answered {error.status or error.transport} ({error_class})"
        return HealthRecord(adapter.name, not bad_key, reason, fingerprint, now, str(error_class))
    return HealthRecord(adapter.name, True, f"models list ok ({len(models)} models)", fingerprint, now)


def run_active_checks(
    adapters: Mapping[str, ChatAdapter], engine: Any, store: HealthStore, now: float | None = None,
) -> dict[str, Any]:
    """Check every configured provider (the scheduled Lambda passes what `health_dependencies` built)."""
    moment = time.time() if now is None else now
    results: dict[str, Any] = {}
    for name, adapter in adapters.items():
        record = check_provider(engine, adapter, moment)
        store.put(record)
        results[name] = {"available": record.available, "reason": record.reason}
    return {"checked": len(results), "providers": results}


def health_dependencies(
    settings: Any = None, on_new_secrets: Callable[[tuple[str, ...]], None] | None = None,
) -> tuple[Callable[[], Mapping[str, ChatAdapter]], Any, HealthStore]:
    """Cold-start composition for the scheduled Lambda, built once per container: the providers'
    adapters *as configured now* (the keys are re-read on the chat function's TTL, so a rotated
    key is the one checked; `on_new_secrets` hears of new values first, for log redaction), the
    engine and the store.

    Imports stay local: the request path never needs them.
    """
    import boto3

    from llm_gateway.config import fetch_secret_values, load_settings
    from llm_gateway.keys import KeySource
    from llm_gateway.providers.base import CHAT
    from llm_gateway.providers.engine import ProviderEngine, build_http_client
    from llm_gateway.providers.factory import build_adapters
    from llm_gateway.state.dynamodb import client_config

    settings = settings if settings is not None else load_settings()
    keys = KeySource(settings, settings.secret_fetch or fetch_secret_values, on_new_secrets or (lambda _secrets: None))
    built: list[tuple[tuple[Any, ...], Mapping[str, ChatAdapter]]] = []

    def adapters() -> Mapping[str, ChatAdapter]:
        configs = tuple(keys.current().providers)
        if not built or built[0][0] != configs:
            built[:] = [(configs, build_adapters(configs, CHAT))]
        return built[0][1]

    engine = ProviderEngine(build_http_client())
    table = settings.state_table
    store: HealthStore = MemoryHealthStore()
    if table:
        client = boto3.client("dynamodb", endpoint_url=settings.dynamodb_endpoint, config=client_config())
        store = DynamoHealthStore(client, table)
    return adapters, engine, store
