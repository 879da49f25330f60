"""Fault matrix against the fake providers over HTTP, through the composition root's chat router.

For every fault the fakes can inject: with at least one healthy provider left, 500 requests
see no user-visible error; with none left, every request fails within its deadline with the
aggregated error (429 when everything was rate limited, 503 otherwise).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from llm_gateway.api.errors import AllProvidersFailed, GatewayError
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.compose import build_chat, build_core
from llm_gateway.config import load_settings
from llm_gateway.observability import metrics as m
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.providers.base import ProviderError
from llm_gateway.providers.engine import build_http_client
from llm_gateway.providers.registry import provider_specs
from llm_gateway.retry.backoff import BackoffPolicy
from llm_gateway.retry.handler import RetrySettings
from llm_gateway.routing.breaker_store import MemoryBreakerPersistence
from llm_gateway.routing.chat import ChatRouter as Router
from llm_gateway.routing.circuit_breaker import BreakerSettings, CircuitBreakers, reset_local_counters
from llm_gateway.selection.catalog import Catalog, FreeTier, default_catalog
from llm_gateway.state.memory import MemoryStore
from sandbox.fakes import FakeFleet

PROVIDERS = ("groq", "gemini", "mistral")
FAULTY = "groq"
DEADLINE_S = 3.0
RETRY = RetrySettings(max_attempts=3, deadline_s=DEADLINE_S, attempt_timeout_s=1.2, safety_margin_s=0.05,
                      min_attempt_s=0.1, backoff=BackoffPolicy(base_s=0.01, cap_s=0.05))
HEALTHY_REQUESTS = 500
DOOMED_REQUESTS = 12


def roomy_catalog(fleet: FakeFleet) -> Catalog:
    """The built-in catalog's small models the fakes serve, with limits the test never reaches."""
    base = default_catalog()
    roomy = FreeTier(rpm=1_000_000, tpm=10**10)
    entries = [
        e.model_copy(update={"free_tier": roomy, "category": "small"})
        for e in base.entries
        if e.provider in fleet.providers and e.model in fleet.providers[e.provider].models and e.is_free
    ]
    providers = {name: info.model_copy(update={"free_tier": None}) for name, info in base.data.providers.items()}
    return Catalog.from_entries(entries, providers)  # no organisation-wide limits either


def fleet_env(fleet: FakeFleet, providers=PROVIDERS) -> dict[str, str]:
    """The settings a container pointed at these fakes would read."""
    env: dict[str, str] = {}
    for name in providers:
        spec = provider_specs()[name]
        assert spec.key_env is not None
        env[spec.key_env] = "test-key"
        env[spec.base_url_env] = fleet.providers[name].base_url
        catalog_models = {e.model for e in default_catalog().entries if e.provider == name}
        env[spec.models_env] = ",".join(m for m in fleet.providers[name].models if m in catalog_models)
    return env


def build_router(fleet: FakeFleet, *, store=None, breakers=None, metrics=None, retry=RETRY,
                 providers=PROVIDERS, max_wait_s: float = 0.0) -> tuple[Router, httpx_close]:
    """A chat router on these fakes. `max_wait_s` defaults to 0 (refuse at once rather than wait
    for capacity) because these tests check what a refusal looks like."""
    client = build_http_client()
    metrics = metrics or RecordingMetrics()
    breakers = breakers or CircuitBreakers(
        MemoryBreakerPersistence(), BreakerSettings(failure_threshold=3, recovery_timeout_s=30), metrics=metrics)
    env = {**fleet_env(fleet, providers), "LLM_GATEWAY_MAX_WAIT_S": str(max_wait_s)}
    core = build_core(load_settings(env), metrics=metrics, http_client=client,
                      store=store or MemoryStore(), catalog=roomy_catalog(fleet), retry=retry, breakers=breakers)
    return build_chat(core), client.close


httpx_close = object  # type alias for readability only


def request(stream: bool = False) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "auto:small", "stream": stream, "messages": [{"role": "user", "content": "Say hello"}]})


def serve(router: Router, asked: ChatCompletionRequest, buffered: bool = True) -> str:
    """One request as a user sees it: the text, or raises what the user would see."""
    if not asked.stream:
        return router.complete(asked).completion.choices[0].message.content or ""
    routed = router.stream(asked, buffered=buffered)
    return "".join((c.choices[0].delta.content or "") for c in routed.chunks if c.choices)


def run_many(router: Router, n: int, stream: bool, buffered: bool = True) -> list[object]:
    """`elapsed` on each failure counts from the router's entry: the request is validated before
    the clock starts, as the handler validates it before the gateway's deadline begins. (The
    request model's validator is built on its first use, once a process: eight threads doing
    that at once took up to 0.5 s of a busy machine before any deadline had begun.)"""
    def one(_: int) -> object:
        asked = request(stream)
        started = time.monotonic()
        try:
            return serve(router, asked, buffered)
        except (GatewayError, ProviderError) as exc:
            exc.elapsed = time.monotonic() - started  # type: ignore[attr-defined]
            return exc

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(n)))


@pytest.fixture
def fleet(fakes: FakeFleet) -> Iterator[FakeFleet]:
    reset_local_counters()
    yield fakes
    for name in PROVIDERS:
        fakes.providers[name].clear_faults()
    reset_local_counters()


# (id, fault kwargs, provider carrying it, stream?)
MATRIX = [
    ("429-headers", {"fault": "429", "retry_after": 30}, "groq", False),
    ("429-body-retry-delay", {"fault": "429", "retry_after": 30}, "gemini", False),
    ("500", {"fault": "500"}, FAULTY, False),
    ("503", {"fault": "503"}, FAULTY, False),
    ("timeout", {"fault": "timeout", "hang_seconds": 2.0}, FAULTY, False),
    ("reset", {"fault": "reset"}, FAULTY, False),
    ("malformed", {"fault": "malformed"}, FAULTY, False),
    ("cut-before-first-chunk", {"fault": "cut_stream", "after_chunks": 0}, FAULTY, True),
    ("cut-after-first-chunk", {"fault": "cut_stream", "after_chunks": 1}, FAULTY, True),
    ("401", {"fault": "401"}, FAULTY, False),
]


@pytest.mark.parametrize(("fault", "provider", "stream"), [pytest.param(f, p, s, id=i) for i, f, p, s in MATRIX])
def test_one_provider_faulty_no_user_visible_error(fleet: FakeFleet, fault: dict, provider: str, stream: bool) -> None:
    metrics = RecordingMetrics()
    router, close = build_router(fleet, metrics=metrics)
    try:
        fleet.providers[provider].add_fault(**fault)
        results = run_many(router, HEALTHY_REQUESTS, stream)
    finally:
        close()
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == [], f"{len(errors)} user-visible errors, first: {errors[:1]!r}"
    assert all(isinstance(r, str) and r for r in results)
    assert fleet.providers[provider].stats()["faults_fired"], "the fault never fired: the test proves nothing"
    assert metrics.total(m.FAILOVERS) >= 1


@pytest.mark.parametrize(("fault", "stream"), [pytest.param(f, s, id=i) for i, f, _, s in MATRIX])
def test_no_provider_left_aggregated_error_within_deadline(remote_fleet, fault: dict, stream: bool) -> None:
    router, close = build_router(remote_fleet)
    try:
        for name in PROVIDERS:
            remote_fleet.providers[name].add_fault(**fault)
        results = run_many(router, DOOMED_REQUESTS, stream)
    finally:
        close()
    for result in results:
        assert isinstance(result, AllProvidersFailed), repr(result)
        assert result.elapsed <= DEADLINE_S + 0.25  # type: ignore[attr-defined]
        body = result.body()["error"]
        assert body["code"] in {"all_providers_failed", "all_providers_rate_limited"}
        for attempt in body["attempts"]:
            assert set(attempt) >= {"provider", "model", "error_class", "status"}
            assert "test-key" not in str(attempt)
        expected = 429 if fault["fault"] == "429" else 503
        assert result.status == expected
        if expected == 429:
            assert int(result.headers["Retry-After"]) >= 1


def test_live_stream_cut_after_first_chunk_ends_with_error_and_no_duplicate(fleet: FakeFleet) -> None:
    """Without buffering, text already handed out is never replayed by another model."""
    router, close = build_router(fleet, providers=(FAULTY,))
    try:
        fleet.providers[FAULTY].add_fault(fault="cut_stream", after_chunks=2)
        routed = router.stream(request(stream=True), buffered=False)
        seen: list[str] = []
        with pytest.raises(ProviderError) as cut:
            for chunk in routed.chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    seen.append(chunk.choices[0].delta.content)
    finally:
        close()
    assert cut.value.transport in {"stream_cut", "connection"}  # a cut may surface as a dropped socket
    assert seen  # the first chunks reached the caller ...
    assert [(a.provider, a.model) for a in routed.attempts] == [(FAULTY, routed.model)]  # ... and no other model
    assert routed.attempts[-1].error_class in {"server_error", "connection"}
