"""The local stand-ins for what AWS and the providers give, each in a process of its own.

    python -m sandbox.stand_ins --announce-fd FD fakes [--config FILE]   -> {"providers": {...}}
    python -m sandbox.stand_ins --announce-fd FD dynamodb                -> {"endpoint_url", "table_name"}
    python -m sandbox.stand_ins --announce-fd FD s3                      -> {"endpoint_url", "bucket"}

Started by `llm-gateway serve` through `sandbox.child.ChildProcess`. The fakes were written for
test traffic and listen with Python's default backlog of 5; a local gateway with dozens of
containers opens that many connections to them at once, so in this process, which serves
nothing else, their backlog is raised before they start.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from sandbox.child import announce, child_parser, hold_until_parent_stops

BACKLOG = 1024


def _fakes(config: str | None) -> tuple[dict[str, Any], Callable[[], None]]:
    from sandbox.fakes import engine, start_fakes

    engine._Server.request_queue_size = BACKLOG  # this process only serves the fakes
    fleet = start_fakes(config)
    return {"providers": fleet.describe()}, fleet.stop


def _dynamodb() -> tuple[dict[str, Any], Callable[[], None]]:
    from sandbox.local_dynamodb import start_local_dynamodb
    from sandbox.ttl_sweeper import TtlSweeper

    dynamo = start_local_dynamodb()
    sweeper = TtlSweeper(dynamo.client(), dynamo.table_name).start()

    def stop() -> None:
        sweeper.stop()
        dynamo.stop()

    return {"endpoint_url": dynamo.endpoint_url, "table_name": dynamo.table_name}, stop


def _s3() -> tuple[dict[str, Any], Callable[[], None]]:
    from sandbox.local_s3 import start_local_s3

    s3 = start_local_s3()
    return {"endpoint_url": s3.endpoint_url, "bucket": s3.bucket}, s3.stop


def main(argv: list[str]) -> int:
    parser = child_parser("python -m sandbox.stand_ins", "run one local stand-in until the parent stops")
    parser.add_argument("which", choices=["fakes", "dynamodb", "s3"])
    parser.add_argument("--config", help="fake providers' YAML config (default: the embedded one)")
    args = parser.parse_args(argv)
    starters = {"fakes": lambda: _fakes(args.config), "dynamodb": _dynamodb, "s3": _s3}
    described, stop = starters[args.which]()
    try:
        announce(args.announce_fd, described)
        hold_until_parent_stops()
    finally:
        stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
