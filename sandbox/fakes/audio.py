"""What the transcription fakes "hear": the container and duration of uploaded audio.

The gateway's own reader (`llm_gateway.audio.probe`) decides both, so a fake and the gateway
agree on every clip's duration (a fake that read mp3 differently would bill other seconds than
the gateway reserved). Audio it cannot read is reported as not `ok`, and each fake answers that
as its provider would.
"""

from __future__ import annotations

from dataclasses import dataclass

from llm_gateway.audio import InvalidAudio
from llm_gateway.audio import probe as read_audio


@dataclass(frozen=True)
class AudioInfo:
    container: str  # wav | mp3 | flac | ogg | mp4 | webm | unknown
    duration_s: float  # 0.0 when the audio cannot be read
    size: int

    @property
    def ok(self) -> bool:
        return self.container != "unknown" and self.duration_s > 0


def probe(data: bytes) -> AudioInfo:
    """Container and duration of `data`; `AudioInfo.ok` is False for unknown or unreadable audio."""
    try:
        info = read_audio(data)
    except InvalidAudio:
        return AudioInfo("unknown", 0.0, len(data))
    return AudioInfo(info.container, round(info.duration_s, 3), len(data))
