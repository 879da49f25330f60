"""Ogg pages: is every page complete (a truncated upload ends inside one)."""

from __future__ import annotations

from llm_gateway.audio.errors import corrupt

_PAGE_HEADER = 27
# A real 25 MB Ogg file has at most a few hundred thousand pages (one per 20 ms packet, as some
# browsers write them); a file of empty 27-byte pages would have a million and cost seconds.
MAX_PAGES = 500_000


def check_pages(data: bytes) -> None:
    """Walk the pages from the start; raises InvalidAudio (audio_corrupt) when a page is damaged
    or the file ends inside one. Each page moves at least 27 bytes on, so the walk is linear."""
    pos, end, pages = 0, len(data), 0
    while pos < end:
        pages += 1
        if pages > MAX_PAGES:
            raise corrupt("ogg", "it has far more pages than any real recording")
        if data[pos:pos + 4] != b"OggS" or pos + _PAGE_HEADER > end or data[pos + 4] != 0:
            if pos + _PAGE_HEADER > end and b"OggS".startswith(data[pos:pos + 4]):
                raise corrupt("ogg", "it ends inside a page header, so it looks truncated")
            raise corrupt("ogg", "a page header is damaged")
        segments = data[pos + 26]
        table = data[pos + _PAGE_HEADER:pos + _PAGE_HEADER + segments]
        if len(table) < segments:
            raise corrupt("ogg", "it ends inside a page header, so it looks truncated")
        pos += _PAGE_HEADER + segments + sum(table)
        if pos > end:
            raise corrupt("ogg", "it ends inside a page, so it looks truncated")
