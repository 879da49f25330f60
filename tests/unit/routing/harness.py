"""A chat router on a fake clock over `httpx.MockTransport`: the real composition root, no socket.

`build_core` gets an httpx client whose transport is a function, a `MemoryStore`, a synthetic
catalog and `compose.Clocks` from a `FakeClock`, so the runner's planning, reservations,
breakers, failure memory, timeouts, backoff and capacity waits all run as in production while
time only moves when a test (or a fake provider) moves it. A provider "takes" seconds by
advancing the clock; a hanging one advances it by the read timeout the engine gave it and
raises `httpx.ReadTimeout`, which is what httpx does after that long.

Providers: groq, openai and mistral (all speak OpenAI's wire format), one free model each, in
distinct categories so an `auto` (small) request has one fixed plan order: groq (small), then
openai (large), then mistral (reasoning). No ties means the balancer never reorders them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from llm_gateway.api.errors import GatewayError
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.compose import Clocks, Core, build_chat, build_core
from llm_gateway.config import load_settings
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.providers import deadline_io
from llm_gateway.retry.backoff import BackoffPolicy
from llm_gateway.retry.handler import RetrySettings
from llm_gateway.routing.chat import ChatRouter
from llm_gateway.routing.circuit_breaker import CircuitBreakers
from llm_gateway.selection.catalog import (
    Capabilities,
    Catalog,
    Category,
    Limits,
    ModelEntry,
    Pricing,
    ProviderInfo,
)
from llm_gateway.state.items import pks_for, windows_of
from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.metering import counter_pks
from llm_gateway.state.store import CounterAdd, Item, StateStore

EPOCH = 1_700_000_000.0  # wall time at fake t=0: a whole second, so 1-second windows start there
HOSTS = {"api.groq.com": "groq", "api.openai.com": "openai", "api.mistral.ai": "mistral"}
MODELS = {"groq": "llama-3.1-8b-instant", "openai": "gpt-4o-mini", "mistral": "mistral-small-latest"}
CATEGORIES: dict[str, Category] = {"groq": "small", "openai": "large", "mistral": "reasoning"}
ORDER = ("groq", "openai", "mistral")  # the plan order of an `auto` request (see the docstring)
KEYS = {"groq": "gsk_groq-secret-key-0123456789", "openai": "sk-openai-secret-key-0123456789",
        "mistral": "mistral-secret-key-0123456789"}
ROOMY = Limits(rpm=1_000_000, tpm=10**10)
PRICE = Pricing(input=1.0, output=2.0)  # USD per 1M tokens


class FakeClock:
    """One fake timeline for monotonic and wall time; `sleep` advances it and is recorded."""

    def __init__(self, rand: float = 0.5) -> None:
        self.now = 0.1  # a tenth into the first 1-second window
        self.sleeps: list[float] = []
        self._rand = rand

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return EPOCH + self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def rand(self) -> float:
        return self._rand

    def clocks(self) -> Clocks:
        return Clocks(monotonic=self.monotonic, wall=self.wall, sleep=self.sleep, rand=self.rand)


@dataclass(frozen=True)
class Call:
    """One request that reached a fake provider: who, when (fake seconds), its read timeout and
    the time it was given for its first byte (`first_byte_s`): the read timeout, or what is left
    of the engine's deadline scope if that ends sooner, as it does for a stream sent live, whose
    read timeout is the stream's deadline and whose scope is the attempt's timeout. (Scopes are
    on the real monotonic clock, which the fake providers do not move.)"""

    provider: str
    model: str
    at: float
    timeout_s: float
    first_byte_s: float


Behaviour = Callable[[httpx.Request, "Fleet"], httpx.Response]


@dataclass
class Fleet:
    """The fake providers behind the MockTransport: a default behaviour per provider, optionally
    a queue of one-off behaviours consumed first, and every call recorded."""

    clock: FakeClock
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    queued: dict[str, list[Behaviour]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def set(self, provider: str, behaviour: Behaviour) -> None:
        self.behaviours[provider] = behaviour

    def then(self, provider: str, *behaviours: Behaviour) -> None:
        self.queued.setdefault(provider, []).extend(behaviours)

    def providers_called(self, since: int = 0) -> list[str]:
        return [call.provider for call in self.calls[since:]]

    def handle(self, request: httpx.Request) -> httpx.Response:
        provider = HOSTS[request.url.host]
        body = json.loads(request.content or b"{}")
        timeout = float(request.extensions.get("timeout", {}).get("read") or 0.0)
        scope: float | None = getattr(deadline_io._SCOPE, "at", None)
        first_byte = timeout if scope is None else min(timeout, scope - time.monotonic())
        self.calls.append(Call(provider, str(body.get("model")), self.clock.now, timeout, first_byte))
        queue = self.queued.get(provider)
        behaviour = queue.pop(0) if queue else self.behaviours.get(provider, answer())
        return behaviour(request, self)


# --- behaviours -------------------------------------------------------------------------------------
def completion_body(model: str, text: str = "hello") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": int(EPOCH), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def answer(after_s: float = 0.0, text: str = "hello", headers: dict[str, str] | None = None) -> Behaviour:
    """A 200 after `after_s` fake seconds, with these response headers (rate-limit figures)."""

    def behaviour(request: httpx.Request, fleet: Fleet) -> httpx.Response:
        fleet.clock.advance(after_s)
        model = json.loads(request.content)["model"]
        return httpx.Response(200, headers=headers, json=completion_body(model, text))

    return behaviour


def status(code: int, *, message: str = "failure", headers: dict[str, str] | None = None) -> Behaviour:
    """An OpenAI-shaped error body with this status and no error code (the status decides)."""

    def behaviour(request: httpx.Request, fleet: Fleet) -> httpx.Response:
        return httpx.Response(code, headers=headers, json={"error": {"message": message}})

    return behaviour


def hang() -> Behaviour:
    """No answer within the read timeout: the clock moves by that timeout, then httpx gives up."""

    def behaviour(request: httpx.Request, fleet: Fleet) -> httpx.Response:
        timeout = request.extensions["timeout"]["read"]
        fleet.clock.advance(timeout)
        raise httpx.ReadTimeout(f"no answer in {timeout} s", request=request)

    return behaviour


def refuse() -> Behaviour:
    """The connection is refused (a connection error: retried on the same model once)."""

    def behaviour(request: httpx.Request, fleet: Fleet) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    return behaviour


# --- the gateway under test ---------------------------------------------------------------------------
def catalog(*, mistral_rps: int | None = None, paid: tuple[str, ...] = (),
            limits: dict[str, Limits] | None = None) -> Catalog:
    """One free model per provider (see the module docstring); `mistral_rps` adds Mistral's
    organisation-wide requests-per-second limit, shared by all its models as in the real catalog;
    the providers in `paid` serve a priced model instead (ranked after every free one); `limits`
    replaces a provider's model's free tier (roomy by default)."""
    entries = [
        ModelEntry(provider=p, model=MODELS[p], category=CATEGORIES[p], context_window=128_000,
                   max_output=8192, capabilities=Capabilities(tools=True, json=True),
                   free_tier=None if p in paid else (limits or {}).get(p, ROOMY), price=PRICE if p in paid else None)
        for p in ORDER
    ]
    providers = {p: ProviderInfo(as_of="test", source="test") for p in ORDER}
    if mistral_rps is not None:
        providers["mistral"] = ProviderInfo(as_of="test", source="test", free_tier=Limits(rps=mistral_rps))
    return Catalog.from_entries(entries, providers)


FAST_RETRY = RetrySettings(max_attempts=3, deadline_s=25.0, attempt_timeout_s=20.0,
                           backoff=BackoffPolicy(base_s=0.2, cap_s=2.0))


@dataclass
class Rig:
    router: ChatRouter
    core: Core
    clock: FakeClock
    fleet: Fleet
    store: StateStore
    metrics: RecordingMetrics

    def counters(self, provider: str) -> dict[str, Item]:
        """Every rate-limit counter item a call to this provider's model writes (its own window
        and the organisation's), as the store holds them now: pk → {unit: count}."""
        entry = next(e for e in self.core.catalog.entries if e.provider == provider)
        now = self.clock.wall()
        meters = self.core.catalog.meters(entry)
        live = {pk for meter in meters for pk in counter_pks(meter, now)}
        return {pk: window for pk, window in windows_of(self.store.load(pks_for(meters, (), now), now)).items()
                if pk in live}


def rig(*, providers: tuple[str, ...] = ORDER, retry: RetrySettings = FAST_RETRY, max_wait_s: float = 2.0,
        mistral_rps: int | None = None, paid: tuple[str, ...] = (), limits: dict[str, Limits] | None = None,
        models: Catalog | None = None, breakers: CircuitBreakers | None = None,
        store: MemoryStore | None = None, clock: FakeClock | None = None, dynamodb_client: Any = None,
        **env: str) -> Rig:
    """A chat router through `compose.build_core` on the fakes above (or on the catalog `models`).
    Pass another rig's `store` and `clock` to stand for a second container sharing the state table; a `dynamodb_client`
    (with LLM_GATEWAY_STATE_TABLE in `env`) gets the production store stack built on it instead."""
    clock = clock or FakeClock()
    fleet = Fleet(clock)
    if dynamodb_client is None and store is None:
        store = MemoryStore()
    metrics = RecordingMetrics()
    environment = {f"{p.upper()}_API_KEY": KEYS[p] for p in providers}
    environment |= {"LLM_GATEWAY_MAX_WAIT_S": str(max_wait_s), **env}
    client = httpx.Client(transport=httpx.MockTransport(fleet.handle))
    core = build_core(load_settings(environment), metrics=metrics, http_client=client, store=store,
                      clocks=clock.clocks(), catalog=models or catalog(mistral_rps=mistral_rps, paid=paid, limits=limits), retry=retry,
                      breakers=breakers, dynamodb_client=dynamodb_client)
    return Rig(build_chat(core), core, clock, fleet, core.state.store, metrics)


def chat(model: str = "auto", text: str = "hi") -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": model, "messages": [{"role": "user", "content": text}]})


def pinned(provider: str) -> ChatCompletionRequest:
    return chat(f"{provider}/{MODELS[provider]}")


def served_or_refused(r: Rig) -> str | None:
    """A request pinned to Mistral: the provider that served it, or None for a 429 (anything
    else fails the test)."""
    try:
        return r.router.complete(pinned("mistral")).provider
    except GatewayError as refused:
        assert refused.status == 429, refused
        return None


class OneWriteBehind(MemoryStore):
    """Plain loads from a replica that has not yet applied the last reservation write (its items
    as they stood before it), as DynamoDB's eventually consistent reads may be right after a
    write; a strongly consistent load (`consistent=True`) reads everything."""

    def __init__(self) -> None:
        super().__init__()
        self.before: dict[str, dict[str, object] | None] = {}
        self.consistent_loads = 0

    def add(self, adds: Sequence[CounterAdd], now: float) -> bool:
        if any(add.stamps and any(n > 0 for n in add.amounts.values()) for add in adds):
            current = super().load([add.pk for add in adds], now)
            self.before = {add.pk: current.get(add.pk) for add in adds}
        return super().add(adds, now)

    def load(self, pks: Sequence[str], now: float, *, consistent: bool = False) -> dict[str, dict[str, object]]:
        self.consistent_loads += consistent
        found = super().load(pks, now)
        if consistent:
            return found
        for pk, item in self.before.items():
            if pk in found:
                if item is None:
                    del found[pk]
                else:
                    found[pk] = dict(item)
        return found
