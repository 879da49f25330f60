"""OpenAI audio request models (transcriptions, translations, uploads, jobs), validated at the edge.

Transcription requests arrive as multipart form data: every field is a string (or repeated, for
`timestamp_granularities[]`), so `TranscriptionRequest.from_form` maps the form onto the model and
pydantic does the rest. Unknown fields (the SDK's `stream`, `include[]`, `chunking_strategy`) are
ignored as OpenAI's own server tolerates them; `stream=true` is refused because no answer here
streams. Form values are text, so that model parses numbers and booleans from text
(`temperature=0.2`, `stream=false`, as the SDK sends them); the JSON bodies (uploads, jobs) are
typed strictly instead, as `api/schemas.py` explains: `"translate": "yes"` is a 400.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationInfo,
    field_validator,
)

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]
Granularity = Literal["word", "segment"]
RESPONSE_FORMATS: tuple[ResponseFormat, ...] = ("json", "text", "srt", "vtt", "verbose_json")
MAX_PROMPT_CHARS = 4_000
MAX_UPLOAD_BYTES = 1024 * 1024 * 1024  # what `POST /v1/audio/uploads` may announce at most (1 GiB)
# A media type as an HTTP header carries it (RFC 9110 §8.3.1: `type/subtype`, tokens, then
# parameters in visible ASCII and spaces): the upload answer's `Content-Type` is signed into its URL
# and must be sent as it is, so a value no header can carry would only fail at S3.
# The whitespace before `;` is OWS (space or tab), not `\s`: that also matched CR, LF and Unicode
# spaces, so "audio/mpeg\r\n;X-Evil: 1" passed.
MEDIA_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+([ \t]*;[\x20-\x7e]*)?")


class _Edge(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)


class TranscriptionRequest(_Edge):
    """`POST /v1/audio/transcriptions` and `/v1/audio/translations` (without the audio itself)."""

    model: str = Field(min_length=1, max_length=256)
    language: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z]{2,4})?$")
    prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    temperature: float | None = Field(default=None, ge=0, le=1)
    response_format: ResponseFormat = "json"
    timestamp_granularities: tuple[Granularity, ...] = ()
    file_id: str | None = Field(default=None, min_length=1, max_length=128)
    user: str | None = Field(default=None, max_length=256)
    stream: bool = False

    # Rules between fields are checked on the field to change, so the error names it.
    @field_validator("timestamp_granularities")
    @classmethod
    def _granularities_need_verbose_json(cls, value: tuple[Granularity, ...],
                                         info: ValidationInfo) -> tuple[Granularity, ...]:
        if value and info.data.get("response_format", "verbose_json") != "verbose_json":  # absent: its own error
            raise ValueError("timestamp_granularities needs response_format=verbose_json")
        return value

    @field_validator("stream")
    @classmethod
    def _not_streamed(cls, value: bool) -> bool:
        if value:
            raise ValueError("stream=true is not supported for transcriptions; send stream=false")
        return value

    @property
    def wants_words(self) -> bool:
        return "word" in self.timestamp_granularities

    @classmethod
    def from_form(cls, fields: Mapping[str, Sequence[str]]) -> TranscriptionRequest:
        """Validate form fields (each a list of the values sent under that name)."""
        data: dict[str, Any] = {name: values[-1] for name, values in fields.items() if values}
        granularities = [*fields.get("timestamp_granularities[]", ()), *fields.get("timestamp_granularities", ())]
        data.pop("timestamp_granularities[]", None)
        data["timestamp_granularities"] = tuple(dict.fromkeys(granularities))
        return cls.model_validate(data)


class _OwnJson(BaseModel):
    """A JSON body of the gateway's own API (no SDK adds fields to it): a field it does not know,
    a misspelt `respone_format` say, is a 400 naming it rather than a job run with the default."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


class UploadRequest(_OwnJson):
    """`POST /v1/audio/uploads`: announce a file too large to send through API Gateway."""

    filename: str = Field(min_length=1, max_length=255)
    bytes: StrictInt = Field(gt=0, le=MAX_UPLOAD_BYTES)
    content_type: str = Field(default="application/octet-stream", max_length=128)

    @field_validator("content_type")
    @classmethod
    def _a_header_value(cls, value: str) -> str:
        if MEDIA_TYPE.fullmatch(value) is None:
            raise ValueError("expected a media type such as 'audio/mpeg', in printable ASCII: "
                             "it is the upload's Content-Type header")
        return value


class TranscriptionJobRequest(_OwnJson):
    """`POST /v1/audio/jobs`: transcribe an uploaded file in the background (long audio)."""

    file_id: str = Field(min_length=1, max_length=128)
    model: str = Field(default="auto", min_length=1, max_length=256)
    response_format: ResponseFormat = "json"
    language: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z]{2,4})?$")
    prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    temperature: StrictFloat | None = Field(default=None, ge=0, le=1)
    timestamp_granularities: tuple[Granularity, ...] = ()
    translate: StrictBool = False
    user: str | None = Field(default=None, max_length=256)  # the end user, as on a synchronous request

    def transcription(self) -> TranscriptionRequest:
        return TranscriptionRequest.model_validate(
            self.model_dump(exclude={"translate"}))
