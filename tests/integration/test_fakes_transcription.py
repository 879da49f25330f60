# ruff: noqa: F811  (pytest fixtures imported by name, then requested as parameters)
"""The transcription fakes over raw HTTP on loopback: each route and format, limits in audio
seconds, faults and latency, Replicate's wait vs polling, Gemini's audio tokens.

The SDK side (each provider's official client against these endpoints) is in
test_fakes_transcription_sdks.py. Audio is generated here with the stdlib `wave` module.
"""

from __future__ import annotations

import base64
import io
import math
import struct
import threading
import time
import wave
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from sandbox.fakes import FakeFleet, FakeProvider, start_fakes
from sandbox.fakes.replicate_fake import LATEST
from tests.fakes_fixtures import fake_fleet, fakes  # noqa: F401

CLIENT = httpx.Client(timeout=10)
AUTH = {"Authorization": "Bearer k"}


def wav_bytes(seconds: float, rate: int = 8000) -> bytes:
    """A mono 16-bit 440 Hz tone."""
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                      for i in range(int(seconds * rate)))  # fmt: skip
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


WAV2, WAV12 = wav_bytes(2.0), wav_bytes(12.0)


def data_url(data: bytes, mime: str = "audio/wav") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@pytest.fixture(scope="module")
def audio_server() -> Iterator[str]:
    """A loopback file server: GET /two.wav, /twelve.wav (what presigned S3 URLs are in production)."""
    files = {"/two.wav": WAV2, "/twelve.wav": WAV12}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = files.get(self.path)
            self.send_response(200 if data else 404)
            self.send_header("Content-Length", str(len(data or b"")))
            self.end_headers()
            self.wfile.write(data or b"")

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def stt(fake: FakeProvider, path: str, audio: bytes | None = WAV2, key: str = "k", **fields: Any) -> httpx.Response:
    files = {"file": ("clip.wav", audio, "audio/wav")} if audio is not None else None
    data = {k: v for k, v in fields.items() if v is not None}
    return CLIENT.post(fake.root_url + path, files=files, data=data, headers={"Authorization": f"Bearer {key}"})


OPENAI, GROQ, MISTRAL = "/v1/audio/transcriptions", "/openai/v1/audio/transcriptions", "/v1/audio/transcriptions"


# --- OpenAI -------------------------------------------------------------------------------------


def test_openai_whisper_json_reports_duration_usage(fakes: FakeFleet) -> None:
    resp = stt(fakes["openai"], OPENAI, WAV12, model="whisper-1")
    assert resp.status_code == 200 and resp.headers["x-request-id"].startswith("req_")
    body = resp.json()
    assert body["text"].startswith("Fake transcript of 12.0 seconds of wav audio.")
    assert body["usage"] == {"type": "duration", "seconds": 12}


@pytest.mark.parametrize("fmt", ["text", "srt", "vtt"])
def test_openai_whisper_text_formats(fakes: FakeFleet, fmt: str) -> None:
    resp = stt(fakes["openai"], OPENAI, WAV12, model="whisper-1", response_format=fmt)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    if fmt == "text":
        assert text.startswith("Fake transcript of 12.0 seconds") and text.endswith("\n")
    elif fmt == "srt":
        assert text.startswith("1\n00:00:00,000 --> 00:00:05,000\nFake transcript")
        assert "3\n00:00:10,000 --> 00:00:12,000\n" in text
    else:
        assert text.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:05.000\n")


def test_openai_verbose_json_with_word_and_segment_timestamps(fakes: FakeFleet) -> None:
    resp = CLIENT.post(fakes["openai"].root_url + OPENAI, headers=AUTH,
                       files=[("file", ("a.wav", WAV12, "audio/wav")), ("model", (None, "whisper-1")),
                              ("response_format", (None, "verbose_json")),
                              ("timestamp_granularities[]", (None, "word")),
                              ("timestamp_granularities[]", (None, "segment"))])  # fmt: skip
    body = resp.json()
    assert resp.status_code == 200, body
    assert body["task"] == "transcribe" and body["language"] == "english" and body["duration"] == 12.0
    assert [(s["start"], s["end"]) for s in body["segments"]] == [(0.0, 5.0), (5.0, 10.0), (10.0, 12.0)]
    assert body["words"][0]["word"] == "Fake" and body["words"][-1]["end"] == 12.0
    assert body["usage"] == {"type": "duration", "seconds": 12}


def test_openai_gpt4o_transcribe_token_usage_and_format_limits(fakes: FakeFleet) -> None:
    body = stt(fakes["openai"], OPENAI, WAV2, model="gpt-4o-transcribe").json()
    usage = body["usage"]
    assert usage["type"] == "tokens" and usage["input_token_details"]["audio_tokens"] == 20
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert stt(fakes["openai"], OPENAI, model="gpt-4o-mini-transcribe", response_format="text").status_code == 200
    for fmt in ("srt", "vtt", "verbose_json"):
        resp = stt(fakes["openai"], OPENAI, model="gpt-4o-mini-transcribe", response_format=fmt)
        assert resp.status_code == 400 and "not compatible" in resp.json()["error"]["message"]
    resp = stt(fakes["openai"], OPENAI, model="whisper-1", **{"timestamp_granularities[]": "word"})
    assert resp.status_code == 400 and "verbose_json" in resp.json()["error"]["message"]


def test_openai_translations_whisper_only(fakes: FakeFleet) -> None:
    resp = stt(fakes["openai"], "/v1/audio/translations", model="whisper-1")
    assert resp.json() == {"text": "Fake transcript of 2.0 seconds of wav audio (translated to English)."}
    assert stt(fakes["openai"], "/v1/audio/translations", model="gpt-4o-transcribe").status_code == 400


def test_openai_rejects_big_bad_unknown_and_unauthenticated(fakes: FakeFleet) -> None:
    big = b"RIFF" + bytes(25 * 1024 * 1024)
    resp = stt(fakes["openai"], OPENAI, big, model="whisper-1")
    assert resp.status_code == 413 and "Maximum content size limit" in resp.json()["error"]["message"]
    resp = stt(fakes["openai"], OPENAI, b"this is not audio", model="whisper-1")
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_value"
    assert stt(fakes["openai"], OPENAI, model="whisper-9").status_code == 404
    assert stt(fakes["openai"], OPENAI, model="gpt-4o-mini").status_code == 400  # a chat model
    assert stt(fakes["openai"], OPENAI, model="whisper-1", key="invalid-key").status_code == 401
    assert stt(fakes["openai"], OPENAI, None, model="whisper-1").status_code == 400  # no file


# --- Groq ---------------------------------------------------------------------------------------


def test_groq_formats(fakes: FakeFleet) -> None:
    body = stt(fakes["groq"], GROQ, model="whisper-large-v3").json()
    assert set(body) == {"text", "x_groq"} and body["text"].strip() == "Fake transcript of 2.0 seconds of wav audio."
    verbose = stt(fakes["groq"], GROQ, WAV12, model="whisper-large-v3-turbo", response_format="verbose_json",
                  **{"timestamp_granularities[]": "word"}).json()  # fmt: skip
    assert verbose["duration"] == 12.0 and verbose["language"] == "english" and verbose["words"]
    assert "usage" not in verbose and verbose["x_groq"]["id"].startswith("req_")
    text = stt(fakes["groq"], GROQ, model="whisper-large-v3", response_format="text")
    assert text.text.startswith("Fake transcript")
    for fmt in ("srt", "vtt"):
        assert stt(fakes["groq"], GROQ, model="whisper-large-v3", response_format=fmt).status_code == 400


def test_groq_translation_not_on_turbo(fakes: FakeFleet) -> None:
    path = "/openai/v1/audio/translations"
    assert "(translated to English)" in stt(fakes["groq"], path, model="whisper-large-v3").json()["text"]
    assert stt(fakes["groq"], path, model="whisper-large-v3-turbo").status_code == 400


def test_groq_file_or_url_exactly_one(fakes: FakeFleet, audio_server: str) -> None:
    by_url = stt(fakes["groq"], GROQ, None, model="whisper-large-v3", url=f"{audio_server}/twelve.wav")
    assert by_url.status_code == 200 and "12.0 seconds" in by_url.json()["text"]
    by_data = stt(fakes["groq"], GROQ, None, model="whisper-large-v3", url=data_url(WAV2))
    assert "2.0 seconds" in by_data.json()["text"]
    assert stt(fakes["groq"], GROQ, WAV2, model="whisper-large-v3", url=data_url(WAV2)).status_code == 400
    assert stt(fakes["groq"], GROQ, None, model="whisper-large-v3").status_code == 400
    too_big = stt(fakes["groq"], GROQ, b"RIFF" + bytes(25 * 1024 * 1024), model="whisper-large-v3")
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "request_too_large"


def test_groq_bills_short_clips_as_ten_seconds_and_429s_past_the_audio_hour(fakes: FakeFleet) -> None:
    groq = fakes["groq"]
    assert stt(groq, GROQ, WAV2, model="whisper-large-v3").status_code == 200
    usage = groq.limits()["usage"]["models"]["whisper-large-v3"]
    assert usage["ash"]["used"] == 10 and usage["asd"]["used"] == 10  # 2 s billed as 10 s
    assert stt(groq, GROQ, WAV12, model="whisper-large-v3").status_code == 200
    assert groq.limits()["usage"]["models"]["whisper-large-v3"]["ash"]["used"] == 22
    groq.set_limits(limits={"default": {"rpm": 1000}, "whisper-large-v3": {"rpm": 20, "ash": 25}})
    assert stt(groq, GROQ, WAV2, model="whisper-large-v3").status_code == 200  # 10 of 25
    assert stt(groq, GROQ, WAV2, model="whisper-large-v3").status_code == 200  # 20 of 25
    refused = stt(groq, GROQ, WAV2, model="whisper-large-v3")
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "seconds"
    assert "seconds of audio per hour (ASH): Limit 25, Used 20, Requested 10" in error["message"]
    assert int(refused.headers["retry-after"]) >= 1 and "x-ratelimit-limit-requests" in refused.headers
    assert stt(groq, GROQ, WAV2, model="whisper-large-v3-turbo").status_code == 200  # per model


def test_groq_free_tier_limits_are_the_whisper_defaults(fakes: FakeFleet) -> None:
    limits = fakes["groq"].limits()["limits"]
    assert limits["whisper-large-v3"] == {"rpm": 20, "rpd": 2000, "ash": 7200, "asd": 28800}
    resp = stt(fakes["groq"], GROQ, model="whisper-large-v3-turbo")
    assert resp.headers["x-ratelimit-limit-requests"] == "2000"  # Groq's requests header counts per day


# --- Mistral ------------------------------------------------------------------------------------


def test_mistral_voxtral_answer(fakes: FakeFleet) -> None:
    resp = stt(fakes["mistral"], MISTRAL, WAV12, model="voxtral-mini-latest", timestamp_granularities="segment")
    body = resp.json()
    assert resp.status_code == 200, body
    assert body["model"] == "voxtral-mini-latest"
    hinted = stt(fakes["mistral"], MISTRAL, WAV12, model="voxtral-mini-latest", language="en")
    assert hinted.status_code == 200 and hinted.json()["language"] == "en" and hinted.json()["segments"] == []
    # Mistral: "timestamp_granularities is currently not compatible with language" (docs.mistral.ai)
    both = stt(fakes["mistral"], MISTRAL, WAV12, model="voxtral-mini-latest", timestamp_granularities="segment",
               language="en")  # fmt: skip
    assert both.status_code == 400 and both.json()["object"] == "error"
    assert [(s["start"], s["end"]) for s in body["segments"]] == [(0.0, 5.0), (5.0, 10.0), (10.0, 12.0)]
    usage = body["usage"]
    assert usage["prompt_audio_seconds"] == 12 and usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert stt(fakes["mistral"], MISTRAL, model="voxtral-mini-2507").json()["segments"] == []


def test_mistral_rejects_word_timestamps_and_two_sources(fakes: FakeFleet, audio_server: str) -> None:
    word = stt(fakes["mistral"], MISTRAL, model="voxtral-mini-latest", timestamp_granularities="word")
    assert word.status_code == 400 and word.json()["object"] == "error"
    both = stt(fakes["mistral"], MISTRAL, model="voxtral-mini-latest", file_url=f"{audio_server}/two.wav")
    assert both.status_code == 400
    by_url = stt(fakes["mistral"], MISTRAL, None, model="voxtral-mini-latest", file_url=f"{audio_server}/two.wav")
    assert by_url.status_code == 200 and by_url.json()["usage"]["prompt_audio_seconds"] == 2
    assert stt(fakes["mistral"], "/v1/audio/translations", model="voxtral-mini-latest").status_code == 404
    assert stt(fakes["mistral"], MISTRAL, model="voxtral-mini-latest", key="invalid").status_code == 401


def test_mistral_org_wide_one_request_per_second_counts_transcriptions(fakes: FakeFleet) -> None:
    fakes["mistral"].set_limits(org_limits={"rps": 1})
    assert stt(fakes["mistral"], MISTRAL, model="voxtral-mini-latest").status_code == 200
    refused = stt(fakes["mistral"], MISTRAL, model="voxtral-mini-latest")
    assert refused.status_code == 429 and refused.json()["type"] == "rate_limited"


# --- Gemini -------------------------------------------------------------------------------------


def gemini(fake: FakeProvider, part: dict[str, Any], model: str = "gemini-2.5-flash") -> httpx.Response:
    body = {"contents": [{"role": "user", "parts": [{"text": "Generate a transcript of the speech."}, part]}]}
    return CLIENT.post(f"{fake.root_url}/v1beta/models/{model}:generateContent", json=body,
                       headers={"x-goog-api-key": "k"})  # fmt: skip


def test_gemini_inline_audio_is_transcribed_and_counted_at_32_tokens_a_second(fakes: FakeFleet) -> None:
    resp = gemini(fakes["gemini"], {"inlineData": {"mimeType": "audio/wav", "data": base64.b64encode(WAV12).decode()}})
    body = resp.json()
    assert resp.status_code == 200, body
    assert body["candidates"][0]["content"]["parts"][0]["text"].startswith("Fake transcript of 12.0 seconds of wav")
    usage = body["usageMetadata"]
    details = {d["modality"]: d["tokenCount"] for d in usage["promptTokensDetails"]}
    assert details["AUDIO"] == 384 and usage["promptTokenCount"] == 384 + details["TEXT"]
    assert details["TEXT"] < 30  # the base64 audio is not counted as text


def test_gemini_file_uri_and_snake_case_and_bad_mime(fakes: FakeFleet, audio_server: str) -> None:
    by_uri = gemini(fakes["gemini"], {"file_data": {"mime_type": "audio/wav", "file_uri": f"{audio_server}/two.wav"}})
    assert "2.0 seconds" in by_uri.json()["candidates"][0]["content"]["parts"][0]["text"]
    assert by_uri.json()["usageMetadata"]["promptTokensDetails"][1] == {"modality": "AUDIO", "tokenCount": 64}
    webm = gemini(fakes["gemini"], {"inline_data": {"mime_type": "audio/webm", "data": "AAAA"}})
    assert webm.status_code == 400 and webm.json()["error"]["status"] == "INVALID_ARGUMENT"
    junk = gemini(fakes["gemini"], {"inline_data": {"mime_type": "audio/mp3", "data": "AAAA"}})
    assert junk.status_code == 400 and junk.json()["error"]["status"] == "INVALID_ARGUMENT"


# --- faults and latency -------------------------------------------------------------------------


def test_injected_faults_apply_to_transcription_routes(fakes: FakeFleet) -> None:
    fakes["openai"].add_fault(fault="429", retry_after=7, count=1)
    resp = stt(fakes["openai"], OPENAI, model="whisper-1")
    assert resp.status_code == 429 and resp.headers["retry-after"] == "7"
    assert stt(fakes["openai"], OPENAI, model="whisper-1").status_code == 200
    fakes["groq"].add_fault(fault="503", model="whisper-large-v3", count=1)
    assert stt(fakes["groq"], GROQ, model="whisper-large-v3").status_code == 503
    fakes["openai"].add_fault(fault="malformed", count=1)
    broken = stt(fakes["openai"], OPENAI, model="whisper-1", response_format="text")
    assert broken.status_code == 200 and not broken.text.endswith("\n")  # half the body
    fakes["mistral"].add_fault(fault="timeout", hang_seconds=2, count=1)
    with pytest.raises(httpx.ReadTimeout):
        CLIENT.post(fakes["mistral"].root_url + MISTRAL, headers=AUTH, data={"model": "voxtral-mini-latest"},
                    files={"file": ("a.wav", WAV2, "audio/wav")}, timeout=0.5)  # fmt: skip
    assert fakes["groq"].stats()["faults_fired"] == {"503": 1}


def test_latency_applies_to_transcriptions() -> None:
    with start_fakes({"providers": {"openai": {"latency_ms": 300}}}) as fleet:
        started = time.monotonic()
        assert stt(fleet["openai"], OPENAI, model="whisper-1").status_code == 200
        assert time.monotonic() - started >= 0.3


# --- Replicate ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def replicate_fleet() -> Iterator[FakeFleet]:
    with start_fakes(providers=["replicate"]) as fleet:
        yield fleet


@pytest.fixture
def rep(replicate_fleet: FakeFleet) -> FakeProvider:
    replicate_fleet.reset()
    return replicate_fleet["replicate"]


def predict(fake: FakeProvider, inputs: dict[str, Any], prefer: str | None = "wait", auth: str = "Bearer r8_k",
            version: str = f"openai/whisper:{LATEST}") -> httpx.Response:  # fmt: skip
    headers = {"Authorization": auth, **({"Prefer": prefer} if prefer else {})}
    return CLIENT.post(fake.root_url + "/v1/predictions", headers=headers, json={"version": version, "input": inputs})


def poll(fake: FakeProvider, url: str, seen: list[str] | None = None) -> dict[str, Any]:
    for _ in range(200):
        body = CLIENT.get(url, headers={"Authorization": "Bearer r8_k"}).json()
        if seen is not None:
            seen.append(body["status"])
        if body["status"] in ("succeeded", "failed", "canceled"):
            return body
        time.sleep(0.05)
    raise AssertionError("the prediction never ended")


def test_replicate_prefer_wait_answers_finished(rep: FakeProvider) -> None:
    resp = predict(rep, {"audio": data_url(WAV12), "transcription": "srt", "language": "en"})
    body = resp.json()
    assert resp.status_code == 201 and body["status"] == "succeeded", body
    output = body["output"]
    assert output["transcription"].startswith("1\n00:00:00,000 --> 00:00:05,000\nFake transcript of 12.0")
    assert [s["id"] for s in output["segments"]] == [0, 1, 2] and output["detected_language"] == "english"
    assert output["translation"] is None and body["urls"]["get"].endswith(body["id"])
    translated = predict(rep, {"audio": data_url(WAV2), "translate": True}, prefer="wait=5", auth="Token r8_k").json()
    assert "(translated to English)" in translated["output"]["translation"]
    assert translated["output"]["transcription"] == "Fake transcript of 2.0 seconds of wav audio."


def test_replicate_without_wait_or_past_it_is_polled(rep: FakeProvider, audio_server: str) -> None:
    started = predict(rep, {"audio": f"{audio_server}/two.wav"}, prefer=None).json()
    assert started["status"] == "starting" and started["output"] is None
    assert poll(rep, started["urls"]["get"])["output"]["transcription"].startswith("Fake transcript of 2.0")
    rep.add_fault(fault="slow_job", job_seconds=1.5, count=1)
    clock = time.monotonic()
    slow = predict(rep, {"audio": data_url(WAV2)}, prefer="wait=1").json()
    # answered at the wait (1 s), still "starting": had it held until the job ended, it would say succeeded
    assert slow["status"] == "starting" and 0.9 <= time.monotonic() - clock < 5.0
    seen: list[str] = []
    done = poll(rep, slow["urls"]["get"], seen)
    assert done["status"] == "succeeded" and "processing" in seen and done["metrics"]["predict_time"] > 0
    assert rep.faults()[0]["fired"] == 1  # polling did not consume the job fault


def test_replicate_processing_time_follows_audio_length() -> None:
    with start_fakes({"providers": {"replicate": {"job_seconds_per_audio_second": 0.1}}}) as fleet:
        short = predict(fleet["replicate"], {"audio": data_url(WAV2)}, prefer="wait=1").json()
        long = predict(fleet["replicate"], {"audio": data_url(WAV12)}, prefer="wait=1").json()
        assert short["status"] == "succeeded" and long["status"] == "starting"  # 0.2 s vs 1.2 s
        assert poll(fleet["replicate"], long["urls"]["get"])["status"] == "succeeded"


def test_replicate_failed_predictions(rep: FakeProvider) -> None:
    rep.add_fault(fault="fail_job", message="CUDA out of memory", count=1)
    failed = predict(rep, {"audio": data_url(WAV2)}).json()
    assert failed["status"] == "failed" and failed["error"] == "CUDA out of memory" and failed["output"] is None
    junk = predict(rep, {"audio": data_url(b"not audio at all")}).json()
    assert junk["status"] == "failed" and "Could not read the audio" in junk["error"]


def test_replicate_errors(rep: FakeProvider) -> None:
    unauthorized = predict(rep, {"audio": data_url(WAV2)}, auth="Bearer invalid")
    assert unauthorized.status_code == 401 and unauthorized.json()["title"] == "Unauthenticated"
    missing = predict(rep, {"transcription": "json"})
    assert missing.status_code == 422
    assert {f["field"] for f in missing.json()["invalid_fields"]} == {"input.audio", "input.transcription"}
    assert predict(rep, {"audio": data_url(WAV2)}, version="f" * 64).status_code == 422
    assert CLIENT.get(rep.root_url + "/v1/predictions/nope", headers={"Authorization": "Bearer k"}).status_code == 404
    rep.set_limits(limits={"default": {"rpm": 1}})
    assert predict(rep, {"audio": data_url(WAV2)}).status_code == 201
    throttled = predict(rep, {"audio": data_url(WAV2)})
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
    assert throttled.json()["detail"].startswith("Request was throttled.")


def test_replicate_cancel_and_injected_faults(rep: FakeProvider) -> None:
    rep.add_fault(fault="slow_job", job_seconds=30, count=1)
    started = predict(rep, {"audio": data_url(WAV2)}, prefer=None).json()
    canceled = CLIENT.post(started["urls"]["cancel"], headers={"Authorization": "Bearer k"}).json()
    assert canceled["status"] == "canceled"
    rep.add_fault(fault="503", count=1)
    assert predict(rep, {"audio": data_url(WAV2)}).status_code == 503
    assert predict(rep, {"audio": data_url(WAV2)}).status_code == 201
