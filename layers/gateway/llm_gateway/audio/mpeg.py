"""MPEG audio (MP3, and MP2/MP1 in the same `audio/mpeg` stream): ID3v2 tags, frame headers,
and a walk over every frame that finds garbage and truncation.

A frame header is 4 bytes: 11 sync bits, then version, layer, bitrate, sample rate and padding,
which give the frame's length, so frames chain. See
http://www.mpgedit.org/mpgedit/mpeg_format/mpeghdr.htm and the LAME Xing/Info header notes.
"""

from __future__ import annotations

from dataclasses import dataclass

from llm_gateway.audio.errors import corrupt

_ID3_HEADER = 10
_MAX_ID3_TAGS = 8  # tags stacked at the start of a file; more is not an MP3 anyone made
_MAX_ZERO_PADDING = 64 * 1024  # zero bytes some taggers leave after the tag's declared size
# Bitrates in kbit/s by [version is MPEG-1][layer]; index 0 is "free format", 15 is invalid.
_BITRATES = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_TRAILERS = (b"TAG", b"APETAGEX", b"LYRICSBEGIN", b"ID3")  # tags allowed after the last frame
MAX_JUNK_FRACTION = 0.1  # bytes between frames that are not frames; more means corrupt
# Times the walk may lose sync and look for the next frame, beyond one per 10 frames read: a cap
# so that bytes built to look like endless almost-frames (0xFF runs) cost no more than a real file.
_MAX_RESYNCS = 1000


@dataclass(frozen=True, slots=True)
class FrameHeader:
    version: int  # 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5
    layer: int  # 1, 2 or 3
    sample_rate: int
    length: int  # bytes, header included
    samples: int  # per frame

    @property
    def codec(self) -> str:
        return f"mp{self.layer}"

    def same_stream(self, other: FrameHeader) -> bool:
        return (self.version, self.layer, self.sample_rate) == (other.version, other.layer, other.sample_rate)


def skip_id3v2(data: bytes) -> int:
    """Where the audio starts: after any ID3v2 tags at the start (and zero padding after them)."""
    offset = 0
    for _ in range(_MAX_ID3_TAGS):
        header = data[offset:offset + _ID3_HEADER]
        if len(header) < _ID3_HEADER or not header.startswith(b"ID3") or any(b & 0x80 for b in header[6:10]):
            break
        size = (header[6] << 21) | (header[7] << 14) | (header[8] << 7) | header[9]
        offset += _ID3_HEADER + size + (_ID3_HEADER if header[5] & 0x10 else 0)  # 0x10: a footer follows
    if offset:
        window = data[offset:offset + _MAX_ZERO_PADDING]
        offset += len(window) - len(window.lstrip(b"\0"))
    return min(offset, len(data))


def frame_header(data: bytes, pos: int) -> FrameHeader | None:
    """The frame header at `pos`, or None when those 4 bytes are not a valid one."""
    if pos < 0 or pos + 4 > len(data) or data[pos] != 0xFF or data[pos + 1] & 0xE0 != 0xE0:
        return None
    b1, b2 = data[pos + 1], data[pos + 2]
    version, layer_bits = (b1 >> 3) & 3, (b1 >> 1) & 3
    bitrate_index, rate_index, padding = b2 >> 4, (b2 >> 2) & 3, (b2 >> 1) & 1
    if version == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None  # reserved values; free-format (index 0) streams are too rare to accept
    layer = 4 - layer_bits
    mpeg1 = version == 3
    bitrate = _BITRATES[(mpeg1, layer)][bitrate_index] * 1000
    sample_rate = _SAMPLE_RATES[version][rate_index]
    if layer == 1:
        return FrameHeader(version, 1, sample_rate, (12 * bitrate // sample_rate + padding) * 4, 384)
    samples = 576 if layer == 3 and not mpeg1 else 1152
    return FrameHeader(version, layer, sample_rate, samples // 8 * bitrate // sample_rate + padding, samples)


@dataclass(frozen=True, slots=True)
class FrameWalk:
    frames: int
    samples: int
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return self.samples / self.sample_rate


def walk_frames(data: bytes, start: int) -> FrameWalk:
    """Every frame from `start` to the end; raises InvalidAudio (audio_corrupt) when the stream
    is mostly not frames, ends inside a frame, or is shorter than its Xing/Info header says."""
    first = frame_header(data, start)
    if first is None:
        raise corrupt("mp3", "no MPEG audio frame where the audio should start")
    end = len(data)
    pos, frames, samples, junk, resyncs = start, 0, 0, 0, 0
    while pos < end:
        frame = frame_header(data, pos)
        if frame is not None and frame.same_stream(first):
            if pos + frame.length > end:
                if frames < 2:
                    break  # one damaged frame at the start: the junk check below decides
                raise corrupt("mp3", "it ends in the middle of an audio frame, so it looks truncated")
            frames += 1
            samples += frame.samples
            pos += frame.length
            continue
        if data.startswith(_TRAILERS, pos) and frames:
            break
        resyncs += 1
        if resyncs > _MAX_RESYNCS + frames // 10:
            raise corrupt("mp3", "most of it is not MPEG audio frames")
        following = data.find(b"\xff", pos + 1)  # lost sync: look for the next frame
        following = end if following < 0 else following
        junk += following - pos
        pos = following
    audio_bytes = end - start
    if frames < 2 or junk > MAX_JUNK_FRACTION * audio_bytes:
        raise corrupt("mp3", "most of it is not MPEG audio frames")
    xing = _xing(data, start, first)
    if xing.stream_bytes is not None and audio_bytes < 0.98 * xing.stream_bytes - first.length:
        raise corrupt("mp3", "it is shorter than its own header says, so it looks truncated")
    if xing.found:  # the first frame holds the Xing/Info header, not audio
        frames, samples = frames - 1, samples - first.samples
    if samples > xing.delay + xing.padding:  # encoder delay and padding are not audio either
        samples -= xing.delay + xing.padding
    return FrameWalk(frames, samples, first.sample_rate)


@dataclass(frozen=True, slots=True)
class _Xing:
    found: bool = False
    stream_bytes: int | None = None  # the stream length it declares
    delay: int = 0  # samples the encoder added at the start (LAME tag)
    padding: int = 0  # and at the end


def _xing(data: bytes, start: int, first: FrameHeader) -> _Xing:
    """The Xing/Info header (and LAME tag after it) in the first frame, if any. Layout: magic,
    flags (1 frames, 2 bytes, 4 TOC, 8 quality), those fields, then the LAME tag, whose bytes
    21-23 hold the encoder delay and padding as two 12-bit numbers."""
    frame = data[start:start + first.length]
    at = -1
    for magic in (b"Xing", b"Info"):
        at = frame.find(magic, 4, 64)
        if at >= 0:
            break
    if at < 0 or at + 8 > len(frame):
        return _Xing()
    flags = int.from_bytes(frame[at + 4:at + 8], "big")
    field = at + 8 + (4 if flags & 1 else 0)
    stream_bytes = int.from_bytes(frame[field:field + 4], "big") if flags & 2 and field + 4 <= len(frame) else None
    lame = at + 8 + 4 * bool(flags & 1) + 4 * bool(flags & 2) + 100 * bool(flags & 4) + 4 * bool(flags & 8)
    delay = padding = 0
    if lame + 24 <= len(frame) and frame[lame:lame + 4] in (b"LAME", b"Lavf", b"Lavc", b"L3.9"):
        packed = int.from_bytes(frame[lame + 21:lame + 24], "big")
        delay, padding = packed >> 12, packed & 0xFFF
    return _Xing(True, stream_bytes, delay, padding)
