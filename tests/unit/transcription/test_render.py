"""Every response format rendered from one normalized transcript."""

from __future__ import annotations

import json

from llm_gateway.transcription.render import render, srt, vtt
from llm_gateway.transcription.transcript import Segment, Transcript, Word

TIMED = Transcript(text="Hello there. General Kenobi.", language="english",
                   segments=(Segment(0, 0.0, 1.5, " Hello there."), Segment(1, 1.5, 3661.25, " General Kenobi.")),
                   words=(Word("Hello", 0.0, 0.4),))
USAGE = {"type": "duration", "seconds": 3662, "cost_usd": 0.0}


def test_srt_numbers_cues_from_one_with_comma_milliseconds() -> None:
    assert srt(TIMED, 3661.25) == ("1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n"
                                   "2\n00:00:01,500 --> 01:01:01,250\nGeneral Kenobi.\n")


def test_vtt_has_its_header_and_dot_milliseconds() -> None:
    assert vtt(TIMED, 3661.25).startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello there.\n")


def test_text_json_and_verbose_json() -> None:
    assert render(TIMED, "text", duration_s=3.0, usage=USAGE, task="transcribe", words=False) == (
        "Hello there. General Kenobi.\n", "text/plain; charset=utf-8")
    body, kind = render(TIMED, "json", duration_s=3.0, usage=USAGE, task="transcribe", words=False)
    assert json.loads(body) == {"text": TIMED.text, "usage": USAGE} and kind == "application/json"
    verbose = json.loads(render(TIMED, "verbose_json", duration_s=3661.25, usage=USAGE, task="translate",
                                words=True)[0])
    assert verbose["task"] == "translate" and verbose["duration"] == 3661.25 and verbose["language"] == "english"
    assert [s["text"] for s in verbose["segments"]] == [" Hello there.", " General Kenobi."]
    assert verbose["words"] == [{"word": "Hello", "start": 0.0, "end": 0.4}]


def test_a_transcript_without_segments_becomes_one_cue_and_silence_none() -> None:
    assert srt(Transcript(text="hi"), 2.0) == "1\n00:00:00,000 --> 00:00:02,000\nhi\n"
    assert srt(Transcript(text="  "), 2.0) == "" and vtt(Transcript(text=""), 2.0) == "WEBVTT\n\n"


def test_a_provider_time_past_any_audio_is_a_malformed_answer_not_a_clock_that_overflows() -> None:
    """Provider times are read by `providers/transcripts.py`, which refused NaN and Infinity but
    took 1e306: srt and vtt then overflowed on `round(1e306 * 1000)`, a 500 after the provider was
    paid (found in review). A time past any audio accepted is a malformed answer (a failover)."""
    import pytest

    from llm_gateway.audio.probe import MAX_PLAUSIBLE_S
    from llm_gateway.providers.transcripts import segments_from, words_from

    for bad in (1e306, MAX_PLAUSIBLE_S + 1, -1, "nan", "inf"):
        with pytest.raises(ValueError):
            segments_from([{"start": 0, "end": bad, "text": "x"}])
        with pytest.raises(ValueError):
            words_from([{"word": "x", "start": bad, "end": 1}])
    (segment,) = segments_from([{"start": 0, "end": MAX_PLAUSIBLE_S, "text": "x"}]) or ()
    assert srt(Transcript(text="x", segments=(segment,)), MAX_PLAUSIBLE_S).startswith("1\n00:00:00,000 --> 24:00:00,000")
