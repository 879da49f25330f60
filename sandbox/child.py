"""Child processes of `llm-gateway serve`: each started with a lifeline and announced over a pipe.

The fake providers, the embedded DynamoDB and the handler containers run in their own Python
processes so that they stop competing for one GIL (in one process the local server carried about
as many requests per second as one core could interpret for all of them at once). Three
conventions make separate processes safe to leave running on a developer's machine:

- **Lifeline.** A child's stdin is a pipe from the parent. When it closes, because the parent
  stopped or died however it died, the child stops: no orphaned moto server after a crash.
- **Own session.** A terminal's Ctrl-C reaches the parent only. The parent drains the requests
  in flight and only then stops the children, which would otherwise die under those requests.
- **Announcement.** A child says what it serves (its URLs) as one JSON line on a pipe of its
  own (`--announce-fd`), so its stdout and stderr stay free for the logs a developer reads.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any


class ChildFailed(RuntimeError):
    """A child process exited or went silent before announcing itself."""


class ChildProcess:
    """The parent's handle on one child: what it announced, and how to stop it."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], announced: dict[str, Any]) -> None:
        self.name = name
        self.process = process
        self.announced = announced

    @classmethod
    def start(cls, name: str, module: str, args: list[str], *, env: Mapping[str, str] | None = None,
              timeout_s: float = 60.0) -> ChildProcess:
        """Run `python -m module args` and wait until it announces itself (or fails to)."""
        read_fd, write_fd = os.pipe()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", module, "--announce-fd", str(write_fd), *args],
                stdin=subprocess.PIPE, pass_fds=(write_fd,), start_new_session=True,
                env=dict(env) if env is not None else None,
            )
        finally:
            os.close(write_fd)
        try:
            line = _read_line(read_fd, timeout_s)
        finally:
            os.close(read_fd)
        if not line:
            code = process.poll()
            if code is None:
                _terminate(process)
                raise ChildFailed(f"{name} did not start within {timeout_s:.0f} s")
            raise ChildFailed(f"{name} exited with code {code} before it was ready (see its message above)")
        return cls(name, process, json.loads(line))

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        """Cut the lifeline and wait; terminate, then kill, only if the child does not go."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            _terminate(self.process)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _read_line(fd: int, timeout_s: float) -> bytes:
    """One line from `fd`, or b"" if it closes first or nothing complete arrives in time."""
    data = b""
    deadline = time.monotonic() + timeout_s
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return b""
        chunk = os.read(fd, 65536)
        if not chunk:
            return b""
        data += chunk
    return data


# --- the child's side --------------------------------------------------------------------------

def child_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--announce-fd", type=int, required=True, help=argparse.SUPPRESS)
    return parser


def announce(fd: int, payload: Mapping[str, Any]) -> None:
    """Tell the parent what this child serves, then close the pipe."""
    with os.fdopen(fd, "w", encoding="utf-8") as pipe:
        pipe.write(json.dumps(payload) + "\n")


def hold_until_parent_stops() -> None:
    """Block until the lifeline (stdin) closes or SIGTERM arrives; Ctrl-C is the parent's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: _raise_exit())
    try:
        while sys.stdin.buffer.read(65536):
            pass
    except SystemExit:
        pass


def _raise_exit() -> None:
    raise SystemExit(0)
