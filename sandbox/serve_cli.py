"""`llm-gateway serve` (what `make dev` runs): the gateway on 127.0.0.1, as API Gateway + Lambda.

    llm-gateway serve [--port 3000] [--containers 32] [--workers N] [--state dynamodb|memory]
                      [--fakes-config FILE]

Processes: this one is the HTTP front (API Gateway's part); the fake providers (when no keys are
set) and the embedded DynamoDB each run in their own; the handler containers run in `--workers`
container hosts. Before anything starts, the configuration is validated and the port is bound,
so either mistake ends the command at once with one line. Ctrl-C (or SIGTERM) stops accepting,
lets the requests in flight finish, then stops everything; a second Ctrl-C stops at once.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from llm_gateway.config import ConfigError, load_settings
from sandbox.child import ChildFailed, ChildProcess
from sandbox.dispatch import ProcessDispatcher
from sandbox.fakes.config import FakesConfigError, load_raw, provider_configs
from sandbox.local_env import LocalEnvironment, configured_env, plan_local_env, prepare_local_env
from sandbox.local_server import LocalGatewayServer
from sandbox.request_log import print_line
from sandbox.served import describe_served, served_models
from sandbox.stop_signals import StopSignals

PROG = "llm-gateway serve"
DEFAULT_CONTAINERS = 32
DRAIN_GRACE_S = 5.0  # beyond the gateway's own deadline


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--containers", type=int, default=DEFAULT_CONTAINERS,
                        help=f"handler copies serving at once, one request each, like Lambda containers (default {DEFAULT_CONTAINERS})")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes the containers are spread over (default: one per CPU)")
    parser.add_argument("--state", choices=["dynamodb", "memory"], default="dynamodb")
    parser.add_argument("--fakes-config", metavar="FILE", help="YAML config for the fake providers (latency, limits, faults)")
    return parser


def _say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def _bind(port: int, dispatcher: ProcessDispatcher) -> LocalGatewayServer | None:
    try:
        return LocalGatewayServer(port, dispatcher, log=print_line)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            _say(f"port {port} is already in use; stop what holds it or pick another port: "
                 f"PORT={port + 1} make dev (or {PROG} --port {port + 1})")
        elif exc.errno == errno.EACCES:
            _say(f"port {port} needs privileges; pick a port above 1023: PORT=3000 make dev (or {PROG} --port 3000)")
        else:
            _say(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}; pick another port with PORT=")
        return None


def host_env(environ: Mapping[str, str], containers: int) -> dict[str, str]:
    """The container hosts' environment: this one, plus how many containers share each limit.

    While the state table does not answer, each container admits 1 / LLM_GATEWAY_MAX_CONTAINERS of
    every limit (`llm_gateway.state.resilient`); the template sets it to the chat function's
    reserved concurrency, and here it is the number of containers serving (an operator's own
    setting is kept)."""
    env = dict(environ)
    env.setdefault("LLM_GATEWAY_MAX_CONTAINERS", str(containers))
    return env


def _start_hosts(workers: int, containers: int) -> list[ChildProcess]:
    """Container hosts, started side by side; `containers` spread over them as evenly as they go."""
    shares = [containers // workers + (1 if i < containers % workers else 0) for i in range(workers)]
    env = host_env(os.environ, containers)

    def start(i: int) -> ChildProcess:
        return ChildProcess.start(f"container host w{i + 1}", "sandbox.container_host",
                                  ["--containers", str(shares[i]), "--name", f"w{i + 1}"], env=env)

    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(start, i) for i in range(workers)]
        hosts, failure = [], None
        for future in futures:
            try:
                hosts.append(future.result())
            except ChildFailed as exc:
                failure = exc
    if failure is not None:
        for host in hosts:
            host.stop()
        raise failure
    return hosts


# Each container holds a built gateway (about 10 MB) and each worker is a process (about 90 MB):
# a mistyped count (32000) would take the machine's memory before serving anything.
MAX_CONTAINERS = 1000
MAX_WORKERS = 64


def argument_problem(containers: int, workers: int | None, port: int) -> str | None:
    """What is wrong with these counts and port, before anything starts (None: nothing)."""
    if containers < 1 or (workers is not None and workers < 1):
        return "--containers and --workers must be at least 1"
    if containers > MAX_CONTAINERS or (workers is not None and workers > MAX_WORKERS):
        return (f"--containers may be at most {MAX_CONTAINERS} and --workers at most {MAX_WORKERS} "
                f"(got {containers} and {workers})")
    if not 0 <= port <= 65535:  # bind() raises OverflowError for it, a traceback
        return f"--port must be from 0 to 65535 (0: any free port), got {port}"
    return None


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    problem = argument_problem(args.containers, args.workers, args.port)
    if problem:
        _say(problem)
        return 2
    workers = min(args.containers, args.workers or os.cpu_count() or 1)
    plan = plan_local_env(os.environ, args.state)
    if args.fakes_config and plan.fakes:  # the whole file, before anything starts
        try:
            provider_configs(load_raw(args.fakes_config))
        except FakesConfigError as exc:
            _say(f"--fakes-config {args.fakes_config}: {exc}")
            return 2
    try:
        load_settings(configured_env(os.environ, plan, args.fakes_config))
    except ConfigError as exc:
        _say(f"invalid configuration: {exc}")
        return 2
    dispatcher = ProcessDispatcher()
    server = _bind(args.port, dispatcher)
    if server is None:
        return 1
    local = LocalEnvironment()
    hosts: list[ChildProcess] = []
    try:
        try:
            local = prepare_local_env(os.environ, state=args.state, processes=True, fakes_config=args.fakes_config)
            hosts = _start_hosts(workers, args.containers)
        except ChildFailed as exc:
            _say(str(exc))
            return 1
        dispatcher.add_hosts([(h.announced["url"], int(h.announced["containers"])) for h in hosts])
        server.extras = dict(local.described)
        _banner(local, server, args.containers, len(hosts))
        return _serve(server, hosts, load_settings().deadline_s + DRAIN_GRACE_S)
    finally:
        for host in hosts:
            host.stop()
        local.stop()
        server.server_close()


def _banner(local: LocalEnvironment, server: LocalGatewayServer, containers: int, hosts: int) -> None:
    for note in local.notes[:-1]:
        print(note, flush=True)
    print(f"Providers: {describe_served(served_models(load_settings()))}", flush=True)
    print(f"Containers: {containers} in {hosts} worker process{'' if hosts == 1 else 'es'}", flush=True)
    print(local.notes[-1], flush=True)  # the API key
    print(f"LLM gateway listening on {server.url}/v1 (Ctrl-C to stop)", flush=True)


def _serve(server: LocalGatewayServer, hosts: list[ChildProcess], drain_s: float) -> int:
    """Serve until a stop signal, then drain; a second signal stops at once. The signal handler
    only counts (it raised KeyboardInterrupt for the second one, which printed a traceback when it
    came before the drain's `try` or during `main`'s cleanup after this returns): the drain runs
    in a thread of its own, and this one polls the count."""
    stop = StopSignals().install()
    thread = threading.Thread(target=server.serve_forever, name="local-gateway", daemon=True)
    thread.start()
    while not stop.wait(0.5):
        dead = [h for h in hosts if not h.alive()]
        if dead:
            _say(f"{dead[0].name} exited with code {dead[0].process.returncode}; stopping")
            server.drain(0)
            return 1
    open_now = server.in_flight.current
    if open_now:
        print(f"stopping: letting {open_now} request{'' if open_now == 1 else 's'} in flight finish "
              "(Ctrl-C again to stop at once)", file=sys.stderr, flush=True)
    drained: list[bool] = []
    drainer = threading.Thread(target=lambda: drained.append(server.drain(drain_s)), name="drain", daemon=True)
    drainer.start()
    while drainer.is_alive() and stop.count < 2:
        drainer.join(0.1)
    ok = bool(drained and drained[0])
    print("stopped" if ok else "stopped (requests still in flight were cut)", file=sys.stderr, flush=True)
    return 0
