"""Failover for speech to text over HTTP against the fake providers, on a fresh gateway (so the
plan order is fixed: Groq's free whisper-large-v3-turbo first): a 429 or a timeout from Groq is
answered by the next model, and the caller sees one ordinary answer with `x-gateway-attempts: 2`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_gateway.api.audio_schemas import TranscriptionRequest
from llm_gateway.config import load_settings
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.state.memory import MemoryStore
from llm_gateway.transcription.gateway import AudioInput, build_transcriber
from sandbox.fakes import FakeFleet
from tests.integration.test_failover_matrix import fleet_env

CLIP = (Path(__file__).parents[1] / "fixtures" / "audio" / "tone.mp3").read_bytes()


@pytest.mark.parametrize("fault", [{"fault": "429", "retry_after": 1}, {"fault": "timeout", "hang_seconds": 3.0}],
                         ids=["429", "timeout"])
def test_groq_failing_is_answered_by_the_next_model(fakes: FakeFleet, fault: dict) -> None:
    env = {**fleet_env(fakes, ("groq", "mistral", "openai")), "LLM_GATEWAY_MAX_WAIT_S": "0",
           "LLM_GATEWAY_ATTEMPT_TIMEOUT_S": "1.5", "LLM_GATEWAY_DEADLINE_S": "8"}
    gateway = build_transcriber(load_settings(env), metrics=RecordingMetrics(), store=MemoryStore())
    fakes.providers["groq"].add_fault(model="whisper-large-v3-turbo", count=1, **fault)
    outcome = gateway.transcribe(TranscriptionRequest(model="auto", response_format="verbose_json"),
                                 AudioInput(CLIP, "talk.mp3"), translate=False, request_id="r1")
    assert outcome.status == 200 and outcome.headers["x-gateway-attempts"] == "2"
    assert outcome.headers["x-gateway-model"] != "whisper-large-v3-turbo"
    body = json.loads(outcome.body)
    assert "2.0 seconds of mp3 audio" in body["text"] and body["segments"]
    assert fakes.providers["groq"].stats()["faults_fired"]  # the fault was met: the test proves something
