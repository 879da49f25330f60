"""`probe(data)`: check an upload before any provider sees it, and read its duration.

The container comes from the bytes (`sniff`), never the filename. The duration comes from
tinytag for MP4 (never less than its AAC frames: `isobmff`), Ogg Vorbis and FLAC and compressed WAV
(never less than ADPCM's whole blocks: `riff`), from the granule or the packets for Ogg
Opus (`ogg`: whichever is longer), from STREAMINFO or the frames for FLAC (`flac`: whichever is
longer), from the samples of PCM and G.711 WAV (`riff`:
whatever the redundant header fields say), from counting every frame for MP3 (exact where tinytag
estimates, and the same walk finds garbage and truncation), and from our EBML walk for WebM. Where a file can
tell that it was cut short (a WAV data chunk, an MP4 box or an Ogg page running past the end, an
MP3 ending mid-frame or shorter than its Xing header, a WebM element running past the end) it is
audio_corrupt. Durations that are missing, zero, not finite, over a day, or that would mean a
bitrate no audio has (a big file claiming a second) are audio_corrupt too: the duration drives
limits and billing, so a header must not be able to shrink it cheaply.
"""

from __future__ import annotations

import math

from llm_gateway.audio import ebml, flac, isobmff, mpeg, ogg, riff
from llm_gateway.audio.errors import AUDIO_TOO_LONG, InvalidAudio, corrupt, empty
from llm_gateway.audio.info import MIME_TYPES, AudioInfo
from llm_gateway.audio.sniff import sniff
from llm_gateway.audio.tags import mp4_codec, read_tags

MAX_PLAUSIBLE_S = 24 * 3600.0
# 8 channels of 24-bit PCM at 192 kHz is ~37 Mbit/s; more than this means the duration is wrong.
MAX_PLAUSIBLE_BITRATE = 40_000_000


def probe(data: bytes) -> AudioInfo:
    """Container, codec, MIME type and duration of `data`; raises InvalidAudio and nothing else."""
    if not data:
        raise empty()
    try:
        return _probe(bytes(data))
    except InvalidAudio:
        raise
    except (MemoryError, RecursionError, ArithmeticError, LookupError, ValueError, TypeError):
        # A bug of ours on odd bytes must still be a 400 about the file, not a 500.
        raise corrupt("audio", "its headers could not be parsed") from None


def _probe(data: bytes) -> AudioInfo:
    sniffed = sniff(data)
    container, codec = sniffed.container, sniffed.codec
    if container == "webm":
        webm = ebml.read_webm(data)
        duration, codec = webm.duration_s, webm.codec
    else:
        if container == "wav":
            wave = riff.read_wave(data)
            codec = wave.codec
        elif container == "mp4":
            isobmff.check_boxes(data)
        elif container == "ogg":
            ogg.check_pages(data)
        tagged = read_tags(data, container) if container != "mp3" else None
        duration = (tagged.duration_s if tagged else None) or 0.0
        if container == "mp4" and tagged:
            codec = mp4_codec(tagged.codec_hint)
            if codec == "aac" and duration:  # a smaller movie header cannot shrink it
                duration = max(duration, isobmff.aac_duration_s(data))
        elif container == "wav" and wave.duration_s is not None:
            duration = wave.duration_s
        elif container == "wav" and duration:  # ADPCM: a smaller fact count cannot shrink it
            duration = max(duration, wave.floor_s)
        elif container == "ogg" and codec == "opus" and duration:
            duration = max(duration, ogg.opus_duration_s(data))  # a smaller last granule cannot shrink it
        elif container == "flac" and duration:
            # STREAMINFO's count is a header field decoders do not need: the frames decide, so a
            # smaller count cannot shrink the length (a larger one is believed, as for WebM).
            duration = max(duration, flac.frames_duration(data, sniffed.audio_offset))
        elif container == "mp3":
            # Every frame is counted (which also finds garbage and truncation), so a VBR file
            # without a Xing header, or one whose header lies, still gets its true length.
            duration = mpeg.walk_frames(data, sniffed.audio_offset).duration_s
    _check_plausible(container, duration, len(data))
    return AudioInfo(container=container, codec=codec, mime_type=MIME_TYPES[container],
                     duration_s=duration, size_bytes=len(data))


def _check_plausible(container: str, duration: float, size: int) -> None:
    if not math.isfinite(duration) or duration <= 0:
        raise corrupt(container, "its duration is missing or zero")
    if duration > MAX_PLAUSIBLE_S:
        raise corrupt(container, f"its header claims {duration / 3600:.0f} hours, more than any real recording")
    if size * 8 / duration > MAX_PLAUSIBLE_BITRATE:
        raise corrupt(container, "its header gives a duration far too short for its size")


def check_duration(info: AudioInfo, max_s: float) -> None:
    """Raises InvalidAudio (audio_too_long) when `info` is longer than `max_s` seconds."""
    if info.duration_s > max_s:
        raise InvalidAudio(
            f"The audio is {_seconds(info.duration_s)} long; at most {_seconds(max_s)} is accepted here.",
            code=AUDIO_TOO_LONG,
        )


def _seconds(value: float) -> str:
    if value < 120:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min {seconds} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"
