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


def test_a_providers_non_finite_times_render_in_every_format() -> None:
    """A provider's JSON may carry NaN or Infinity (Python's json reads both): a segment starting at
    NaN made srt and vtt raise (`round(nan)`: a 500 after the provider was paid) and verbose_json
    write a bare NaN, which JSON has not (`JSON.parse` throws). A time that is no number is 0."""
    odd = Transcript(text="Hi.", segments=(Segment(0, float("nan"), float("inf"), " Hi."),),
                     words=(Word("Hi", float("-inf"), float("nan")),))
    assert srt(odd, 2.0) == "1\n00:00:00,000 --> 00:00:00,000\nHi.\n"
    assert vtt(odd, 2.0) == "WEBVTT\n\n00:00:00.000 --> 00:00:00.000\nHi.\n"

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    body, _ = render(odd, "verbose_json", duration_s=2.0, usage=USAGE, task="transcribe", words=True)
    verbose = json.loads(body, parse_constant=refuse)
    assert (verbose["segments"][0]["start"], verbose["segments"][0]["end"]) == (0.0, 0.0)
    assert verbose["words"] == [{"word": "Hi", "start": 0.0, "end": 0.0}]
