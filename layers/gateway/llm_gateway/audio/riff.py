"""WAV (RIFF/WAVE) chunks: the format, and whether the data chunk is all there.

A WAV written to a pipe cannot go back to fill in its sizes, so its data chunk says 0 or
0xFFFFFFFF ("streaming"): then the data runs to the end of the file and the duration comes from
the bytes present. Otherwise a data chunk larger than what follows it means a truncated file.
"""

from __future__ import annotations

from dataclasses import dataclass

from llm_gateway.audio.errors import corrupt

_CODECS = {0x0001: "pcm", 0x0003: "pcm", 0x0006: "alaw", 0x0007: "mulaw", 0x0002: "adpcm", 0x0011: "adpcm",
           0x0055: "mp3"}
_EXTENSIBLE = 0xFFFE
_STREAMING_SIZES = (0, 0xFFFFFFFF)
_MAX_CHUNKS = 10_000


@dataclass(frozen=True, slots=True)
class Wave:
    codec: str | None
    byte_rate: int  # average bytes per second, from the fmt chunk
    data_bytes: int  # of the data chunk, as present in the file
    streaming: bool  # the data chunk's size was a placeholder


def read_wave(data: bytes) -> Wave:
    """Walk the chunks; raises InvalidAudio (audio_corrupt) for a damaged or truncated file."""
    pos, end = 12, len(data)
    fmt: tuple[int, int] | None = None  # (format tag, byte rate)
    for _ in range(_MAX_CHUNKS):
        if pos + 8 > end:
            break
        chunk_id, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > end:
                raise corrupt("wav", "its format chunk is damaged")
            tag = int.from_bytes(data[body:body + 2], "little")
            if tag == _EXTENSIBLE and size >= 40 and body + 26 <= end:
                tag = int.from_bytes(data[body + 24:body + 26], "little")
            fmt = (tag, int.from_bytes(data[body + 8:body + 12], "little"))
        elif chunk_id == b"data":
            if fmt is None:
                raise corrupt("wav", "its data comes before its format chunk")
            present = end - body
            streaming = size in _STREAMING_SIZES and present > 0
            if not streaming and size > present:
                raise corrupt("wav", "it is shorter than its own header says, so it looks truncated")
            if fmt[1] <= 0:
                raise corrupt("wav", "its format chunk gives no byte rate")
            return Wave(_CODECS.get(fmt[0]), fmt[1], present if streaming else size, streaming)
        pos = body + size + (size & 1)  # chunks are padded to an even size
    raise corrupt("wav", "it has no audio data chunk")
