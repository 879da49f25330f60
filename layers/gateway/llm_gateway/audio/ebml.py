"""A small, bounded EBML reader: the WebM header, and a WebM's duration and audio codec.

tinytag reads no WebM. The duration is `Segment/Info/Duration * TimestampScale` (ns) when the
file has it; a browser's MediaRecorder writes none (and writes the Segment and its Clusters with
unknown size, all size bits set), so the walk also reads every Cluster's Timestamp and each audio
block's relative timestamp, and ends at the last block's end (its duration from BlockDuration,
the track's DefaultDuration or, for Opus, the packet's own TOC byte). The larger of the two is
the duration, so a header that under-states the length does not lower it.

Element IDs (RFC 9559; libwebm's webm.dict): EBML 0x1A45DFA3, DocType 0x4282, Segment
0x18538067, Info 0x1549A966, TimestampScale 0x2AD7B1, Duration 0x4489, Tracks 0x1654AE6B,
TrackEntry 0xAE, TrackNumber 0xD7, TrackType 0x83 (2 = audio), CodecID 0x86, DefaultDuration
0x23E383, Cluster 0x1F43B675, Timestamp 0xE7, SimpleBlock 0xA3, BlockGroup 0xA0, Block 0xA1,
BlockDuration 0x9B, Void 0xEC.

Every loop moves forward by at least two bytes (an ID and a size), never backwards, and nothing
is copied but short element payloads, so any input is read in time and memory linear in its size.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from llm_gateway.audio.errors import corrupt

EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_DOC_TYPE = 0x4282
_SEGMENT = 0x18538067
_INFO, _TIMESTAMP_SCALE, _DURATION = 0x1549A966, 0x2AD7B1, 0x4489
_TRACKS, _TRACK_ENTRY, _TRACK_NUMBER, _TRACK_TYPE, _CODEC_ID, _DEFAULT_DURATION = (
    0x1654AE6B, 0xAE, 0xD7, 0x83, 0x86, 0x23E383)
_CLUSTER, _TIMESTAMP, _SIMPLE_BLOCK, _BLOCK_GROUP, _BLOCK, _BLOCK_DURATION = (
    0x1F43B675, 0xE7, 0xA3, 0xA0, 0xA1, 0x9B)
# Children of a Segment: any of them ends a Cluster of unknown size.
_TOP_LEVEL = frozenset({0x114D9B74, _INFO, _TRACKS, _CLUSTER, 0x1C53BB6B, 0x1043A770, 0x1254C367,
                        0x1941A469, _SEGMENT, 0x1A45DFA3})
_AUDIO_TRACK = 2
_CODECS = {"A_OPUS": "opus", "A_VORBIS": "vorbis"}
_MAX_HEADER_CHILDREN = 32  # the EBML header has 7 kinds of child
_MAX_SMALL = 64  # payload bytes read for a number or a string
# Elements read in one file. A real 25 MB WebM has some 300 000 (one block per 20 ms Opus frame);
# a file of nothing but 2-byte Void elements would have millions and cost seconds to walk.
MAX_ELEMENTS = 2_000_000


class _Damaged(Exception):
    """Internal: the bytes break EBML's rules; turned into audio_corrupt by `read_webm`."""


class _TooMany(Exception):
    """Internal: more than MAX_ELEMENTS elements."""


def _read_id(data: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos >= end:
        raise _Damaged
    first = data[pos]
    if first & 0x80:  # the common 1-byte ID, without slicing
        return first, pos + 1
    length = 9 - first.bit_length() if first else 9
    if length > 4 or pos + length > end:
        raise _Damaged
    return int.from_bytes(data[pos:pos + length], "big"), pos + length


def _read_size(data: bytes, pos: int, end: int) -> tuple[int | None, int]:
    """(size, position after it); size None when unknown (all value bits set)."""
    if pos >= end:
        raise _Damaged
    first = data[pos]
    if first & 0x80:  # the common 1-byte size
        return (None if first == 0xFF else first & 0x7F), pos + 1
    length = 9 - first.bit_length() if first else 9
    if length > 8 or pos + length > end:
        raise _Damaged
    value = int.from_bytes(data[pos:pos + length], "big") & ((1 << (7 * length)) - 1)
    return (None if value == (1 << (7 * length)) - 1 else value), pos + length


def _uint(payload: bytes) -> int:
    return int.from_bytes(payload[:8], "big")


def _payload(data: bytes, pos: int, size: int) -> bytes:
    return data[pos:pos + min(size, _MAX_SMALL)]


def doc_type(data: bytes) -> str | None:
    """The EBML header's DocType ("webm", "matroska", …), or None when the header is damaged."""
    try:
        element_id, pos = _read_id(data, 0, len(data))
        size, pos = _read_size(data, pos, len(data))
        if element_id != 0x1A45DFA3 or size is None:
            return None
        end = min(pos + size, len(data))
        for _ in range(_MAX_HEADER_CHILDREN):
            if pos >= end:
                break
            child, pos = _read_id(data, pos, end)
            child_size, pos = _read_size(data, pos, end)
            if child_size is None:
                return None
            if child == _DOC_TYPE:
                return _payload(data, pos, child_size).rstrip(b"\0").decode("ascii", "replace")
            pos += child_size
    except _Damaged:
        return None
    return None


@dataclass(slots=True)
class _Track:
    number: int = 0
    type: int = 0
    codec: str = ""
    default_duration_ns: int = 0


@dataclass(frozen=True, slots=True)
class WebmAudio:
    duration_s: float
    codec: str | None


@dataclass(slots=True)
class _Walk:
    data: bytes
    scale_ns: int = 1_000_000
    duration_ticks: float | None = None
    audio: _Track | None = None
    tracks_seen: bool = False
    first_ns: int | None = None
    end_ns: int = 0
    elements: int = 0

    def count(self) -> None:
        self.elements += 1
        if self.elements > MAX_ELEMENTS:
            raise _TooMany


def read_webm(data: bytes) -> WebmAudio:
    """Duration and codec of a WebM file; raises InvalidAudio (audio_corrupt) when unreadable."""
    try:
        return _read(data)
    except _Damaged:
        raise corrupt("webm", "its structure is damaged") from None
    except _TooMany:
        raise corrupt("webm", "it has far more elements than any real recording") from None
    except (IndexError, ValueError, struct.error, OverflowError):
        raise corrupt("webm", "its structure is damaged") from None


def _read(data: bytes) -> WebmAudio:
    end = len(data)
    header_id, pos = _read_id(data, 0, end)
    header_size, pos = _read_size(data, pos, end)
    if header_id != 0x1A45DFA3 or header_size is None:
        raise _Damaged
    pos += header_size
    while True:  # Void or CRC elements may sit between the header and the Segment
        element_id, body = _read_id(data, pos, end)
        size, body = _read_size(data, body, end)
        if element_id == _SEGMENT:
            break
        if size is None:
            raise _Damaged
        pos = body + size
    if size is not None and body + size > end:
        raise corrupt("webm", "it is shorter than its own header says, so it looks truncated")
    walk = _Walk(data)
    _segment(walk, body, end if size is None else body + size)
    if walk.tracks_seen and walk.audio is None:
        raise corrupt("webm", "it has no audio track")
    declared = None
    if walk.duration_ticks is not None:
        declared = walk.duration_ticks * walk.scale_ns / 1e9
        if not math.isfinite(declared) or declared <= 0:
            raise corrupt("webm", "its header gives no valid duration")
    walked = (walk.end_ns - walk.first_ns) / 1e9 if walk.first_ns is not None else None
    if declared is None and walked is None:
        raise corrupt("webm", "it holds no duration and no audio blocks")
    duration = max(d for d in (declared, walked) if d is not None)
    codec = _CODECS.get(walk.audio.codec) if walk.audio else None
    return WebmAudio(duration, codec)


def _segment(walk: _Walk, pos: int, end: int) -> None:
    data = walk.data
    while pos < end:
        walk.count()
        element_id, body = _read_id(data, pos, end)
        size, body = _read_size(data, body, end)
        if element_id == _CLUSTER:
            pos = _cluster(walk, body, end if size is None else body + size, bounded=size is not None)
            continue
        if size is None:
            raise _Damaged  # only Segment and Cluster may have an unknown size
        if body + size > end:
            raise corrupt("webm", "it ends inside an element, so it looks truncated")
        if element_id == _INFO:
            _info(walk, body, body + size)
        elif element_id == _TRACKS:
            walk.tracks_seen = True
            _tracks(walk, body, body + size)
        pos = body + size


def _children(walk: _Walk, pos: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(id, payload start, payload size) of each child of a known-size master element."""
    data = walk.data
    while pos < end:
        walk.count()
        element_id, body = _read_id(data, pos, end)
        size, body = _read_size(data, body, end)
        if size is None or body + size > end:
            raise _Damaged
        yield element_id, body, size
        pos = body + size


def _info(walk: _Walk, pos: int, end: int) -> None:
    for element_id, body, size in _children(walk, pos, end):
        payload = _payload(walk.data, body, size)
        if element_id == _TIMESTAMP_SCALE:
            walk.scale_ns = _uint(payload)
            if not 0 < walk.scale_ns <= 10**12:
                raise corrupt("webm", "its TimestampScale is invalid")
        elif element_id == _DURATION:
            if size not in (4, 8):
                raise corrupt("webm", "its Duration is not a 4- or 8-byte float")
            walk.duration_ticks = struct.unpack(">f" if size == 4 else ">d", payload)[0]


def _tracks(walk: _Walk, pos: int, end: int) -> None:
    for element_id, body, size in _children(walk, pos, end):
        if element_id != _TRACK_ENTRY:
            continue
        track = _Track()
        for child, child_body, child_size in _children(walk, body, body + size):
            payload = _payload(walk.data, child_body, child_size)
            if child == _TRACK_NUMBER:
                track.number = _uint(payload)
            elif child == _TRACK_TYPE:
                track.type = _uint(payload)
            elif child == _CODEC_ID:
                track.codec = payload.rstrip(b"\0").decode("ascii", "replace")
            elif child == _DEFAULT_DURATION:
                track.default_duration_ns = _uint(payload)
        if track.type == _AUDIO_TRACK and walk.audio is None:
            walk.audio = track


def _cluster(walk: _Walk, pos: int, end: int, *, bounded: bool) -> int:
    """Read one Cluster's blocks; returns where the Segment's next child starts."""
    data = walk.data
    if bounded and end > len(data):
        raise corrupt("webm", "it ends inside a cluster, so it looks truncated")
    cluster_ticks = 0
    while pos < end:
        walk.count()
        element_id, body = _read_id(data, pos, end)
        if not bounded and element_id in _TOP_LEVEL:
            return pos  # the next Cluster (or Cues, Tags, …) ends a cluster of unknown size
        size, body = _read_size(data, body, end)
        if size is None or body + size > end:
            raise corrupt("webm", "it ends inside a cluster, so it looks truncated")
        if element_id == _TIMESTAMP:
            cluster_ticks = _uint(_payload(data, body, size))
        elif element_id == _SIMPLE_BLOCK:
            _block(walk, cluster_ticks, body, size, None)
        elif element_id == _BLOCK_GROUP:
            block: tuple[int, int] | None = None
            duration_ticks = None
            for child, child_body, child_size in _children(walk, body, body + size):
                if child == _BLOCK:
                    block = (child_body, child_size)
                elif child == _BLOCK_DURATION:
                    duration_ticks = _uint(_payload(data, child_body, child_size))
            if block is not None:
                _block(walk, cluster_ticks, block[0], block[1], duration_ticks)
        pos = body + size
    return pos


def _block(walk: _Walk, cluster_ticks: int, pos: int, size: int, duration_ticks: int | None) -> None:
    """One (Simple)Block: track number (a size-style vint), int16 relative timestamp, flags, frames."""
    data = walk.data
    end = pos + size
    track, at = _read_size(data, pos, end)
    if at + 3 > end:
        raise _Damaged
    if walk.audio is not None and track != walk.audio.number:
        return
    start_ns = (cluster_ticks + int.from_bytes(data[at:at + 2], "big", signed=True)) * walk.scale_ns
    if duration_ticks is not None:
        length_ns = duration_ticks * walk.scale_ns
    elif walk.audio is not None and walk.audio.default_duration_ns:
        length_ns = walk.audio.default_duration_ns
    elif walk.audio is not None and walk.audio.codec == "A_OPUS" and data[at + 2] & 0x06 == 0:
        length_ns = opus_packet_ns(data[at + 3:at + 5])  # unlaced: the frame is one Opus packet
    else:
        length_ns = 0
    walk.first_ns = start_ns if walk.first_ns is None else min(walk.first_ns, start_ns)
    walk.end_ns = max(walk.end_ns, start_ns + length_ns)


# Opus frame lengths in µs by TOC config (RFC 6716 §3.1): SILK, hybrid, CELT.
_OPUS_FRAME_US = (10_000, 20_000, 40_000, 60_000) * 3 + (10_000, 20_000) * 2 + (2_500, 5_000, 10_000, 20_000) * 4


def opus_packet_ns(toc: bytes) -> int:
    if not toc:
        return 0
    frame_us = _OPUS_FRAME_US[toc[0] >> 3]
    code = toc[0] & 3
    frames = 1 if code == 0 else 2 if code in (1, 2) else (toc[1] & 0x3F if len(toc) > 1 else 0)
    return frame_us * frames * 1000

