"""`llm-gateway serve --containers N` tells its containers how many of them there are.

While the shared table does not answer, each container admits 1 / `LLM_GATEWAY_MAX_CONTAINERS` of
every limit (`state/resilient.py`), so that all of them together stay within it. The template
sets that to the chat function's reserved concurrency; `serve` must set it to its own container
count, or 260 local containers each admit half of every limit (the default of 2), and under a
burst that slows the embedded DynamoDB the providers answer 429 (found by the load test: 175
rejected calls and 23 user-visible 429s in one 240-request burst).
"""

from __future__ import annotations

from llm_gateway.config import load_settings
from sandbox.serve_cli import host_env


def test_the_containers_are_told_how_many_share_each_limit():
    env = host_env({"PATH": "/usr/bin"}, containers=260)
    assert env["LLM_GATEWAY_MAX_CONTAINERS"] == "260"
    assert env["PATH"] == "/usr/bin"
    assert load_settings(env).max_containers == 260


def test_an_operators_own_setting_is_kept():
    env = host_env({"LLM_GATEWAY_MAX_CONTAINERS": "500"}, containers=32)
    assert env["LLM_GATEWAY_MAX_CONTAINERS"] == "500"


def test_serve_refuses_counts_that_would_take_the_machines_memory_before_starting() -> None:
    """`--containers 32000` (a typo) started a gateway per container, about 10 MB each, and
    `--workers 500` a process each, about 90 MB: refused before anything starts, as a count below
    1 and a port that does not exist are."""
    from sandbox.serve_cli import MAX_CONTAINERS, MAX_WORKERS, argument_problem

    assert argument_problem(32, None, 3000) is None
    assert argument_problem(260, 2, 0) is None  # the load test's
    assert argument_problem(MAX_CONTAINERS, MAX_WORKERS, 3000) is None
    assert "--containers" in (argument_problem(32000, None, 3000) or "")
    assert "--workers" in (argument_problem(32, 500, 3000) or "")
    assert "at least 1" in (argument_problem(0, None, 3000) or "")
    assert "--port" in (argument_problem(32, None, 70000) or "")
