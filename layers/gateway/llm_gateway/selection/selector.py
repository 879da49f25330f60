"""Model selection: an ordered plan (primary + fallbacks) for one request. Pure.

Two phases because one DynamoDB read sits between them: `prepare` works from the request and the
catalog alone (classify, count tokens, drop models that could never serve it, say which limit
windows to load); `plan` ranks what is left against the loaded state.

Ranking (the seed plan's priorities, in order):
1. **Free tier with capacity** before any paid model (paid models follow as fallbacks).
2. **Category match**: the requested category first, then the nearest (`CATEGORY_FALLBACK`).
3. **Context window fits** prompt + output: a hard filter applied in `prepare`.
4. **Cost**: estimated USD for prompt + expected output (free = 0), cheapest first.
5. **Round-robin among equals**: the default tie-breaker rotates each group of equal rank by a
   counter held by the Selector; the router may pass a capacity-weighted `tie_breaker` instead.

Dropped with a reason (never chosen): missing capability (tools, vision, JSON, streaming), context
too small, `max_tokens` above the model's max output, blocked by the router (breaker, bad key),
cooling down, a window or the provider's headers out of requests/tokens.

Pinned models (`provider/model`, or a bare model id exactly one configured provider serves) skip
ranking but still respect limits: without capacity the plan is empty and says why. A bare id that
several configured providers serve is not pinned; ranking runs among those providers.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Mapping, Set
from dataclasses import dataclass, field
from typing import Any

from llm_gateway.api.errors import InvalidRequest, ModelNotFound
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.selection.analyzer import Analysis, analyze, is_alias
from llm_gateway.selection.catalog import Catalog, ModelEntry
from llm_gateway.selection.tokens import TokenEstimator, scaled
from llm_gateway.state.rate_limits import capacity, effective_limits
from llm_gateway.state.store import (
    LOAD_ITEM_BUDGET,
    PROVIDER_ITEMS_RESERVE,
    ModelKey,
    StateSnapshot,
    WindowLimit,
    items_per_model,
)

DEFAULT_EXPECTED_OUTPUT = 1024  # output tokens assumed when the caller sets no max_tokens
# State is loaded only for as many of the best candidates as one BatchGetItem can read, so one
# round trip covers a request however large the catalog grows. A request never calls more than a
# few models, and the best ones by static rank are the ones it would call.
MIN_LOADED_PAID = 4  # paid fallbacks always loaded, so exhausted free tiers never leave nothing
CATEGORY_FALLBACK: dict[str, tuple[str, ...]] = {
    "small": ("small", "large", "reasoning"),
    "large": ("large", "reasoning", "small"),
    "reasoning": ("reasoning", "large", "small"),
}
Dropped = tuple[ModelKey, str]
Rank = tuple[int, int, float, str, str]  # (paid?, category distance, est. cost, provider, model)


@dataclass(frozen=True, slots=True)
class Needs:
    tools: bool = False
    vision: bool = False
    json: bool = False
    streaming: bool = False


@dataclass(frozen=True, slots=True)
class Preparation:
    category: str
    needs: Needs
    prompt_tokens: int  # cl100k estimate; per-model figures (token_factor applied) in `reserve_tokens`
    max_output: int | None  # the caller's cap, if any
    pinned: ModelKey | None
    candidates: tuple[ModelEntry, ...]
    limits: Mapping[ModelKey, tuple[WindowLimit, ...]]
    dropped: tuple[Dropped, ...]
    reserve_tokens: Mapping[ModelKey, int] = field(default_factory=dict)
    analysis: Analysis | None = None
    ranked: tuple[tuple[Rank, ModelEntry, int], ...] = ()  # (rank, entry, reserve tokens)


@dataclass(frozen=True, slots=True)
class PlanStep:
    key: ModelKey
    free: bool
    context_window: int
    reason: str
    limits: tuple[WindowLimit, ...]
    reserve_tokens: int  # prompt (provider-scaled) + expected output
    entry: ModelEntry
    est_cost_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class Plan:
    category: str
    prompt_tokens: int
    steps: tuple[PlanStep, ...]
    dropped: tuple[Dropped, ...]
    pinned: ModelKey | None = None


TieBreaker = Callable[[list[PlanStep], StateSnapshot, float], list[PlanStep]]


def _static_drop(entry: ModelEntry, needs: Needs, prompt: int, cap: int | None) -> str | None:
    """Why this model can never serve the request (None = it could)."""
    caps = entry.capabilities
    if needs.tools and not caps.tools:
        return "no tools support"
    if needs.vision and not caps.vision:
        return "no vision support"
    if needs.json and not caps.json_mode:
        return "no JSON mode support"
    if needs.streaming and not caps.streaming:
        return "no streaming support"
    if cap is not None and cap > entry.max_output:
        return f"max_tokens {cap} > max output {entry.max_output}"
    output = cap if cap is not None else min(DEFAULT_EXPECTED_OUTPUT, entry.max_output)
    if prompt + output > entry.context_window:
        return f"prompt {prompt} + output {output} > context window {entry.context_window}"
    return None


def _est_cost(entry: ModelEntry, prompt: int, output: int) -> float:
    if entry.is_free or entry.price is None:
        return 0.0
    return (prompt * entry.price.input + output * entry.price.output) / 1_000_000


class Selector:
    """Holds the catalog, the token estimator and the round-robin counter (per container)."""

    def __init__(self, catalog: Catalog, tokens: TokenEstimator | None = None) -> None:
        self.catalog = catalog
        self.tokens = tokens or TokenEstimator()
        self._turn = itertools.count()
        self._factor = {entry.key: catalog.token_factor(entry) for entry in catalog.entries}

    # --- prepare ---------------------------------------------------------------------------------
    def _resolve(self, model: str, available: Set[ModelKey]) -> tuple[ModelKey | None, list[ModelEntry]]:
        """(pinned key or None, entries to consider) for the request's `model` field."""
        if is_alias(model):
            pool = [e for e in self.catalog.entries if e.key in available]
            if not pool:
                raise ModelNotFound(model, "No configured provider serves any catalog model.")
            return None, pool
        if "/" in model:
            provider, name = model.split("/", 1)
            entry = self.catalog.get(ModelKey(provider, name))
            if entry is not None:
                if entry.key not in available:
                    raise ModelNotFound(model, f"Provider '{provider}' is not configured.")
                return entry.key, [entry]
        matches = [e for e in self.catalog.by_model_id(model) if e.key in available]
        if not matches:
            raise ModelNotFound(model, "Use 'auto', 'auto:small|large|reasoning' or 'provider/model'.")
        if len(matches) == 1:
            return matches[0].key, matches
        return None, matches

    def prepare(self, request: ChatCompletionRequest, available: Collection[ModelKey]) -> Preparation:
        """Everything decidable before state is loaded; raises for requests nothing can serve."""
        base = self.tokens.estimate(request)
        analysis = analyze(request, base)
        needs = Needs(analysis.needs_tools, analysis.needs_vision, analysis.needs_json, request.stream)
        # the router passes a frozenset computed once per container: no per-request copy
        pinned, pool = self._resolve(request.model, available if isinstance(available, Set) else set(available))
        cap = request.output_limit
        kept: list[ModelEntry] = []
        dropped: list[Dropped] = []
        reserve: dict[ModelKey, int] = {}
        for entry in pool:
            prompt = scaled(base, self._factor[entry.key])
            why = _static_drop(entry, needs, prompt, cap)
            if why is not None:
                dropped.append((entry.key, why))
                continue
            kept.append(entry)
            reserve[entry.key] = prompt + (cap if cap is not None else min(DEFAULT_EXPECTED_OUTPUT, entry.max_output))
        if not kept:
            reasons = "; ".join(f"{key}: {why}" for key, why in dropped[:5])
            raise InvalidRequest(f"No model can serve this request ({reasons}).", param="messages",
                                 code="no_model_fits")
        ranked = []
        for entry in kept:
            rank = self._rank(analysis.category, cap, entry, reserve[entry.key])
            ranked.append((rank, entry, reserve[entry.key]))
        ranked.sort(key=lambda row: row[0])
        ranked, beyond = _bounded(ranked)
        dropped += [(row[1].key, "not loaded: ranked below the best candidates") for row in beyond]
        kept = [row[1] for row in ranked]
        return Preparation(
            category=analysis.category,
            needs=needs,
            prompt_tokens=base,
            max_output=cap,
            pinned=pinned,
            candidates=tuple(kept),
            limits={e.key: e.windows() for e in kept},
            dropped=tuple(dropped),
            reserve_tokens=reserve,
            analysis=analysis,
            ranked=tuple(ranked),
        )

    # --- plan ------------------------------------------------------------------------------------
    @staticmethod
    def _rank(category: str, cap: int | None, entry: ModelEntry, reserve: int) -> Rank:
        """Static part of the ranking: everything but capacity is known before state loads."""
        order = CATEGORY_FALLBACK.get(category, (category,))
        distance = order.index(entry.category) if entry.category in order else len(order)
        output = cap if cap is not None else min(DEFAULT_EXPECTED_OUTPUT, entry.max_output)
        cost = _est_cost(entry, reserve - output, output)
        return (0 if entry.is_free else 1, distance, cost, entry.provider, entry.model)

    def plan(
        self,
        prep: Preparation,
        snapshot: StateSnapshot,
        now: float,
        *,
        blocked: Mapping[ModelKey, str] | None = None,
        tie_breaker: TieBreaker | None = None,
    ) -> Plan:
        """Order the prepared candidates that can serve now; the rest are dropped with reasons."""
        blocked = blocked or {}
        dropped = list(prep.dropped)
        ranked: list[tuple[Rank, PlanStep]] = []
        models = snapshot.models
        for rank, entry, reserve in prep.ranked:
            key = entry.key
            if key in blocked:
                dropped.append((key, f"blocked: {blocked[key]}"))
                continue
            cap = capacity(entry.windows(), models.get(key), reserve, now)
            if not cap.ok:
                dropped.append((key, cap.reason))
                continue
            step = PlanStep(
                key=key,
                free=entry.is_free,
                context_window=entry.context_window,
                reason=_reason_head(prep.category, prep.pinned, entry, rank)
                + _describe_left(cap.remaining_requests, cap.remaining_tokens),
                limits=effective_limits(entry.windows(), models.get(key), now),  # sliding estimate
                reserve_tokens=reserve,
                entry=entry,
                est_cost_usd=rank[2],
            )
            ranked.append((rank, step))
        steps = self._break_ties(ranked, snapshot, now, tie_breaker)
        return Plan(prep.category, prep.prompt_tokens, tuple(steps), tuple(dropped), prep.pinned)

    def _break_ties(
        self,
        ranked: list[tuple[Rank, PlanStep]],
        snapshot: StateSnapshot,
        now: float,
        tie_breaker: TieBreaker | None,
    ) -> list[PlanStep]:
        """Reorder each group of equal rank (tie_breaker or rotation); groups keep their order."""
        turn = next(self._turn)
        steps: list[PlanStep] = []
        for _, group_iter in itertools.groupby(ranked, key=lambda pair: pair[0][:3]):
            group = [step for _, step in group_iter]
            if len(group) > 1:
                if tie_breaker is not None:
                    group = list(tie_breaker(group, snapshot, now))
                else:
                    offset = turn % len(group)
                    group = group[offset:] + group[:offset]
            steps.extend(group)
        return steps


def _bounded(ranked: list[Any]) -> tuple[list[Any], list[Any]]:
    """The best rows, in rank order, whose state fits one read; the cheapest paid ones always fit."""
    budget = LOAD_ITEM_BUDGET - PROVIDER_ITEMS_RESERVE
    chosen: set[int] = set()
    paid_first = [row for row in ranked if not row[1].is_free][:MIN_LOADED_PAID]
    for row in paid_first + ranked:
        cost = items_per_model(row[1].windows())
        if id(row) not in chosen and cost <= budget:
            chosen.add(id(row))
            budget -= cost
    return [row for row in ranked if id(row) in chosen], [row for row in ranked if id(row) not in chosen]


def _reason_head(category: str, pinned: ModelKey | None, entry: ModelEntry, rank: Rank) -> str:
    """The static part of a step's reason, built once in `prepare`."""
    tier = "free tier with capacity" if entry.is_free else "paid fallback"
    if pinned is not None:
        tier = f"pinned, {'free tier' if entry.is_free else 'paid'}"
    match = "category match" if rank[1] == 0 else f"category {entry.category} (wanted {category})"
    return f"{tier}; {match}; est. ${rank[2]:.6f}; "


def _describe_left(requests: int | None, tokens: int | None) -> str:
    if requests is None and tokens is None:
        return "no known limit"
    parts = []
    if requests is not None:
        parts.append(f"{requests} requests left")
    if tokens is not None:
        parts.append(f"{tokens} tokens left")
    return ", ".join(parts)
