"""How long `llm-gateway simulate` takes for a day of 100,000 requests (the reference workload at
that volume), and where the time goes: wall and CPU time of the whole run, and the share of CPU
the gateway's own selection took (measured per request by the simulator). A printed figure, not
a timed assertion: the target is under a minute on this project's 2-core machine.

`.venv/bin/python -m benchmarks.bench_simulate [requests_per_day]`

Recorded on the project's shared 2-core machine, seed 1, the two versions run side by side (same
load; the load average in brackets), 100,000 requests:
- before the work on issue 14's targets (main at 705baa6): 275.7 s wall, 194.4 s CPU (1.94 ms a
  request), selection 103.1 s CPU (53 %) [2.1]; 31 provider windows passed;
- after (branch sim2): 256.8 s wall, 176.0 s CPU (1.76 ms a request: 0.91x), selection 90.4 s CPU
  (51 %: 0.88x) [2.5]; no provider window passed. The gateway now also does more per request
  (per-tenth window counters, a third window item in a window's first moments, the used-up
  memory); `benchmarks.bench_selection` (50-model catalog, no state) shows the selection
  code's own cut: prepare + plan p50 421 -> 299 us (0.71x). Of what is left, about half is the
  gateway's selection and most of the rest the provider call path the simulator runs on purpose
  (the engine, httpx over a MockTransport, the adapters, pydantic) and the simulated providers.
"""

from __future__ import annotations

import os
import sys

from sandbox.simulate.engine import simulate
from sandbox.simulate.report import summarize
from sandbox.simulate.workload import load_workload

TARGET_S = 60.0


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    volume = int(args[0]) if args else 100_000
    workload = load_workload("reference").with_volume(volume)
    result = simulate(workload, 1)
    summary = summarize(result)
    requests = summary["requests"]
    selection_s = sum(o.selection_ms for o in result.outcomes) / 1000
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nsimulate: one day of the reference workload at {volume:,} requests/day (load average {load:.1f})")
    print(f"  {requests:,} requests in {result.wall_s:.1f} s wall, {result.cpu_s:.1f} s CPU "
          f"({result.cpu_s / requests * 1000:.2f} ms CPU per request; target: the day in < {TARGET_S:.0f} s: "
          f"{'met' if result.wall_s < TARGET_S else 'NOT met'})")
    print(f"  of which the gateway's selection (prepare, token count, state load, ranking): {selection_s:.1f} s CPU "
          f"({selection_s / result.cpu_s:.0%}); {result.containers} containers")
    print(f"  free_tier_share {summary['free_tier_share']}, user_error_rate {summary['user_error_rate']}, "
          f"violations {summary['provider_limit_violations']}")


if __name__ == "__main__":
    main()
