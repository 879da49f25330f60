"""Ogg pages: is every page complete (a truncated upload ends inside one); how long is its Opus.

A decoder plays every Opus packet; the last page's granule position (where tinytag reads the
length) only tells it how many samples of the last packet to drop. So a granule position
smaller than the packets would shrink the measured length, and with it the limits and the cost:
`opus_duration_s` counts the packets' own lengths (each one's TOC byte, RFC 6716 §3.1).
"""

from __future__ import annotations

from llm_gateway.audio.ebml import opus_packet_ns
from llm_gateway.audio.errors import corrupt

_PAGE_HEADER = 27
# A real 25 MB Ogg file has at most a few hundred thousand pages (one per 20 ms packet, as some
# browsers write them); a file of empty 27-byte pages would have a million and cost seconds.
MAX_PAGES = 500_000
# Opus packets counted before the file is refused: a day (the plausibility cap) of the usual
# 20 ms packets is 4.3 million; pages of 255 empty laces would be one packet a byte, and each
# costs a Python step (an 8 MB file of them took 3.7 s).
MAX_PACKETS = 5_000_000


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


def opus_duration_s(data: bytes) -> float:
    """Seconds of Opus audio in the first logical stream's packets but the last (which the last
    granule position may trim), less OpusHead's pre-skip: a length an honest granule position
    never falls below. `data` has passed `check_pages`, so every page header read here is whole."""
    pos, end, serial = 0, len(data), data[14:18]
    packets, ns, last_ns, toc, continued = 0, 0, 0, b"", False
    while pos + _PAGE_HEADER <= end:
        segments = data[pos + 26]
        body = pos + _PAGE_HEADER + segments
        mine = data[pos + 14:pos + 18] == serial
        for lace in data[pos + _PAGE_HEADER:body]:
            if mine:
                if not continued:  # a packet starts here
                    packets, toc = packets + 1, b""
                    if packets > MAX_PACKETS:
                        raise corrupt("ogg", "it has far more packets than any real recording")
                if len(toc) < 2:
                    toc += data[body:body + min(lace, 2 - len(toc))]
                continued = lace == 255
                if not continued and packets > 2:  # the first two are OpusHead and OpusTags
                    last_ns = opus_packet_ns(toc)
                    ns += last_ns
            body += lace
        pos = body
    head = data[_PAGE_HEADER + data[26]:]
    pre_skip = int.from_bytes(head[10:12], "little")
    return max(0.0, (ns - last_ns) / 1e9 - pre_skip / 48_000)
