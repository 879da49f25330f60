"""Speech to text through the local API (what `make dev` serves) with the unmodified OpenAI SDK,
on the fake providers: every response format, translations, uploads PUT to the embedded S3's
presigned URL then transcribed by `file_id`, jobs run in a background thread of the container
that accepted them (state in the embedded DynamoDB), and bad audio refused before any provider
call.

Failover on Groq's 429 is shown with the SDK on a fresh `make dev`
(`tests/e2e/test_transcription_failover_sdk.py`) and for a 429 or a timeout on a fresh gateway
(`tests/integration/test_transcription_failover.py`): in this session-wide server, which model
`auto` tries first depends on what earlier tests used up and on which container answers, so a
fault placed on "the first choice" was met only some of the time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import openai
import pytest

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": "Bearer local-dev-key"}
AUDIO = Path(__file__).parents[1] / "fixtures" / "audio"


def upload(gateway_url: str, name: str) -> str:
    data = (AUDIO / name).read_bytes()
    announced = httpx.post(f"{gateway_url}/v1/audio/uploads", headers=AUTH, timeout=30,
                           json={"filename": name, "bytes": len(data), "content_type": "audio/flac"})
    assert announced.status_code == 200, announced.text
    ticket = announced.json()
    assert ticket["method"] == "PUT" and ticket["upload_url"].startswith("http://127.0.0.1:")
    put = httpx.put(ticket["upload_url"], headers=ticket["headers"], content=data, timeout=30)
    assert put.status_code == 200, put.text
    return str(ticket["id"])


def test_json_transcription_with_the_sdk_names_who_served_it(client):
    """Which free model serves depends on what earlier tests of the session did to the providers
    (a recent failure sends a provider behind the others), so the answer is checked against the
    model that says it served: Groq bills a 2 s clip as 10 s, the others as 2 s."""
    with (AUDIO / "tone.mp3").open("rb") as audio:
        raw = client.audio.transcriptions.with_raw_response.create(model="auto", file=audio)
    transcript = raw.parse()
    assert "Fake transcript of 2.0 seconds of mp3 audio" in transcript.text
    billed = 10 if raw.headers["x-gateway-provider"] == "groq" else 2
    assert raw.headers["x-gateway-attempts"] == "1" and float(raw.headers["x-gateway-cost-usd"]) == 0.0  # a free tier
    assert raw.headers["x-gateway-audio-seconds"] == f"{billed}.000"
    usage = transcript.usage  # the SDK's own UsageDuration type, with our cost beside its fields
    assert (usage.type, usage.seconds, usage.model_extra["cost_usd"]) == ("duration", billed, 0.0)


@pytest.mark.parametrize("fmt", ["text", "srt", "vtt"])
def test_text_and_subtitle_formats_come_back_as_text(client, fmt):
    with (AUDIO / "tone.wav").open("rb") as audio:
        body = client.audio.transcriptions.create(model="auto", file=audio, response_format=fmt)
    assert isinstance(body, str) and "Fake transcript of 2.0 seconds of wav audio" in body
    if fmt == "srt":
        assert body.startswith("1\n00:00:00,000 --> 00:00:0")
    if fmt == "vtt":
        assert body.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:0")


def test_verbose_json_with_word_timestamps_parses_into_the_sdks_types(client):
    with (AUDIO / "tone.ogg").open("rb") as audio:
        verbose = client.audio.transcriptions.create(model="auto", file=audio, response_format="verbose_json",
                                                     timestamp_granularities=["word", "segment"])
    assert verbose.duration == pytest.approx(2.0) and verbose.segments and verbose.words
    assert verbose.segments[-1].end <= 2.0 + 1e-6 and verbose.words[0].start == 0.0


def test_translation_goes_to_a_model_that_translates(client):
    with (AUDIO / "tone.flac").open("rb") as audio:
        raw = client.audio.translations.with_raw_response.create(model="auto", file=audio)
    assert "translated to English" in raw.parse().text
    assert raw.headers["x-gateway-model"] in {"whisper-large-v3", "whisper-1", "openai/whisper"}


@pytest.mark.parametrize("name", ["corrupt.mp3", "truncated.wav", "not_audio.txt", "empty.wav"])
def test_bad_audio_is_a_400_that_says_why(client, name):
    with (AUDIO / name).open("rb") as audio, pytest.raises(openai.BadRequestError) as raised:
        client.audio.transcriptions.create(model="auto", file=audio)
    error = raised.value.body
    assert raised.value.status_code == 400 and error["param"] == "file"
    assert error["code"] in {"audio_corrupt", "audio_format_unsupported", "audio_empty"}


def test_upload_then_transcribe_by_file_id_then_the_upload_is_gone(gateway_url):
    file_id = upload(gateway_url, "speech_12s.flac")
    done = httpx.post(f"{gateway_url}/v1/audio/transcriptions", headers=AUTH, timeout=30,
                      files={"model": (None, "auto"), "file_id": (None, file_id), "response_format": (None, "json")})
    assert done.status_code == 200, done.text
    assert "12.0 seconds of flac audio" in done.json()["text"]
    assert done.headers["x-gateway-audio-seconds"] == "12.000"
    again = httpx.post(f"{gateway_url}/v1/audio/transcriptions", headers=AUTH, timeout=30,
                       files={"model": (None, "auto"), "file_id": (None, file_id)})
    assert again.status_code == 404 and again.json()["error"]["code"] == "file_not_found"


def test_a_job_transcribes_an_upload_in_the_background(gateway_url):
    file_id = upload(gateway_url, "speech_12s.flac")
    submitted = httpx.post(f"{gateway_url}/v1/audio/jobs", headers=AUTH, timeout=30,
                           json={"file_id": file_id, "response_format": "srt"})
    assert submitted.status_code == 202 and submitted.json()["status"] == "queued", submitted.text
    job_id = submitted.json()["id"]
    deadline, job = time.monotonic() + 30, {}
    while time.monotonic() < deadline:
        job = httpx.get(f"{gateway_url}/v1/audio/jobs/{job_id}", headers=AUTH, timeout=30).json()
        if job["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.2)
    assert job["status"] == "succeeded", json.dumps(job)
    assert job["result"].startswith("1\n00:00:00,000 --> ") and "12.0 seconds of flac audio" in job["result"]
