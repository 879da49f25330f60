"""Which container a file is, from its first bytes (never its name or declared content type).

Matroska files other than WebM (`DocType` "matroska": .mka/.mkv) are refused, not treated as
WebM: the providers document WebM, and calling a Matroska file `audio/webm` would be a lie that
some decoders act on. A browser's MediaRecorder writes WebM, so speech uploads are not hurt.
"""

from __future__ import annotations

from dataclasses import dataclass

from llm_gateway.audio import ebml, mpeg
from llm_gateway.audio.errors import corrupt, unsupported

# ISO BMFF brands of still images (HEIF, AVIF) and camera raw: an `ftyp` box, but no audio.
_IMAGE_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
                           b"avif", b"avis", b"crx "})
_OGG_CODECS = {b"OpusHead": "opus", b"\x01vorbis": "vorbis", b"\x7fFLAC": "flac"}


@dataclass(frozen=True, slots=True)
class Sniffed:
    container: str
    codec: str | None
    audio_offset: int = 0  # where the audio starts (after ID3v2 tags), for MPEG and FLAC


def sniff(data: bytes) -> Sniffed:
    """The container of `data` (not empty); raises InvalidAudio for anything not accepted."""
    offset = mpeg.skip_id3v2(data)
    head = data[offset:offset + 64]
    if head.startswith(b"fLaC"):
        return Sniffed("flac", "flac", offset)
    if offset == 0:
        if data[4:8] == b"ftyp":
            if data[8:12] in _IMAGE_BRANDS:
                raise unsupported("This is an image (HEIF/AVIF), not audio.")
            return Sniffed("mp4", None)
        if data.startswith(b"OggS"):
            return Sniffed("ogg", _ogg_codec(data))
        if data.startswith(b"RIFF") and data[8:12] == b"WAVE":
            return Sniffed("wav", None)
        if data.startswith((b"RF64", b"BW64", b"RIFX")):
            raise unsupported("RF64/BW64 and big-endian RIFX WAV files are not accepted; send a standard WAV.")
        if data.startswith(ebml.EBML_MAGIC):
            doc_type = ebml.doc_type(data)
            if doc_type == "webm":
                return Sniffed("webm", None)
            if doc_type == "matroska":
                raise unsupported("Matroska (.mka/.mkv) files are not accepted; send WebM or another format.")
            if doc_type is None:
                raise corrupt("webm", "its EBML header is damaged")
            raise unsupported("This EBML file is neither WebM nor audio.")
    frame = mpeg.frame_header(data, offset)
    if frame is not None:
        return Sniffed("mp3", frame.codec, offset)
    if offset:
        raise corrupt("mp3", "an ID3 tag is followed by neither MPEG audio frames nor FLAC")
    raise unsupported("The file is not audio in an accepted format (its content was checked, not its name).")


def _ogg_codec(data: bytes) -> str:
    """The codec of the first logical stream, from its first packet (on the first page)."""
    if len(data) < 27 or data[4] != 0:
        raise corrupt("ogg", "its first page header is damaged")
    start = 27 + data[26]
    packet = data[start:start + 8]
    for magic, codec in _OGG_CODECS.items():
        if packet.startswith(magic):
            return codec
    if len(data) < start + 8:
        raise corrupt("ogg", "the file ends inside its first page")
    raise unsupported("This Ogg file carries neither Opus, Vorbis nor FLAC audio.")
