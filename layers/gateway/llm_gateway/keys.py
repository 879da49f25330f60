"""Provider configs and client keys as of now: the secret is re-read on a TTL, not per deploy.

A stack deployed before its secret was filled, or a rotated key, works within `secret_ttl_s`
in every warm container: Powertools Parameters caches the secret for that long, then fetches it
again. What is derived from it (provider configs, client keys) is recomputed only when the
secret's values changed, and new values are added to log redaction before any use.

A re-read that fails (Secrets Manager throttled, down or slow) keeps the keys in force and is not
tried again for `RETRY_FAILED_READ_S` (at most the TTL): each read can wait for the client's
timeouts, and a request asks for the keys several times, so retrying on every ask would hold
every request while Secrets Manager is out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from llm_gateway.config import SecretFetch, Settings, client_keys, provider_configs
from llm_gateway.providers.base import ProviderConfig

LOG = logging.getLogger("llm_gateway.keys")
RETRY_FAILED_READ_S = 30.0


@dataclass(frozen=True, slots=True)
class Keys:
    """The keys in force: the providers' (with their configs) and the clients' and admins'."""

    providers: tuple[ProviderConfig, ...]
    clients: frozenset[str]
    admins: frozenset[str] = frozenset()

    @property
    def secrets(self) -> tuple[str, ...]:
        values = [p.api_key for p in self.providers] + list(self.clients) + list(self.admins)
        return tuple(sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True))


class KeySource:
    def __init__(self, settings: Settings, fetch: SecretFetch | None,
                 on_new_secrets: Callable[[tuple[str, ...]], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._fetch = fetch if (settings.provider_secret or settings.client_key_secret) else None
        self._on_new_secrets = on_new_secrets
        self._values: tuple[Mapping[str, str] | None, Mapping[str, str] | None] | None = None
        self._keys = Keys(settings.providers, settings.api_keys, settings.admin_keys)
        self._lock = threading.Lock()
        self._clock = clock
        self._next_read = float("-inf")  # after a failed read: when to try again

    def _read(self, name: str | None) -> Mapping[str, str] | None:
        assert self._fetch is not None
        return None if name is None else self._fetch(name, self._settings.secret_ttl_s)

    def current(self) -> Keys:
        if self._fetch is None:
            return self._keys
        now = self._clock()
        if now < self._next_read:
            return self._keys
        try:
            values = (self._read(self._settings.provider_secret), self._read(self._settings.client_key_secret))
        except Exception as exc:  # a failed refresh keeps the keys we have; never fail a request on it
            self._next_read = now + min(RETRY_FAILED_READ_S, float(self._settings.secret_ttl_s))
            LOG.warning("secret re-read failed (%s); the keys in force stay, tried again in %.0f s",
                        type(exc).__name__, self._next_read - now)
            return self._keys
        if values == self._values:
            return self._keys
        env = self._settings.environment
        try:
            clients, admins = client_keys(env, values[1])
            keys = Keys(provider_configs(env, values[0]), clients, admins)
        except ValueError:  # a bad value in a rotated secret keeps the keys we have
            # the error's text may quote the value: only that it happened is logged
            LOG.error("a secret holds a value that is not a valid key configuration; the keys in force stay")
            return self._keys
        self._on_new_secrets(keys.secrets)
        with self._lock:
            self._values, self._keys = values, keys
        return keys

    def providers(self) -> tuple[ProviderConfig, ...]:
        return self.current().providers
