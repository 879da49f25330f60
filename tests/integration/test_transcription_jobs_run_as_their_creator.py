"""A transcription job is its creator's request, only later: the real façade over HTTP to the fake
providers, keys, limits, budgets, the usage ledger and jobs in one DynamoDB state table (moto),
as in AWS. What can be refused before the audio is read is refused at submit (a model unknown,
unable to do what is asked, or not allowed for the key); a job is held to its creator's model
allow-list and budget as they stand when it runs (it ends `failed` with `model_not_allowed` /
`budget_exceeded` and no provider is called), its cost lands in the creator's usage (not the
static user's), its `user` is the end user of per-end-user limits, and a key revoked between
submit and run fails it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from llm_gateway.api.audio_schemas import TranscriptionJobRequest, TranscriptionRequest, UploadRequest
from llm_gateway.api.auth import Caller
from llm_gateway.api.errors import GatewayError
from llm_gateway.config import load_settings
from llm_gateway.jobs.dynamodb import DynamoJobStore
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.speech import Speech, build_speech, job_settings
from llm_gateway.tenancy.keys import KeyRecord, issue, revise
from llm_gateway.tenancy.policy import Policy
from llm_gateway.transcription.gateway import AudioInput, build_transcriber
from llm_gateway.uploads.objects import MemoryAudioObjects
from sandbox.fakes import FakeFleet
from tests.integration.test_breaker_shared_dynamodb import TABLE, atomic_moto_writes, table  # noqa: F401  (fixtures)
from tests.integration.test_failover_matrix import fleet_env
from tests.transcribe_helpers import NoLaunch

CLIP = (Path(__file__).parents[1] / "fixtures" / "audio" / "tone.wav").read_bytes()  # 2 s
PAID = "openai/whisper-1"



@dataclass
class Rig:
    speech: Speech
    fakes: FakeFleet
    plaintext: dict[str, str] = field(default_factory=dict)  # key id → the key (shown once, kept here)

    @property
    def tenancy(self) -> Any:
        return self.speech.transcriber.core.tenancy  # type: ignore[attr-defined]

    def key(self, user: str, **policy: Any) -> tuple[Caller, KeyRecord]:
        key, record = issue(self.tenancy.keys, user, Policy(**policy), "", time.time())
        self.plaintext[record.id] = key
        return self.speech.authenticate(f"Bearer {key}"), record

    def job(self, caller: Caller, model: str) -> str:
        ticket = self.speech.uploads.create(UploadRequest(filename="tone.wav", bytes=len(CLIP),
                                                          content_type="audio/wav"), owner=caller.user)
        self.speech.uploads.objects.complete_upload(ticket["id"], CLIP)  # type: ignore[union-attr]
        job = self.speech.jobs.submit(TranscriptionJobRequest(file_id=ticket["id"], model=model), caller=caller,
                                      function=None)
        return str(job["id"])

    def run(self, job_id: str, caller: Caller) -> dict[str, Any]:
        self.speech.jobs.run(job_id, runner="test", remaining_s=None)
        return self.speech.jobs.get(job_id, caller=caller)

    def usage_today(self, user: str) -> dict[str, Any]:
        answer = self.tenancy.usage(user=user, policy=Policy(), admin=True, query={})
        return dict(answer["today"])

    def openai_received(self) -> int:
        return int(self.fakes.providers["openai"].stats()["received"])


@pytest.fixture
def rig(table, fakes: FakeFleet) -> Iterator[Rig]:  # noqa: F811
    env = {**fleet_env(fakes, ("groq", "openai")), "LLM_GATEWAY_STATE_TABLE": TABLE, "LLM_GATEWAY_MAX_WAIT_S": "0",
           "LLM_GATEWAY_KEY_CACHE_S": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    settings = load_settings(env)

    def facade(s: Any) -> Any:  # one container's: its own core and boto3 client, the shared table
        return build_transcriber(s, metrics=RecordingMetrics(),
                                 dynamodb_client=boto3.client("dynamodb", region_name="us-east-1"))

    speech = build_speech(settings, transcriber=facade(settings), job_transcriber=facade(job_settings(settings)),
                          objects=MemoryAudioObjects(), launcher=NoLaunch(),
                          job_store=DynamoJobStore(boto3.client("dynamodb", region_name="us-east-1"), TABLE))
    yield Rig(speech, fakes)


def test_a_jobs_cost_lands_in_its_creators_usage(rig: Rig) -> None:
    alice, _ = rig.key("alice")
    job = rig.run(rig.job(alice, PAID), alice)
    assert job["status"] == "succeeded", job
    cost = float(job["gateway"]["cost-usd"])
    assert cost > 0
    today = rig.usage_today("alice")
    assert today["requests"] == 1 and today["paid_requests"] == 1 and today["audio_seconds"] > 0
    assert today["cost_usd"] == pytest.approx(cost)
    assert rig.usage_today("static")["requests"] == 0  # not run as the static user any more


def test_a_job_for_a_model_its_creators_key_may_not_use_is_refused_at_submit(rig: Rig) -> None:
    bob, _ = rig.key("bob", models=("groq/*",))
    with pytest.raises(GatewayError) as refused:
        rig.job(bob, PAID)
    assert (refused.value.status, refused.value.code) == (403, "model_not_allowed")
    assert "groq/*" in refused.value.message
    free_only, _ = rig.key("bob", free_only=True)  # `auto` too, when no model it could use is allowed
    with pytest.raises(GatewayError) as refused_auto:
        rig.job(free_only, PAID)
    assert refused_auto.value.code == "model_not_allowed"
    assert rig.openai_received() == 0


@pytest.mark.parametrize(("model", "translate", "code"), [
    ("nobody/whisper-9", False, "model_not_found"),
    ("groq/whisper-large-v3-turbo", True, "no_model_fits"),  # Groq's turbo does not translate
])
def test_a_job_no_model_could_serve_is_refused_at_submit(rig: Rig, model: str, translate: bool, code: str) -> None:
    alice, _ = rig.key("alice")
    ticket = rig.speech.uploads.create(UploadRequest(filename="tone.wav", bytes=len(CLIP), content_type="audio/wav"),
                                       owner=alice.user)
    with pytest.raises(GatewayError) as refused:
        rig.speech.jobs.submit(TranscriptionJobRequest(file_id=ticket["id"], model=model, translate=translate),
                               caller=alice, function=None)
    assert (refused.value.status, refused.value.code) == (400, code)


def test_a_job_is_held_to_its_creators_model_allow_list_as_it_stands_at_run_time(rig: Rig) -> None:
    bob, record = rig.key("bob", models=("openai/*",))
    job_id = rig.job(bob, PAID)
    revise(rig.tenancy.keys, record, time.time(), policy=Policy(models=("groq/*",)))
    job = rig.run(job_id, bob)
    assert job["status"] == "failed" and job["error"]["code"] == "model_not_allowed", job
    assert rig.openai_received() == 0 and rig.usage_today("bob")["requests"] == 0


def test_a_job_s_end_user_is_held_to_the_key_s_per_end_user_limits(rig: Rig) -> None:
    """`user` on a job is the end user, as on a synchronous request: a key with per-end-user
    limits counts each end user on their own."""
    frank, _ = rig.key("frank", rpd=1, per_end_user=True)
    done = []
    for end_user in ("u-1", "u-2", "u-1"):
        ticket = rig.speech.uploads.create(UploadRequest(filename="tone.wav", bytes=len(CLIP),
                                                         content_type="audio/wav"), owner=frank.user)
        rig.speech.uploads.objects.complete_upload(ticket["id"], CLIP)  # type: ignore[union-attr]
        job = rig.speech.jobs.submit(TranscriptionJobRequest(file_id=ticket["id"], model=PAID, user=end_user),
                                     caller=frank, function=None)
        done.append(rig.run(str(job["id"]), frank))
    assert [j["status"] for j in done] == ["succeeded", "succeeded", "failed"], done
    assert done[2]["error"]["code"] == "user_rate_limited"


def test_a_job_is_held_to_its_creators_budget(rig: Rig) -> None:
    carol, _ = rig.key("carol", daily_budget_usd=0, models=("openai/*",))
    job = rig.run(rig.job(carol, "auto"), carol)
    assert job["status"] == "failed" and job["error"]["code"] == "budget_exceeded", job
    assert job["error"]["type"] == "insufficient_quota"
    assert rig.openai_received() == 0


def test_a_budget_spent_after_the_submit_stops_the_job(rig: Rig) -> None:
    """The budget the job meets is the one at run time: here spent by a request after the submit
    (spend counts against a budget only while the key has one: so it has one from the start)."""
    dave, record = rig.key("dave", models=("openai/*",), daily_budget_usd=1.0)
    job_id = rig.job(dave, PAID)
    served = rig.speech.transcriber.transcribe(TranscriptionRequest(model=PAID), AudioInput(CLIP, "tone.wav"),
                                               translate=False, request_id="sync", caller=dave)
    spent = float(served.headers["x-gateway-cost-usd"])
    revise(rig.tenancy.keys, record, time.time(), policy=Policy(models=("openai/*",), daily_budget_usd=spent))
    job = rig.run(job_id, dave)
    assert job["status"] == "failed" and job["error"]["code"] == "budget_exceeded", job
    assert rig.openai_received() == 1 and rig.usage_today("dave")["requests"] == 1


def test_a_key_revoked_between_submit_and_run_fails_the_job(rig: Rig) -> None:
    erin, record = rig.key("erin")
    erin_other, _ = rig.key("erin")
    job_id = rig.job(erin, PAID)
    revise(rig.tenancy.keys, record, time.time(), revoke=True)
    with pytest.raises(GatewayError) as refused:  # the key itself no longer authenticates...
        rig.speech.authenticate(f"Bearer {rig.plaintext[record.id]}")
    assert refused.value.status == 401
    job = rig.run(job_id, erin_other)  # ...and its job, read with the user's other key, did not run
    assert job["status"] == "failed" and job["error"]["code"] == "invalid_api_key", job
    assert record.id in job["error"]["message"]
    assert rig.openai_received() == 0 and rig.usage_today("erin")["requests"] == 0
