"""`--sweep requests_per_day=1000:200000`: the same workload (and scenario) at several daily
volumes, to find up to what volume free tiers keep 90 % of requests and what each step above
it costs."""

from __future__ import annotations

from typing import Any

from sandbox.simulate.engine import simulate
from sandbox.simulate.inputs import number
from sandbox.simulate.report import summarize
from sandbox.simulate.workload import MAX_REQUESTS_PER_DAY, Workload

FREE_TARGET = 0.90


MAX_STEPS = 50  # each step is a whole simulated day


def parse_sweep(text: str) -> tuple[str, list[int]]:
    """`requests_per_day=1000:200000` (log-spaced steps, 8 by default), `...=1000:200000:5`
    (that many steps) or `...=1000,5000,20000` (those values; one value is a sweep of one)."""
    name, _, spec = text.partition("=")
    if name != "requests_per_day" or not spec:
        raise ValueError("--sweep: expected requests_per_day=LOW:HIGH[:STEPS] or requests_per_day=A,B,C")
    if "," in spec or ":" not in spec:
        values = sorted({_volume(v) for v in spec.split(",")})
    else:
        parts = [_volume(v) for v in spec.split(":")]
        if len(parts) not in (2, 3) or parts[0] <= 0 or parts[1] < parts[0]:
            raise ValueError("--sweep: expected LOW:HIGH[:STEPS] with 0 < LOW <= HIGH")
        low, high = parts[0], parts[1]
        steps = 8
        if len(parts) == 3:
            raw = spec.split(":")[2].strip()
            try:
                steps = int(number(raw, "--sweep STEPS", at_least=1, at_most=MAX_STEPS, whole=True))
            except ValueError:
                raise ValueError(f"--sweep: STEPS must be a whole number from 1 to {MAX_STEPS}, got {raw!r}") from None
        if steps < 2:
            values = [low]
        else:
            ratio = (high / low) ** (1 / (steps - 1))
            values = sorted({int(round(low * ratio**i, -2 if low * ratio**i >= 1000 else 0)) for i in range(steps)})
    if not values or min(values) <= 0:
        raise ValueError("--sweep: volumes must be positive")
    if max(values) > MAX_REQUESTS_PER_DAY:
        raise ValueError(f"--sweep: volumes must be at most {MAX_REQUESTS_PER_DAY:,} requests a day (each is a whole "
                         "simulated day, made in memory before it runs)")
    return name, values


def _volume(text: str) -> int:
    try:
        return int(number(text.strip(), "--sweep", whole=True))
    except ValueError:
        raise ValueError(f"--sweep: {text.strip()!r} is not a number; expected requests_per_day=LOW:HIGH[:STEPS] "
                         "or requests_per_day=A,B,C") from None


def run_sweep(workload: Workload, values: list[int], seed: int, hours: float | None = None) -> dict[str, Any]:
    shapes = [workload.with_volume(volume) for volume in values]
    if hours is not None:
        shapes = [shaped.with_hours(hours) for shaped in shapes]
    for shaped in shapes:  # every step, before the first whole day is simulated
        shaped.check_holds_requests()
    rows = []
    for shaped in shapes:
        summary = summarize(simulate(shaped, seed))
        rows.append({key: summary[key] for key in (
            "requests_per_day", "requests", "free_tier_share", "user_error_rate", "user_rate_limit_error_rate",
            "avg_cost_usd", "baseline_avg_cost_usd", "cost_reduction", "total_cost_usd", "failover_rate",
            "provider_limit_violations", "sim_wall_s")})
    holding = [r for r in rows if r["free_tier_share"] >= FREE_TARGET]
    scale = 24 / (hours or workload.hours)
    for previous, row in zip([None, *rows], rows, strict=False):
        row["cost_per_day_usd"] = round(row["total_cost_usd"] * scale, 4)
        if previous is not None:
            extra = row["requests_per_day"] - previous["requests_per_day"]
            added = row["cost_per_day_usd"] - previous["cost_per_day_usd"]
            row["marginal_cost_per_request_usd"] = round(added / extra, 8) if extra else None
    return {
        "workload": workload.name, "seed": seed, "hours": hours or workload.hours,
        "free_tier_target": FREE_TARGET,
        "free_tiers_hold_up_to_requests_per_day": max((r["requests_per_day"] for r in holding), default=None),
        "first_volume_below_target": next((r["requests_per_day"] for r in rows if r["free_tier_share"] < FREE_TARGET),
                                          None),
        "steps": rows,
    }


def sweep_table(result: dict[str, Any]) -> str:
    lines = ["| requests/day | free-tier share | user errors | avg cost | cost/day | marginal cost/request |",
             "|---|---|---|---|---|---|"]
    for row in result["steps"]:
        marginal = row.get("marginal_cost_per_request_usd")
        lines.append(f"| {row['requests_per_day']:,} | {row['free_tier_share'] * 100:.1f} % | "
                     f"{row['user_error_rate'] * 100:.2f} % | ${row['avg_cost_usd']:.6f} | ${row['cost_per_day_usd']:.2f} | "
                     f"{'-' if marginal is None else f'${marginal:.6f}'} |")
    hold = result["free_tiers_hold_up_to_requests_per_day"]
    lines.append("")
    lines.append(f"Free tiers keep {result['free_tier_target']:.0%} of requests up to "
                 f"{'no volume tried' if hold is None else f'{hold:,} requests/day'} (of those tried)"
                 + ("" if result["first_volume_below_target"] is None else
                    f"; below it from {result['first_volume_below_target']:,}/day") + ".")
    return "\n".join(lines)


