"""Hostile bytes: `probe` answers AudioInfo or InvalidAudio, and nothing else, quickly, and
without allocating far beyond its input."""

from __future__ import annotations

import math
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_gateway.audio import MIME_TYPES, AudioInfo, InvalidAudio, probe

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "audio"
SAMPLES = {p.name: p.read_bytes() for p in sorted(FIXTURES.iterdir())
           if p.suffix not in (".py", ".json") and p.stat().st_size}
EBML_WEBM = bytes.fromhex("1a45dfa3 9f 4286 81 01 42f7 81 01 42f2 81 04 42f3 81 08 4282 84") + b"webm" + bytes.fromhex(
    "4287 81 04 4285 81 02")
PREFIXES = [b"ID3\x04\x00\x00\x00\x00\x00\x00", b"\xff\xfb\x90\x64", b"\xff\xf3\x40\xc4", b"fLaC\x00\x00\x00\x22",
            b"OggS\x00\x02", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"\x00\x00\x00\x1cftypM4A ", EBML_WEBM,
            EBML_WEBM + b"\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff"]
FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


def _check(data: bytes) -> None:
    try:
        info = probe(data)
    except InvalidAudio as error:
        assert error.code in {"audio_empty", "audio_format_unsupported", "audio_corrupt"}
        assert error.status == 400 and error.param == "file"
        return
    assert isinstance(info, AudioInfo)
    assert info.mime_type == MIME_TYPES[info.container]
    assert math.isfinite(info.duration_s) and 0 < info.duration_s <= 24 * 3600
    assert info.size_bytes == len(data)


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data):
    _check(data)


@FUZZ
@given(st.sampled_from(PREFIXES), st.binary(max_size=4096))
def test_random_bytes_after_a_magic_number(prefix, tail):
    _check(prefix + tail)


@FUZZ
@given(st.sampled_from(sorted(SAMPLES)), st.floats(0, 1))
def test_random_truncations_of_every_fixture(name, fraction):
    data = SAMPLES[name]
    _check(data[: int(len(data) * fraction)])


@FUZZ
@given(st.sampled_from(sorted(SAMPLES)), st.lists(st.tuples(st.floats(0, 1, exclude_max=True),
                                                            st.integers(0, 255)), min_size=1, max_size=12))
def test_random_byte_flips_of_every_fixture(name, flips):
    data = bytearray(SAMPLES[name])
    for where, value in flips:
        data[int(where * len(data))] = value
    _check(bytes(data))


@FUZZ
@given(st.sampled_from(sorted(SAMPLES)), st.floats(0, 1, exclude_max=True), st.binary(min_size=1, max_size=64))
def test_random_insertions_into_every_fixture(name, where, inserted):
    data = SAMPLES[name]
    at = int(where * len(data))
    _check(data[:at] + inserted + data[at:])


def _mp3_frame() -> bytes:
    mp3 = SAMPLES["tone.mp3"]
    start = mp3.index(b"\xff", 10)
    return mp3[start:start + 4]


def _ogg_headers() -> bytes:
    """The first two pages of tone.opus (OpusHead, OpusTags): what makes the rest get read."""
    opus = SAMPLES["tone.opus"]
    second = opus.index(b"OggS", 4)
    return opus[: opus.index(b"OggS", second + 4)]


def _flac_frame_header() -> bytes:
    """A valid 6-byte FLAC frame header (256 samples at 16 kHz, 16-bit mono; CRC-8 included)."""
    from llm_gateway.audio.flac import _crc8

    header = b"\xff\xf8\x85\x08\x00"
    return header + bytes([_crc8(header, 0, len(header))])


def _ogg_page_of_tiny_packets() -> bytes:
    """A page of tone.opus's stream holding 255 one-byte Opus packets (each a 20 ms CELT frame)."""
    serial = _ogg_headers()[14:18]
    return (b"OggS\x00\x00" + (10**6).to_bytes(8, "little") + serial + b"\0" * 8 + bytes([255]) + b"\x01" * 255
            + b"\xfc" * 255)


MB = 1024 * 1024
# MPEG-2.5 Layer III, 8 kbit/s, 8 kHz, mono: the smallest frame there is (72 bytes)
SMALLEST_MPEG_FRAME = b"\xff\xe3\x18\xc4" + b"\0" * 68
HOSTILE = {
    "two megabytes of the smallest MPEG frames": SMALLEST_MPEG_FRAME * (2 * MB // 72),
    "Ogg Opus headers, then empty pages": _ogg_headers() + (b"OggS\x00\x00" + b"\0" * 20 + b"\x00") * (2 * MB // 27),
    "MP4 of empty boxes, then an empty moov": b"\x00\x00\x00\x10ftypM4A \x00\x00\x00\x00"
    + b"\x00\x00\x00\x08free" * (2 * MB // 8) + b"\x00\x00\x00\x08moov",
    "all 0xFF after one MPEG header": _mp3_frame() + b"\xff" * (2 * MB),
    "MPEG headers, each followed by garbage": (_mp3_frame() + b"\x00" * 60) * (2 * MB // 64),
    "ID3 tags claiming huge sizes": b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + b"\0" * (2 * MB),
    "Ogg Opus headers, then pages of 1-byte packets": _ogg_headers() + _ogg_page_of_tiny_packets() * (2 * MB // 537),
    "empty Ogg pages": (b"OggS\x00\x00" + b"\0" * 20 + b"\x00") * (2 * MB // 27),
    "WebM of 2-byte Void elements": EBML_WEBM + b"\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff"
    + b"\xec\x80" * MB,
    "WebM Tracks of 2-byte children": EBML_WEBM + b"\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff"
    + b"\x16\x54\xae\x6b\x01" + (2 * MB).to_bytes(7, "big") + b"\xec\x80" * MB,
    "WAV of empty chunks": b"RIFF\xff\xff\xff\xffWAVE" + b"JUNK\x00\x00\x00\x00" * (2 * MB // 8),
    "MP4 of empty boxes": b"\x00\x00\x00\x10ftypM4A \x00\x00\x00\x00" + b"\x00\x00\x00\x08free" * (2 * MB // 8),
    "FLAC with a huge comment count": b"fLaC\x84\x00\x00\x08" + b"\0\0\0\0\xff\xff\xff\xff" + b"\0" * (2 * MB),
    "FLAC frame headers with nothing between": SAMPLES["tone.flac"][:SAMPLES["tone.flac"].index(b"\xff\xf8")]
    + _flac_frame_header() * (2 * MB // 6),
    "random-looking bytes": bytes((i * 2654435761 >> 13) & 0xFF for i in range(2 * MB)),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_megabytes_are_quick_and_small(name):
    data = HOSTILE[name]
    began = time.perf_counter()
    _check(data)
    elapsed = time.perf_counter() - began
    tracemalloc.start()
    try:
        _check(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # generous for a shared 2-core machine; on an idle one each takes well under a second
    assert elapsed < 5, f"{name}: {elapsed:.1f} s for {len(data) / MB:.0f} MiB"
    assert peak < 2 * len(data) + 8 * MB, f"{name}: peak {peak / MB:.0f} MiB for {len(data) / MB:.0f} MiB"


def test_an_ogg_opus_stream_of_empty_packets_is_refused_past_its_packet_cap(monkeypatch):
    """Each Opus packet is a Python step of the length count (`ogg.opus_duration_s`), and pages of
    255 empty laces make one packet a byte: 8 MB took 3.7 s, a 200 MB upload minutes (found in
    review). Past `MAX_PACKETS` (a day of 20 ms packets and more) the file is refused."""
    from llm_gateway.audio import ogg
    from llm_gateway.audio.errors import AUDIO_CORRUPT, InvalidAudio

    monkeypatch.setattr(ogg, "MAX_PACKETS", 1_000)
    serial = _ogg_headers()[14:18]
    empty_laces = b"OggS\x00\x00" + (10**6).to_bytes(8, "little") + serial + b"\0" * 8 + bytes([255]) + b"\x00" * 255
    data = _ogg_headers() + empty_laces * 8  # 2,040 packets
    ogg.check_pages(data)
    with pytest.raises(InvalidAudio) as refused:
        ogg.opus_duration_s(data)
    assert refused.value.code == AUDIO_CORRUPT
    assert ogg.opus_duration_s(_ogg_headers() + empty_laces) == 0.0  # under the cap: read as before
