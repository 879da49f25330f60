"""`llm-gateway simulate` with inputs an operator gets wrong: a workload file that is not YAML, a
section of the wrong type, a number out of range, a bad scenario, a zero or negative volume, an
`--out` that cannot be a folder. Each is one line naming what is wrong and exit status 2, before
any simulation runs; none is a traceback, a silently empty day, or the default day instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.simulate import cli
from sandbox.simulate.sweep import parse_sweep

TINY = "name: tiny\nrequests_per_day: 40\nhours: 0.25\n"

BAD_WORKLOADS = {
    "not yaml": ("foo: [1, 2\n", "YAML"),
    "requests_per_day null": (TINY + "requests_per_day: null\n", "requests_per_day"),
    "requests_per_day negative": ("requests_per_day: -5\nhours: 0.25\n", "requests_per_day"),
    "requests_per_day zero": ("requests_per_day: 0\nhours: 0.25\n", "requests_per_day"),
    "requests_per_day text": ("requests_per_day: lots\n", "requests_per_day"),
    "hourly_profile a number": (TINY + "hourly_profile: 5\n", "hourly_profile"),
    "chat a list": (TINY + "chat: [1]\n", "chat"),
    "users zero": (TINY + "users: {count: 0}\n", "users.count"),
    "start not a time": (TINY + "start: yesterday\n", "start"),
    "median zero below p90": (TINY + "chat: {prompt_tokens: {median: 0, p90: 10}}\n", "chat.prompt_tokens"),
    "median negative": (TINY + "chat: {prompt_tokens: {median: -5}}\n", "chat.prompt_tokens"),
    "share above 1": (TINY + "chat: {follow_up_share: 2}\n", "chat.follow_up_share"),
    "pinned models a string": (TINY + "chat: {pinned: {share: 0.1, models: groq/x}}\n", "chat.pinned.models"),
    "scenario a number": (TINY + "scenario: 5\n", "scenario"),
    "scenario bad number": (TINY + "scenario: [{type: outage, provider: gemini, at_h: x}]\n", "scenario[0].at_h"),
    "scenario unknown type": (TINY + "scenario: [{type: meteor, provider: gemini}]\n", "scenario[0].type"),
    "scenario without provider": (TINY + "scenario: [{type: outage}]\n", "scenario[0].provider"),
    "latency unknown key": (TINY + "providers: {groq: {bogus: 1}}\n", "providers.groq"),
    "latency negative": (TINY + "providers: {groq: {first_token_s: -1}}\n", "providers.groq.first_token_s"),
    "baseline unknown": (TINY + "baseline: {chat: nosuch/model}\n", "baseline"),
}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize("case", sorted(BAD_WORKLOADS))
def test_a_malformed_workload_file_is_one_line_naming_what_is_wrong(
        case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, named = BAD_WORKLOADS[case]
    path = tmp_path / "w.yaml"
    path.write_text(text, encoding="utf-8")
    code, err = _run(capsys, "--workload", str(path), "--json")
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llm-gateway simulate: ") and named in lines[0], err


@pytest.mark.parametrize("option", [["--requests-per-day", "0"], ["--requests-per-day", "-10"], ["--hours", "0"],
                                    ["--hours", "-1"], ["--hours", "25"], ["--hours", "nan"]])
def test_a_volume_or_span_out_of_range_is_refused_not_read_as_the_default(
        option: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--requests-per-day 0` and `--hours 0` ran the workload's own day (0 read as "not given");
    a negative volume ran a day of no requests and exited 0; `--hours -1` was a ZeroDivisionError."""
    path = tmp_path / "w.yaml"
    path.write_text(TINY, encoding="utf-8")
    code, err = _run(capsys, "--workload", str(path), "--json", *option)
    assert code == 2, err
    assert err.startswith("llm-gateway simulate: ") and option[0] in err, err


HUGE = {
    "requests_per_day": (["--workload", "{w}"], "requests_per_day: 1000000000000\nhours: 0.25\n", "requests_per_day"),
    "users.count": (["--workload", "{w}"], TINY + "users: {count: 1000000000000}\n", "users.count"),
    "--requests-per-day": (["--workload", "{w}", "--requests-per-day", "1000000000000"], TINY, "--requests-per-day"),
    "--sweep": (["--workload", "{w}", "--sweep", "requests_per_day=1:1e30"], TINY, "--sweep"),
}


@pytest.mark.parametrize("case", sorted(HUGE))
def test_a_day_too_large_to_simulate_is_refused_before_it_runs(
        case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A volume or user count with a few zeros too many was accepted, and the simulation's memory
    then grew by about a GB every 20 s on the shared machine until something killed it."""
    import sandbox.simulate.engine as engine

    monkeypatch.setattr(engine, "simulate", lambda *a, **k: pytest.fail("simulated a day too large to hold"))
    monkeypatch.setattr("sandbox.simulate.sweep.simulate", lambda *a, **k: pytest.fail("simulated a day too large"))
    argv, text, named = HUGE[case]
    path = tmp_path / "w.yaml"
    path.write_text(text, encoding="utf-8")
    code, err = _run(capsys, *(a.format(w=path) for a in argv), "--json")
    assert code == 2, err
    assert err.startswith("llm-gateway simulate: ") and named in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("sweep", ["requests_per_day=1000:1e400", "requests_per_day=a,b", "requests_per_day=nan:5",
                                   "requests_per_day=10:20:x", "requests_per_day=1:1e30", "requests_per_day=5,1e15"])
def test_a_bad_sweep_is_one_line_naming_the_option(sweep: str) -> None:
    with pytest.raises(ValueError, match="--sweep"):
        parse_sweep(sweep)


def test_an_empty_sweep_is_refused_and_one_volume_is_a_sweep_of_one(capsys, monkeypatch) -> None:
    """`--sweep ''` ran the plain day as if no sweep were asked (an empty string is falsy), and
    `requests_per_day=100` was refused with the LOW:HIGH message although it names one volume."""
    monkeypatch.setattr("sandbox.simulate.sweep.simulate", lambda *a, **k: pytest.fail("simulated"))
    monkeypatch.setattr("sandbox.simulate.engine.simulate", lambda *a, **k: pytest.fail("simulated the plain day"))
    code, err = _run(capsys, "--sweep", "", "--json")
    assert code == 2 and "--sweep" in err, err
    assert parse_sweep("requests_per_day=100") == ("requests_per_day", [100])


@pytest.mark.parametrize("sweep", [False, True])
def test_an_out_that_cannot_be_a_folder_is_refused_before_the_day_is_simulated(
        sweep: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A file where the folder should be was a FileExistsError traceback, after the whole run."""
    import sandbox.simulate.engine as engine

    path = tmp_path / "w.yaml"
    path.write_text(TINY, encoding="utf-8")
    taken = tmp_path / "taken"
    taken.write_text("", encoding="utf-8")
    monkeypatch.setattr(engine, "simulate", lambda *a, **k: pytest.fail("simulated before checking --out"))
    monkeypatch.setattr("sandbox.simulate.sweep.simulate", lambda *a, **k: pytest.fail("simulated before --out"))
    extra = ["--sweep", "requests_per_day=10,20"] if sweep else []
    code, err = _run(capsys, "--workload", str(path), "--out", str(taken), *extra)
    assert code == 2, err
    assert err.startswith("llm-gateway simulate: --out") and str(taken) in err, err


def test_an_out_folder_it_cannot_write_in_is_refused_before_the_day_is_simulated(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """An existing folder with no write permission was a PermissionError traceback after the run."""
    import sandbox.simulate.engine as engine

    unwritable = Path("/proc/self")  # no one may create files there, root included
    if not unwritable.is_dir():
        pytest.skip("no /proc here")
    path = tmp_path / "w.yaml"
    path.write_text(TINY, encoding="utf-8")
    monkeypatch.setattr(engine, "simulate", lambda *a, **k: pytest.fail("simulated before checking --out"))
    code, err = _run(capsys, "--workload", str(path), "--out", str(unwritable))
    assert code == 2, err
    assert err.startswith("llm-gateway simulate: --out") and str(unwritable) in err, err


QUIET_FIRST_HOUR = "name: quiet\nrequests_per_day: 1000\nhourly_profile: [0" + ", 1" * 23 + "]\n"
SPANS_WITHOUT_A_REQUEST = {
    "hours with no traffic in the profile": (QUIET_FIRST_HOUR, ["--hours", "1"]),
    "too few a day for the hours": (TINY, ["--requests-per-day", "1", "--hours", "0.01"]),
    "a sweep volume too small for the hours": (TINY, ["--hours", "0.01", "--sweep", "requests_per_day=1,5000"]),
}


@pytest.mark.parametrize("case", sorted(SPANS_WITHOUT_A_REQUEST))
def test_a_span_that_holds_no_request_is_refused_not_reported(
        case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Hours the hourly profile gives no traffic were a ZeroDivisionError traceback; a span too
    short for its volume simulated 0 requests and reported availability 0.0 and free-tier share 0.0
    as FAIL verdicts, exit 0, as if the gateway had failed them. A sweep checks every volume
    before it simulates the first."""
    monkeypatch.setattr("sandbox.simulate.sweep.simulate", lambda *a, **k: pytest.fail("simulated no request"))
    text, options = SPANS_WITHOUT_A_REQUEST[case]
    path = tmp_path / "w.yaml"
    path.write_text(text, encoding="utf-8")
    code, err = _run(capsys, "--workload", str(path), "--json", *options)
    assert code == 2, err
    assert err.startswith("llm-gateway simulate: ") and "no request" in err and len(err.strip().splitlines()) == 1, err
