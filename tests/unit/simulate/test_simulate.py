"""`llm-gateway simulate`: deterministic, honest about failovers and limits, and its outputs exist.

Small simulations (an hour or less of traffic) of workloads built here, so each test runs in
seconds; the reference workload itself is exercised at CI size in `test_reference.py`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sandbox.simulate import cli
from sandbox.simulate.engine import PROVIDERS, simulate
from sandbox.simulate.report import TARGETS, summarize, write_report
from sandbox.simulate.sweep import parse_sweep
from sandbox.simulate.workload import generate, load_workload, parse_workload

MEASURED = {"selection_p50_ms", "selection_p95_ms", "sim_wall_s", "sim_cpu_s", "targets"}


def workload(**overrides: Any) -> Any:
    """Short answers, short audio and no jitter, so no call comes near the gateway's 2 s attempt-timeout
    floor: failures here come from the scenario alone."""
    raw: dict[str, Any] = {
        "name": "test", "requests_per_day": 6000, "hours": 0.5,
        "mix": {"chat": 0.85, "stream": 0.1, "transcription": 0.05},
        "chat": {"prompt_tokens": {"median": 200, "p90": 800, "max": 3000},
                 "output_tokens": {"median": 40, "p90": 80, "max": 100},
                 "kinds": {"reasoning": 0.1, "tools": 0.1, "json": 0.1, "vision": 0.05}, "follow_up_share": 0.2},
        "transcription": {"audio_seconds": {"median": 15, "p90": 30, "max": 40}},
        "providers": {"default": {"error_rate": 0.0, "jitter": 0.0}},
        "scenario": [],
    }
    raw.update(overrides)
    return parse_workload(raw)


def test_the_same_seed_gives_the_same_numbers_and_another_seed_others() -> None:
    first, again, other = (summarize(simulate(workload(), seed)) for seed in (7, 7, 8))
    strip = lambda s: {k: v for k, v in s.items() if k not in MEASURED}  # noqa: E731
    assert strip(first) == strip(again)
    assert strip(first) != strip(other)
    assert first["requests"] == again["requests"] > 100


def test_the_request_stream_follows_the_workload() -> None:
    w = workload(requests_per_day=24_000, hours=24)
    requests = list(generate(w, 3))
    assert len(requests) == w.total_requests == 24_000
    assert [r.at for r in requests] == sorted(r.at for r in requests)
    share = sum(r.capability == "transcription" for r in requests) / len(requests)
    assert 0.04 < share < 0.06


def test_a_provider_down_for_the_whole_run_costs_failovers_but_no_user_errors() -> None:
    calm = summarize(simulate(workload(), 1))
    down = simulate(workload(scenario=[{"type": "outage", "provider": "groq", "at_h": 0, "hours": 1}]), 1)
    summary = summarize(down)
    assert calm["provider_shares"]["groq"] > 0.1 and calm["failover_rate"] == 0
    assert summary["provider_calls"].get("groq outage", 0) > 0
    assert summary["failover_rate"] > 0 and summary["provider_shares"]["groq"] == 0
    assert summary["user_error_rate"] == 0 and summary["availability"] == 1.0
    assert summary["provider_limit_violations"] == 0
    assert down.metrics.total("Failovers") > 0


def test_a_revoked_key_and_a_429_storm_are_absorbed_while_free_capacity_exists() -> None:
    summary = summarize(simulate(workload(scenario=[
        {"type": "key_revoked", "provider": "gemini", "at_h": 0.1},
        {"type": "rate_limit_storm", "provider": "mistral", "at_h": 0, "hours": 1, "share": 0.9},
    ]), 2))
    assert summary["provider_calls"].get("gemini revoked", 0) > 0
    assert summary["provider_calls"].get("mistral storm_429", 0) > 0
    assert summary["user_error_rate"] == 0
    assert summary["provider_limit_violations"] == 0


def test_no_simulated_provider_window_is_ever_exceeded_on_a_calm_busy_hour() -> None:
    result = simulate(workload(requests_per_day=40_000, hours=1), 3)
    summary = summarize(result)
    assert summary["requests"] > 1500
    assert summary["provider_limit_violations"] == 0, result.providers.violations[:5]
    request_windows = [p for p in result.providers.peaks() if p["limit"].startswith("rp")]
    assert request_windows and all(p["peak"] <= p["max"] for p in request_windows)
    assert any(p["peak"] == p["max"] for p in request_windows)  # some free tier was really used up


def test_a_slow_failover_never_passes_a_one_request_per_second_limit() -> None:
    # Every other free tier hangs, so requests time out there and fail over to Mistral (1 request/s
    # for the whole organisation) seconds after their plan was made.
    slow = [{"type": "slow", "provider": p, "at_h": 0, "hours": 1, "factor": 40} for p in ("groq", "gemini", "cohere")]
    result = simulate(workload(requests_per_day=20_000, hours=0.5, scenario=slow), 4)
    assert result.providers.violations == []


def _long_answers(mix: dict[str, float]) -> Any:
    """A quarter hour of 4,000-token answers without max_tokens: every provider takes about 40 s
    to write one (no jitter, no background errors)."""
    slow = {p: {"first_token_s": 0.5, "per_token_s": 0.01} for p in PROVIDERS}
    return simulate(workload(requests_per_day=2_000, hours=0.25, mix=mix, chat={"output_tokens": 4000, "prompt_tokens": 50},
                             providers={"default": {"error_rate": 0.0, "jitter": 0.0}, **slow}), 1)


def test_streamed_requests_are_served_live_within_the_stream_deadline() -> None:
    """Production's chat function sends `stream: true` answers as they come (Lambda Web Adapter),
    within LLM_GATEWAY_STREAM_DEADLINE_S, not whole within the 25 s deadline: the simulator did the
    latter, and every streamed answer longer than the deadline ended 503. Here every provider
    takes about 40 s to write 4,000 tokens, and every streamed request is served."""
    result = _long_answers({"stream": 1.0})
    summary = summarize(result)
    assert summary["requests"] > 10 and summary["availability"] == 1.0, summary["errors"]
    assert min(o.latency_s for o in result.outcomes) > 25  # really longer than a buffered answer may take


def test_answers_sent_whole_are_read_as_streams_and_may_take_longer_than_api_gateway_s_29_s() -> None:
    """As production's chat routes do (`routing/whole_answer.py`): a long answer without
    max_tokens is asked of the provider as a stream, its first chunk within the attempt's timeout,
    the whole within the stream deadline (capped at 285 s). It was a timeout at the first provider
    and a 503/504 at 25 s."""
    result = _long_answers({"chat": 1.0})
    summary = summarize(result)
    assert summary["requests"] > 10 and summary["availability"] == 1.0, summary["errors"]
    assert summary["selection_success_rate"] == 1.0  # no first choice timed out
    assert min(o.latency_s for o in result.outcomes) > 29


@pytest.mark.parametrize("as_jobs", [True, False])
def test_long_audio_is_sent_as_a_job_and_served_within_the_job_deadline(as_jobs: bool) -> None:
    """Audio longer than `transcription.job_over_s` goes as a job (the job path's 840 s deadline
    and 300 s attempts), as the README tells clients: 20-minute recordings that take every provider
    about a minute are all transcribed; sent synchronously (no `job_over_s`), none is."""
    slow = {p: {"first_token_s": 0.5, "audio_factor": 0.05} for p in ("groq", "gemini", "mistral", "openai")}
    transcription = {"audio_seconds": {"median": 1200, "p90": 1200, "min": 1200, "max": 1200}}
    if as_jobs:
        transcription["job_over_s"] = 600
    result = simulate(workload(requests_per_day=400, hours=0.5, mix={"transcription": 1.0},
                               transcription=transcription,
                               providers={"default": {"error_rate": 0.0, "jitter": 0.0}, **slow}), 1)
    summary = summarize(result)
    assert summary["requests"] > 3
    kinds = {o.kind for o in result.outcomes}
    if as_jobs:
        assert kinds == {"audio_job"} and summary["availability"] == 1.0, summary["errors"]
        assert min(o.latency_s for o in result.outcomes) > 29
    else:
        assert kinds == {"audio"} and summary["availability"] == 0.0, summary["errors"]


def test_json_has_the_issue_keys(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(json.dumps({"name": "tiny", "requests_per_day": 2000, "hours": 0.25}), encoding="utf-8")
    assert cli.main(["--workload", str(path), "--seed", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("requests", "free_tier_share", "user_rate_limit_error_rate", "user_error_rate", "avg_cost_usd",
                "baseline_avg_cost_usd", "cost_reduction", "selection_p95_ms", "selection_success_rate",
                "failover_rate", "provider_shares", "provider_limit_violations", "targets"):
        assert key in summary, key
    assert set(summary["targets"]) == {key for key, *_ in TARGETS}
    assert abs(sum(summary["provider_shares"].values()) - 1) < 1e-3


def test_the_report_and_its_plots_are_written(tmp_path: Path) -> None:
    result = simulate(workload(hours=0.25, scenario=[{"type": "outage", "provider": "groq", "at_h": 0.1}]), 1)
    files = write_report(result, summarize(result), tmp_path, "llm-gateway simulate --test")
    names = {f.name for f in files}
    assert {"report.md", "summary.json", "requests_by_provider.png", "free_vs_paid.png", "remaining_capacity.png",
            "cost_per_hour.png", "failovers_and_errors.png"} <= names
    assert all(f.stat().st_size > 0 for f in files)
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| seed target |" in text and ("PASS" in text or "FAIL" in text) and "outage of groq" in text
    assert (tmp_path / "requests_by_provider.png").read_bytes()[:4] == b"\x89PNG"


def test_the_sweep_and_workload_files_are_checked() -> None:
    assert parse_sweep("requests_per_day=1000,5000") == ("requests_per_day", [1000, 5000])
    _, steps = parse_sweep("requests_per_day=1000:200000:4")
    assert steps[0] == 1000 and steps[-1] == 200000 and len(steps) == 4
    with pytest.raises(ValueError, match="requests_per_day"):
        parse_sweep("users=1:2")
    for steps in ("0", "-3", "2.5"):  # ran one step, silently (explore8)
        with pytest.raises(ValueError, match="STEPS"):
            parse_sweep(f"requests_per_day=10:20:{steps}")
    assert parse_sweep("requests_per_day=10:20:1") == ("requests_per_day", [10])
    for bad in ("requests_per_day=10:20:1e8", "requests_per_day=1000.9:2000"):  # a hang; a volume cut short
        with pytest.raises(ValueError):
            parse_sweep(bad)
    for steps in ("08", "+8", "8.0"):  # spellings of 8 (review)
        assert len(parse_sweep(f"requests_per_day=1000:200000:{steps}")[1]) == 8
    with pytest.raises(ValueError, match="unknown workload keys"):
        parse_workload({"requests_per_dya": 5})
    with pytest.raises(ValueError, match="mix"):
        parse_workload({"mix": {"chat": 0.5}})
    with pytest.raises(ValueError, match="scenario"):
        simulate(workload(scenario=[{"type": "meteor", "provider": "groq"}]), 1)
    assert load_workload("reference").name == "reference"


def test_the_numbers_do_not_depend_on_how_fast_the_simulation_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every call's time budget is read on the virtual clock: real time spent inside a call (here
    2 ms a call, as a slower machine or a busier simulator would) moves no timeout, so the same
    calls reach the same providers at the same virtual moments. (The deadline scopes were on the
    real clock: each timeout came a little earlier the longer the simulator took to get there.)"""
    import time

    from sandbox.simulate.providers import SimulatedProviders

    outage = [{"type": "outage", "provider": "groq", "at_h": 0, "hours": 1, "mode": "timeout"}]
    calls = lambda result: [(c.at, c.provider, c.model, c.outcome) for c in result.providers.calls]  # noqa: E731
    fast = simulate(workload(scenario=outage), 1)
    handle = SimulatedProviders.handle

    def slow_handle(self: SimulatedProviders, request: Any) -> Any:
        time.sleep(0.002)
        return handle(self, request)

    monkeypatch.setattr(SimulatedProviders, "handle", slow_handle)
    slow = simulate(workload(scenario=outage), 1)
    assert sum(1 for c in fast.providers.calls if c.outcome == "outage") > 5
    assert calls(slow) == calls(fast)


def test_users_key_policies_are_enforced_by_the_gateway_s_own_meters() -> None:
    """`users.policy` gives every simulated user a key policy, applied as production's tenancy
    applies it (`UserLimits` on the user's counter): three users at 2 requests a minute, the
    heaviest asking about twice that. Its refusals are the caller's own 429s, counted apart from
    the rate-limit errors the seed's target is about; no user ever gets a third request served
    within a minute, and `free_only` keeps every answer on a free tier."""
    result = simulate(workload(users={"count": 3, "skew": 1.0, "policy": {"rpm": 2, "free_only": True}},
                               mix={"chat": 1.0}), 5)
    summary = summarize(result)
    assert summary["errors"].keys() == {"429 user_rate_limited"}, summary["errors"]
    assert summary["caller_limit_rate"] > 0.1
    assert summary["user_rate_limit_error_rate"] == 0 and summary["availability"] == 1.0
    assert summary["provider_shares"]["openai"] == 0 and summary["free_tier_share"] == 1.0
    for user in range(3):
        served = sorted(o.at for o in result.outcomes if o.user == user and o.status == 200)
        assert all(later - first >= 60 for first, later in zip(served, served[2:], strict=False)), user


def test_a_day_its_users_own_policy_refuses_whole_fails_no_gateway_target() -> None:
    """Availability and selection success are of the requests the gateway had to serve: when the
    users' own key policy refuses every one (`rpm: 0`), nothing was left to fail, and the report
    said availability 0 and FAIL."""
    summary = summarize(simulate(workload(users={"count": 3, "skew": 1.0, "policy": {"rpm": 0}},
                                          mix={"chat": 1.0}), 5))
    assert summary["caller_limit_rate"] == 1.0, summary["errors"]
    assert summary["availability"] == 1.0 and summary["selection_success_rate"] == 1.0
    assert summary["targets"]["availability"]["pass"] and summary["targets"]["selection_success_rate"]["pass"]


def test_a_workload_s_user_policy_is_validated_as_the_admin_api_validates_it() -> None:
    with pytest.raises(ValueError, match=r"users\.policy"):
        workload(users={"count": 3, "policy": {"rpm": -1}})


def test_the_simulated_client_builds_the_requests_httpx_s_client_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    """`SimClient.build_request` skips merges its client has nothing for; every request of a run
    (chat and transcription, every provider) is still the one `httpx.Client.build_request` builds:
    method, URL, headers in order, body (multipart boundaries aside: they are random) and timeouts."""
    import re

    import httpx

    from sandbox.simulate.engine import SimClient

    plain = httpx.Client()
    built = SimClient.build_request
    seen: set[tuple[str, str]] = set()

    def unbounded(request: httpx.Request) -> tuple[Any, ...]:
        body = request.read()
        found = re.search(rb"boundary=([0-9a-f]+)", request.headers.get("content-type", "").encode())
        if found:
            body = body.replace(found.group(1), b"B")
        headers = [(k, re.sub(rb"boundary=[0-9a-f]+", b"boundary=B", v)) for k, v in request.headers.raw]
        return request.method, str(request.url), headers, body, request.extensions

    def both(self: SimClient, method: str, url: Any, **options: Any) -> httpx.Request:
        ours = built(self, method, url, **options)
        assert unbounded(ours) == unbounded(plain.build_request(method, url, **options))
        seen.add((ours.url.host, "multipart" if options.get("files") else "json" if options.get("json") else "other"))
        return ours

    monkeypatch.setattr(SimClient, "build_request", both)
    simulate(workload(hours=0.25, mix={"chat": 0.6, "stream": 0.1, "transcription": 0.3}), 2)
    assert {host for host, _ in seen} >= {"api.groq.com", "generativelanguage.googleapis.com", "api.mistral.ai"}
    assert {kind for _, kind in seen} >= {"json", "multipart"}


def test_the_simulated_client_takes_httpx_s_way_for_explicit_extensions() -> None:
    """A request naming `extensions` (even empty) is built by httpx's own client: the short path
    sets extensions itself and passed them twice (a TypeError)."""
    import httpx

    from sandbox.simulate.engine import SimClient

    client = SimClient(lambda _request: httpx.Response(200))
    for extensions in (None, {}, {"trace": None}):
        request = client.build_request("POST", "https://api.groq.com/v1/x", headers={"a": "b"}, json={},
                                       extensions=extensions)
        assert request.extensions["timeout"] == httpx.Client().build_request("POST", "https://x").extensions["timeout"]


def test_each_greenlet_keeps_its_own_deadline_scope_across_the_clock_s_switches() -> None:
    """The engine's deadline scope is one attribute the clock swaps when it parks and resumes a
    greenlet: a request that set one finds it again after others ran (and set theirs), and a
    request that starts finds none."""
    from sandbox.simulate.clock import VirtualClock

    clock = VirtualClock(0.0, lambda: 0.5)
    seen: list[tuple[str, float | None]] = []

    def request(name: str) -> None:
        seen.append((name, clock.scope.at))
        clock.scope.at = {"a": 1.0, "b": 2.0, "c": 3.0}[name]
        clock.sleep(1.0 if name == "a" else 0.5)
        seen.append((name, clock.scope.at))

    for at, name in ((0.0, "a"), (0.1, "b"), (0.2, "c")):
        clock.at(at, request, name)
    clock.run()
    assert seen == [("a", None), ("b", None), ("c", None), ("b", 2.0), ("c", 3.0), ("a", 1.0)]


def test_a_run_puts_the_garbage_collector_s_thresholds_back() -> None:
    import gc

    before = gc.get_threshold()
    simulate(workload(hours=0.05), 1)
    assert gc.get_threshold() == before
