"""From a simulation's outcomes to the seed's success metrics (JSON), and a Markdown report with
PNG plots (`write_report`). Every figure is computed from what the simulated requests got and what
the simulated providers saw, never from the gateway's own bookkeeping.

Definitions (requests = every request simulated):
- free_tier_share: answered requests served by a free-tier model / answered requests
- caller_limit_rate: requests refused by the user's own key policy (a workload's `users.policy`:
  429 `user_rate_limited` or `budget_exceeded`, 403 `model_not_allowed`) / requests. The
  operator's limits working as set, not the gateway failing: they are kept out of
  user_rate_limit_error_rate, availability and selection_success_rate (they stay in
  user_error_rate, errors and users_with_an_error).
- user_rate_limit_error_rate: requests answered any other 429 / requests
- user_error_rate: requests answered with any error (4xx or 5xx) / requests
- availability: answered requests / requests not refused by the caller's own policy (1 when
  the policy refused them all: nothing was left for the gateway to fail)
- avg_cost_usd: total cost / requests; baseline_avg_cost_usd: the same requests all sent to the
  workload's baseline model (chat) and baseline transcription model
- cost_reduction: 1 - cost / baseline cost
- selection_p95_ms: 95th percentile over requests of the real CPU time of selection (preparation,
  token count, state load from the in-memory store, ranking; every plan of the request). The
  only figure that differs between runs of the same seed.
- selection_success_rate: requests whose first selected model answered / requests not refused by
  the caller's own policy (1 when it refused them all, as availability)
- failover_rate: answered requests that needed more than one provider call / requests
- provider_limit_violations: calls a simulated provider refused because one of its limits was full
  (the gateway must never send one)
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from llm_gateway.selection.planner import BUDGET_EXCEEDED, USER_RATE_LIMITED
from llm_gateway.tenancy.limits import MODEL_NOT_ALLOWED
from sandbox.simulate.engine import PROVIDERS, SimResult

CALLER_LIMITS = frozenset({USER_RATE_LIMITED, BUDGET_EXCEEDED, MODEL_NOT_ALLOWED})  # the key policy's refusals

# The seed's success metrics that a simulated day can speak to: (key, target, comparison, label).
TARGETS: tuple[tuple[str, float, str, str], ...] = (
    ("free_tier_share", 0.90, ">=", "90%+ requests served by free tier providers"),
    ("user_rate_limit_error_rate", 0.001, "<", "<0.1% rate limit errors reaching users"),
    ("availability", 0.999, ">=", "99.9% uptime with failover"),
    ("selection_p95_ms", 500.0, "<", "<500ms p95 provider selection time"),
    ("cost_reduction", 0.50, ">=", "50%+ reduction in API costs"),
    ("avg_cost_usd", 0.01, "<=", "$0.01 average cost per request"),
    ("selection_success_rate", 0.99, ">", ">99% provider selection success rate"),
    ("provider_limit_violations", 0, "<=", "Zero surprise bills from provider overages (no provider limit passed)"),
)


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))
    return ordered[index]


def summarize(result: SimResult) -> dict[str, Any]:
    outcomes = result.outcomes
    total = len(outcomes) or 1
    served = [o for o in outcomes if o.status == 200]
    own = sum(1 for o in outcomes if o.code in CALLER_LIMITS)
    n_served = len(served) or 1
    cost = sum(o.cost_usd for o in outcomes)
    baseline = sum(o.baseline_usd for o in outcomes)
    by_provider = Counter(o.provider for o in served)
    errors = Counter(f"{o.status} {o.code}" for o in outcomes if o.status != 200)
    first_ok = sum(1 for o in served if o.failed_attempts == 0)
    to_serve = len(outcomes) - own  # what the gateway had to serve: none left is no failure
    summary: dict[str, Any] = {
        "workload": result.workload.name,
        "seed": result.seed,
        "requests": len(outcomes),
        "requests_per_day": result.workload.requests_per_day,
        "simulated_hours": result.workload.hours,
        "free_tier_share": round(sum(1 for o in served if o.free) / n_served, 6),
        "caller_limit_rate": round(own / total, 6),
        "user_rate_limit_error_rate": round(sum(1 for o in outcomes if o.status == 429 and o.code not in CALLER_LIMITS)
                                            / total, 6),
        "user_error_rate": round(sum(1 for o in outcomes if o.status != 200) / total, 6),
        "availability": round(len(served) / to_serve, 6) if to_serve else 1.0,
        "avg_cost_usd": round(cost / total, 8),
        "baseline_avg_cost_usd": round(baseline / total, 8),
        "baseline_models": {"chat": result.workload.baseline_chat,
                            "transcription": result.workload.baseline_transcription},
        "cost_reduction": round(1 - cost / baseline, 6) if baseline else 0.0,
        "total_cost_usd": round(cost, 6),
        "baseline_total_cost_usd": round(baseline, 6),
        "selection_p50_ms": round(_percentile([o.selection_ms for o in outcomes], 0.50), 3),
        "selection_p95_ms": round(_percentile([o.selection_ms for o in outcomes], 0.95), 3),
        "selection_success_rate": round(first_ok / to_serve, 6) if to_serve else 1.0,
        "failover_rate": round(sum(1 for o in served if o.attempts > 1) / total, 6),
        "provider_shares": {p: round(by_provider.get(p, 0) / n_served, 6) for p in PROVIDERS},
        "errors": dict(sorted(errors.items())),
        "errors_of_pinned_requests": dict(sorted(Counter(
            f"{o.status} {o.code}" for o in outcomes if o.status != 200 and o.pinned).items())),
        "user_error_rate_auto": round(sum(1 for o in outcomes if o.status != 200 and not o.pinned)
                                      / max(1, sum(1 for o in outcomes if not o.pinned)), 6),
        "user_rate_limit_error_rate_auto": round(sum(1 for o in outcomes if o.status == 429 and not o.pinned
                                                     and o.code not in CALLER_LIMITS)
                                                 / max(1, sum(1 for o in outcomes if not o.pinned)), 6),
        "users_with_an_error": len({o.user for o in outcomes if o.status != 200}),
        "latency_p50_s": round(_percentile([o.latency_s for o in served], 0.50), 3),
        "latency_p95_s": round(_percentile([o.latency_s for o in served], 0.95), 3),
        "provider_calls": {f"{p} {what}": n for (p, what), n in sorted(result.providers.outcomes.items())},
        "provider_limit_violations": len(result.providers.violations),
        "provider_limit_violations_by_limit": dict(sorted(Counter(
            v.limit.split("=")[0] for v in result.providers.violations).items())),
        "scenario": [e.describe() for e in result.scenario.events],
        "containers": result.containers,
        "gateway_bugs": len(result.bugs),
        "sim_wall_s": round(result.wall_s, 2),
        "sim_cpu_s": round(result.cpu_s, 2),
    }
    summary["targets"] = {key: _verdict(summary[key], target, op) for key, target, op, _ in TARGETS}
    return summary


def _own_limits(summary: dict[str, Any]) -> str:
    rate = summary["caller_limit_rate"]
    return f" ({rate * 100:.2f} % of requests refused by the users' own key policy)" if rate else ""


def _verdict(value: float, target: float, op: str) -> dict[str, Any]:
    ok = {"<": value < target, "<=": value <= target, ">": value > target, ">=": value >= target}[op]
    return {"value": value, "target": f"{op} {target:g}", "pass": ok}


# --- the Markdown report with plots -------------------------------------------------------------------
def _fmt(key: str, value: float) -> str:
    if key.endswith("_ms"):
        return f"{value:.2f} ms"
    if key == "avg_cost_usd":
        return f"${value:.5f}"
    if key == "provider_limit_violations":
        return f"{int(value)}"
    return f"{value * 100:.2f} %"


def write_report(result: SimResult, summary: dict[str, Any], out: Path, command: str) -> list[Path]:
    """`out/report.md`, `out/summary.json` and the PNG plots; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    hours = max(1, math.ceil(result.workload.hours))
    written: list[Path] = []
    served = [o for o in result.outcomes if o.status == 200]

    def save(fig: Any, name: str) -> str:
        path = out / name
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
        return name

    by_hour: dict[str, list[int]] = {p: [0] * hours for p in PROVIDERS}
    for o in served:
        if o.provider in by_hour:
            by_hour[o.provider][min(hours - 1, int(o.at // 3600))] += 1
    fig, ax = plt.subplots(figsize=(9, 4))
    bottom = [0] * hours
    for provider in PROVIDERS:
        ax.bar(range(hours), by_hour[provider], bottom=bottom, label=provider)
        bottom = [b + v for b, v in zip(bottom, by_hour[provider], strict=True)]
    ax.set(title="Requests served per hour, by provider", xlabel="hour of the day (UTC)", ylabel="requests")
    ax.legend(fontsize=8)
    plots = {"providers": save(fig, "requests_by_provider.png")}

    free = [0] * hours
    paid = [0] * hours
    failed = [0] * hours
    for o in result.outcomes:
        hour = min(hours - 1, int(o.at // 3600))
        if o.status != 200:
            failed[hour] += 1
        elif o.free:
            free[hour] += 1
        else:
            paid[hour] += 1
    fig, ax = plt.subplots(figsize=(9, 4))
    share = [f / (f + p) * 100 if f + p else 0 for f, p in zip(free, paid, strict=True)]
    ax.plot(range(hours), share, marker="o", label="free-tier share of answered requests")
    ax.axhline(90, color="red", linestyle="--", label="target 90 %")
    ax.set(title="Free vs paid", xlabel="hour of the day (UTC)", ylabel="% of answered requests", ylim=(0, 101))
    ax.legend(fontsize=8)
    plots["free"] = save(fig, "free_vs_paid.png")

    fig, ax = plt.subplots(figsize=(9, 4))
    for provider in PROVIDERS:
        xs = [s["t"] / 3600 for s in result.samples]
        ys = [s["remaining"][provider] * 100 for s in result.samples]
        if any(ys):
            ax.plot(xs, ys, label=provider)
    ax.set(title="Free capacity left per provider (tightest window of a minute or more, any unit)",
           xlabel="hour of the day (UTC)", ylabel="% left", ylim=(0, 101))
    ax.legend(fontsize=8)
    plots["capacity"] = save(fig, "remaining_capacity.png")

    cost = [0.0] * hours
    base = [0.0] * hours
    for o in result.outcomes:
        hour = min(hours - 1, int(o.at // 3600))
        cost[hour] += o.cost_usd
        base[hour] += o.baseline_usd
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(range(hours), cost, marker="o", label="gateway")
    ax.plot(range(hours), base, marker="s", label=f"baseline ({result.workload.baseline_chat})")
    ax.set(title="Cost per hour", xlabel="hour of the day (UTC)", ylabel="USD")
    ax.legend(fontsize=8)
    plots["cost"] = save(fig, "cost_per_hour.png")

    failovers = [0] * hours
    for o in served:
        if o.attempts > 1:
            failovers[min(hours - 1, int(o.at // 3600))] += 1
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(range(hours), failovers, marker="o", label="answered after a failover")
    ax.plot(range(hours), failed, marker="x", color="red", label="user-visible errors")
    for event in result.scenario.events:
        ax.axvspan(event.start_s / 3600, min(event.end_s / 3600, hours), alpha=0.12, color="grey")
    ax.set(title="Failovers and errors per hour (grey: scenario incidents)", xlabel="hour of the day (UTC)",
           ylabel="requests")
    ax.legend(fontsize=8)
    plots["failovers"] = save(fig, "failovers_and_errors.png")

    rows = []
    for key, _target, _op, label in TARGETS:
        verdict = summary["targets"][key]
        rows.append(f"| {label} | `{key}` | {_fmt(key, verdict['value'])} | {verdict['target']} | "
                    f"{'PASS' if verdict['pass'] else '**FAIL**'} |")
    shares = ", ".join(f"{p} {v * 100:.1f} %" for p, v in summary["provider_shares"].items())
    scenario = "\n".join(f"- {line}" for line in summary["scenario"]) or "- none"
    errors = "\n".join(f"- `{k}`: {v}" for k, v in summary["errors"].items()) or "- none"
    violations = result.providers.violations
    violation_lines = "\n".join(
        f"- {v.at / 3600:.2f} h: {v.provider}/{v.model} refused by `{v.limit}` (used {v.used}, asked {v.requested})"
        for v in violations[:10]) or "- none"
    text = f"""# Simulated day: workload `{result.workload.name}`, seed {result.seed}

Made by `{command}`. {summary['requests']:,} requests over {result.workload.hours:g} h
({result.workload.requests_per_day:,} a day), through the real gateway code on a virtual clock
(simulated in {summary['sim_wall_s']} s wall, {summary['sim_cpu_s']} s CPU; {summary['containers']} containers).

{result.workload.description}

## The seed's success metrics

| seed target | metric | simulated | target | |
|---|---|---|---|---|
{chr(10).join(rows)}

Also: user error rate {summary['user_error_rate'] * 100:.3f} %, failover rate {summary['failover_rate'] * 100:.2f} %,
average cost ${summary['avg_cost_usd']:.6f} against ${summary['baseline_avg_cost_usd']:.6f} for the baseline,
selection p50 {summary['selection_p50_ms']:.2f} ms, answer latency p50 {summary['latency_p50_s']} s / p95 {summary['latency_p95_s']} s,
{summary['users_with_an_error']} users saw at least one error{_own_limits(summary)}. Served by: {shares}.

Selection times are real CPU time measured in this run (they vary between runs; every other
figure is the same for the same seed). They exclude DynamoDB's round trip (the simulation's
state store is in memory).

## Scenario

{scenario}

## Errors users saw

{errors}

Of which requests that pinned a model: {summary['errors_of_pinned_requests'] or 'none'}. Without
pinned requests the user error rate is {summary['user_error_rate_auto'] * 100:.3f} % and the
rate-limit error rate {summary['user_rate_limit_error_rate_auto'] * 100:.3f} %.

## Calls refused by a provider's own limit (the gateway should never send one)

{violation_lines}

## Plots

![Requests by provider]({plots['providers']})

![Free vs paid]({plots['free']})

![Remaining capacity]({plots['capacity']})

![Cost per hour]({plots['cost']})

![Failovers and errors]({plots['failovers']})
"""
    report = out / "report.md"
    report.write_text(text, encoding="utf-8")
    summary_path = out / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return [report, summary_path, *written]


def hourly(result: SimResult) -> dict[str, list[int]]:
    """Per hour: requests, errors, failovers (for tests and tools)."""
    hours = max(1, math.ceil(result.workload.hours))
    out: dict[str, list[int]] = defaultdict(lambda: [0] * hours)
    for o in result.outcomes:
        hour = min(hours - 1, int(o.at // 3600))
        out["requests"][hour] += 1
        out["errors"][hour] += int(o.status != 200)
        out["failovers"][hour] += int(o.status == 200 and o.attempts > 1)
    return dict(out)
