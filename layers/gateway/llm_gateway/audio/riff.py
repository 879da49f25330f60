"""WAV (RIFF/WAVE) chunks: the format, whether the data chunk is all there, and the length.

A WAV written to a pipe cannot go back to fill in its sizes, so its data chunk says 0 or
0xFFFFFFFF ("streaming"): then the data runs to the end of the file and the duration comes from
the bytes present. Otherwise a data chunk larger than what follows it means a truncated file.

PCM, float, A-law and mu-law hold a fixed number of bytes a sample, and decoders count samples
by the channels and bits per sample alone: the fmt chunk's byte rate and block align, and the
fact chunk's sample count, are redundant, and a file can set them to anything. The length is
counted as the decoders count it, so those fields cannot shrink it (and the limits and the cost
it drives). MS and IMA ADPCM are decoded block by block, each block's sample count set by the
block align: the fact chunk's count may trim the last block, but no count makes the length less
than the whole blocks before it (`Wave.floor_s`). Other codecs' lengths are left to their headers
(`tags.py`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from llm_gateway.audio.errors import corrupt

_FIXED_SIZE_SAMPLES = frozenset({0x0001, 0x0003, 0x0006, 0x0007})  # PCM, float, A-law, mu-law
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
    sample_frame_rate: int | None = None  # bytes a second as decoders play them (fixed-size samples only)
    blocks: tuple[int, int, int] | None = None  # ADPCM: (block align, samples a block, sample rate)

    @property
    def duration_s(self) -> float | None:
        """The length where the bytes decide it (None: the headers' length applies)."""
        if self.sample_frame_rate is not None:
            return self.data_bytes / self.sample_frame_rate
        return self.data_bytes / self.byte_rate if self.streaming else None

    @property
    def floor_s(self) -> float:
        """ADPCM: the whole blocks but the last (which the fact chunk's count may trim), as a
        decoder decodes them: no fact count can make the length shorter (0.0 for other codecs)."""
        if self.blocks is None:
            return 0.0
        align, per_block, rate = self.blocks
        return max(0, self.data_bytes // align - 1) * per_block / rate


def read_wave(data: bytes) -> Wave:
    """Walk the chunks; raises InvalidAudio (audio_corrupt) for a damaged or truncated file."""
    pos, end = 12, len(data)
    fmt: tuple[int, int, int | None, tuple[int, int, int] | None] | None = None  # (tag, byte rate, frame rate, blocks)
    for _ in range(_MAX_CHUNKS):
        if pos + 8 > end:
            break
        chunk_id, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        body = pos + 8
        if chunk_id == b"fmt " and fmt is None:  # decoders read the first (ffmpeg's wavdec): so do we
            if size < 16 or body + 16 > end:
                raise corrupt("wav", "its format chunk is damaged")
            tag = int.from_bytes(data[body:body + 2], "little")
            if tag == _EXTENSIBLE and size >= 40 and body + 26 <= end:
                tag = int.from_bytes(data[body + 24:body + 26], "little")
            channels, rate, byte_rate, align, bits = struct.unpack_from("<HIIHH", data, body + 2)
            fmt = (tag, byte_rate, _sample_frame_rate(tag, channels, rate, bits), _adpcm_blocks(tag, channels, rate, align))
        elif chunk_id == b"data":
            if fmt is None:
                raise corrupt("wav", "its data comes before its format chunk")
            present = end - body
            streaming = size in _STREAMING_SIZES and present > 0
            if not streaming and size > present:
                raise corrupt("wav", "it is shorter than its own header says, so it looks truncated")
            if fmt[1] <= 0:
                raise corrupt("wav", "its format chunk gives no byte rate")
            return Wave(_CODECS.get(fmt[0]), fmt[1], present if streaming else size, streaming, fmt[2], fmt[3])
        pos = body + size + (size & 1)  # chunks are padded to an even size
    raise corrupt("wav", "it has no audio data chunk")


def _sample_frame_rate(tag: int, channels: int, rate: int, bits: int) -> int | None:
    """Bytes a second of fixed-size samples: sample rate x channels x whole bytes a sample."""
    if tag not in _FIXED_SIZE_SAMPLES:
        return None
    if not (channels and rate and bits):
        raise corrupt("wav", "its format chunk gives no channels, sample rate or sample size")
    return rate * channels * ((bits + 7) // 8)


def _adpcm_blocks(tag: int, channels: int, rate: int, align: int) -> tuple[int, int, int] | None:
    """(block align, samples a block, sample rate) of MS or IMA ADPCM, whose decoders decode
    whole blocks; None for other codecs or a block too small to hold its own header."""
    header = {0x0002: 7, 0x0011: 4}.get(tag)
    if header is None or not channels or not rate or align <= header * channels:
        return None
    if tag == 0x0002:  # MS ADPCM: two samples in the header, then two a byte
        return align, (align - header * channels) * 2 // channels + 2, rate
    return align, (align - header * channels) * 2 // channels + 1, rate  # IMA: one in the header
