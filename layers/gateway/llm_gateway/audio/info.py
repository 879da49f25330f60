"""`AudioInfo`: what `probe` learned about an upload, and the MIME type of each container."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

MIME_TYPES: Final[dict[str, str]] = {
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "mp4": "audio/mp4",
    "ogg": "audio/ogg",
    "wav": "audio/wav",
    "webm": "audio/webm",
}


@dataclass(frozen=True, slots=True)
class AudioInfo:
    container: str  # "flac" | "mp3" | "mp4" | "ogg" | "wav" | "webm"
    codec: str | None  # "opus", "vorbis", "aac", "pcm", "mp3", "flac", … where known
    mime_type: str  # MIME_TYPES[container]
    duration_s: float
    size_bytes: int
