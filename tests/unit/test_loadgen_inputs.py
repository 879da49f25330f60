"""`llm-gateway loadgen` with numbers and files an operator gets wrong: each is refused with a
message naming the option and exit status 2, before any request is sent. `--concurrency 0` hung
forever (a semaphore of 0), a negative one and `--timeout nan` were tracebacks, `--requests 0`
reported an empty run as a success, and a missing or malformed `--body` or `--audio` file was a
traceback (FileNotFoundError, JSONDecodeError, AttributeError on a JSON list); an `--audio` file
that exists but cannot be read (permission denied) was a traceback from inside the run, and a
directory was called "no such file"."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sandbox import loadgen

NOWHERE = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def _no_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loadgen, "run", lambda *a, **k: pytest.fail("sent requests with an option it should refuse"))


def _refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exited:
        loadgen.main(["--url", NOWHERE, *argv])
    err = capsys.readouterr().err
    assert exited.value.code == 2, err
    assert "Traceback" not in err and "llm-gateway loadgen: error:" in err, err
    return err


@pytest.mark.parametrize("option", [
    ["--requests", "0"], ["--requests", "-5"], ["--concurrency", "0"], ["--concurrency", "-1"],
    ["--ramp", "-1"], ["--ramp", "nan"], ["--ramp", "inf"],
    ["--timeout", "0"], ["--timeout", "-1"], ["--timeout", "nan"], ["--timeout", "inf"],
])
def test_a_number_out_of_range_is_refused(option: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(capsys, *option)
    assert option[0] in err, err


@pytest.mark.parametrize("content", [None, "{bad", "[1, 2]", b"\xff\xfe"])
def test_a_body_file_that_is_not_a_json_object_is_refused(
        content: str | bytes | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = tmp_path / "body.json"
    if isinstance(content, bytes):
        body.write_bytes(content)
    elif content is not None:
        body.write_text(content, encoding="utf-8")
    err = _refused(capsys, "--body", str(body))
    assert "--body" in err and str(body) in err, err


def test_an_audio_file_that_cannot_be_read_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nosuch.wav"
    err = _refused(capsys, "--mix", "transcription=1", "--audio", str(missing))
    assert "--audio" in err and str(missing) in err, err


def test_an_audio_directory_is_refused_as_unreadable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(capsys, "--mix", "transcription=1", "--audio", str(tmp_path))
    assert f"--audio {tmp_path}: cannot read it (Is a directory)" in err, err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_an_audio_file_without_read_permission_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = tmp_path / "locked.wav"
    clip.write_bytes(b"RIFF")
    clip.chmod(0)
    err = _refused(capsys, "--mix", "transcription=1", "--audio", str(clip))
    assert f"--audio {clip}: cannot read it (Permission denied)" in err, err


def test_an_audio_file_that_fails_to_read_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The same as permission denied, where the tests run as root: the read itself fails."""
    clip = tmp_path / "locked.wav"
    clip.write_bytes(b"RIFF")
    real_open = Path.open

    def refuse(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == clip:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    err = _refused(capsys, "--mix", "transcription=1", "--audio", str(clip))
    assert f"--audio {clip}: cannot read it (Permission denied)" in err, err
