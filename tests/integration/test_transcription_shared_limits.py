"""Audio-second limits hold across containers: two transcription gateways (separate cores and
boto3 clients) share one DynamoDB state table (moto), call the fake providers over HTTP, and
together admit exactly what Groq's audio-seconds-per-hour window allows, under concurrency."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3

from llm_gateway.api.audio_schemas import TranscriptionRequest
from llm_gateway.api.errors import GatewayError
from llm_gateway.config import load_settings
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.transcription.gateway import AudioInput, Transcriber, build_transcriber
from sandbox.fakes import FakeFleet
from tests.integration.test_breaker_shared_dynamodb import TABLE, atomic_moto_writes, table  # noqa: F401  (fixtures)
from tests.integration.test_failover_matrix import fleet_env

CLIP = (Path(__file__).parents[1] / "fixtures" / "audio" / "speech_12s.flac").read_bytes()  # 12 s: billed as 12
ASH = 60  # audio seconds per hour for this test: room for exactly five 12 s clips


def container(fakes: FakeFleet) -> Transcriber:
    overrides = {"models": [{"provider": "groq", "model": "whisper-large-v3-turbo", "free_tier": {"ash": ASH}}]}
    env = {**fleet_env(fakes, ("groq",)), "LLM_GATEWAY_STATE_TABLE": TABLE, "LLM_GATEWAY_MAX_WAIT_S": "0",
           "LLM_GATEWAY_CATALOG_OVERRIDES": json.dumps(overrides), "AWS_DEFAULT_REGION": "us-east-1"}
    client = boto3.client("dynamodb", region_name="us-east-1")
    return build_transcriber(load_settings(env), metrics=RecordingMetrics(), dynamodb_client=client)


def test_two_containers_admit_exactly_the_hourly_audio_seconds(table, fakes: FakeFleet) -> None:  # noqa: F811
    one, two = container(fakes), container(fakes)
    request = TranscriptionRequest(model="groq/whisper-large-v3-turbo")

    def send(n: int) -> str:
        gateway = one if n % 2 else two
        try:
            outcome = gateway.transcribe(request, AudioInput(CLIP, "talk.flac"), translate=False, request_id=f"r{n}")
            return f"served {outcome.headers['x-gateway-audio-seconds']}"
        except GatewayError as refused:
            return f"refused {refused.status}"

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send, range(12)))
    assert results.count("served 12.000") == ASH // 12, results
    assert results.count("refused 429") == 12 - ASH // 12, results
    served = fakes.providers["groq"].stats()
    assert served["received"] == ASH // 12, served  # nothing past the limit was sent

