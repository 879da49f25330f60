"""Run every benchmark module and print its figures (`make bench`)."""

from __future__ import annotations

import importlib
import sys

MODULES = (
    "benchmarks.bench_selection", "benchmarks.bench_overhead", "benchmarks.bench_dynamodb", "benchmarks.bench_cold_start",
    "benchmarks.bench_simulate",
)


def main(argv: list[str]) -> int:
    wanted = [m for m in MODULES if not argv or any(a in m for a in argv)]
    for name in wanted:
        importlib.import_module(name).main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
