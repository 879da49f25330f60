"""`llm-gateway fakes`: start the fake providers, print their URLs, serve until SIGINT/SIGTERM.

    llm-gateway fakes --json [--config FILE] [--providers openai,groq]

With `--json` exactly one line of JSON (`FakeFleet.describe()`) is printed and flushed, so a parent
process can read it from the pipe; without it a human-readable table is printed instead.
"""

from __future__ import annotations

import argparse
import json
import sys

from sandbox.fakes import FAKES, start_fakes
from sandbox.fakes.config import FakesConfigError
from sandbox.stop_signals import StopSignals


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-gateway fakes", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line describing the fakes")
    parser.add_argument("--config", metavar="FILE", help="YAML config replacing the embedded default")
    parser.add_argument("--providers", metavar="A,B",
                        help=f"comma-separated subset of providers to start ({', '.join(FAKES)})")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    providers = [p.strip() for p in args.providers.split(",") if p.strip()] if args.providers else None
    try:
        fleet = start_fakes(args.config, providers)
    except FakesConfigError as exc:
        where = f"--config {args.config}: " if args.config else ""
        print(f"llm-gateway fakes: {where}{exc}", file=sys.stderr)
        return 2
    stop = StopSignals().install()
    try:
        if args.json:
            print(json.dumps(fleet.describe()), flush=True)
        else:
            for name, info in fleet.describe().items():
                print(f"{name:<8} {info['base_url']:<32} {', '.join(info['models'])}", flush=True)
            print("fake providers running; Ctrl-C to stop", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        fleet.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
