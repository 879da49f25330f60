"""One transcription request, from the parsed form to the façade's answer.

The audio is either the form's `file` or an uploaded `file_id` (exactly one of them), which must
be the caller's own upload (another user's is a 404, as a missing one); an upload is deleted once
a transcription of it succeeded, and kept (for a retry) when it failed. The
transcriber is anything with the façade's `transcribe` (`TranscriberLike`): the lead's
`llm_gateway.transcription.gateway` builds the real one, tests pass fakes.
"""

from __future__ import annotations

from typing import Any, Protocol

from llm_gateway.api.audio_schemas import TranscriptionRequest
from llm_gateway.api.auth import Caller
from llm_gateway.api.errors import InvalidRequest
from llm_gateway.api.forms import FILE_FIELD, FilePart
from llm_gateway.audio.errors import empty as empty_audio
from llm_gateway.transcription.gateway import AudioInput, TranscriptionOutcome
from llm_gateway.uploads.service import Uploads


class TranscriberLike(Protocol):
    """What the transcribe function needs of the façade (`transcription/gateway.py`)."""

    settings: Any
    logger: Any
    metrics: Any

    def authenticate(self, authorization: str | None) -> Any: ...

    def transcribe(self, request: TranscriptionRequest, audio: AudioInput, *, translate: bool, request_id: str,
                   remaining_s: float | None = None, caller: Any = None) -> TranscriptionOutcome: ...

    def admit(self, request: TranscriptionRequest, *, translate: bool, caller: Any) -> None: ...


class TranscriptionDesk:
    def __init__(self, transcriber: TranscriberLike, uploads: Uploads) -> None:
        self.transcriber = transcriber
        self.uploads = uploads

    def transcribe(self, request: TranscriptionRequest, file: FilePart | None, *, translate: bool, request_id: str,
                   remaining_s: float | None, caller: Caller) -> TranscriptionOutcome:
        if file is not None and request.file_id:
            raise InvalidRequest("Send either 'file' or 'file_id', not both.", param="file_id", code="invalid_value")
        if file is None and not request.file_id:
            raise InvalidRequest("Missing the audio: send it as the form field 'file' (or an uploaded 'file_id').",
                                 param=FILE_FIELD, code="missing_file")
        if file is not None:
            if not file.data:
                raise empty_audio()
            audio = AudioInput(data=file.data, filename=file.filename)
        else:
            audio = self.uploads.audio(str(request.file_id), user=caller.user)
        outcome = self.transcriber.transcribe(request, audio, translate=translate, request_id=request_id,
                                              remaining_s=remaining_s, caller=caller)
        if request.file_id and outcome.status < 400:
            self.uploads.discard(request.file_id)
        return outcome
