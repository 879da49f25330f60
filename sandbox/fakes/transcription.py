"""Shared pieces of the transcription fakes: multipart bodies, fetching audio by URL, and the
synthesized transcript each provider then shapes into its own format.

Transcripts are synthesized, not recognized: the fake reports what it "heard" (container and
duration from `audio.probe`), e.g. "Fake transcript of 2.0 seconds of wav audio.", with one
segment per 5 s and one word timing per word, spread evenly over the duration. Deterministic, so
tests can assert on them.
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

import httpx

from sandbox.fakes.audio import AudioInfo, probe
from sandbox.fakes.wire import BadRequest

SEGMENT_S = 5.0
MAX_UPLOAD = 25 * 1024 * 1024  # OpenAI's and Groq's (free tier) direct-upload limit
ISO_NAMES = {"en": "english", "fr": "french", "de": "german", "es": "spanish", "it": "italian",
             "pt": "portuguese", "nl": "dutch", "ja": "japanese"}  # fmt: skip


# --- multipart/form-data ------------------------------------------------------------------------


@dataclass
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Form:
    """A parsed multipart body: text fields (repeatable) and file parts."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, Upload] = field(default_factory=dict)

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else default

    def getlist(self, name: str) -> list[str]:
        """`name` and `name[]` (openai-python and groq-python send arrays as `name[]` parts;
        mistralai repeats `name`)."""
        return [*self.fields.get(name, []), *self.fields.get(f"{name}[]", [])]

    def names(self) -> set[str]:
        return {*self.fields, *self.files}


_DISPOSITION = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"|(\w+)=([^;\s]+)')


def parse_multipart(content_type: str, raw: bytes) -> Form:
    """Parse a multipart/form-data body (or a urlencoded form: httpx sends one when there is no
    file part, e.g. Groq's `url`; the real APIs accept both); BadRequest when it is neither."""
    if (content_type or "").lower().startswith("application/x-www-form-urlencoded"):
        form = Form()
        for name, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
            form.fields.setdefault(name, []).append(value)
        return form
    found = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not content_type.lower().startswith("multipart/form-data") or not found:
        raise BadRequest("Could not parse multipart form: expected Content-Type multipart/form-data with a boundary")
    delimiter = b"--" + found.group(1).encode("latin-1")
    chunks = raw.split(delimiter)
    if len(chunks) < 3:
        raise BadRequest("Could not parse multipart form: no parts")
    form = Form()
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, sep, body = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise BadRequest("Could not parse multipart form: a part has no header")
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        params: dict[str, str] = {}
        for m in _DISPOSITION.finditer(headers.get("content-disposition", "")):
            params[(m.group(1) or m.group(3)).lower()] = m.group(2) if m.group(1) else m.group(4)
        name = params.get("name")
        if name is None:
            continue
        if "filename" in params:
            form.files[name] = Upload(params["filename"], headers.get("content-type", ""), body)
        else:
            form.fields.setdefault(name, []).append(body.decode("utf-8", "replace"))
    return form


# --- audio by URL -------------------------------------------------------------------------------


def fetch_audio(url: str, limit: int | None = None) -> bytes:
    """The bytes behind `url`: a `data:` URL decoded, an http(s) URL fetched (in tests: loopback
    only, tests/conftest.py enforces it). BadRequest when it cannot be read."""
    if url.startswith("data:"):
        head, sep, payload = url.partition(",")
        if not sep:
            raise BadRequest("invalid data URL")
        try:
            return base64.b64decode(payload, validate=False) if head.endswith(";base64") else unquote_to_bytes(payload)
        except ValueError as exc:
            raise BadRequest(f"invalid data URL: {exc}") from None
    if not url.startswith(("http://", "https://")):
        raise BadRequest(f"unsupported URL scheme: {url[:40]}")
    try:
        response = httpx.get(url, timeout=10, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise BadRequest(f"failed to retrieve media from URL: {exc}") from None
    if response.status_code != 200:
        raise BadRequest(f"failed to retrieve media from URL: HTTP {response.status_code}")
    if limit is not None and len(response.content) > limit:
        raise BadRequest("file too large", kind="too_large")
    return response.content


def decode_base64(data: str) -> bytes:
    """Standard or URL-safe base64, padded or not (google-genai sends URL-safe base64)."""
    data = data.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=False)
    except ValueError as exc:
        raise BadRequest(f"Invalid value (base64 decoding failed): {exc}") from None


# --- the synthesized transcript -----------------------------------------------------------------


@dataclass
class Segment:
    id: int
    start: float
    end: float
    text: str


@dataclass
class Word:
    word: str
    start: float
    end: float


@dataclass
class Transcript:
    text: str
    language: str  # ISO-639-1
    duration: float
    segments: list[Segment]
    words: list[Word]


def heard(data: bytes) -> AudioInfo:
    """Probe the audio; BadRequest (the provider's invalid-file error) when it is not audio."""
    info = probe(data)
    if not data:
        raise BadRequest("The audio file is empty.", kind="bad_audio")
    if not info.ok:
        raise BadRequest("The audio file could not be decoded or its format is not supported.", kind="bad_audio")
    return info


def synthesize(info: AudioInfo, *, translate: bool = False, language: str | None = None) -> Transcript:
    """The deterministic transcript of `info`: one sentence per 5 s segment."""
    duration = max(info.duration_s, 0.01)
    lang = "en" if translate else (language or "en").lower()[:2]
    suffix = " (translated to English)" if translate else ""
    count = max(1, math.ceil(duration / SEGMENT_S))
    segments: list[Segment] = []
    words: list[Word] = []
    for index in range(count):
        start, end = index * SEGMENT_S, min(duration, (index + 1) * SEGMENT_S)
        if index == 0:
            text = f"Fake transcript of {duration:.1f} seconds of {info.container} audio{suffix}."
        else:
            text = f"Segment {index + 1} from {start:.1f} to {end:.1f} seconds."
        segments.append(Segment(index, round(start, 3), round(end, 3), text))
        tokens = text.split()
        step = (end - start) / len(tokens)
        words += [Word(w, round(start + i * step, 3), round(start + (i + 1) * step, 3)) for i, w in enumerate(tokens)]
    return Transcript(" ".join(s.text for s in segments), lang, round(duration, 3), segments, words)


def _clock(seconds: float, sep: str) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{millis:03d}"


def render_srt(t: Transcript) -> str:
    return "".join(
        f"{s.id + 1}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text}\n\n" for s in t.segments
    )


def render_vtt(t: Transcript) -> str:
    return "WEBVTT\n\n" + "".join(f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text}\n\n" for s in t.segments)


def whisper_segments(t: Transcript) -> list[dict[str, Any]]:
    """Segments in Whisper's verbose shape (OpenAI verbose_json, Groq, Replicate's cog-whisper)."""
    return [
        {"id": s.id, "seek": int(s.start * 100), "start": s.start, "end": s.end, "text": " " + s.text,
         "tokens": [50364 + i for i in range(len(s.text.split()))], "temperature": 0.0,
         "avg_logprob": -0.2, "compression_ratio": 1.2, "no_speech_prob": 0.01}
        for s in t.segments
    ]  # fmt: skip


def language_name(code: str) -> str:
    return ISO_NAMES.get(code, code)


@dataclass
class AudioReply:
    """A transcription answer: a JSON body (dict) or a text one (str), and what it bills."""

    body: Any
    content_type: str = "application/json"
    billed_seconds: float = 0.0
    extra_headers: dict[str, str] = field(default_factory=dict)
