"""The façade the transcribe Lambda calls: authenticate, route, render the answer and its headers.

Interface fixed first so the handler, uploads and jobs can be built against it; the routing
behind `transcribe` is `routing/transcription.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llm_gateway.api.audio_schemas import TranscriptionRequest


@dataclass(frozen=True, slots=True)
class AudioInput:
    """The audio of one request, read once and re-sent on every attempt.

    `url`: a presigned GET URL of the same bytes (uploads), for providers that fetch audio
    themselves when it is too large to send inline."""

    data: bytes = field(repr=False)
    filename: str
    url: str | None = field(default=None, repr=False)


@dataclass
class TranscriptionOutcome:
    """What the handler sends back: the rendered body, its content type, and gateway headers."""

    status: int
    headers: dict[str, str]
    body: str
    content_type: str


class Transcriber:
    """Stub until the router lands: `transcribe(request, audio, translate=, request_id=, remaining_s=)`."""

    def transcribe(self, request: TranscriptionRequest, audio: AudioInput, *, translate: bool, request_id: str,
                   remaining_s: float | None = None) -> TranscriptionOutcome:
        raise NotImplementedError
