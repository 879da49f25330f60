"""`InvalidAudio`: the 400 for audio the gateway will not send to any provider, and why."""

from __future__ import annotations

from typing import Final

from llm_gateway.api.errors import InvalidRequest

AUDIO_EMPTY: Final = "audio_empty"
AUDIO_FORMAT_UNSUPPORTED: Final = "audio_format_unsupported"
AUDIO_CORRUPT: Final = "audio_corrupt"
AUDIO_TOO_LONG: Final = "audio_too_long"

ACCEPTED_FORMATS: Final = "flac, mp3 (mpeg, mpga), mp4 (m4a), ogg (Opus, Vorbis or FLAC), wav, webm"


class InvalidAudio(InvalidRequest):
    """Audio that is empty, not in an accepted container, unreadable, or too long (`code` says
    which). Always `param="file"` and status 400; the message is plain words, never the bytes."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message, param="file", code=code)


def empty() -> InvalidAudio:
    return InvalidAudio("The audio file is empty (0 bytes).", code=AUDIO_EMPTY)


def unsupported(why: str) -> InvalidAudio:
    return InvalidAudio(f"{why} Accepted audio formats: {ACCEPTED_FORMATS}.", code=AUDIO_FORMAT_UNSUPPORTED)


def corrupt(container: str, why: str) -> InvalidAudio:
    return InvalidAudio(f"The {container} audio file cannot be read: {why}.", code=AUDIO_CORRUPT)
