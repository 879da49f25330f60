"""Workloads: what a day of traffic looks like, read from `sandbox/workloads/*.yaml`, and the
deterministic stream of requests drawn from one (same workload, same seed, same requests).

A workload says how many requests a day, how they spread over the hours, what share is chat,
streamed chat or transcription, how long prompts, answers and audio are (log-normal, given by a
median and a 90th percentile, clipped), which share needs reasoning, tools, JSON or vision, which
share pins a model, and who the users are. The scenario (outages, 429 storms, slow providers, a
revoked key) and the simulated providers' latency live in the same file (`scenario.py`).
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from llm_gateway.api.errors import GatewayError
from llm_gateway.tenancy.policy import Policy
from llm_gateway.tenancy.policy_input import parse_policy
from sandbox.simulate.inputs import number
from sandbox.simulate.scenario import parse_scenario

WORKLOADS_DIR = Path(__file__).resolve().parent.parent / "workloads"
# The most a day may hold: every request and user is made in memory before the day runs, and a
# few zeros too many grew the process by a GB every 20 s. 1,000,000 requests is ten times the
# largest day measured (100,000 in about 200 s of CPU), so about half an hour.
MAX_REQUESTS_PER_DAY = 1_000_000
MAX_USERS = 1_000_000
CHAT, STREAM, TRANSCRIPTION = "chat", "stream", "transcription"
KINDS = ("plain", "reasoning", "tools", "json", "vision")
_Z90 = 1.2815515655446004  # the standard normal's 90th percentile


@dataclass(frozen=True)
class Spread:
    """A log-normal quantity given by its median and 90th percentile, clipped to [low, high]."""

    median: float
    p90: float
    low: float = 1
    high: float = 1e9

    @functools.cached_property
    def sigma(self) -> float:  # cached: a day draws two or three a request
        return math.log(self.p90 / self.median) / _Z90 if self.p90 > self.median else 0.0

    def draw(self, rng: random.Random) -> float:
        value = self.median * math.exp(self.sigma * rng.gauss(0.0, 1.0)) if self.sigma else self.median
        return min(self.high, max(self.low, value))

    @classmethod
    def parse(cls, raw: Any, where: str) -> Spread:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            value = number(raw, where, above=0)
            return cls(value, value, value, value)
        if not isinstance(raw, Mapping) or "median" not in raw:
            raise ValueError(f"{where}: expected a number or {{median, p90, min, max}}")
        unknown = set(raw) - {"median", "p90", "min", "max"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        median = number(raw["median"], f"{where}.median", above=0)
        p90 = number(raw.get("p90", median), f"{where}.p90", at_least=median)
        low = number(raw.get("min", 1), f"{where}.min", at_least=0)
        high = number(raw.get("max", 1e9), f"{where}.max", at_least=low)
        return cls(median, p90, low, high)


def _share(raw: Any, where: str) -> float:
    return number(raw, where, at_least=0, at_most=1)


def _section(raw: Mapping[str, Any], key: str, where: str | None = None) -> Mapping[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where or key}: expected a mapping, got {value!r}")
    return value


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    requests_per_day: int
    start: float  # wall time (UTC epoch seconds) of the simulated day's first second
    hours: float  # how much of the day is simulated (24 = the whole day)
    hourly: tuple[float, ...]  # relative arrival rate per hour of the day (24 values)
    users: int
    user_skew: float  # Zipf exponent of requests per user (0 = every user alike)
    mix: Mapping[str, float]  # chat / stream / transcription
    kinds: Mapping[str, float]  # share of chat requests per kind (plain = the rest)
    aliases: Mapping[str, float]  # model field of unpinned chat requests
    pinned_share: float
    pinned_models: tuple[str, ...]
    follow_up_share: float  # chat requests that are a later turn of a conversation
    prompt_tokens: Spread
    output_tokens: Spread
    max_tokens_share: float  # chat requests that set max_tokens (to about twice the answer they get)
    audio_seconds: Spread
    translate_share: float
    # audio longer than this is sent as a job (`POST /v1/audio/jobs`, the job path's deadline), as
    # the README tells clients to; None: every transcription is a synchronous request
    job_over_s: float | None
    baseline_chat: str
    baseline_transcription: str
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)
    # every user's key policy (limits, budgets, allow-list), as the admin API takes it; None: none
    user_policy: Policy | None = None

    @property
    def total_requests(self) -> int:
        """Requests in the simulated span (the whole day's share of the hours simulated)."""
        whole = sum(self.hourly)
        hours = self.hours
        covered = sum(self.hourly[h] * min(1.0, max(0.0, hours - h)) for h in range(24))
        return round(self.requests_per_day * covered / whole)

    def check_holds_requests(self) -> None:
        """ValueError unless the simulated span holds a request. A span with none divided by zero
        (hours the profile gives no traffic) or reported 0 requests as failed targets."""
        if self.total_requests < 1:
            raise ValueError(f"the first {self.hours:g} h of {self.name!r} at {self.requests_per_day:,} requests a day "
                             "hold no request (its hourly profile's share of them rounds to none): "
                             "raise --requests-per-day or --hours")

    def with_volume(self, requests_per_day: int) -> Workload:
        return replace(self, requests_per_day=int(number(requests_per_day, "--requests-per-day", at_least=1,
                                                         at_most=MAX_REQUESTS_PER_DAY, whole=True)))

    def with_hours(self, hours: float) -> Workload:
        return replace(self, hours=number(hours, "--hours", above=0, at_most=24))


def workload_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return WORKLOADS_DIR / f"{name_or_path}.yaml"


def available() -> list[str]:
    return sorted(p.stem for p in WORKLOADS_DIR.glob("*.yaml"))


def load_workload(name_or_path: str) -> Workload:
    path = workload_path(name_or_path)
    if not path.exists():
        raise ValueError(f"no workload {name_or_path!r}: expected a YAML file or one of {', '.join(available())}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ValueError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return parse_workload(raw, path.stem)


_TOP = {"name", "description", "requests_per_day", "start", "hours", "hourly_profile", "users", "mix", "chat",
        "transcription", "baseline", "providers", "scenario"}


def parse_workload(raw: Mapping[str, Any], default_name: str = "workload") -> Workload:
    unknown = set(raw) - _TOP
    if unknown:
        raise ValueError(f"unknown workload keys {sorted(unknown)}; expected some of {sorted(_TOP)}")
    profile = raw.get("hourly_profile", [1.0] * 24)
    if not isinstance(profile, list) or len(profile) != 24:
        raise ValueError("hourly_profile: expected 24 non-negative numbers, not all zero")
    hourly = tuple(number(v, f"hourly_profile[{h}]", at_least=0) for h, v in enumerate(profile))
    if sum(hourly) <= 0:
        raise ValueError("hourly_profile: expected 24 non-negative numbers, not all zero")
    mix = _shares(raw.get("mix", {CHAT: 1.0}), (CHAT, STREAM, TRANSCRIPTION), "mix", whole=True)
    chat = _section(raw, "chat")
    users = raw.get("users", {}) or {}
    if isinstance(users, int) and not isinstance(users, bool):
        users = {"count": users}
    if not isinstance(users, Mapping):
        raise ValueError(f"users: expected a count or a mapping, got {users!r}")
    kinds = _shares(chat.get("kinds", {}), KINDS[1:], "chat.kinds", whole=False)
    aliases = _shares(chat.get("aliases", {"auto": 1.0}), ("auto", "auto:small", "auto:large", "auto:reasoning"),
                      "chat.aliases", whole=True)
    pinned = _section(chat, "pinned", "chat.pinned")
    pinned_models = pinned.get("models", [])
    if not isinstance(pinned_models, list) or not all(isinstance(m, str) and "/" in m for m in pinned_models):
        raise ValueError(f"chat.pinned.models: expected a list of provider/model ids, got {pinned_models!r}")
    audio = _section(raw, "transcription")
    baseline = _section(raw, "baseline")
    start = raw.get("start", "2026-12-01T00:00:00Z")
    try:
        start_ts = datetime.fromisoformat(str(start).replace("Z", "+00:00")).astimezone(UTC).timestamp()
    except ValueError:
        raise ValueError(f"start: expected a UTC time like 2026-12-01T00:00:00Z, got {start!r}") from None
    workload = Workload(
        name=str(raw.get("name", default_name)),
        description=str(raw.get("description", "")).strip(),
        requests_per_day=int(number(raw.get("requests_per_day", 10_000), "requests_per_day", at_least=1,
                                    at_most=MAX_REQUESTS_PER_DAY, whole=True)),
        start=start_ts,
        hours=number(raw.get("hours", 24), "hours", above=0, at_most=24),
        hourly=hourly,
        users=int(number(users.get("count", 100), "users.count", at_least=1, at_most=MAX_USERS, whole=True)),
        user_skew=number(users.get("skew", 1.0), "users.skew", at_least=0),
        mix=mix,
        kinds=kinds,
        aliases=aliases,
        pinned_share=_share(pinned.get("share", 0.0), "chat.pinned.share"),
        pinned_models=tuple(pinned_models),
        follow_up_share=_share(chat.get("follow_up_share", 0.0), "chat.follow_up_share"),
        prompt_tokens=Spread.parse(chat.get("prompt_tokens", {"median": 300, "p90": 2000}), "chat.prompt_tokens"),
        output_tokens=Spread.parse(chat.get("output_tokens", {"median": 200, "p90": 800}), "chat.output_tokens"),
        max_tokens_share=_share(chat.get("max_tokens_share", 0.0), "chat.max_tokens_share"),
        audio_seconds=Spread.parse(audio.get("audio_seconds", {"median": 60, "p90": 300}), "transcription.audio_seconds"),
        translate_share=_share(audio.get("translate_share", 0.0), "transcription.translate_share"),
        job_over_s=number(audio["job_over_s"], "transcription.job_over_s", above=0)
        if audio.get("job_over_s") is not None else None,
        baseline_chat=str(baseline.get("chat", "openai/gpt-4.1-mini")),
        baseline_transcription=str(baseline.get("transcription", "openai/whisper-1")),
        raw=raw,
        user_policy=_policy(users.get("policy")),
    )
    # the scenario and the simulated providers' latency are read by the engine; checked here, so a
    # mistake in them is reported with the rest of the file's, before anything runs
    parse_scenario(raw.get("providers"), raw.get("scenario"))
    if workload.pinned_share and not workload.pinned_models:
        raise ValueError("chat.pinned.share needs chat.pinned.models")
    return workload


def _policy(raw: Any) -> Policy | None:
    """`users.policy`: validated as the admin API validates a key's policy."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValueError("users.policy: expected a mapping of policy fields (rpm, tpm, daily_budget_usd, ...)")
    try:
        return parse_policy(raw)
    except GatewayError as exc:
        raise ValueError(f"users.policy: {exc.message}") from None


def _shares(raw: Any, names: tuple[str, ...], where: str, *, whole: bool) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping of {', '.join(names)} to shares")
    unknown = set(raw) - set(names)
    if unknown:
        raise ValueError(f"{where}: unknown {sorted(unknown)}; expected some of {', '.join(names)}")
    out = {str(k): number(v, f"{where}.{k}") for k, v in raw.items()}
    total = sum(out.values())
    if any(v < 0 for v in out.values()) or total > 1.0 + 1e-9 or (whole and abs(total - 1.0) > 1e-6):
        raise ValueError(f"{where}: shares must be >= 0 and add up to {'1' if whole else 'at most 1'}")
    return out


# --- the request stream ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SimRequest:
    """One simulated request: when it arrives (seconds after the day's start) and what it asks."""

    index: int
    at: float
    capability: str  # chat | stream | transcription
    user: int
    kind: str = "plain"
    model: str = "auto"
    prompt_tokens: int = 0
    output_tokens: int = 0
    max_tokens: int | None = None
    turns: int = 1
    audio_seconds: float = 0.0
    translate: bool = False


def _pick(rng: random.Random, shares: Mapping[str, float], default: str) -> str:
    draw = rng.random()
    for name, share in shares.items():
        if draw < share:
            return name
        draw -= share
    return default


def _quantize(value: float) -> int:
    """Two significant figures: sizes from a few hundred distinct values, so request bodies can be
    built once and reused (the gateway still estimates each request's tokens itself)."""
    if value < 100:
        return max(1, round(value))
    digits = 10 ** (int(math.log10(value)) - 1)
    return int(round(value / digits) * digits)


def arrivals(workload: Workload, rng: random.Random) -> list[float]:
    """Arrival times (seconds after the start): a Poisson process whose rate follows the hourly
    profile, conditioned on the workload's total, so every seed gives exactly that many requests."""
    total = workload.total_requests
    weights = [workload.hourly[h] * min(1.0, max(0.0, workload.hours - h)) for h in range(24)]
    whole = sum(weights)
    times: list[float] = []
    cumulative = [0.0]
    for weight in weights:
        cumulative.append(cumulative[-1] + weight / whole)
    for _ in range(total):
        u = rng.random()
        hour = max(0, min(23, _bisect(cumulative, u) - 1))
        span = cumulative[hour + 1] - cumulative[hour]
        offset = (u - cumulative[hour]) / span if span else rng.random()
        times.append((hour + offset) * 3600.0)
    times.sort()
    return times


def _bisect(values: list[float], x: float) -> int:
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if values[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def generate(workload: Workload, seed: int) -> Iterator[SimRequest]:
    """The workload's requests in arrival order; the same seed gives the same requests."""
    rng = random.Random(f"workload:{seed}")
    times = arrivals(workload, rng)
    weights = [1.0 / (rank + 1) ** workload.user_skew for rank in range(max(1, workload.users))]
    user_cdf: list[float] = []
    running = 0.0
    whole = sum(weights)
    for weight in weights:
        running += weight / whole
        user_cdf.append(running)
    for index, at in enumerate(times):
        capability = _pick(rng, workload.mix, CHAT)
        user = min(len(user_cdf) - 1, _bisect(user_cdf, rng.random()))
        if capability == TRANSCRIPTION:
            seconds = max(1.0, float(_quantize(workload.audio_seconds.draw(rng))))
            yield SimRequest(index, at, capability, user, audio_seconds=seconds,
                             translate=rng.random() < workload.translate_share)
            continue
        kind = _pick(rng, workload.kinds, "plain")
        pinned = rng.random() < workload.pinned_share
        if pinned:  # an integration that pins a model sends what that model serves: plain chat
            kind = "plain"
        model = workload.pinned_models[rng.randrange(len(workload.pinned_models))] if pinned else _pick(
            rng, workload.aliases, "auto")
        prompt = _quantize(workload.prompt_tokens.draw(rng))
        output = _quantize(workload.output_tokens.draw(rng))
        max_tokens = _quantize(output * 2) if rng.random() < workload.max_tokens_share else None
        turns = 3 if rng.random() < workload.follow_up_share else 1
        yield SimRequest(index, at, capability, user, kind=kind, model=model, prompt_tokens=prompt,
                         output_tokens=output, max_tokens=max_tokens, turns=turns)
