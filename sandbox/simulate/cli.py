"""`llm-gateway simulate --workload reference --seed 1 [--json] [--out DIR] [--sweep requests_per_day=A:B]`."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from sandbox.out_folder import writable_folder
from sandbox.simulate.workload import available, load_workload


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-gateway simulate",
        description="Run a day of a workload through the real gateway (selector, limits, breakers, failover) "
                    "over simulated providers on a virtual clock, and report the seed's success metrics.")
    parser.add_argument("--workload", default="reference",
                        help=f"a file or one of: {', '.join(available())} (default: reference)")
    parser.add_argument("--seed", type=int, default=1, help="same seed, same numbers (except CPU times)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", type=Path, help="write report.md, summary.json and PNG plots into this folder")
    parser.add_argument("--requests-per-day", type=int, help="override the workload's daily volume")
    parser.add_argument("--hours", type=float, help="simulate only the first N hours of the day")
    parser.add_argument("--sweep", help="requests_per_day=LOW:HIGH[:STEPS] or requests_per_day=A,B,C")
    return parser


def _fail(message: object) -> int:
    print(f"llm-gateway simulate: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        workload = load_workload(args.workload)
        if args.requests_per_day is not None:
            workload = workload.with_volume(args.requests_per_day)
        if args.hours is not None:
            workload = workload.with_hours(args.hours)
    except (ValueError, OSError) as exc:
        return _fail(exc)
    if args.out:  # before the run, which may take minutes: a folder that cannot be written is said at once
        problem = writable_folder(args.out)
        if problem:
            return _fail(f"--out {str(args.out)!r}: {problem}")
    command = "llm-gateway simulate " + shlex.join(argv if argv is not None else sys.argv[2:])
    if args.sweep is not None:  # `--sweep ''` is a bad sweep, not no sweep
        from sandbox.simulate.sweep import parse_sweep, run_sweep, sweep_table

        try:
            _, values = parse_sweep(args.sweep)
            result = run_sweep(workload, values, args.seed, args.hours)
        except ValueError as exc:  # a workload the engine refuses (a baseline model not in the catalog)
            return _fail(exc)
        if args.out:
            (args.out / "sweep.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
            (args.out / "sweep.md").write_text(f"# Sweep of `{workload.name}`\n\nMade by `{command}`.\n\n"
                                               + sweep_table(result) + "\n", encoding="utf-8")
        print(json.dumps(result) if args.json else sweep_table(result))
        return 0
    from sandbox.simulate.engine import simulate
    from sandbox.simulate.report import TARGETS, summarize, write_report

    try:
        simulated = simulate(workload, args.seed)
    except ValueError as exc:  # a workload the engine refuses (a baseline model not in the catalog)
        return _fail(exc)
    summary = summarize(simulated)
    if args.out:
        write_report(simulated, summary, args.out, command)
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"{summary['requests']:,} requests ({workload.name}, seed {args.seed}) in {summary['sim_wall_s']} s")
    for key, _target, _op, label in TARGETS:
        verdict = summary["targets"][key]
        print(f"  {'PASS' if verdict['pass'] else 'FAIL'}  {key:<28} {verdict['value']!s:<12} {verdict['target']:<10} {label}")
    print(f"  user_error_rate {summary['user_error_rate']}, failover_rate {summary['failover_rate']}, "
          f"shares {summary['provider_shares']}")
    if simulated.bugs:
        print(f"  {len(simulated.bugs)} unexpected exceptions in the gateway; the first:\n{simulated.bugs[0]}")
    if args.out:
        print(f"report: {args.out / 'report.md'}")
    return 0
