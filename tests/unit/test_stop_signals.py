"""Ctrl-C or SIGTERM stops `llm-gateway fakes` and `llm-gateway serve` whenever it arrives.

Both waited on a `threading.Event` and set it from the signal handler. A handler runs in the main
thread between two bytecodes, so a signal arriving while `Event.wait` held the event's own lock
(entering or leaving its condition wait) made `Event.set` wait for that lock forever: the command
hung, and every further Ctrl-C or SIGTERM hung the same way (seen once in six SIGTERMs to
`llm-gateway fakes`, under load). Here the signal is sent at exactly that moment: from a profile
hook on the main thread's first `Condition.wait`, while the lock is held; a timer sends one later
in case the command no longer waits on a condition at all."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PRELUDE = textwrap.dedent("""
    import os, signal, sys, threading

    def hook(frame, event, arg):
        caller = frame.f_back.f_back if frame.f_back else None  # Event.wait's caller
        if event == "call" and frame.f_code.co_qualname == "Condition.wait" and caller \
                and "sandbox" in caller.f_code.co_filename:
            sys.setprofile(None)
            signal.raise_signal(signal.SIGTERM)  # the Event's lock is held here

    timer = threading.Timer(3.0, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.daemon = True
    timer.start()
    sys.setprofile(hook)
""")

FAKES = PRELUDE + textwrap.dedent("""
    import sandbox.fakes.cli as cli

    class Fleet:
        def describe(self):
            return {}
        def stop(self):
            pass

    cli.start_fakes = lambda *args: Fleet()
    code = cli.main([])
    timer.cancel()
    sys.exit(code)
""")

SERVE = PRELUDE + textwrap.dedent("""
    import sandbox.serve_cli as serve

    class Server:
        def serve_forever(self):
            threading.Event().wait()
        def drain(self, seconds):
            return True
        class in_flight:
            current = 0

    code = serve._serve(Server(), [], 1.0)
    timer.cancel()
    sys.exit(code)
""")


@pytest.mark.parametrize("program", [FAKES, SERVE], ids=["fakes", "serve"])
def test_a_stop_signal_while_the_wait_holds_its_lock_stops_the_command(program: str) -> None:
    try:
        done = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, timeout=20,
                              check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("the command hung on a stop signal")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]


# `serve`'s second signal. It raised KeyboardInterrupt from the signal handler wherever the main
# thread was: caught while draining, but not if it came before the drain's `try` (two signals in
# quick succession, while the serving loop waited) nor after `_serve` returned, while `main`
# stopped the hosts and the local environment: a traceback each time, and the cleanup cut short.
SERVE_TWICE = textwrap.dedent("""
    import os, signal, sys, threading, time
    import sandbox.serve_cli as serve

    DRAIN_S = float(sys.argv[1])
    WHEN = sys.argv[2]

    class Server:
        def serve_forever(self):
            threading.Event().wait()
        def drain(self, seconds):
            time.sleep(min(seconds, DRAIN_S))  # requests in flight, finishing
            return DRAIN_S <= seconds
        class in_flight:
            current = 1

    def twice():  # two signal numbers: two of one number pending at once are handled once
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGTERM)

    if WHEN == "at-once":  # both while the serving loop waits: before the drain's `try`
        threading.Timer(0.3, twice).start()
    elif WHEN == "while-draining":  # the second stops a long drain at once
        threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
        threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
    else:  # one to stop, then more during the cleanup that follows (main's `finally`)
        threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
    started = time.monotonic()
    code = serve._serve(Server(), [], 30.0)
    if WHEN == "during-cleanup":
        twice()
        time.sleep(0.3)  # stopping hosts and the local environment
        print("cleanup finished", file=sys.stderr)
    print(f"took {time.monotonic() - started:.1f}", file=sys.stderr)
    sys.exit(code)
""")


@pytest.mark.parametrize(("when", "drain_s", "says"), [
    ("at-once", 0.0, "stopped"),
    ("while-draining", 60.0, "stopped (requests still in flight were cut)"),
    ("during-cleanup", 0.0, "cleanup finished"),
])
def test_a_second_stop_signal_never_prints_a_traceback(when: str, drain_s: float, says: str) -> None:
    done = subprocess.run([sys.executable, "-c", SERVE_TWICE, str(drain_s), when], cwd=REPO, capture_output=True,
                          text=True, timeout=30, check=False)
    assert "Traceback" not in done.stderr and done.returncode == 0, done.stderr[-2000:]
    assert says in done.stderr, done.stderr[-2000:]
    assert float(done.stderr.rsplit("took ", 1)[1]) < 10, done.stderr  # the second one stops at once
