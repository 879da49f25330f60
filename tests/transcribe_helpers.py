"""Test doubles for the transcribe function: a fake façade, multipart bodies, a small WAV."""

from __future__ import annotations

import json
import threading
from typing import Any

from llm_gateway.api.audio_schemas import TranscriptionRequest
from llm_gateway.api.auth import Caller, authenticate
from llm_gateway.api.errors import GatewayError
from llm_gateway.config import fetch_secret_values
from llm_gateway.keys import KeySource
from llm_gateway.observability.logging import build_logger
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.tenancy.keys import KeyDirectory, MemoryKeyStore
from llm_gateway.transcription.gateway import AudioInput, TranscriptionOutcome

BOUNDARY = "testboundary4f2a9c"


def tone_wav(seconds: float = 0.25) -> bytes:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "events"))
    from make_transcribe_event import tone_wav as make

    return bytes(make(seconds))


def form_body(fields: dict[str, str], file: tuple[str, str, bytes] | None,
              repeated: list[tuple[str, str]] = ()) -> bytes:  # type: ignore[assignment]
    out = b""
    for name, value in [*fields.items(), *repeated]:
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    if file is not None:
        filename, content_type, data = file
        out += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n").encode() + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


class FakeTranscriber:
    """Authenticates as the real façade does (static keys, and keys issued into `key_store`);
    answers with the audio's size, or as told."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.logger = build_logger(settings.secrets)
        self._keys = KeySource(settings, fetch_secret_values, on_new_secrets=lambda _secrets: None)
        self.key_store = MemoryKeyStore()
        self.directory = KeyDirectory(self.key_store, ttl_s=0)
        self.metrics = RecordingMetrics()
        self.calls: list[dict[str, Any]] = []
        self.error: GatewayError | None = None
        self.crash = False
        self.content_type = "application/json"
        self.text_body: str | None = None
        self.block: threading.Event | None = None
        self.entered = threading.Event()

    def authenticate(self, authorization: str | None) -> Caller:
        return authenticate(self._keys.current(), authorization, self.directory)

    def admit(self, request: TranscriptionRequest, *, translate: bool, caller: Caller) -> None:
        """Admits everything: the real façade's checks are tested on it
        (test_transcription_jobs_run_as_their_creator)."""

    def transcribe(self, request: TranscriptionRequest, audio: AudioInput, *, translate: bool, request_id: str,
                   remaining_s: float | None = None, caller: Caller | None = None) -> TranscriptionOutcome:
        self.calls.append({"request": request, "audio": audio, "translate": translate, "request_id": request_id,
                           "remaining_s": remaining_s, "caller": caller})
        self.entered.set()
        if self.block is not None:
            self.block.wait(10)
        if self.crash:
            raise RuntimeError("bug")
        if self.error is not None:
            raise self.error
        body = self.text_body if self.text_body is not None else json.dumps(
            {"text": f"{len(audio.data)} bytes from {audio.filename}"})
        headers = {"x-gateway-provider": "fake", "x-gateway-model": "fake-whisper", "x-gateway-attempts": "1",
                   "x-gateway-cost-usd": "0.00000000"}
        return TranscriptionOutcome(200, headers, body, self.content_type)


class NoLaunch:
    """A job launcher that launches nothing: the test runs each job itself, as the
    self-invocation would."""

    def launch(self, job_id: str, function: str | None) -> None:
        return None
