"""The caller's `response_format`, rendered from the normalized transcript.

One renderer for every provider: srt, vtt and verbose_json come from the segments any timed
model returned (Groq, Mistral and Replicate included, not only OpenAI's whisper-1), so a request
for subtitles can be served free. JSON answers carry `usage` with the billed audio seconds and
the cost, as chat answers carry theirs; text, srt and vtt carry none (as OpenAI's), and the
gateway's `x-gateway-*` headers say the same for every format.
"""

from __future__ import annotations

import json
from typing import Any

from llm_gateway.transcription.transcript import Segment, Transcript

CONTENT_TYPES = {"json": "application/json", "verbose_json": "application/json", "text": "text/plain; charset=utf-8",
                 "srt": "application/x-subrip; charset=utf-8", "vtt": "text/vtt; charset=utf-8"}


def _clock(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _segments(transcript: Transcript, duration_s: float) -> tuple[Segment, ...]:
    """The transcript's segments; one spanning the audio when a timed model returned none."""
    if transcript.segments:
        return transcript.segments
    return (Segment(0, 0.0, duration_s, transcript.text),) if transcript.text.strip() else ()


def srt(transcript: Transcript, duration_s: float) -> str:
    blocks = [f"{n}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text.strip()}\n"
              for n, s in enumerate(_segments(transcript, duration_s), start=1)]
    return "\n".join(blocks)


def vtt(transcript: Transcript, duration_s: float) -> str:
    blocks = [f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text.strip()}\n"
              for s in _segments(transcript, duration_s)]
    return "WEBVTT\n\n" + "\n".join(blocks)


def render(transcript: Transcript, response_format: str, *, duration_s: float, usage: dict[str, Any],
           task: str, words: bool) -> tuple[str, str]:
    """(body, content type) for `response_format`."""
    content_type = CONTENT_TYPES[response_format]
    if response_format == "text":
        return transcript.text + "\n", content_type
    if response_format == "srt":
        return srt(transcript, duration_s), content_type
    if response_format == "vtt":
        return vtt(transcript, duration_s), content_type
    if response_format == "json":
        return json.dumps({"text": transcript.text, "usage": usage}), content_type
    body: dict[str, Any] = {
        "task": task, "language": transcript.language or "unknown", "duration": round(duration_s, 3),
        "text": transcript.text,
        "segments": [{"id": s.id, "seek": 0, "start": s.start, "end": s.end, "text": s.text, "tokens": [],
                      "temperature": 0.0, "avg_logprob": 0.0, "compression_ratio": 0.0, "no_speech_prob": 0.0}
                     for s in _segments(transcript, duration_s)],
        "usage": usage,
    }
    if words:
        body["words"] = [{"word": w.word, "start": w.start, "end": w.end} for w in transcript.words or ()]
    return json.dumps(body), content_type
