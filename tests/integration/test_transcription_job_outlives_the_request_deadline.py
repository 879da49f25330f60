"""A job is not bound by the request path's deadline: audio whose transcription takes longer
than the synchronous budget fails as a request (the caller is told to use a job) and succeeds as
a job, through the same façade and failover, polling a Replicate prediction until it is done.

Scaled down so the test takes seconds: the request deadline is 2 s (API Gateway's 29 s in
production) and the job deadline 10 s (840 s); the fake's prediction takes 4 s."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_gateway.api.audio_schemas import TranscriptionJobRequest, TranscriptionRequest, UploadRequest
from llm_gateway.api.auth import Caller
from llm_gateway.api.errors import GatewayError
from llm_gateway.config import load_settings
from llm_gateway.jobs.store import MemoryJobStore
from llm_gateway.speech import build_speech
from llm_gateway.transcription.gateway import AudioInput
from llm_gateway.uploads.objects import MemoryAudioObjects
from sandbox.fakes import FakeFleet
from tests.integration.test_failover_matrix import fleet_env
from tests.transcribe_helpers import NoLaunch

CLIP = (Path(__file__).parents[1] / "fixtures" / "audio" / "tone.wav").read_bytes()



def test_a_job_finishes_what_the_request_deadline_cannot(fakes: FakeFleet) -> None:
    env = {**fleet_env(fakes, ("replicate",)), "LLM_GATEWAY_DEADLINE_S": "2", "LLM_GATEWAY_ATTEMPT_TIMEOUT_S": "2",
           "LLM_GATEWAY_JOB_DEADLINE_S": "10", "LLM_GATEWAY_JOB_ATTEMPT_TIMEOUT_S": "10", "LLM_GATEWAY_MAX_WAIT_S": "0",
           "LLM_GATEWAY_MAX_ATTEMPTS": "1"}
    speech = build_speech(load_settings(env), objects=MemoryAudioObjects(), job_store=MemoryJobStore(),
                          launcher=NoLaunch())
    fakes.providers["replicate"].add_fault(fault="slow_job", job_seconds=4.0, rate=1.0)
    model = "replicate/openai/whisper"

    with pytest.raises(GatewayError) as too_slow:
        speech.transcriber.transcribe(TranscriptionRequest(model=model), AudioInput(CLIP, "tone.wav"),
                                      translate=False, request_id="sync", caller=Caller())
    assert too_slow.value.status in (502, 503, 504)

    ticket = speech.uploads.create(UploadRequest(filename="tone.wav", bytes=len(CLIP), content_type="audio/wav"),
                                   owner=Caller().user)
    speech.uploads.objects.complete_upload(ticket["id"], CLIP)
    job = speech.jobs.submit(TranscriptionJobRequest(file_id=ticket["id"], model=model), caller=Caller(),
                             function=None)
    assert speech.jobs.run(job["id"], runner="test", remaining_s=None) == "succeeded"
    done = speech.jobs.get(job["id"], caller=Caller())
    assert done["status"] == "succeeded" and "2.0 seconds of wav audio" in done["result"]["text"]
    assert done["gateway"]["provider"] == "replicate"
