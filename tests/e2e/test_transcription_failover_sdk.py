"""Speech-to-text failover with the official `openai` SDK, over HTTP, on a fresh `make dev`
(`llm-gateway serve` with its own fakes and embedded DynamoDB, so its first choice is known:
Groq's free whisper-large-v3-turbo). Groq answers 429 to every call; the caller sees one
ordinary transcript from another provider, and the headers say two attempts were made."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai

from tests.fakes_fixtures import RemoteFake
from tests.gateway_env import running_make_dev

AUDIO = Path(__file__).parents[1] / "fixtures" / "audio"


def test_groq_answering_429_is_failed_over_unseen_by_the_sdk(tmp_path: Path) -> None:
    with running_make_dev(tmp_path / "serve.log") as url:
        fakes = httpx.get(f"{url}/_sandbox/stats", timeout=10).json()["fakes"]
        groq = RemoteFake("groq", fakes["groq"]["base_url"], [])
        groq.add_fault(fault="429", retry_after=30)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="local-dev-key", max_retries=0, timeout=60)
        with (AUDIO / "tone.mp3").open("rb") as audio:
            raw = client.audio.transcriptions.with_raw_response.create(
                model="auto", file=audio, response_format="verbose_json", timestamp_granularities=["segment"])
        transcript = raw.parse()
        assert raw.http_response.status_code == 200
        assert raw.headers["x-gateway-provider"] != "groq" and raw.headers["x-gateway-attempts"] == "2"
        assert "2.0 seconds of mp3 audio" in transcript.text and transcript.segments
        assert groq.stats()["faults_fired"] == {"429": 1}  # Groq was asked first, and refused
