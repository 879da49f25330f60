"""Containers that share a process (the sandbox's container hosts) do not see each other's events.

Powertools keeps the event being resolved in a class attribute, `BaseRouter.current_event`: one per
process. On Lambda a process serves one request at a time, so that is harmless; in `llm-gateway
serve`, where a host process runs its containers as threads, a container could read another's
event mid-request. Found by the load tests: a transcription answered 404 "Unknown route: POST
/v1/chat/completions", a fixture transcription answered 400, a stream answered 200 with no event
(about 1 request in 5,000 under sustained load). `sandbox.containers` makes it per thread.
"""

from __future__ import annotations

import threading

from aws_lambda_powertools.event_handler.api_gateway import APIGatewayRestResolver, BaseRouter

from sandbox.apigw import make_event
from sandbox.containers import isolate_events_per_thread


def _resolver(barrier: threading.Barrier) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver()

    @app.get("/<name>")
    def echo(name: str) -> dict:
        barrier.wait(5)  # both containers have set their event before either reads it
        return {"asked": name, "event_path": app.current_event.path}

    return app


def test_two_containers_resolving_at_once_each_see_their_own_event():
    isolate_events_per_thread()
    barrier = threading.Barrier(2)
    apps = [_resolver(barrier), _resolver(barrier)]
    seen: dict[str, str] = {}

    def serve(i: int) -> None:
        result = apps[i].resolve(make_event("GET", f"/c{i}", {}, b""), None)
        seen[f"c{i}"] = result["body"]

    threads = [threading.Thread(target=serve, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert '"asked":"c0"' in seen["c0"] and seen["c0"].endswith('"event_path":"/c0"}'), seen
    assert '"asked":"c1"' in seen["c1"] and seen["c1"].endswith('"event_path":"/c1"}'), seen


def test_isolation_keeps_powertools_working_on_one_thread():
    isolate_events_per_thread()
    isolate_events_per_thread()  # idempotent
    app = APIGatewayRestResolver()

    @app.get("/x")
    def x() -> dict:
        return {"path": app.current_event.path, "same": BaseRouter.current_event is app.current_event}

    body = app.resolve(make_event("GET", "/x", {}, b""), None)["body"]
    assert '"path":"/x"' in body and '"same":true' in body
