"""The façade: audio is checked before any provider sees it, and the answer is rendered in the
caller's format with the gateway's headers and usage."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from llm_gateway.api.audio_schemas import TranscriptionRequest
from llm_gateway.audio import InvalidAudio
from llm_gateway.config import load_settings
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.state.memory import MemoryStore
from llm_gateway.transcription.gateway import AudioInput, Transcriber, build_transcriber
from tests.unit.transcription.test_router import KEYS, verbose

AUDIO = Path(__file__).parents[2] / "fixtures" / "audio"


def transcriber(calls: list[httpx.Request], **env: str) -> Transcriber:
    def handle(request: httpx.Request) -> httpx.Response:
        request.read()
        calls.append(request)
        return httpx.Response(200, json=verbose())

    client = httpx.Client(transport=httpx.MockTransport(handle))
    return build_transcriber(load_settings({"GROQ_API_KEY": KEYS["GROQ_API_KEY"], **env}), metrics=RecordingMetrics(),
                             http_client=client, store=MemoryStore())


def run(t: Transcriber, name: str, **fields: object):
    request = TranscriptionRequest.model_validate({"model": "auto", **fields})
    return t.transcribe(request, AudioInput((AUDIO / name).read_bytes(), name), translate=False, request_id="req-1")


@pytest.mark.parametrize("name", ["corrupt.mp3", "truncated.wav", "empty.wav", "not_audio.txt"])
def test_bad_audio_is_a_400_that_never_reaches_a_provider(name: str) -> None:
    calls: list[httpx.Request] = []
    with pytest.raises(InvalidAudio) as raised:
        run(transcriber(calls), name)
    assert raised.value.status == 400 and raised.value.param == "file" and calls == []


def test_audio_longer_than_allowed_is_refused_before_any_call() -> None:
    calls: list[httpx.Request] = []
    with pytest.raises(InvalidAudio, match="long") as raised:
        run(transcriber(calls, LLM_GATEWAY_MAX_AUDIO_S="1.5"), "tone.flac")
    assert raised.value.code == "audio_too_long" and calls == []


def test_json_answer_carries_billed_seconds_cost_and_gateway_headers() -> None:
    calls: list[httpx.Request] = []
    outcome = run(transcriber(calls), "tone.mp3")
    assert outcome.status == 200 and outcome.content_type == "application/json"
    assert json.loads(outcome.body) == {"text": "hello there",
                                        "usage": {"type": "duration", "seconds": 10, "cost_usd": 0.0}}
    assert outcome.headers["x-gateway-provider"] == "groq" and outcome.headers["x-gateway-attempts"] == "1"
    assert outcome.headers["x-gateway-audio-seconds"] == "10.000" and outcome.headers["x-request-id"] == "req-1"
    assert b'filename="tone.mp3"' in calls[0].content and b"audio/mpeg" in calls[0].content


@pytest.mark.parametrize(("fmt", "starts"), [("text", "hello there\n"), ("srt", "1\n00:00:00,000 --> 00:00:01,200"),
                                             ("vtt", "WEBVTT\n\n00:00:00.000"), ("verbose_json", '{"task": "transcribe"')])
def test_every_format_from_one_groq_answer(fmt: str, starts: str) -> None:
    outcome = run(transcriber([]), "tone.webm", response_format=fmt)
    assert outcome.body.startswith(starts) and outcome.headers["x-gateway-provider"] == "groq"


def test_each_transcription_is_counted_once_by_outcome_and_served_audio_by_provider_and_tier() -> None:
    """The dashboard's transcription panels: bad audio is the caller's mistake, not a gateway
    fault (the error-rate view must not move when a client sends a text file)."""
    from llm_gateway.observability import metrics as m

    calls: list[httpx.Request] = []
    t = transcriber(calls)
    run(t, "tone.mp3")
    with pytest.raises(InvalidAudio):
        run(t, "not_audio.txt")
    recorded = t.metrics
    assert isinstance(recorded, RecordingMetrics)
    assert recorded.total(m.TRANSCRIPTION_REQUESTS, outcome="served") == 1
    assert recorded.total(m.TRANSCRIPTION_REQUESTS, outcome="caller_mistake") == 1
    assert recorded.total(m.TRANSCRIPTION_REQUESTS) == 2
    assert recorded.total(m.AUDIO_SECONDS_SERVED, provider="groq", tier="free") == 10.0  # Groq's 10 s minimum
    assert recorded.total(m.USER_VISIBLE_ERRORS) == 0 and recorded.total(m.REQUESTS) == 0  # chat's series
