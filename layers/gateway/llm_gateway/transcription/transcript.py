"""The normalized transcript every transcription adapter returns, whatever its provider sent.

Adapters ask their provider for the richest answer it offers (segments, words, duration) and the
gateway renders the caller's `response_format` from it (`render.py`), so `srt` can be served by
any model that returns segments, not only by the one provider that renders it itself.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Segment:
    id: int
    start: float
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    language: str | None = None
    duration_s: float | None = None  # what the provider reported, if anything
    segments: tuple[Segment, ...] | None = None  # None: the provider gave no timing at all
    words: tuple[Word, ...] | None = None
    input_tokens: int | None = None  # token-billed models (Gemini, gpt-4o-transcribe)
    output_tokens: int | None = None
