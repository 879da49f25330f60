"""FLAC frames: the length of the audio a decoder will play, counted from the frames themselves.

STREAMINFO's total sample count is a header field that decoders do not need (they decode every
frame that follows), so a file can state any count: a small one would shrink the measured
length, and with it the audio-second reservations and the cost, by up to the plausibility cap.
Every frame starts with a header (RFC 9639 §9.1: a 14-bit sync code, its block size and sample
rate, a coded frame or sample number, and a CRC-8 over the header) that a decoder checks before it
decodes the frame; so every frame a decoder plays has one that this scan finds and counts. A
chance match inside compressed data (the sync code, valid fields and a matching CRC-8 together)
can only add a block, never remove one. Frames are summed per channel count
and the largest sum is the length: a decoder plays a frame whatever STREAMINFO's channel count
says (ffmpeg's flacdec follows the frame's), so that field cannot hide the frames either.
"""

from __future__ import annotations

import re

from llm_gateway.audio.errors import corrupt

_SYNC = re.compile(rb"\xff[\xf8\xf9]")
# A real 200 MB FLAC of 4096-sample blocks has some 50 000 frames; a file built of sync codes
# would have millions (checking 500 000 takes about a second here).
MAX_CANDIDATES = 500_000
# Sample rates by code (0: STREAMINFO's; 12-14: read from the header's end; 15: invalid).
_RATES = (0, 88_200, 176_400, 192_000, 8_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000, 96_000)


def _crc8_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)


_CRC8 = _crc8_table()


def audio_start(data: bytes, offset: int) -> int:
    """Where the frames start: after "fLaC" (at `offset`) and every metadata block."""
    pos = offset + 4
    while pos + 4 <= len(data):
        header = data[pos]
        pos += 4 + int.from_bytes(data[pos + 1:pos + 4], "big")
        if header & 0x80:  # the last metadata block
            return pos
    raise corrupt("flac", "its metadata blocks run past the end of the file")


def frames_duration(data: bytes, offset: int) -> float:
    """Seconds of audio in every frame after the metadata ("fLaC" at `offset`)."""
    rate = _stream_info(data, offset)
    samples: dict[tuple[int, int], int] = {}  # by (channels, sample rate): whole numbers, summed without rounding
    for candidates, match in enumerate(_SYNC.finditer(data, audio_start(data, offset)), start=1):
        if candidates > MAX_CANDIDATES:
            raise corrupt("flac", "it has far more frame headers than any real recording")
        frame = _frame(data, match.start(), rate)
        if frame is not None:
            block, frame_rate, channels = frame
            samples[channels, frame_rate] = samples.get((channels, frame_rate), 0) + block
    seconds: dict[int, float] = {}
    for (channels, frame_rate), count in samples.items():
        seconds[channels] = seconds.get(channels, 0.0) + count / frame_rate
    return max(seconds.values(), default=0.0)


def _stream_info(data: bytes, offset: int) -> int:
    """STREAMINFO's sample rate (for frames that defer to it): the first metadata block, its 20
    bits at byte 10."""
    if data[offset + 4] & 0x7F != 0:
        raise corrupt("flac", "its first metadata block is not STREAMINFO")
    return int.from_bytes(data[offset + 18:offset + 21], "big") >> 4


def _frame(data: bytes, pos: int, stream_rate: int) -> tuple[int, int, int] | None:
    """(samples, sample rate, channels) of the frame whose header starts at `pos`; None if it is
    no valid header."""
    head = data[pos + 2:pos + 4]
    if len(head) < 2:
        return None
    size_code, rate_code = head[0] >> 4, head[0] & 0x0F
    channels, sample_size = head[1] >> 4, (head[1] >> 1) & 0x07
    if size_code == 0 or rate_code == 15 or channels > 10 or sample_size == 3 or head[1] & 1:
        return None
    end = _skip_number(data, pos + 4)
    if end is None:
        return None
    extra_size = {6: 1, 7: 2}.get(size_code, 0)
    extra_rate = {12: 1, 13: 2, 14: 2}.get(rate_code, 0)
    crc_at = end + extra_size + extra_rate
    if crc_at >= len(data) or _crc8(data, pos, crc_at) != data[crc_at]:
        return None
    block = _block_size(size_code, data[end:end + extra_size])
    rate = _sample_rate(rate_code, data[end + extra_size:crc_at], stream_rate)
    return (block, rate, channels + 1 if channels < 8 else 2) if rate > 0 else None


def _skip_number(data: bytes, pos: int) -> int | None:
    """The end of the UTF-8-style coded frame or sample number at `pos` (1 to 7 bytes)."""
    if pos >= len(data):
        return None
    first = data[pos]
    if first < 0x80:
        return pos + 1
    length = 8 - (first ^ 0xFF).bit_length()  # the leading one bits: 2 to 7 bytes in all
    if not 2 <= length <= 7 or pos + length > len(data):
        return None
    if any(byte & 0xC0 != 0x80 for byte in data[pos + 1:pos + length]):
        return None
    return pos + length


def _block_size(code: int, extra: bytes) -> int:
    if code == 1:
        return 192
    if code <= 5:
        return 576 << (code - 2)
    if code <= 7:
        return int.from_bytes(extra, "big") + 1
    return 256 << (code - 8)


def _sample_rate(code: int, extra: bytes, stream_rate: int) -> int:
    if code == 0:
        return stream_rate
    if code < 12:
        return _RATES[code]
    value = int.from_bytes(extra, "big")
    return value * 1000 if code == 12 else value if code == 13 else value * 10


def _crc8(data: bytes, start: int, end: int) -> int:
    crc = 0
    for byte in data[start:end]:
        crc = _CRC8[crc ^ byte]
    return crc
