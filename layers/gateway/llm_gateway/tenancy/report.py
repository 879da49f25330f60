"""The daily cost report: the previous UTC day per user, provider and model, from the usage ledger.

Rows: requests, free-tier requests and share, tokens, audio seconds, cost. Totals: the day, the
day before (and the change), the month so far and its projection to the month's end (month so
far / days elapsed * days in the month). Users near a budget: those whose day cost reached 80 %
of a key's daily budget, or month-to-date cost 80 % of a monthly one.

Reads only the ledger's `usage#{user}#{day}` items (one BatchGetItem per 100) for the users that
hold or held a key plus the static-key user: no Scan. `run_report` writes JSON and CSV to the
reports bucket and publishes a short summary to the alarm topic (both optional, so
`llm-gateway report` produces the same report locally).
"""

from __future__ import annotations

import calendar
import csv
import io
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llm_gateway.state.store import Item
from llm_gateway.tenancy.keys import KeyRecord
from llm_gateway.tenancy.usage import UsageLedger, summarize, usd_text

NEAR_BUDGET = 0.8
CSV_COLUMNS = ("date", "user", "model", "requests", "free_requests", "free_share", "tokens_in", "tokens_out",
               "audio_seconds", "cost_usd")


def _epoch(day: str) -> int:
    return calendar.timegm(time.strptime(day, "%Y-%m-%d"))


def _day(epoch: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def previous_day(now: float) -> str:
    return _day(now - 86_400)


def checked_day(text: str) -> str:
    """`text` if it is a real UTC day written as the ledger's items name it (`YYYY-MM-DD`), else
    ValueError: a day written otherwise (`2026-1-5`) would find no items and report nothing."""
    try:
        if len(text) == 10 and _day(_epoch(text)) == text:
            return text
    except ValueError:
        pass
    raise ValueError(f"a day must be a real date written YYYY-MM-DD, got {text[:40]!r}")


def build_report(ledger: UsageLedger, records: Sequence[KeyRecord], day: str, now: float,
                 static_users: Iterable[str] = ("static",)) -> dict[str, Any]:
    """The report of UTC day `day` (YYYY-MM-DD)."""
    start = _epoch(day)
    before = _day(start - 86_400)
    first = day[:8] + "01"
    month_days = [_day(t) for t in range(_epoch(first), start + 1, 86_400)]
    users = sorted({*static_users, *(r.user for r in records)})
    items = ledger.read(users, sorted({*month_days, before}), now)
    rows = []
    per_user: dict[str, dict[str, Any]] = {}
    for user in users:
        today = items.get((user, day))
        if today is None:
            continue
        summary = summarize([today])
        per_user[user] = {k: v for k, v in summary.items() if k != "by_model"}
        rows += [{"date": day, "user": user, "model": model, **values} for model, values in summary["by_model"].items()]
    total = summarize(v for (_, d), v in items.items() if d == day)
    yesterday = summarize(v for (_, d), v in items.items() if d == before)
    month = summarize(v for (_, d), v in items.items() if d in month_days)
    days_in_month = calendar.monthrange(int(day[:4]), int(day[5:7]))[1]
    change = None if not yesterday["cost_usd"] else round(total["cost_usd"] / yesterday["cost_usd"] - 1, 4)
    return {
        "date": day,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "totals": {k: v for k, v in total.items() if k != "by_model"},
        "by_model": total["by_model"],
        "previous_day": {"date": before, "cost_usd": yesterday["cost_usd"], "requests": yesterday["requests"],
                         "cost_change": change},
        "month": {"month": day[:7], "cost_usd": month["cost_usd"], "requests": month["requests"],
                  "projected_cost_usd": round(month["cost_usd"] / len(month_days) * days_in_month, 8)},
        "users": per_user,
        "rows": rows,
        "near_budget": near_budget(records, items, day, month_days),
    }


def near_budget(records: Sequence[KeyRecord], items: Mapping[tuple[str, str], Item], day: str,
                month_days: Sequence[str]) -> list[dict[str, Any]]:
    """Users whose spend reached 80 % of one of their keys' budgets (day, or month so far)."""
    found = []
    for record in records:
        if record.revoked:
            continue
        spent_day = summarize([items[(record.user, day)]] if (record.user, day) in items else [])["cost_usd"]
        spent_month = summarize(items[(record.user, d)] for d in month_days if (record.user, d) in items)["cost_usd"]
        for period, budget, spent in (("day", record.policy.daily_budget_usd, spent_day),
                                      ("month", record.policy.monthly_budget_usd, spent_month)):
            if budget and spent >= NEAR_BUDGET * budget:
                found.append({"user": record.user, "key_id": record.id, "period": period, "budget_usd": budget,
                              "spent_usd": spent, "share": round(spent / budget, 4)})
    return found


def to_csv(report: Mapping[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in report["rows"]:  # costs as the header tells them, not float repr's `8.75e-05`
        writer.writerow({**row, "cost_usd": usd_text(row["cost_usd"])})
    return out.getvalue()


def summary_text(report: Mapping[str, Any]) -> str:
    totals, previous, month = report["totals"], report["previous_day"], report["month"]
    change = "" if previous["cost_change"] is None else f" ({previous['cost_change']:+.0%} on the day before)"
    share = "-" if totals["free_share"] is None else f"{totals['free_share']:.0%}"
    lines = [
        f"llm-gateway cost report for {report['date']} (UTC)",
        f"Cost: ${totals['cost_usd']:.4f}{change}; {totals['requests']} requests, {share} on free tiers.",
        f"Month to date: ${month['cost_usd']:.4f}; projected ${month['projected_cost_usd']:.2f} for {month['month']}.",
    ]
    top = sorted(report["users"].items(), key=lambda kv: kv[1]["cost_usd"], reverse=True)[:5]
    if top:
        lines.append("Top users: " + ", ".join(f"{u} ${v['cost_usd']:.4f}" for u, v in top))
    for near in report["near_budget"]:
        lines.append(f"Near budget: {near['user']} spent ${near['spent_usd']:.4f} of ${near['budget_usd']:g} "
                     f"({near['share']:.0%}) this {near['period']}.")
    return "\n".join(lines)


def run_report(ledger: UsageLedger, records: Sequence[KeyRecord], day: str, now: float, *, s3: Any = None,
               bucket: str | None = None, sns: Any = None, topic_arn: str | None = None) -> dict[str, Any]:
    """Build the report of `day`; write it to the bucket and publish its summary when given them."""
    report = build_report(ledger, records, day, now)
    keys = {}
    if s3 is not None and bucket:
        prefix = f"reports/{day[:4]}/{day[5:7]}/{day}"
        for suffix, body, content_type in ((".json", json.dumps(report, indent=2), "application/json"),
                                           (".csv", to_csv(report), "text/csv")):
            s3.put_object(Bucket=bucket, Key=prefix + suffix, Body=body.encode(), ContentType=content_type)
            keys[suffix[1:]] = prefix + suffix
    if sns is not None and topic_arn:
        sns.publish(TopicArn=topic_arn, Subject=f"llm-gateway cost report {day}"[:100], Message=summary_text(report))
    return {"date": day, "objects": keys, "summary": summary_text(report)}
