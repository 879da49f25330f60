# ruff: noqa: F811  (pytest fixtures imported by name, then requested as parameters)
"""Contract tests: each transcription fake driven by its provider's OFFICIAL SDK (test-only
clients: openai, groq, mistralai, replicate, google-genai), pointed at the fakes on loopback.
If an SDK cannot send to or parse what a fake answers, the fake is wrong."""

from __future__ import annotations

import io
from collections.abc import Iterator

import groq
import openai
import pytest
import replicate
from google import genai
from google.genai import types
from mistralai.client import Mistral
from mistralai.client.errors import SDKError

from sandbox.fakes import FakeFleet, FakeProvider, start_fakes
from sandbox.fakes.replicate_fake import LATEST
from tests.fakes_fixtures import fake_fleet, fakes  # noqa: F401
from tests.integration.test_fakes_transcription import WAV2, WAV12, data_url


def _openai(fakes: FakeFleet) -> openai.OpenAI:
    return openai.OpenAI(base_url=fakes["openai"].base_url, api_key="sk-test", max_retries=0)


def test_openai_sdk_json_and_verbose_json(fakes: FakeFleet) -> None:
    client = _openai(fakes)
    result = client.audio.transcriptions.create(model="whisper-1", file=("talk.wav", WAV12, "audio/wav"))
    assert result.text.startswith("Fake transcript of 12.0 seconds of wav audio.")
    assert result.usage is not None and result.usage.type == "duration" and result.usage.seconds == 12
    verbose = client.audio.transcriptions.create(model="whisper-1", file=("talk.wav", WAV12),
                                                 response_format="verbose_json",
                                                 timestamp_granularities=["word", "segment"])  # fmt: skip
    assert verbose.duration == 12.0 and verbose.language == "english"
    assert verbose.segments is not None and [s.end for s in verbose.segments] == [5.0, 10.0, 12.0]
    assert verbose.words is not None and verbose.words[0].word == "Fake"
    tokens = client.audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=("talk.wav", WAV2))
    assert tokens.usage is not None and tokens.usage.type == "tokens" and tokens.usage.input_tokens >= 20


@pytest.mark.parametrize("fmt", ["text", "srt", "vtt"])
def test_openai_sdk_text_formats(fakes: FakeFleet, fmt: str) -> None:
    text = _openai(fakes).audio.transcriptions.create(model="whisper-1", file=("talk.wav", WAV12), response_format=fmt)
    assert isinstance(text, str)
    assert {"text": "Fake transcript", "srt": "1\n00:00:00,000 --> ", "vtt": "WEBVTT"}[fmt] in text


def test_openai_sdk_translation_and_errors(fakes: FakeFleet) -> None:
    client = _openai(fakes)
    translated = client.audio.translations.create(model="whisper-1", file=("talk.wav", WAV2))
    assert translated.text.endswith("(translated to English).")
    with pytest.raises(openai.BadRequestError, match="not compatible"):
        client.audio.transcriptions.create(model="gpt-4o-transcribe", file=("talk.wav", WAV2), response_format="srt")
    fakes["openai"].add_fault(fault="429", retry_after=3, count=1)
    with pytest.raises(openai.RateLimitError):
        client.audio.transcriptions.create(model="whisper-1", file=("talk.wav", WAV2))


def test_groq_sdk(fakes: FakeFleet) -> None:
    client = groq.Groq(base_url=fakes["groq"].base_url, api_key="gsk_test", max_retries=0)
    result = client.audio.transcriptions.create(model="whisper-large-v3-turbo", file=("talk.wav", WAV2))
    assert result.text.strip() == "Fake transcript of 2.0 seconds of wav audio."
    verbose = client.audio.transcriptions.create(model="whisper-large-v3", file=("talk.wav", WAV12),
                                                 response_format="verbose_json",
                                                 timestamp_granularities=["word"])  # fmt: skip
    extra = verbose.model_extra or {}
    assert extra["duration"] == 12.0 and extra["words"][0]["word"] == "Fake"
    by_url = client.audio.transcriptions.create(model="whisper-large-v3", url=data_url(WAV12))
    assert "12.0 seconds" in by_url.text
    translated = client.audio.translations.create(model="whisper-large-v3", file=("talk.wav", WAV2))
    assert "(translated to English)" in translated.text
    with pytest.raises(groq.BadRequestError):
        client.audio.translations.create(model="whisper-large-v3-turbo", file=("talk.wav", WAV2))
    with pytest.raises(groq.AuthenticationError):
        groq.Groq(base_url=fakes["groq"].base_url, api_key="invalid", max_retries=0).audio.transcriptions.create(
            model="whisper-large-v3", file=("talk.wav", WAV2))


def test_mistral_sdk(fakes: FakeFleet) -> None:
    client = Mistral(api_key="m-test", server_url=fakes["mistral"].root_url)
    result = client.audio.transcriptions.complete(
        model="voxtral-mini-latest", file={"file_name": "talk.wav", "content": WAV12},
        timestamp_granularities=["segment"],
    )  # fmt: skip
    assert result.text.startswith("Fake transcript of 12.0 seconds")
    hinted = client.audio.transcriptions.complete(model="voxtral-mini-latest",
                                                  file={"file_name": "talk.wav", "content": WAV12}, language="en")
    assert hinted.language == "en"
    assert result.usage.prompt_audio_seconds == 12
    assert result.segments is not None and [s.end for s in result.segments] == [5.0, 10.0, 12.0]
    by_url = client.audio.transcriptions.complete(model="voxtral-mini-latest", file_url=data_url(WAV2))
    assert by_url.usage.prompt_audio_seconds == 2
    with pytest.raises(SDKError) as refused:
        client.audio.transcriptions.complete(model="voxtral-mini-latest", file={"file_name": "a.wav", "content": WAV2},
                                             timestamp_granularities=["word"])  # fmt: skip
    assert refused.value.status_code == 400
    with pytest.raises(SDKError) as both:  # Mistral: timestamps are "not compatible with language"
        client.audio.transcriptions.complete(model="voxtral-mini-latest", file={"file_name": "a.wav", "content": WAV2},
                                             timestamp_granularities=["segment"], language="en")  # fmt: skip
    assert both.value.status_code == 400


@pytest.fixture(scope="module")
def replicate_fake() -> Iterator[FakeProvider]:
    with start_fakes(providers=["replicate"]) as fleet:
        yield fleet["replicate"]


def _replicate(fake: FakeProvider) -> replicate.Client:
    client = replicate.Client(api_token="r8_test", base_url=fake.root_url)
    client.poll_interval = 0.05
    return client


def test_replicate_sdk_run_waits_and_returns_the_output(replicate_fake: FakeProvider) -> None:
    replicate_fake.reset()
    output = _replicate(replicate_fake).run(f"openai/whisper:{LATEST}",
                                            input={"audio": io.BytesIO(WAV12), "transcription": "vtt"},
                                            file_encoding_strategy="base64")  # fmt: skip
    assert output["transcription"].startswith("WEBVTT") and len(output["segments"]) == 3


def test_replicate_sdk_polls_a_slow_prediction_and_raises_on_failure(replicate_fake: FakeProvider) -> None:
    replicate_fake.reset()
    client = _replicate(replicate_fake)
    replicate_fake.add_fault(fault="slow_job", job_seconds=1.2, count=1)
    prediction = client.predictions.create(version=LATEST, input={"audio": data_url(WAV2)}, wait=1)
    assert prediction.status == "starting"
    prediction.wait()
    assert prediction.status == "succeeded" and prediction.output["transcription"].startswith("Fake transcript")
    replicate_fake.add_fault(fault="slow_job", job_seconds=1.2, count=1)
    output = client.run(f"openai/whisper:{LATEST}", input={"audio": data_url(WAV2)}, wait=1)  # run() polls
    assert output["transcription"] == "Fake transcript of 2.0 seconds of wav audio."
    replicate_fake.add_fault(fault="fail_job", message="CUDA out of memory", count=1)
    with pytest.raises(replicate.exceptions.ModelError, match="CUDA out of memory"):
        client.run(f"openai/whisper:{LATEST}", input={"audio": data_url(WAV2)})
    with pytest.raises(replicate.exceptions.ReplicateError) as refused:
        replicate.Client(api_token="invalid", base_url=replicate_fake.root_url).predictions.create(
            version=LATEST, input={"audio": data_url(WAV2)})
    assert refused.value.status == 401


def test_google_genai_sdk_audio_part(fakes: FakeFleet) -> None:
    client = genai.Client(api_key="g-test", http_options={"base_url": fakes["gemini"].root_url, "api_version": "v1beta"})
    response = client.models.generate_content(
        model="gemini-2.5-flash",
        contents=["Generate a transcript of the speech.", types.Part.from_bytes(data=WAV12, mime_type="audio/wav")],
    )
    assert response.text == (
        "Fake transcript of 12.0 seconds of wav audio. Segment 2 from 5.0 to 10.0 seconds. "
        "Segment 3 from 10.0 to 12.0 seconds."
    )
    usage = response.usage_metadata
    assert usage is not None and usage.prompt_tokens_details is not None
    audio = [d.token_count for d in usage.prompt_tokens_details if d.modality == types.MediaModality.AUDIO]
    assert audio == [384]
    mp3 = types.Part.from_bytes(data=b"definitely not audio", mime_type="audio/mp3")
    with pytest.raises(genai.errors.ClientError) as refused:  # not decodable: 400 INVALID_ARGUMENT
        client.models.generate_content(model="gemini-2.5-flash", contents=["Transcribe.", mp3])
    assert refused.value.code == 400
