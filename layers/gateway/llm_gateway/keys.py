"""Provider configs and client keys as of now: the secret is re-read on a TTL, not per deploy.

A stack deployed before its secret was filled, or a rotated key, works within `secret_ttl_s`
in every warm container: Powertools Parameters caches the secret for that long, then fetches it
again. What is derived from it (provider configs, client keys) is recomputed only when the
secret's values changed, and new values are added to log redaction before any use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from llm_gateway.config import Settings, client_keys, provider_configs
from llm_gateway.providers.base import ProviderConfig

SecretFetch = Callable[[str, int], Mapping[str, str]]


@dataclass(frozen=True, slots=True)
class Keys:
    providers: tuple[ProviderConfig, ...]
    clients: frozenset[str]

    @property
    def secrets(self) -> tuple[str, ...]:
        values = [p.api_key for p in self.providers] + list(self.clients)
        return tuple(sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True))


class KeySource:
    def __init__(self, settings: Settings, fetch: SecretFetch | None,
                 on_new_secrets: Callable[[tuple[str, ...]], None]) -> None:
        self._settings = settings
        self._fetch = fetch if settings.provider_secret else None
        self._on_new_secrets = on_new_secrets
        self._values: Mapping[str, str] | None = None
        self._keys = Keys(settings.providers, settings.api_keys)
        self._lock = threading.Lock()

    def current(self) -> Keys:
        if self._fetch is None or self._settings.provider_secret is None:
            return self._keys
        try:
            values = self._fetch(self._settings.provider_secret, self._settings.secret_ttl_s)
        except Exception:  # a failed refresh keeps the keys we have; never fail a request on it
            return self._keys
        if values is self._values or values == self._values:
            return self._keys
        env = self._settings.environment
        keys = Keys(provider_configs(env, values), client_keys(env, values))
        self._on_new_secrets(keys.secrets)
        with self._lock:
            self._values, self._keys = values, keys
        return keys

    def providers(self) -> tuple[ProviderConfig, ...]:
        return self.current().providers
