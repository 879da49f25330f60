"""The transcription fakes' building blocks: container sniffing and duration, multipart parsing,
and the synthesized transcript."""

from __future__ import annotations

import pytest

from sandbox.fakes.audio import probe
from sandbox.fakes.transcription import parse_multipart, render_srt, render_vtt, synthesize
from sandbox.fakes.wire import BadRequest
from tests.integration.test_fakes_transcription import wav_bytes


def test_wav_duration_and_unknown_bytes() -> None:
    info = probe(wav_bytes(2.0))
    assert (info.container, info.duration_s, info.ok) == ("wav", 2.0, True)
    assert not probe(b"hello world, not audio").ok and not probe(b"").ok


def test_multipart_fields_arrays_and_files() -> None:
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"timestamp_granularities[]\"\r\n\r\nword\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"timestamp_granularities[]\"\r\n\r\nsegment\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a b.wav\"\r\n"
            b"Content-Type: audio/wav\r\n\r\n\x00\r\n\x01--\r\n--XyZ--\r\n")  # fmt: skip
    form = parse_multipart("multipart/form-data; boundary=XyZ", body)
    assert form.get("model") == "whisper-1" and form.getlist("timestamp_granularities") == ["word", "segment"]
    upload = form.files["file"]
    assert (upload.filename, upload.content_type, upload.data) == ("a b.wav", "audio/wav", b"\x00\r\n\x01--")
    assert parse_multipart("application/x-www-form-urlencoded", b"model=m&url=data%3A").get("url") == "data:"
    with pytest.raises(BadRequest):
        parse_multipart("application/json", b"{}")


def test_transcript_segments_cover_the_duration() -> None:
    t = synthesize(probe(wav_bytes(12.0)))
    assert t.text.startswith("Fake transcript of 12.0 seconds of wav audio.")
    assert [(s.start, s.end) for s in t.segments] == [(0.0, 5.0), (5.0, 10.0), (10.0, 12.0)]
    assert t.words[0].start == 0.0 and t.words[-1].end == 12.0
    assert render_srt(t).count(" --> ") == 3 and render_vtt(t).startswith("WEBVTT\n\n")
    assert synthesize(probe(wav_bytes(1.0)), translate=True).text.endswith("(translated to English).")
