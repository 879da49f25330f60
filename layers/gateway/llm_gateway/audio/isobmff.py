"""MP4/M4A (ISO BMFF) boxes: is the file all there, does it have a `moov`, how long is its AAC.

The movie header's duration (where tinytag reads the length) is a summary that decoders do not
need: they decode every sample the sample table lists, and an AAC sample (an access unit) is
1,024 samples of audio at the rate of the stream's AudioSpecificConfig (`esds`; the sample
entry's own rate field, which decoders ignore, only where it is lower).
So a smaller `mvhd` duration would shrink the measured length, and the limits and the cost:
`aac_duration_s` counts the sound tracks' AAC frames instead (`stsz`), less three (an encoder's
priming and padding, which an honest edit list trims), so an honest file keeps its own length.
"""

from __future__ import annotations

from llm_gateway.audio.errors import corrupt

# Top-level boxes: a few in a plain file, two per fragment (moof, mdat) in a fragmented one.
_MAX_BOXES = 500_000


def check_boxes(data: bytes) -> None:
    """Raises InvalidAudio (audio_corrupt) when a top-level box runs past the end of the file
    (a truncated upload) or there is no `moov` box (nothing says what the media is)."""
    pos, end, moov = 0, len(data), False
    for boxes in range(_MAX_BOXES + 1):
        if pos >= end:
            break
        if boxes == _MAX_BOXES:
            raise corrupt("mp4", "it has far more boxes than any real file")
        head = _header(data, pos, end)
        if head is None:
            raise corrupt("mp4", "it ends inside a box header, so it looks truncated")
        box, header, size = head
        if size < header:
            raise corrupt("mp4", "a box has an impossible size")
        if pos + size > end:
            raise corrupt("mp4", "it is shorter than its own boxes say, so it looks truncated")
        moov = moov or box == b"moov"
        pos += size
    if not moov:
        raise corrupt("mp4", "it has no 'moov' box describing the media")


def _header(data: bytes, pos: int, end: int) -> tuple[bytes, int, int] | None:
    """(type, header length, size) of the box at `pos`; None when its header runs past `end`."""
    if pos + 8 > end:
        return None
    size, box = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
    if size == 1:  # a 64-bit size follows
        return (box, 16, int.from_bytes(data[pos + 8:pos + 16], "big")) if pos + 16 <= end else None
    return box, 8, end - pos if size == 0 else size  # 0: it runs to the end


_MAX_CHILDREN = 10_000  # boxes read at one level of the tree: a real moov has a handful
AAC_FRAME_SAMPLES = 1024
_TRIMMED_FRAMES = 3  # priming (2,112 samples) and the last frame's padding


def _children(data: bytes, start: int, end: int) -> dict[bytes, list[tuple[int, int]]]:
    """The boxes directly inside [start, end): by type, their bodies' (start, end)."""
    found: dict[bytes, list[tuple[int, int]]] = {}
    pos = start
    for _ in range(_MAX_CHILDREN):
        head = _header(data, pos, end)
        if head is None:
            break
        box, header, size = head
        if size < header or pos + size > end:
            break
        found.setdefault(box, []).append((pos + header, pos + size))
        pos += size
    else:
        if pos + 8 <= end:  # boxes left unread could hide a track: decoders read them all
            raise corrupt("mp4", "a box holds more boxes than any real file does")
    return found


def _path(data: bytes, start: int, end: int, path: tuple[bytes, ...]) -> list[tuple[int, int]]:
    """The bodies of every box at `path` below [start, end) (each container may repeat: `trak`)."""
    bodies = [(start, end)]
    for box in path:
        bodies = [child for body in bodies for child in _children(data, *body).get(box, [])]
    return bodies


def aac_duration_s(data: bytes) -> float:
    """Seconds of AAC in the longest sound track, counted in frames (0.0 when none is read)."""
    longest = 0.0
    for mdia in _path(data, 0, len(data), (b"moov", b"trak", b"mdia")):
        boxes = _children(data, *mdia)
        handler = boxes.get(b"hdlr", [(0, 0)])[0][0]
        if data[handler + 8:handler + 12] != b"soun":
            continue
        stbl = _path(data, *mdia, (b"minf", b"stbl"))
        tables = _children(data, *stbl[0]) if stbl else {}
        if b"stsd" not in tables or b"stsz" not in tables:
            continue
        entry = tables[b"stsd"][0][0] + 8  # after version, flags and the entry count
        rate = int.from_bytes(data[entry + 32:entry + 34], "big")  # AudioSampleEntry: 16.16 fixed point
        frames = int.from_bytes(data[tables[b"stsz"][0][0] + 8:tables[b"stsz"][0][0] + 12], "big")
        if data[entry + 4:entry + 8] != b"mp4a":
            continue
        # Decoders take the rate from the stream's own AudioSpecificConfig (in `esds`), not the
        # entry's field: a raised field would shrink the count. The lower of the two (HE-AAC's
        # entry gives the doubled output rate, its config the core rate its 1,024-sample frames run at).
        size = int.from_bytes(data[entry:entry + 4], "big")
        core = _config_rate(data, _children(data, entry + 36, min(entry + size, stbl[0][1])).get(b"esds", []))
        rate = min(filter(None, (rate, core)), default=0)
        if rate > 0:
            longest = max(longest, max(0, frames - _TRIMMED_FRAMES) * AAC_FRAME_SAMPLES / rate)
    return longest


_AAC_RATES = (96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000, 7_350)


def _descriptor(data: bytes, pos: int, end: int) -> tuple[int, int, int] | None:
    """(tag, body start, body end) of the MPEG-4 descriptor at `pos` (its length: up to four
    7-bit bytes, the high bit saying another follows)."""
    if pos + 2 > end:
        return None
    tag, length, at = data[pos], 0, pos + 1
    for _ in range(4):
        if at >= end:
            return None
        length, at = (length << 7) | (data[at] & 0x7F), at + 1
        if not data[at - 1] & 0x80:
            break
    return (tag, at, at + length) if at + length <= end else None


def _config_rate(data: bytes, esds: list[tuple[int, int]]) -> int:
    """The sampling rate in the AudioSpecificConfig of `esds` (ES_Descriptor → DecoderConfig →
    DecoderSpecificInfo: ISO/IEC 14496-1 and -3), or 0 when there is none to read."""
    if not esds:
        return 0
    start, end = esds[0]
    es = _descriptor(data, start + 4, end)  # after the box's version and flags
    if es is None or es[0] != 0x03 or es[1] + 3 > es[2]:
        return 0
    flags, pos = data[es[1] + 2], es[1] + 3
    pos += 2 if flags & 0x80 else 0  # dependsOn_ES_ID
    pos += 1 + data[pos] if flags & 0x40 and pos < es[2] else 0  # a URL
    pos += 2 if flags & 0x20 else 0  # OCR_ES_Id
    config = _descriptor(data, pos, es[2])
    if config is None or config[0] != 0x04:
        return 0
    specific = _descriptor(data, config[1] + 13, config[2])  # after objectType, streamType, buffer and bitrates
    if specific is None or specific[0] != 0x05 or specific[1] + 2 > specific[2]:
        return 0
    bits = int.from_bytes(data[specific[1]:specific[1] + 5].ljust(5, b"\0"), "big")  # 40 bits, MSB first
    shift = 35 if bits >> 35 != 31 else 29  # the object type: 5 bits, or 31 and 6 more
    index = (bits >> (shift - 4)) & 0x0F
    if index == 0x0F:  # an explicit 24-bit rate
        return (bits >> (shift - 28)) & 0xFFFFFF
    return _AAC_RATES[index] if index < len(_AAC_RATES) else 0
