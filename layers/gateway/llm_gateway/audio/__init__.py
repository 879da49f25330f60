"""Uploaded audio, checked before any provider call: the container sniffed from the bytes, the
duration read without ffmpeg (tinytag, and a bounded EBML walk for WebM).

    info = probe(data)             # AudioInfo, or InvalidAudio (400, param "file")
    check_duration(info, max_s)    # InvalidAudio code "audio_too_long"

Error codes: audio_empty, audio_format_unsupported, audio_corrupt, audio_too_long.
"""

from llm_gateway.audio.errors import (
    AUDIO_CORRUPT,
    AUDIO_EMPTY,
    AUDIO_FORMAT_UNSUPPORTED,
    AUDIO_TOO_LONG,
    InvalidAudio,
)
from llm_gateway.audio.info import MIME_TYPES, AudioInfo
from llm_gateway.audio.probe import check_duration, probe

__all__ = [
    "AUDIO_CORRUPT",
    "AUDIO_EMPTY",
    "AUDIO_FORMAT_UNSUPPORTED",
    "AUDIO_TOO_LONG",
    "MIME_TYPES",
    "AudioInfo",
    "InvalidAudio",
    "check_duration",
    "probe",
]
