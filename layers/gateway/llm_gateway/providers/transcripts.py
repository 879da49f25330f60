"""Reading providers' transcription answers into the normalized `Transcript`.

OpenAI, Groq, Mistral and Replicate's Whisper all describe timing as segment lists with
`start`/`end` seconds (and OpenAI and Groq word lists); only their envelopes differ, so the
adapters share these readers. Anything malformed raises `ValueError`/`KeyError`/`TypeError`,
which the engine turns into a `ProviderError(transport=malformed)`: a failover, not a 500.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any

from llm_gateway.audio.probe import MAX_PLAUSIBLE_S
from llm_gateway.providers.transcription import TranscriptionCall
from llm_gateway.transcription.transcript import Segment, Transcript, Word


def _seconds(value: Any) -> float:
    """A time within any audio the gateway accepts: a larger one (1e306 is finite) made the
    srt and vtt clocks overflow, a 500 after the provider was paid; here it is a failover."""
    number = float(value)
    if not math.isfinite(number) or not 0 <= number <= MAX_PLAUSIBLE_S:
        raise ValueError(f"bad timestamp {value!r}")
    return number


def segments_from(raw: Any) -> tuple[Segment, ...] | None:
    if not isinstance(raw, list):
        return None
    out = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise TypeError("segment is not an object")
        out.append(Segment(id=int(item.get("id", index)), start=_seconds(item["start"]), end=_seconds(item["end"]),
                           text=str(item.get("text", ""))))
    return tuple(out)


def words_from(raw: Any) -> tuple[Word, ...] | None:
    if not isinstance(raw, list):
        return None
    return tuple(Word(word=str(item["word"]), start=_seconds(item["start"]), end=_seconds(item["end"])) for item in raw)


def openai_transcript(payload: Any) -> Transcript:
    """`json` or `verbose_json` of OpenAI's audio API (Groq's and Mistral's are supersets)."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("text"), str):
        raise ValueError("no text in the transcription answer")
    raw_usage = payload.get("usage")
    usage: Mapping[str, Any] = raw_usage if isinstance(raw_usage, Mapping) else {}
    duration = payload.get("duration")
    if duration is None and usage.get("type") == "duration":
        duration = usage.get("seconds")
    if duration is None:
        duration = usage.get("prompt_audio_seconds")  # Mistral
    tokens_in = usage.get("input_tokens") if usage.get("type") == "tokens" else None
    tokens_out = usage.get("output_tokens") if usage.get("type") == "tokens" else None
    language = payload.get("language")
    return Transcript(
        text=payload["text"],
        language=str(language) if language else None,
        duration_s=_seconds(duration) if duration is not None else None,
        segments=segments_from(payload.get("segments")),
        words=words_from(payload.get("words")),
        input_tokens=int(tokens_in) if tokens_in is not None else None,
        output_tokens=int(tokens_out) if tokens_out is not None else None,
    )


def data_url(call: TranscriptionCall) -> str:
    return f"data:{call.mime_type};base64,{base64.b64encode(call.audio).decode('ascii')}"


def inline(call: TranscriptionCall, max_inline_bytes: int) -> bool:
    """Send the bytes in the request, or (too large, and a URL exists) let the provider fetch them."""
    return call.url is None or call.size <= max_inline_bytes
