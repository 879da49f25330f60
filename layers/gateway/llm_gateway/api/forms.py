"""Multipart form data at the edge: the raw body (base64 from API Gateway), capped, then parsed.

API Gateway hands a `multipart/form-data` body to Lambda base64-encoded (the API lists it in
`BinaryMediaTypes`). The size cap is applied to the encoded text before anything is decoded, and
again to the decoded bytes, so an oversized body costs neither a copy nor a parse. The parsing is
`multipart` (defnull's, MIT): its `PushMultipartParser` works on bytes without a web framework and
has limits of its own (segment count and size, header size), which are set here.

What comes out is plain data: the text fields (each name with every value sent under it, as
`TranscriptionRequest.from_form` takes them) and at most one file. Every malformed input is an
OpenAI-style 400 (413 for size) that says what is wrong, never an exception from the library.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field

from multipart import (
    MultipartError,
    MultipartSegment,
    ParserLimitReached,
    PushMultipartParser,
    parse_options_header,
)

from llm_gateway.api.errors import InvalidRequest, PayloadTooLarge

FILE_FIELD = "file"
MAX_FIELDS = 64  # the SDK sends fewer than ten; a form with hundreds of parts is not a transcription
MAX_FIELD_BYTES = 16 * 1024  # the longest text field is `prompt` (4,000 characters)
MAX_BOUNDARY = 200  # RFC 2046 allows 70; clients stay well within
MULTIPART = "multipart/form-data"
# The charsets a text part may name, by the labels clients send: browsers' FormData and the
# SDKs (httpx, requests) name none (UTF-8), curl's `-F 'x=y;type=text/plain;charset=…'` names
# what its user writes, and these are the labels `multipart` itself knows without a codec lookup.
# Any other name reached Python's codec registry, which holds `utf-7`, `unicode_escape`, `rot13`
# and the like: text a client never means, read as something else (`\u0061uto` became `auto`).
CHARSETS = {
    "utf-8": "utf-8", "utf8": "utf-8",
    "us-ascii": "ascii", "ascii": "ascii",
    "iso-8859-1": "latin-1", "iso8859-1": "latin-1", "iso_8859-1": "latin-1", "latin1": "latin-1", "latin-1": "latin-1",
}


@dataclass(frozen=True, slots=True)
class FilePart:
    filename: str
    content_type: str | None
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Form:
    fields: dict[str, list[str]]
    file: FilePart | None


def event_body(body: str | None, is_base64: bool, max_bytes: int) -> bytes:
    """The request body as bytes, refused as too large before it is decoded when it clearly is."""
    if not body:
        return b""
    if is_base64:
        if len(body) > (max_bytes + 2) // 3 * 4 + 4:
            raise _too_large(max_bytes)
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequest("The request body is not valid base64.", code="invalid_body") from exc
    else:
        # A text body (a client that sent multipart without API Gateway treating it as binary):
        # Lambda's event holds it as a str; surrogates stand for bytes that were not UTF-8.
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
        raw = body.encode("utf-8", "surrogateescape")
    if len(raw) > max_bytes:
        raise _too_large(max_bytes)
    return raw


def boundary_of(content_type: str | None) -> str:
    """The boundary of a `multipart/form-data` Content-Type, or the 400 that says what is wrong."""
    if not content_type:
        raise InvalidRequest(f"Send the audio as {MULTIPART} (no Content-Type header was sent).",
                             code="invalid_content_type")
    kind, options = parse_options_header(content_type)
    if kind != MULTIPART:
        raise InvalidRequest(f"Content-Type must be {MULTIPART}, got {kind[:100]!r}.", code="invalid_content_type")
    boundary = str(options.get("boundary", ""))
    if not boundary or len(boundary) > MAX_BOUNDARY or not boundary.isascii() or "\n" in boundary:
        raise InvalidRequest(f"The {MULTIPART} Content-Type has no usable boundary parameter.",
                             code="invalid_content_type")
    return boundary


def parse_form(body: bytes, content_type: str | None, *, max_bytes: int) -> Form:
    """Parse a whole multipart body: text fields and at most one `file` part."""
    boundary = boundary_of(content_type)
    if len(body) > max_bytes:
        raise _too_large(max_bytes)
    if not body:
        raise InvalidRequest("The request body is empty; send the form with a 'file' (or 'file_id') field.",
                             code="invalid_body")
    parser = PushMultipartParser(boundary, content_length=len(body), max_segment_count=MAX_FIELDS,
                                 max_segment_size=max_bytes, strict=False)
    parts: list[tuple[MultipartSegment, bytearray]] = []
    try:
        with parser:  # leaving it closes the parser: an incomplete stream raises there
            for event in parser.parse(body):
                if isinstance(event, MultipartSegment):
                    parts.append((event, bytearray()))
                elif event:
                    parts[-1][1].extend(event)
    except ParserLimitReached as exc:
        raise InvalidRequest(f"The form has too many parts or an oversized header ({exc}).",
                             code="invalid_multipart") from None
    except MultipartError as exc:
        raise InvalidRequest(f"The {MULTIPART} body is malformed: {exc}.", code="invalid_multipart") from None
    return _collect(parts)


def _collect(parts: list[tuple[MultipartSegment, bytearray]]) -> Form:
    fields: dict[str, list[str]] = {}
    file: FilePart | None = None
    for segment, data in parts:
        name = segment.name or ""
        if name == FILE_FIELD:
            if file is not None:
                raise InvalidRequest("Send one 'file' per request.", param=FILE_FIELD, code="invalid_multipart")
            file = FilePart(filename=_filename(segment.filename), content_type=segment.content_type, data=bytes(data))
            continue
        if segment.filename is not None:
            raise InvalidRequest(f"Only 'file' may carry a file; '{name[:64]}' did.", param=name[:64] or None,
                                 code="invalid_multipart")
        if len(data) > MAX_FIELD_BYTES:
            raise InvalidRequest(f"The form field '{name[:64]}' is longer than {MAX_FIELD_BYTES} bytes.",
                                 param=name[:64] or None, code="field_too_large")
        codec = CHARSETS.get(segment.charset.strip().lower()) if segment.charset else "utf-8"
        if codec is None:
            raise InvalidRequest(f"The form field '{name[:64]}' names charset {segment.charset[:40]!r}; send UTF-8 "
                                 "(or name utf-8, us-ascii or iso-8859-1).", param=name[:64] or None,
                                 code="unsupported_charset")
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            encoding = f"text in the charset its part names ({segment.charset[:40]!r})" if segment.charset else "UTF-8 text"
            raise InvalidRequest(f"The form field '{name[:64]}' is not {encoding}.", param=name[:64] or None,
                                 code="invalid_multipart") from None
        fields.setdefault(name, []).append(text)
    return Form(fields=fields, file=file)


def _filename(name: str | None) -> str:
    """The client's file name, reduced to its last path component (it names the audio, nothing more)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    cleaned = "".join(ch for ch in base if ch.isprintable())[:255]
    return cleaned or "audio"


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header by name, whatever its case (API Gateway passes them as the client sent them)."""
    wanted = name.lower()
    for key, value in (headers or {}).items():
        if key.lower() == wanted:
            return value
    return None


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"Request body exceeds {max_bytes} bytes. Larger audio goes through an upload: POST /v1/audio/uploads, "
        "PUT the bytes to the URL it answers with, then send 'file_id' instead of 'file'.",
        code="body_too_large",
    )
