"""What the transcription fakes "hear": the container and duration of uploaded audio.

`probe(data)` is the one entry point, so it can later delegate to the gateway's own
`llm_gateway.audio.probe` (being written in parallel) without touching the fakes. For now: the
container is sniffed from magic bytes (never the filename), the duration read with tinytag (MIT,
pure Python: wav, mp3, flac, ogg/opus, m4a/mp4, aiff), and for WebM/Matroska from the EBML
`Duration` element when there is one, else a rough estimate from the size (browser
`MediaRecorder` files often have no duration field).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from tinytag import TinyTag

WEBM_GUESS_BYTES_PER_S = 4_000  # ~32 kbit/s Opus, a typical browser recording


@dataclass(frozen=True)
class AudioInfo:
    container: str  # wav | mp3 | flac | ogg | mp4 | webm | aiff | aac | unknown
    duration_s: float  # 0.0 when the audio cannot be read
    size: int
    estimated: bool = False  # the duration is a guess (WebM without a Duration element)

    @property
    def ok(self) -> bool:
        return self.container != "unknown" and self.duration_s > 0


def sniff(data: bytes) -> str:
    """The container from its first bytes."""
    head = data[:16]
    if head[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if head[:4] == b"FORM" and data[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if data[4:8] == b"ftyp":
        return "mp4"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        # MPEG audio frame sync; ADTS AAC shares the sync but has layer bits 00
        return "aac" if head[1] & 0x06 == 0 and head[:3] != b"ID3" else "mp3"
    return "unknown"


def probe(data: bytes) -> AudioInfo:
    """Container and duration of `data`; `AudioInfo.ok` is False for unknown or unreadable audio."""
    container = sniff(data)
    if container == "unknown":
        return AudioInfo("unknown", 0.0, len(data))
    if container == "webm":
        duration = _webm_duration(data)
        if duration is None:
            return AudioInfo("webm", round(max(0.01, len(data) / WEBM_GUESS_BYTES_PER_S), 3), len(data), True)
        return AudioInfo("webm", round(duration, 3), len(data))
    try:
        tag = TinyTag.get(file_obj=io.BytesIO(data))
        duration = float(tag.duration or 0.0)
    except Exception:  # tinytag raises its own errors (and struct errors) on corrupt input
        duration = 0.0
    return AudioInfo(container, round(duration, 3), len(data))


# --- WebM/Matroska: the Segment Info's TimecodeScale (2AD7B1) and Duration (4489) -----------------

_SEGMENT, _INFO, _TIMECODE_SCALE, _DURATION = 0x18538067, 0x1549A966, 0x2AD7B1, 0x4489


def _vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int]:
    first = data[pos]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        raise ValueError("bad EBML vint")
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[pos + 1 : pos + length]:
        value = (value << 8) | byte
    return value, pos + length


def _webm_duration(data: bytes) -> float | None:
    try:
        pos, end = 0, len(data)
        scale, duration = 1_000_000, None
        while pos < end:
            element, pos = _vint(data, pos, keep_marker=True)
            size, pos = _vint(data, pos, keep_marker=False)
            if element in (_SEGMENT, _INFO):
                continue  # descend into the master element
            payload = data[pos : pos + size]
            if element == _TIMECODE_SCALE:
                scale = int.from_bytes(payload, "big")
            elif element == _DURATION:
                duration = struct.unpack(">f" if size == 4 else ">d", payload)[0]
            elif element == 0x1F43B675:  # first Cluster: Info is behind us
                break
            pos += size
        return duration * scale / 1e9 if duration else None
    except (ValueError, IndexError, struct.error):
        return None
