"""Chat preparation: what a chat request needs, and which catalog models could ever serve it.

The capability-specific half of selection (`planner.py` is the shared half). From the request
and the catalog alone: classify it (`analyzer`), count its prompt tokens (`tokens`), resolve
`model` (aliases `auto`, `auto:small|large|reasoning`; `provider/model` or a bare id to pin),
and drop models that could never serve it, with the reason:
missing capability (tools, vision, audio or file input, JSON, streaming, an optional parameter such as `logprobs`
the model does not list), context too small, `max_tokens` above the
model's max output. What a call consumes is one request plus prompt tokens (scaled by the
provider's tokenizer factor) plus expected output (the caller's `max_tokens`, else
`DEFAULT_EXPECTED_OUTPUT`, cut to what the model's smallest token window leaves beside the prompt). Static rank: category distance (`CATEGORY_FALLBACK`), then cost.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.selection.analyzer import Analysis, analyze, is_alias
from llm_gateway.selection.catalog import CHAT, Catalog, ModelEntry
from llm_gateway.selection.conversation import turn_key
from llm_gateway.selection.planner import Candidate, Preparation, bounded, nothing_fits, resolve
from llm_gateway.selection.tokens import TokenEstimator, scaled
from llm_gateway.state.items import affinity_pk
from llm_gateway.state.metering import REQUESTS, TOKENS, Meter
from llm_gateway.state.store import ModelKey

DEFAULT_EXPECTED_OUTPUT = 1024  # output tokens assumed when the caller sets no max_tokens
# A caller who allows this many output tokens may wait minutes for a complete answer: such a call
# gets the whole attempt budget, and its timeout is its own doing, not the provider's.
LONG_ANSWER_TOKENS = 4_000
CATEGORY_FALLBACK: dict[str, tuple[str, ...]] = {
    "small": ("small", "large", "reasoning"),
    "large": ("large", "reasoning", "small"),
    "reasoning": ("reasoning", "large", "small"),
}


@dataclass(slots=True, unsafe_hash=True)  # a value, never changed; not frozen: see FAST_VALUES in metering.py
class Needs:
    """The capabilities and parameters a model must support to serve the request."""

    tools: bool = False
    vision: bool = False
    json: bool = False
    streaming: bool = False
    params: frozenset[str] = frozenset()  # optional parameters the request sets (catalog `params`)
    sampling: bool = False  # the request sets a sampling control to something but its default
    audio: bool = False  # an `input_audio` part (catalog `audio_input`)
    file: bool = False  # a `file` part (catalog `file_input`)


def sets_sampling(request: ChatCompletionRequest) -> bool:
    """Whether the request moves temperature, top_p or a penalty off its default (1, 1, 0, 0)."""
    return (request.temperature not in (None, 1) or request.top_p not in (None, 1)
            or request.presence_penalty not in (None, 0) or request.frequency_penalty not in (None, 0))


def requested_params(request: ChatCompletionRequest) -> frozenset[str]:
    """The optional parameters this request sets to something only some models honour.

    A value that asks for the default is no need: `logprobs: false`, `parallel_tool_calls: true`
    (every model may call several tools), or `parallel_tool_calls: false` without tools.
    `top_logprobs` comes with `logprobs` (the schema requires it).
    """
    params: set[str] = set()
    if request.logprobs:
        params.add("logprobs")
    if request.logit_bias:
        params.add("logit_bias")
    if request.reasoning_effort is not None:
        params.add("reasoning_effort")
    if request.parallel_tool_calls is False and request.tools:
        params.add("parallel_tool_calls")
    return frozenset(params)


def _describe_param(param: str) -> str:
    return "parallel_tool_calls=false" if param == "parallel_tool_calls" else param


@dataclass(slots=True, unsafe_hash=True)  # a value, never changed; not frozen: see FAST_VALUES in metering.py
class ChatDetail:
    """What chat preparation learnt, for the router (cost estimates) and `llm-gateway plan`."""

    analysis: Analysis
    needs: Needs
    prompt_tokens: int  # cl100k estimate, before any provider's factor


def _needs_drop(entry: ModelEntry, needs: Needs) -> str | None:
    """Why this model lacks something the request needs (None = it has it all)."""
    caps = entry.capabilities
    if needs.tools and not caps.tools:
        return "no tools support"
    if needs.vision and not caps.vision:
        return "no vision support"
    if needs.audio and not caps.audio_input:
        return "does not accept audio input"
    if needs.file and not caps.file_input:
        return "does not accept file input"
    if needs.json and not caps.json_mode:
        return "no JSON mode support"
    if needs.streaming and not caps.streaming:
        return "no streaming support"
    if needs.sampling and not caps.sampling:
        return "does not accept temperature, top_p or penalties other than their defaults"
    missing = needs.params.difference(caps.params)
    if missing:
        return "does not support " + ", ".join(_describe_param(p) for p in sorted(missing))
    return None


def _size_drop(entry: ModelEntry, prompt: int, cap: int | None) -> str | None:
    """Why the request's size rules this model out (None = it fits)."""
    if cap is not None and cap > entry.output_cap:
        return f"max_tokens {cap} > max output {entry.output_cap}"
    output = cap if cap is not None else min(DEFAULT_EXPECTED_OUTPUT, entry.output_cap)
    if prompt + output > entry.window:
        return f"prompt {prompt} + output {output} > context window {entry.window}"
    return None


def _token_room(meters: tuple[Meter, ...]) -> int | None:
    """The fewest tokens one of the model's own windows holds (None: no token limit)."""
    ceilings = [c for meter in meters if (c := meter.limit.max_of(TOKENS)) is not None]
    return min(ceilings) if ceilings else None


def _expected_output(prompt: int, output_cap: int, room: int | None) -> int:
    """The output to reserve for a caller who set no max_tokens: `DEFAULT_EXPECTED_OUTPUT`, but
    no more than the model's smallest token window leaves beside the prompt. A long prompt to a
    small free tier (11,000 tokens to Groq's 12,000 a minute) is sent, not refused 413 for an
    answer length the caller never asked for (found by `llm-gateway simulate`, whose providers
    admit a call on its prompt and count the answer after). What the answer really used is
    counted after it, and may take the window past its limit until it slides; a provider that
    counts an unset max_tokens at admission answers the 413 itself (neither Groq's nor the
    others' documentation says which they do)."""
    output = min(DEFAULT_EXPECTED_OUTPUT, output_cap)
    if room is not None and prompt + output > room:
        return max(1, room - prompt)
    return output


@dataclass(frozen=True, slots=True)
class _Static:
    """What `ChatPreparer.prepare` reads of a model for every request, read from it once."""

    entry: ModelEntry
    key: ModelKey
    provider: str
    model: str
    factor: float  # the tokenizer factor (`Catalog.token_factor`)
    room: int | None  # `_token_room` of its meters
    output_cap: int
    window: int
    category: str
    free: bool
    priced: bool  # a paid model with a price: its estimated cost is not 0
    price_in: float
    price_out: float
    fee: float  # `_fee`
    default_output: int  # `min(DEFAULT_EXPECTED_OUTPUT, output_cap)`: the output a request without max_tokens asks
    # its category distance (`CATEGORY_FALLBACK`) from each category a request can be of
    distances: dict[str, int]
    # (the request's category, the pinned key) → the static part of its plan steps' reason (few:
    # a model is pinned as itself or not at all), formatted once each
    reasons: dict[tuple[str, ModelKey | None], str]
    # that reason for each category a request can be of when nothing is pinned (nearly every
    # request), formatted up front: read with one lookup, no call, no tuple key to hash
    heads: dict[str, str]
    meters: tuple[Meter, ...]  # `Catalog.meters`

    def reason_head(self, category: str, pinned: ModelKey | None, distance: int) -> str:
        """`_format_reason` for this model, kept (at most `_REASONS_MAX` per model)."""
        found = self.reasons.get((category, pinned))
        if found is None:
            if len(self.reasons) >= _REASONS_MAX:
                self.reasons.clear()
            found = self.reasons[(category, pinned)] = _format_reason(category, pinned, self.entry, distance)
        return found

    @staticmethod
    def of(entry: ModelEntry, factor: float, room: int | None, meters: tuple[Meter, ...]) -> _Static:
        price = entry.price
        priced = not entry.is_free and price is not None
        distances = {wanted: order.index(entry.category) if entry.category in order else len(order)
                     for wanted, order in CATEGORY_FALLBACK.items()}
        heads = {wanted: _format_reason(wanted, None, entry, distance) for wanted, distance in distances.items()}
        return _Static(entry, entry.key, entry.provider, entry.model, factor, room, entry.output_cap, entry.window,
                       entry.category, entry.is_free, priced, (price.input or 0.0) if price is not None else 0.0,
                       (price.output or 0.0) if price is not None else 0.0, _fee(entry),
                       min(DEFAULT_EXPECTED_OUTPUT, entry.output_cap), distances, {}, heads, meters)


class ChatPreparer:
    """Holds the catalog's chat models and the token estimator (per container)."""

    def __init__(self, catalog: Catalog, tokens: TokenEstimator) -> None:
        self.catalog = catalog
        self.tokens = tokens
        self.entries = catalog.for_capability(CHAT)
        self._factor = {entry.key: catalog.token_factor(entry) for entry in self.entries}
        self._meters = {entry.key: catalog.meters(entry) for entry in self.entries}
        self._token_room = {key: _token_room(meters) for key, meters in self._meters.items()}
        # `_needs_drop` per model for each distinct `Needs` seen (few: flags and parameter names),
        # keyed by its fields as a tuple
        self._needs_drops: dict[tuple[bool, bool, bool, bool, frozenset[str], bool, bool, bool],
                                dict[ModelKey, str | None]] = {}
        # `resolve` of an alias for the last `available` set seen (a frozenset, replaced, never
        # changed, when keys change), as its models' static values: every `auto` request filtered
        # the whole catalog again.
        self._alias_pool: tuple[frozenset[ModelKey], tuple[_Static, ...]] | None = None
        # What `prepare` reads of each model on every request, read once (the entries' cached
        # properties and price fields are each an attribute lookup or two per candidate).
        self._static = {entry.key: _Static.of(entry, self._factor[entry.key], self._token_room[entry.key],
                                              self._meters[entry.key])
                        for entry in self.entries}

    def _resolve(self, model: str, available: Collection[ModelKey]) -> tuple[ModelKey | None, tuple[_Static, ...]]:
        """`resolve`, as the static values of the models it leaves."""
        cached = self._alias_pool
        if cached is not None and cached[0] is available and is_alias(model):
            return None, cached[1]
        pinned, pool = resolve(model, self.entries, self.catalog, available, is_alias, CHAT)
        statics = tuple([self._static_of(entry) for entry in pool])
        if isinstance(available, frozenset) and is_alias(model):
            self._alias_pool = (available, statics)
        return pinned, statics

    def _static_of(self, entry: ModelEntry) -> _Static:
        static = self._static.get(entry.key)
        if static is None or static.entry is not entry:  # an entry not among the catalog's chat models
            static = _Static.of(entry, self.catalog.token_factor(entry), None, self.catalog.meters(entry))
        return static

    def prepare(self, request: ChatCompletionRequest, available: Collection[ModelKey]) -> Preparation:
        """Everything decidable before state is loaded; raises for requests nothing can serve."""
        base = self.tokens.estimate(request)
        analysis = analyze(request, base)
        # the needs as a plain tuple too: the key of `_needs_drops`, hashed and compared in C (a
        # `Needs` key took its dataclass `__hash__` and `__eq__`, two Python calls, per request)
        wanted = (analysis.needs_tools, analysis.needs_vision, analysis.needs_json, request.stream,
                  requested_params(request), sets_sampling(request), analysis.needs_audio, analysis.needs_file)
        needs = Needs(*wanted)
        pinned, pool = self._resolve(request.model, available)
        cap = request.output_limit
        kept: list[Candidate] = []
        dropped = []
        order = CATEGORY_FALLBACK.get(analysis.category, (analysis.category,))
        drops = self._needs_drops.get(wanted)
        if drops is None:
            if len(self._needs_drops) >= _NEEDS_CACHE_MAX:
                self._needs_drops.clear()
            drops = self._needs_drops[wanted] = {e.key: _needs_drop(e, needs) for e in self.entries}
        slow = cap is not None and cap >= LONG_ANSWER_TOKENS
        category = analysis.category
        meters: dict[ModelKey, tuple[Meter, ...]] = {}
        ranks: list[tuple[bool, int, float, str, str]] = []  # the sort key of each kept candidate
        prompts = {1.0: base}  # the prompt scaled by each tokenizer factor met (few: one a provider)
        # `_size_drop`, `_expected_output` and `scaled` are called only when they change something
        # (a drop, an output cut to a token window, a factor not met before), and the category
        # distance and reason are read from the model's static values: this loop runs for every
        # candidate of every request, and each of those calls cost more than its arithmetic.
        for static in pool:
            entry = static.entry
            key = static.key
            factor = static.factor
            prompt = prompts.get(factor)
            if prompt is None:
                prompt = prompts[factor] = scaled(base, factor)
            why = drops[key] if key in drops else _needs_drop(entry, needs)
            output_cap = static.output_cap
            if cap is None:
                output = static.default_output
                if why is None and prompt + output > static.window:
                    why = _size_drop(entry, prompt, cap)
                room = static.room
                if room is not None and prompt + output > room:  # its smallest token window is short of it
                    output = _expected_output(prompt, output_cap, room)
            else:
                output = cap
                if why is None and (cap > output_cap or prompt + cap > static.window):
                    why = _size_drop(entry, prompt, cap)
            if why is not None:
                dropped.append((key, why))
                continue
            distance = static.distances.get(category)
            if distance is None:  # a category `CATEGORY_FALLBACK` does not name
                distance = order.index(static.category) if static.category in order else len(order)
            if static.priced:  # the estimated cost at the model's per-million prices
                cost = (prompt * static.price_in + output * static.price_out) / 1_000_000
                ceiling = cap if cap is not None else max(output, min(output_cap, static.window - prompt))
                most = (prompt * static.price_in + ceiling * static.price_out) / 1_000_000 + static.fee
            else:
                cost = 0.0
                most = 0.0 if static.free else static.fee
            head = static.heads.get(category) if pinned is None else None
            if head is None:
                head = static.reason_head(category, pinned, distance)
            kept.append(Candidate(entry, {REQUESTS: 1, TOKENS: prompt + output},
                                  (distance, cost, static.provider, static.model), cost, head, slow, most, True))
            ranks.append((not static.free, distance, cost, static.provider, static.model))
            meters[key] = static.meters
        if not kept:
            raise nothing_fits(dropped)
        # free first, then the static rank: sorted by the keys made above (stable, as a sort by
        # `(not c.entry.is_free, *c.rank)` is), without a Python call per comparison key
        kept = [kept[i] for i in sorted(range(len(kept)), key=ranks.__getitem__)]
        prefer = _affinity(request, pinned)
        loaded, beyond = bounded(kept, meters, (prefer,) if prefer else ())
        dropped += [(c.key, "not loaded: ranked below the best candidates") for c in beyond]
        return Preparation(
            label=analysis.category, candidates=tuple(loaded), dropped=tuple(dropped),
            meters=meters, pinned=pinned, detail=ChatDetail(analysis, needs, base), prefer=prefer,
            rest=tuple(beyond),
        )


_NEEDS_CACHE_MAX = 256


def _affinity(request: ChatCompletionRequest, pinned: ModelKey | None) -> str | None:
    """The affinity item of the conversation this request continues (`selection/conversation.py`),
    unless a model is pinned (nothing to prefer then) or it continues none."""
    if pinned is not None:
        return None
    key = turn_key(request.messages)
    return affinity_pk(key) if key is not None else None


def _fee(entry: ModelEntry) -> float:
    """A paid model's per-request fee (part of what a budget must hold for the call)."""
    return 0.0 if entry.is_free or entry.price is None else entry.price.request or 0.0


_REASONS_MAX = 64


def _format_reason(category: str, pinned: ModelKey | None, entry: ModelEntry, distance: int) -> str:
    """The static part of a plan step's reason, before its estimated cost (which the step formats
    when its reason is read: `Candidate.reason_cost`). Built for every candidate of every request,
    and the same for every prompt: kept per model (`_Static.reason_head`)."""
    tier = "free tier with capacity" if entry.is_free else "paid fallback"
    if pinned is not None:
        tier = f"pinned, {'free tier' if entry.is_free else 'paid'}"
    match = "category match" if distance == 0 else f"category {entry.category} (wanted {category})"
    return f"{tier}; {match}; "
