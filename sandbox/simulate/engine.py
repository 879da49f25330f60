"""The simulation: the real gateway (built by `compose.build_core`) over the simulated providers,
on the virtual clock, for one workload and seed.

Like Lambda, every request runs in a *container* (a Core with its chat and transcription routers,
built by the composition root) that serves one request at a time; a request that finds no idle
container gets a new one. All containers share one state store (the DynamoDB table's stand-in:
`MemoryStore`) and one breaker store, as production's containers share the table. What is not
production's: the HTTP front and the handler (auth, validation, response shaping) are skipped, as
are the scheduled health check and DynamoDB's latency; breaker failure counters, which
Powertools keeps per process, are shared by all containers of the simulation. Provider calls go
through the real provider engine and adapters: httpx builds each request from the adapter's spec,
and the adapter reads the simulated provider's `httpx.Response` (status, rate-limit headers, JSON
body or server-sent events); only httpx's client plumbing around the transport is skipped
(`SimClient`).
"""

from __future__ import annotations

import contextlib
import gc
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import greenlet
import httpx

from llm_gateway.api.errors import GatewayError
from llm_gateway.compose import Core, build_chat, build_core, build_transcription
from llm_gateway.config import Settings, load_settings
from llm_gateway.retry.handler import Deadline, chat_deadline
from llm_gateway.routing.breaker_store import MemoryBreakerPersistence
from llm_gateway.routing.chat import ChatRouter
from llm_gateway.routing.circuit_breaker import BreakerSettings, CircuitBreakers
from llm_gateway.routing.transcription import TranscriptionRouter
from llm_gateway.selection.catalog import Catalog, default_catalog
from llm_gateway.speech import job_settings
from llm_gateway.state.memory import MemoryStore
from llm_gateway.tenancy.limits import UserLimits, user_counter
from sandbox.simulate.clock import VirtualClock, powertools_on
from sandbox.simulate.providers import SimulatedProviders
from sandbox.simulate.requests import RequestFactory
from sandbox.simulate.scenario import Scenario, parse_scenario
from sandbox.simulate.workload import CHAT, STREAM, TRANSCRIPTION, SimRequest, Workload, generate

PROVIDERS = ("groq", "gemini", "cohere", "mistral", "openai")
LONG_TEXT = 200  # characters: a shorter text is counted again each time (about as cheap as looking it up)
SAMPLE_EVERY_S = 300.0


class SimClient(httpx.Client):
    """The containers' httpx client: requests are built by httpx as in production (the adapters'
    `HttpRequestSpec` through `build_request`: URL, headers, JSON or multipart body, timeouts), and
    `send` hands each one straight to the simulated providers, whose `httpx.Response` the adapters
    read as they read a real one. What `send` leaves out is httpx's client plumbing around the
    transport (auth flow, redirects, cookie jar, event hooks, request logging), none of which the
    gateway uses or the simulated providers answer with, and which took an eighth of the
    simulation's time. A URL (one per provider endpoint and model) is parsed by httpx once and
    reused."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        super().__init__(transport=httpx.MockTransport(handler))
        self._handler = handler
        self._urls: dict[str, httpx.URL] = {}
        self._defaults = self.headers.raw  # the client's own headers (User-Agent, Accept...), as it keeps them

    def build_request(self, method: str, url: httpx.URL | str, *, headers: Any = None, params: Any = None,
                      timeout: Any = httpx.USE_CLIENT_DEFAULT, **options: Any) -> httpx.Request:
        """`httpx.Client.build_request`, the request it builds included (same URL, headers in the
        same order, body and timeouts), without re-merging what this client does not have: a base
        URL, cookies or query parameters of its own (the `Headers` copy and update alone were
        about a third of its time). Anything else goes the client's own way."""
        if isinstance(url, str):
            parsed = self._urls.get(url)
            if parsed is None:
                parsed = self._urls[url] = httpx.URL(url)
            url = parsed
        if url.is_relative_url or options.get("cookies") or "extensions" in options or not isinstance(headers, dict):
            return super().build_request(method, url, headers=headers, params=params, timeout=timeout, **options)
        # `Headers.update`: the client's headers but those the request names (any case), then the request's
        names = {name.lower().encode() for name in headers}
        merged: list[tuple[Any, Any]] = [pair for pair in self._defaults if pair[0].lower() not in names]
        merged.extend(headers.items())
        limits = self.timeout if timeout is httpx.USE_CLIENT_DEFAULT else httpx.Timeout(timeout)
        return httpx.Request(method, url, params=params, headers=merged, extensions={"timeout": limits.as_dict()},
                             **options)

    def send(self, request: httpx.Request, *, stream: bool = False, **_options: Any) -> httpx.Response:
        request.read()
        response = self._handler(request)
        response.request = request
        if not stream:
            response.read()
        return response


class SimMetrics:
    """The `Metrics` sink of every container: totals by name and dimensions, and per hour."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.totals: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self.hourly: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))

    def count(self, name: str, value: float = 1.0, **dimensions: str) -> None:
        self.totals[(name, tuple(sorted(dimensions.items())))] += value
        self.hourly[name][int(self.clock.now // 3600)] += value

    def timing(self, name: str, ms: float, **dimensions: str) -> None:
        return None  # times on the virtual clock say nothing; selection CPU time is measured apart

    def total(self, name: str, **dimensions: str) -> float:
        wanted = set(dimensions.items())
        return sum(v for (n, dims), v in self.totals.items() if n == name and wanted <= set(dims))


@dataclass(slots=True)
class Outcome:
    """What one simulated request got."""

    at: float
    capability: str
    kind: str
    pinned: bool
    user: int
    status: int = 200
    code: str | None = None
    provider: str | None = None
    model: str | None = None
    free: bool = False
    cost_usd: float = 0.0
    baseline_usd: float = 0.0
    attempts: int = 0
    failed_attempts: int = 0
    selection_ms: float = 0.0
    latency_s: float = 0.0


@dataclass
class Container:
    core: Core
    chat: ChatRouter
    transcription: TranscriptionRouter


@dataclass
class SimResult:
    workload: Workload
    seed: int
    scenario: Scenario
    outcomes: list[Outcome]
    providers: SimulatedProviders
    metrics: SimMetrics
    samples: list[dict[str, Any]]
    containers: int
    wall_s: float
    cpu_s: float
    bugs: list[str] = field(default_factory=list)


def _settings(providers: tuple[str, ...], extra: dict[str, str] | None = None) -> Settings:
    env = {f"{p.upper()}_API_KEY": f"sim-{p}-key-0123456789abcdef" for p in providers}
    return load_settings({**env, **(extra or {})})


class Simulation:
    def __init__(self, workload: Workload, seed: int = 1, *, scenario: Scenario | None = None,
                 catalog: Catalog | None = None, providers: tuple[str, ...] = PROVIDERS,
                 env: dict[str, str] | None = None) -> None:
        self.workload = workload
        self.seed = seed
        raw = workload.raw
        self.scenario = scenario if scenario is not None else parse_scenario(raw.get("providers"), raw.get("scenario"))
        self.catalog = catalog or default_catalog()
        import random

        chance = random.Random(f"gateway:{seed}")
        self.clock = VirtualClock(workload.start, chance.random)
        self.metrics = SimMetrics(self.clock)
        self.fleet = SimulatedProviders(self.catalog, self.scenario, self.clock, seed)
        self.settings = _settings(providers, env)
        self.store = MemoryStore()
        self.breakers = CircuitBreakers(
            MemoryBreakerPersistence(),
            BreakerSettings(recovery_timeout_s=max(30, int(self.settings.attempt_timeout_s) + 5)), metrics=self.metrics)
        self.factory = RequestFactory()
        self.idle: list[Container] = []
        self.job_idle: list[Container] = []  # the transcribe function's job runs: the job path's settings
        self.built = 0
        self.outcomes: list[Outcome] = []
        self.samples: list[dict[str, Any]] = []
        self.bugs: list[str] = []
        self._selection: dict[int, float] = {}
        self._counts: dict[int, tuple[Any, int, float]] = {}
        self._texts: dict[int, tuple[str, int, float]] = {}
        self._credit: dict[int, float] = {}
        self._baseline = self._baseline_prices()
        workload.check_holds_requests()

    # --- containers -------------------------------------------------------------------------------
    def _container(self, *, job: bool = False) -> Container:
        idle = self.job_idle if job else self.idle
        if idle:
            return idle.pop()
        client = SimClient(self.fleet.handle)
        core = build_core(job_settings(self.settings) if job else self.settings, metrics=self.metrics, http_client=client, store=self.store,
                          clocks=self.clock.clocks(), catalog=self.catalog, breakers=self.breakers)
        chat, transcription = build_chat(core), build_transcription(core)
        core.runner.plan = self._timed(core.runner.plan)  # type: ignore[method-assign]
        chat.preparer.prepare = self._timed(chat.preparer.prepare)  # type: ignore[method-assign]
        chat.preparer.tokens.estimate = self._counted(chat.preparer.tokens.estimate)  # type: ignore[method-assign,assignment]
        chat.preparer.tokens.count_text = self._counted_text(chat.preparer.tokens.count_text)  # type: ignore[method-assign]
        transcription.preparer.prepare = self._timed(transcription.preparer.prepare)  # type: ignore[method-assign]
        self.built += 1
        return Container(core, chat, transcription)

    def _timed(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Selection's real CPU time (preparation, state load, ranking), added to the request's
        total; nothing in these phases waits on the virtual clock."""
        selection = self._selection
        clock = time.process_time

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                key = id(greenlet.getcurrent())
                selection[key] = selection.get(key, 0.0) + clock() - started

        return timed

    def _counted(self, estimate: Callable[[Any], int]) -> Callable[[Any], int]:
        """Token counts per request body, computed once: the simulator reuses one body per distinct
        request shape, and counting a long prompt again would only slow the simulation down. A
        reused count still adds the CPU time its first count took to the request's selection time,
        so `selection_p95_ms` is what the gateway would spend counting each request itself."""
        known = self._counts
        selection = self._selection
        clock = time.process_time

        credit = self._credit

        def counted(request: Any) -> int:
            # Keyed by the body's messages, which a copy of it shares (an answer sent whole is
            # asked as a stream: `request.model_copy(stream=True)`); they are kept with the count,
            # so their id cannot be reused by another body's (a copy's own id would be).
            messages = request.messages
            found = known.get(id(messages))
            key = id(greenlet.getcurrent())
            if found is None or found[0] is not messages:
                started, before = clock(), credit.get(key, 0.0)
                tokens = estimate(request)
                # what counting its texts would have cost where `_counted_text` reused a count
                saved = credit.get(key, 0.0) - before
                known[id(messages)] = (messages, tokens, clock() - started + saved)
                return tokens
            selection[key] = selection.get(key, 0.0) + found[2]
            return found[1]

        return counted

    def _counted_text(self, count_text: Callable[[str], int]) -> Callable[[str], int]:
        """Token counts per long text, computed once: many bodies share a prompt's words (they
        differ in model, answer length or stream), and a long prompt's count is the costliest part
        of preparing it. A reused count adds the CPU time its first count took to the request's
        selection time (and to `credit`, so a body's own remembered cost includes it too)."""
        texts = self._texts
        selection = self._selection
        credit = self._credit
        clock = time.process_time

        def counted_text(text: str) -> int:
            if len(text) < LONG_TEXT:
                return count_text(text)
            found = texts.get(id(text))
            if found is None or found[0] is not text:
                started = clock()
                tokens = count_text(text)
                texts[id(text)] = (text, tokens, clock() - started)  # the text is kept: its id stays its own
                return tokens
            key = id(greenlet.getcurrent())
            selection[key] = selection.get(key, 0.0) + found[2]
            credit[key] = credit.get(key, 0.0) + found[2]
            return found[1]

        return counted_text

    # --- one request -----------------------------------------------------------------------------
    def _serve(self, sim: SimRequest) -> None:
        job = sim.capability == TRANSCRIPTION and self.workload.job_over_s is not None and (
            sim.audio_seconds > self.workload.job_over_s)
        container = self._container(job=job)
        key = id(greenlet.getcurrent())
        self._selection[key] = 0.0
        kind = sim.kind if sim.capability != TRANSCRIPTION else ("audio_job" if job else "audio")
        outcome = Outcome(sim.at, sim.capability, kind, not sim.model.startswith("auto"), sim.user)
        limits = self._limits(sim.user)
        try:
            if sim.capability == TRANSCRIPTION:
                request, call = self.factory.transcription(sim)
                routed = container.transcription.transcribe(request, call, container.core.runner.retry.deadline(),
                                                           limits=limits)
                outcome.provider, outcome.model, outcome.free = routed.provider, routed.model, routed.free
                outcome.cost_usd, attempts = routed.cost_usd, routed.attempts
            elif sim.capability == STREAM:
                # As production's chat function serves `stream: true` (through the Lambda Web
                # Adapter: `Gateway.chat(live=True)`): sent as it comes, within the stream deadline,
                # its first chunk within the attempt's timeout, failover only before it.
                stream = container.chat.stream(self.factory.chat(sim), self._chat_deadline(container, stream=True),
                                               buffered=False, limits=limits)
                for _chunk in stream.chunks:
                    pass
                outcome.provider, outcome.model, outcome.free = stream.provider, stream.model, stream.free
                outcome.cost_usd, attempts = stream.cost_usd, stream.attempts
            else:
                # Sent whole on the same streaming invocation, as production does: read from the
                # provider as a stream, within the stream's idle timeout (`chat_deadline`).
                routed_chat = container.chat.complete_streamed(self.factory.chat(sim), self._chat_deadline(
                    container, stream=False), limits=limits, spent=lambda _cut: None)
                outcome.provider, outcome.model, outcome.free = routed_chat.provider, routed_chat.model, routed_chat.free
                outcome.cost_usd, attempts = routed_chat.cost_usd, routed_chat.attempts
            outcome.attempts = len(attempts)
            outcome.failed_attempts = sum(1 for a in attempts if a.error_class is not None)
        except GatewayError as error:
            outcome.status, outcome.code = error.status, error.code
            tried = error.extra.get("attempts") if isinstance(error.extra, dict) else None
            outcome.attempts = outcome.failed_attempts = len(tried or [])
        except Exception as exc:  # a bug in the gateway: counted as the 500 the handler would answer
            outcome.status, outcome.code = 500, "internal_error"
            if len(self.bugs) < 20:
                self.bugs.append("".join(traceback.format_exception(exc)))
        finally:
            (self.job_idle if job else self.idle).append(container)
            self._credit.pop(key, None)
            outcome.selection_ms = self._selection.pop(key, 0.0) * 1000
            outcome.latency_s = self.clock.now - sim.at
            outcome.baseline_usd = self._baseline_cost(sim)
            self.outcomes.append(outcome)

    def _limits(self, user: int) -> UserLimits | None:
        """The user's key policy on the user's own counter, as `Tenancy.limits_for` builds it for
        a key without end users and a gateway without a daily spend cap; its refusals are reported
        against the virtual clock."""
        policy = self.workload.user_policy
        if policy is None:
            return None
        return UserLimits(policy, user_counter(f"sim-{user}"), wall=self.clock.wall())

    def _chat_deadline(self, container: Container, *, stream: bool) -> Deadline:
        budget = chat_deadline(self.settings.deadline_s, self.settings.stream_deadline_s, live=True, stream=stream)
        return container.core.runner.retry.deadline(budget)

    # --- baseline ------------------------------------------------------------------------------------
    def _baseline_prices(self) -> dict[str, tuple[float, float, float]]:
        out = {}
        for capability, ident in ((CHAT, self.workload.baseline_chat), (TRANSCRIPTION, self.workload.baseline_transcription)):
            provider, _, model = ident.partition("/")
            entry = next((e for e in self.catalog.entries if e.provider == provider and e.model == model), None)
            if entry is None or entry.price is None:
                raise ValueError(f"baseline {capability} model {ident!r} is not a priced catalog model")
            price = entry.price
            out[capability] = (price.input or 0.0, price.output or 0.0, price.audio_minute or 0.0)
        return out

    def _baseline_cost(self, sim: SimRequest) -> float:
        if sim.capability == TRANSCRIPTION:
            return self._baseline[TRANSCRIPTION][2] * sim.audio_seconds / 60
        price_in, price_out, _ = self._baseline[CHAT]
        output = min(sim.output_tokens, sim.max_tokens) if sim.max_tokens else sim.output_tokens
        return ((sim.prompt_tokens + 3) * price_in + output * price_out) / 1e6

    # --- sampling for the plots -----------------------------------------------------------------
    def _sample(self, _arg: Any = None) -> None:
        now = self.clock.now
        wall = self.clock.wall()
        self.samples.append({"t": now, "remaining": {p: self.fleet.limiter.remaining_share(p, wall) for p in PROVIDERS}})
        if now + SAMPLE_EVERY_S <= self.workload.hours * 3600:
            self.clock.at(now + SAMPLE_EVERY_S, self._sample)

    # --- the run ------------------------------------------------------------------------------------
    def run(self) -> SimResult:
        started, cpu = time.perf_counter(), time.process_time()
        with powertools_on(self.clock), _young_collections():
            self._sample()
            for sim in generate(self.workload, self.seed):
                self.clock.at(sim.at, self._serve, sim)
            self.clock.run()
        return SimResult(self.workload, self.seed, self.scenario, self.outcomes, self.fleet, self.metrics,
                         self.samples, self.built, time.perf_counter() - started, time.process_time() - cpu,
                         self.bugs)


@contextlib.contextmanager
def _young_collections() -> Iterator[None]:
    """The cyclic garbage collector without its full collections for the length of a run (put
    back after). A day leaves little in cycles (about 13,000 objects in 10,000 requests), but its
    heap grows with every request (outcomes, provider calls, the table's items) and each full
    collection walks all of it: with the default thresholds, about 7 % of a 10,000-request day's
    CPU, to free no more memory than a run without any collection keeps (190 MB at its peak
    either way). Young collections, rarer, still free what dies young."""
    saved = gc.get_threshold()
    gc.set_threshold(100_000, 50, 1_000_000)
    try:
        yield
    finally:
        gc.set_threshold(*saved)


def simulate(workload: Workload, seed: int = 1, **options: Any) -> SimResult:
    return Simulation(workload, seed, **options).run()


__all__ = ["CHAT", "PROVIDERS", "STREAM", "TRANSCRIPTION", "Outcome", "SimResult", "Simulation", "simulate"]
