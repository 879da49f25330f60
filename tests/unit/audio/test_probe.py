"""Every committed fixture probes to its manifest entry, and the error cases say why."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from llm_gateway.api.errors import InvalidRequest
from llm_gateway.audio import (
    AUDIO_CORRUPT,
    AUDIO_FORMAT_UNSUPPORTED,
    AUDIO_TOO_LONG,
    AudioInfo,
    InvalidAudio,
    check_duration,
    probe,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "audio"
MANIFEST: dict[str, dict] = json.loads((FIXTURES / "manifest.json").read_text())["files"]
GOOD = sorted(name for name, entry in MANIFEST.items() if "error" not in entry)
BAD = sorted(name for name, entry in MANIFEST.items() if "error" in entry)


def _read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _error(data: bytes) -> InvalidAudio:
    with pytest.raises(InvalidAudio) as caught:
        probe(data)
    return caught.value


def test_manifest_lists_every_fixture_and_each_container():
    on_disk = {p.name for p in FIXTURES.iterdir()} - {"manifest.json", "make_audio.py", "__pycache__"}
    assert on_disk == set(MANIFEST)
    assert {MANIFEST[n]["container"] for n in GOOD} == {"flac", "mp3", "mp4", "ogg", "wav", "webm"}
    assert {MANIFEST["tone.ogg"]["codec"], MANIFEST["tone.opus"]["codec"]} == {"vorbis", "opus"}


@pytest.mark.parametrize("name", GOOD)
def test_fixture_probes_to_its_manifest_entry(name):
    expected = MANIFEST[name]
    data = _read(name)
    info = probe(data)
    assert (info.container, info.codec, info.mime_type) == (
        expected["container"], expected["codec"], expected["mime_type"])
    assert info.size_bytes == len(data)
    tolerance = max(0.1, 0.03 * expected["duration_s"])
    assert abs(info.duration_s - expected["duration_s"]) <= tolerance, info.duration_s


@pytest.mark.parametrize("name", BAD)
def test_bad_fixture_is_refused_with_its_code(name):
    error = _error(_read(name))
    assert error.code == MANIFEST[name]["error"]
    assert isinstance(error, InvalidRequest) and error.status == 400 and error.param == "file"
    assert error.body()["error"]["type"] == "invalid_request_error"


def test_the_name_does_not_matter_only_the_bytes():
    assert probe(_read("tone.mpga")) == probe(_read("tone.mp3"))  # the same bytes under another name
    assert _error(_read("not_audio.txt")).code == AUDIO_FORMAT_UNSUPPORTED


def test_unsupported_message_lists_the_accepted_formats():
    message = _error(b"%PDF-1.7 not audio at all").message
    for name in ("flac", "mp3", "mp4", "m4a", "mpeg", "mpga", "ogg", "wav", "webm"):
        assert name in message


def test_messages_never_echo_the_bytes():
    secret = b"SECRET-PAYLOAD-0123456789"
    for data in (secret, b"RIFF\xff\xff\xff\xffWAVE" + secret, _read("tone.mp3")[:300] + secret):
        assert "SECRET" not in _error(data).message


def test_duration_really_is_measured():
    """A longer file gets a longer duration: the comparison above is not vacuous."""
    assert probe(_read("speech_12s.flac")).duration_s == pytest.approx(12.0, abs=0.05)
    assert probe(_read("tone.flac")).duration_s == pytest.approx(2.0, abs=0.05)


def test_webm_without_duration_is_read_from_its_blocks():
    with_header, without = probe(_read("tone.webm")), probe(_read("tone_noduration.webm"))
    assert b"\x44\x89" in _read("tone.webm")[:300]
    assert without.duration_s == pytest.approx(with_header.duration_s, abs=0.05)


def test_matroska_is_refused_as_unsupported():
    matroska = _read("tone.webm").replace(b"\x42\x82\x84webm", b"\x42\x82\x88matroska", 1)
    # the header grew by 4 bytes: fix the EBML header's 1-byte size
    size_at = 4
    matroska = matroska[:size_at] + bytes([matroska[size_at] + 4]) + matroska[size_at + 1:]
    error = _error(matroska)
    assert error.code == AUDIO_FORMAT_UNSUPPORTED and "Matroska" in error.message


def test_webm_with_an_absurd_duration_is_corrupt():
    data = bytearray(_read("tone.webm"))
    at = data.index(b"\x44\x89\x88")
    data[at + 3:at + 11] = struct.pack(">d", float("nan"))
    assert _error(bytes(data)).code == AUDIO_CORRUPT


def test_a_header_that_claims_days_is_corrupt():
    flac = bytearray(_read("tone.flac"))
    # STREAMINFO follows "fLaC" and a 4-byte block header; total samples are its bytes 13.5-17
    info = 8
    flac[info + 13] |= 0x0F
    flac[info + 14:info + 18] = b"\xff\xff\xff\xff"  # 2**36 - 1 samples at 16 kHz: about 50 days
    error = _error(bytes(flac))
    assert error.code == AUDIO_CORRUPT and "hours" in error.message


def test_a_header_that_claims_a_blink_for_many_bytes_is_corrupt():
    wav = bytearray(_read("tone.wav"))
    rate_at = wav.index(b"fmt ") + 8 + 4
    wav[rate_at:rate_at + 4] = b"\xff\xff\xff\xff"  # 32 KB of samples at 4.3 GHz: 7 µs
    error = _error(bytes(wav))
    assert error.code == AUDIO_CORRUPT and "too short for its size" in error.message


def test_a_plausible_but_long_header_is_believed():
    wav = bytearray(_read("tone.wav"))
    rate_at = wav.index(b"fmt ") + 8 + 4
    wav[rate_at:rate_at + 4] = (1).to_bytes(4, "little")  # 32000 one-byte samples at 1 Hz
    assert probe(bytes(wav)).duration_s == pytest.approx(32_000)


def test_streaming_wav_with_placeholder_sizes_uses_the_bytes_present():
    wav = bytearray(_read("tone.wav"))
    data_at = wav.index(b"data")
    wav[4:8] = wav[data_at + 4:data_at + 8] = b"\xff\xff\xff\xff"
    assert probe(bytes(wav)).duration_s == pytest.approx(2.0, abs=0.01)


@pytest.mark.parametrize("name", ["tone.m4a", "tone.ogg", "tone.opus", "tone.webm", "tone_noduration.webm"])
def test_cut_short_uploads_are_corrupt(name):
    data = _read(name)
    assert _error(data[: len(data) * 2 // 3]).code == AUDIO_CORRUPT


def test_mp3_cut_on_a_frame_boundary_is_caught_by_its_info_header():
    mp3 = _read("tone.mp3")
    start = mp3.index(b"\xff", 10)  # the first frame, after the ID3 tag
    header = mp3[start:start + 4]
    # frames of this CBR file repeat the same header; cut just before one of them two thirds in
    cut = mp3.index(header[:2], len(mp3) * 2 // 3)
    assert _error(mp3[:cut]).code == AUDIO_CORRUPT


def test_mp3_duration_counts_frames_not_the_header():
    """Zeroing the Info header's frame count changes nothing: every frame is counted."""
    mp3 = bytearray(_read("tone.mp3"))
    at = mp3.index(b"Info")
    mp3[at + 8:at + 12] = b"\0\0\0\1"
    assert probe(bytes(mp3)).duration_s == pytest.approx(2.0, abs=0.1)


def test_check_duration():
    info = AudioInfo(container="wav", codec="pcm", mime_type="audio/wav", duration_s=12.0, size_bytes=1)
    check_duration(info, 12.0)
    check_duration(info, 600)
    with pytest.raises(InvalidAudio) as caught:
        check_duration(info, 10.0)
    assert caught.value.code == AUDIO_TOO_LONG and caught.value.status == 400 and caught.value.param == "file"
    assert "12.0 s" in caught.value.message and "10.0 s" in caught.value.message


def test_check_duration_words_long_limits_in_minutes():
    info = AudioInfo(container="mp3", codec="mp3", mime_type="audio/mpeg", duration_s=3725.0, size_bytes=1)
    with pytest.raises(InvalidAudio) as caught:
        check_duration(info, 1500)
    assert "1 h 2 min" in caught.value.message and "25 min 0 s" in caught.value.message


def test_audio_info_is_frozen():
    info = probe(_read("tone.wav"))
    with pytest.raises(AttributeError):
        info.duration_s = 1.0  # type: ignore[misc]


def _wav(tag: int, *, channels: int = 1, rate: int = 16_000, bits: int = 8, block_align: int | None = None,
         byte_rate: int | None = None, data: bytes = b"\x80" * 32_000, fact: int | None = None,
         data_size: int | None = None) -> bytes:
    frame = channels * ((bits + 7) // 8)
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * frame if byte_rate is None else byte_rate,
                      frame if block_align is None else block_align, bits)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if fact is not None:
        chunks += b"fact" + struct.pack("<II", 4, fact)
    chunks += b"data" + struct.pack("<I", len(data) if data_size is None else data_size) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def test_pcm_wav_length_comes_from_its_samples_not_its_block_align():
    """Decoders count PCM samples by channels and bits; a block align of 200 (the true one is 1)
    made the gateway measure 2 s of audio as 0.01 s, shrinking its limits and its cost 200-fold."""
    assert probe(_wav(0x0001)).duration_s == pytest.approx(2.0)
    assert probe(_wav(0x0001, block_align=200)).duration_s == pytest.approx(2.0)


def test_pcm_wav_with_placeholder_sizes_ignores_its_byte_rate_field():
    streaming = _wav(0x0001, byte_rate=3_200_000, data_size=0xFFFFFFFF)
    assert probe(streaming).duration_s == pytest.approx(2.0)


@pytest.mark.parametrize("tag", [0x0006, 0x0007])
def test_g711_wav_length_comes_from_its_bytes_not_its_fact_chunk(tag):
    """A-law and mu-law are one byte a sample: a fact chunk claiming 200 samples made 2 s read as
    12.5 ms; one with no fact chunk (many writers leave it out) read as no audio and was refused."""
    assert probe(_wav(tag, fact=200)).duration_s == pytest.approx(2.0)
    assert probe(_wav(tag)).duration_s == pytest.approx(2.0)


def test_a_second_format_chunk_does_not_shorten_a_wav():
    """Decoders read the first `fmt ` chunk (ffmpeg's wavdec: "only parse the first 'fmt ' tag
    found"); the last one was used, so a second claiming 48 kHz, 8 channels, 32-bit made 2 s of
    8 kHz mono read as 2/192 s (found in review)."""
    first = _wav(0x0001, rate=8_000, data=b"\x80" * 16_000)
    second = struct.pack("<HHIIHH", 1, 8, 48_000, 48_000 * 32, 32, 32)
    fmt_end = 12 + 8 + 16
    doubled = first[:fmt_end] + b"fmt " + struct.pack("<I", len(second)) + second + first[fmt_end:]
    doubled = doubled[:4] + struct.pack("<I", len(doubled) - 8) + doubled[8:]
    assert probe(first).duration_s == pytest.approx(2.0)
    assert probe(doubled).duration_s == pytest.approx(2.0)


def test_pcm_wav_with_no_channels_or_sample_size_is_corrupt():
    assert _error(_wav(0x0001, channels=0)).code == AUDIO_CORRUPT
    assert _error(_wav(0x0001, bits=0)).code == AUDIO_CORRUPT


def _flac_claiming(name: str, samples: int) -> bytes:
    flac = bytearray(_read(name))
    info = 8  # STREAMINFO's body, after "fLaC" and its 4-byte block header; total samples: bits 108-143
    flac[info + 13] = (flac[info + 13] & 0xF0) | (samples >> 32)
    flac[info + 14:info + 18] = (samples & 0xFFFFFFFF).to_bytes(4, "big")
    return bytes(flac)


@pytest.mark.parametrize(("name", "seconds"), [("tone.flac", 2.0), ("speech_12s.flac", 12.0)])
def test_flac_length_comes_from_its_frames_not_a_smaller_streaminfo_count(name, seconds):
    """Decoders play every frame whatever STREAMINFO's total says: a total of 320 samples made the
    gateway measure 2 s of audio as 0.02 s (and 12 s as 0.02 s), shrinking its limits and cost."""
    assert probe(_flac_claiming(name, 320)).duration_s == pytest.approx(seconds)
    assert probe(_read(name)).duration_s == pytest.approx(seconds)


def test_a_flac_header_may_still_claim_more_than_its_frames():
    """The larger of the two counts, as for WebM: a header can lengthen the audio, never shorten it."""
    assert probe(_flac_claiming("tone.flac", 16_000 * 60)).duration_s == pytest.approx(60.0)


def test_a_file_of_flac_sync_codes_is_refused_quickly():
    from llm_gateway.audio import flac

    head = _read("tone.flac")
    start = flac.audio_start(head, 0)
    error = _error(head[:start] + b"\xff\xf8" * (flac.MAX_CANDIDATES + 1))
    assert error.code == AUDIO_CORRUPT and "frame headers" in error.message


def _opus_whose_last_granule_is(granule: int) -> bytes:
    opus = bytearray(_read("tone.opus"))
    last = opus.rindex(b"OggS")
    opus[last + 6:last + 14] = granule.to_bytes(8, "little")  # the CRC is not checked, by us or tinytag
    return bytes(opus)


def test_ogg_opus_length_comes_from_its_packets_not_a_smaller_last_granule():
    """A decoder plays every packet; the last page's granule position only trims the last one.
    A granule claiming 10 ms made the gateway measure 2 s of Opus as 0.01 s."""
    head = _read("tone.opus").index(b"OpusHead")
    preskip = int.from_bytes(_read("tone.opus")[head + 10:head + 12], "little")
    assert probe(_opus_whose_last_granule_is(preskip + 480)).duration_s == pytest.approx(2.0, abs=0.03)
    assert probe(_read("tone.opus")).duration_s == pytest.approx(2.0, abs=0.03)


@pytest.mark.parametrize("name", ["tone.m4a", "tone.mp4"])
def test_aac_in_mp4_length_comes_from_its_frames_not_a_smaller_movie_header(name):
    """Decoders play every AAC frame (1,024 samples each); the movie header's duration is only a
    summary. One claiming 10 ms made the gateway measure 2 s of AAC as 0.01 s."""
    mp4 = bytearray(_read(name))
    mvhd = mp4.index(b"mvhd") + 4  # version 0: flags, two times, then the timescale and duration
    timescale = int.from_bytes(mp4[mvhd + 12:mvhd + 16], "big")
    mp4[mvhd + 16:mvhd + 20] = (timescale // 100).to_bytes(4, "big")
    assert probe(bytes(mp4)).duration_s == pytest.approx(2.0, abs=0.1)
    assert probe(_read(name)).duration_s == pytest.approx(2.0)


@pytest.mark.parametrize("name", ["tone.m4a", "tone.mp4"])
def test_an_mp4s_aac_frames_are_timed_at_its_configs_rate_not_its_sample_entrys(name):
    """The frame count was divided by the sample entry's rate field, which decoders ignore (they
    read the AudioSpecificConfig in `esds`): 65535 there made 2 s of 16 kHz AAC measure 0.47 s
    (found in review)."""
    mp4 = bytearray(_read(name))
    entry = mp4.index(b"stsd") + 4 + 8
    mp4[entry + 32:entry + 34] = (65535).to_bytes(2, "big")
    mvhd = mp4.index(b"mvhd") + 4
    timescale = int.from_bytes(mp4[mvhd + 12:mvhd + 16], "big")
    mp4[mvhd + 16:mvhd + 20] = (timescale // 10).to_bytes(4, "big")
    assert probe(bytes(mp4)).duration_s == pytest.approx(2.0, abs=0.1)


def test_filler_boxes_cannot_hide_an_mp4s_track():
    """Boxes past the 10,000 read at one level were dropped without a word: a moov opening with
    10,000 empty `free` boxes hid its track, the frame count was never made, and a movie header
    claiming 0.2 s was believed (found in review: 2 s measured as 0.1 s). Such a file is refused."""
    mp4 = bytearray(_read("tone.m4a"))
    mvhd = mp4.index(b"mvhd") + 4
    timescale = int.from_bytes(mp4[mvhd + 12:mvhd + 16], "big")
    mp4[mvhd + 16:mvhd + 20] = (timescale // 10).to_bytes(4, "big")
    moov = mp4.index(b"moov") - 4
    size = int.from_bytes(mp4[moov:moov + 4], "big")
    filler = b"\x00\x00\x00\x08free" * 10_000
    padded = (mp4[:moov] + (size + len(filler)).to_bytes(4, "big") + b"moov" + filler
              + mp4[moov + 8:moov + size] + mp4[moov + size:])
    assert _error(bytes(padded)).code == AUDIO_CORRUPT


def test_a_flac_whose_streaminfo_names_other_channels_is_still_measured_by_its_frames():
    """Frames of another channel count than STREAMINFO's were not counted, so one flipped bit there
    (and a small sample total) made 12 s measure 4 s (found in review). Decoders follow each
    frame's own channel count; frames are counted whatever STREAMINFO says."""
    flac = bytearray(_flac_claiming("speech_12s.flac", 32_000))
    info = 8
    packed = int.from_bytes(flac[info + 10:info + 13], "big") ^ (1 << 1)  # channels less one: bit 1 of these 24
    flac[info + 10:info + 13] = packed.to_bytes(3, "big")
    assert probe(bytes(flac)).duration_s == pytest.approx(12.0)


def _ima_adpcm_wav(blocks: int, *, fact: int) -> bytes:
    """Mono IMA ADPCM at 16 kHz in 256-byte blocks (505 samples each), with a fact chunk."""
    fmt = struct.pack("<HHIIHHHH", 0x0011, 1, 16_000, 8_110, 256, 4, 2, 505)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" + struct.pack("<II", 4, fact)
    data = (b"\x00\x00\x00\x00" + b"\x77" * 252) * blocks
    chunks += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def test_adpcm_wav_length_is_at_least_its_whole_blocks_not_a_smaller_fact_count():
    """A decoder decodes every block of an ADPCM WAV (505 samples per 256 bytes here); the fact
    chunk's count only trims the last. A count of 505 made 64 blocks (2.02 s) measure 0.03 s."""
    honest = probe(_ima_adpcm_wav(64, fact=64 * 505 - 100))
    assert honest.duration_s == pytest.approx((64 * 505 - 100) / 16_000)
    assert probe(_ima_adpcm_wav(64, fact=505)).duration_s == pytest.approx(63 * 505 / 16_000)
