"""Duration (and the MP4 codec) from tinytag, which reads FLAC, MP3, MP4, Ogg and WAV headers in
pure Python. Anything tinytag raises on hostile bytes becomes audio_corrupt."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from tinytag import TinyTag

from llm_gateway.audio.errors import corrupt

_CODECS_PARAM = re.compile(r'codecs="([^"]*)"')


@dataclass(frozen=True, slots=True)
class Tagged:
    duration_s: float | None
    codec_hint: str | None  # tinytag's codecs= parameter, e.g. "mp4a.40.2", "alac"


def read_tags(data: bytes, container: str) -> Tagged:
    try:
        tag = TinyTag.get(file_obj=io.BytesIO(data), tags=False, duration=True, image=False)
    except Exception:  # tinytag wraps its own errors in ParseError, but hostile bytes reach others
        raise corrupt(container, "its headers are damaged") from None
    match = _CODECS_PARAM.search(tag.mime_type or "")
    return Tagged(tag.duration, match.group(1) if match else None)


def mp4_codec(hint: str | None) -> str | None:
    """"mp4a.40.2" (AAC LC), "mp4a.40.5" (HE-AAC), … → "aac"; "alac"; "mp4a.6B"/"mp4a.69" → "mp3"."""
    if hint is None:
        return None
    if hint.startswith(("mp4a.40", "mp4a.66", "mp4a.67", "mp4a.68")):
        return "aac"
    if hint in ("mp4a.6B", "mp4a.69"):
        return "mp3"
    return "alac" if hint == "alac" else None
