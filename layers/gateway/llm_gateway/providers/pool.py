"""The adapters of one capability for the providers configured *now*.

Provider keys can change while a container is warm: a stack deployed before its secret was
filled, or a rotated key. The pool asks its source for the current provider configs on every
request (the source caches: Powertools Parameters re-reads the secret after its `max_age`) and
rebuilds adapters and the set of servable models only when the configs changed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from llm_gateway.providers.base import ProviderConfig
from llm_gateway.providers.factory import build_adapters
from llm_gateway.selection.catalog import Catalog
from llm_gateway.state.store import ModelKey

A = TypeVar("A")


@dataclass(frozen=True, slots=True)
class PoolView(Generic[A]):
    """The adapters of one capability as configured right now, and the catalog models they serve."""

    configs: tuple[ProviderConfig, ...]
    adapters: Mapping[str, A]
    available: frozenset[ModelKey]  # catalog models of this capability a configured provider serves


class AdapterPool(Generic[A]):
    def __init__(self, capability: str, catalog: Catalog, source: Callable[[], Sequence[ProviderConfig]]) -> None:
        self.capability = capability
        self.catalog = catalog
        self._source = source
        self._view: PoolView[A] | None = None
        self._lock = threading.Lock()

    def current(self) -> PoolView[A]:
        configs = tuple(self._source())
        view = self._view
        if view is not None and view.configs == configs:
            return view
        with self._lock:
            adapters: dict[str, A] = build_adapters(configs, self.capability)
            listed = {config.name: config.models for config in configs}
            available = frozenset(
                entry.key for entry in self.catalog.for_capability(self.capability)
                if entry.provider in adapters and (not listed[entry.provider] or entry.model in listed[entry.provider])
            )
            self._view = PoolView(configs, adapters, available)
            return self._view
