"""MP4/M4A (ISO BMFF) top-level boxes: is the file all there, and does it have a `moov`."""

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
        if pos + 8 > end:
            raise corrupt("mp4", "it ends inside a box header, so it looks truncated")
        size, box = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        header = 8
        if size == 1:  # 64-bit size follows
            if pos + 16 > end:
                raise corrupt("mp4", "it ends inside a box header, so it looks truncated")
            size, header = int.from_bytes(data[pos + 8:pos + 16], "big"), 16
        elif size == 0:  # runs to the end of the file
            size = end - pos
        if size < header:
            raise corrupt("mp4", "a box has an impossible size")
        if pos + size > end:
            raise corrupt("mp4", "it is shorter than its own boxes say, so it looks truncated")
        moov = moov or box == b"moov"
        pos += size
    if not moov:
        raise corrupt("mp4", "it has no 'moov' box describing the media")
