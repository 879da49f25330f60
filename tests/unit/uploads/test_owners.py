"""Uploads and jobs belong to the user who created them, on the in-memory stores: another user's
`file_id` or job id is the same 404 as an unknown one, and a job runs as its creator's key as it
stands when the job runs (revoked: the job fails; the store unreachable: it fails, retryable)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from llm_gateway.api.audio_schemas import TranscriptionJobRequest, TranscriptionRequest, UploadRequest
from llm_gateway.api.auth import Caller
from llm_gateway.api.errors import GatewayError, NotFound
from llm_gateway.jobs.callers import KeyCallers
from llm_gateway.jobs.dynamodb import _decode, _encode
from llm_gateway.jobs.service import JobService
from llm_gateway.jobs.store import Job, MemoryJobStore
from llm_gateway.tenancy.keys import KeyRecord, MemoryKeyStore, issue, revise
from llm_gateway.tenancy.policy import Policy
from llm_gateway.transcription.gateway import AudioInput, TranscriptionOutcome
from llm_gateway.uploads.objects import MemoryAudioObjects
from llm_gateway.uploads.service import Uploads
from tests.transcribe_helpers import NoLaunch

NOW = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@dataclass
class Recording:
    """The façade as jobs see it: records who it transcribed for."""

    settings: Any = None
    logger: Any = None
    metrics: Any = None
    calls: list[Caller | None] = field(default_factory=list)

    def authenticate(self, authorization: str | None) -> Any:
        raise NotImplementedError

    def admit(self, request: TranscriptionRequest, *, translate: bool, caller: Caller) -> None:
        return None  # the real façade's checks are tested over HTTP (test_transcription_jobs_run_as_their_creator)

    def transcribe(self, request: TranscriptionRequest, audio: AudioInput, *, translate: bool, request_id: str,
                   remaining_s: float | None = None, caller: Any = None) -> TranscriptionOutcome:
        self.calls.append(caller)
        return TranscriptionOutcome(200, {"x-gateway-provider": "fake"}, json.dumps({"text": "ok"}),
                                    "application/json")


class BrokenKeys(MemoryKeyStore):
    def find(self, key_id: str) -> KeyRecord | None:
        raise ConnectionError("the table is unreachable")


@dataclass
class Rig:
    clock: Clock
    objects: MemoryAudioObjects
    uploads: Uploads
    keys: MemoryKeyStore
    facade: Recording
    jobs: JobService

    def caller(self, user: str, **policy: Any) -> tuple[Caller, KeyRecord]:
        _, record = issue(self.keys, user, Policy(**policy), "", self.clock.now)
        return Caller(user=record.user, key_id=record.id, policy=record.policy, admin=record.policy.admin), record

    def upload(self, caller: Caller, data: bytes = b"abc") -> str:
        ticket = self.uploads.create(UploadRequest(filename="a.wav", bytes=len(data), content_type="audio/wav"),
                                     owner=caller.user)
        self.objects.complete_upload(ticket["id"], data)
        return str(ticket["id"])

    def submit(self, caller: Caller, file_id: str) -> str:
        return str(self.jobs.submit(TranscriptionJobRequest(file_id=file_id), caller=caller, function=None)["id"])



@pytest.fixture
def rig() -> Rig:
    clock = Clock()
    objects = MemoryAudioObjects(wall=clock)
    uploads = Uploads(objects, max_upload_bytes=1000)
    keys, facade = MemoryKeyStore(), Recording()
    jobs = JobService(MemoryJobStore(), NoLaunch(), uploads, lambda: facade, KeyCallers(keys), admit=facade.admit,
                      ttl_s=86_400, job_deadline_s=840, wall=clock)
    return Rig(clock, objects, uploads, keys, facade, jobs)


def not_found(call: Any) -> dict[str, Any]:
    with pytest.raises(NotFound) as refused:
        call()
    return refused.value.body()["error"]


# ------------------------------------------------------------------ uploads


def test_an_upload_is_its_users_only(rig: Rig) -> None:
    alice, _ = rig.caller("alice")
    alice_again, _ = rig.caller("alice")
    bob, _ = rig.caller("bob", admin=True)
    file_id = rig.upload(alice)
    assert rig.uploads.audio(file_id, user=alice_again.user).data == b"abc"
    rig.uploads.check(file_id, user=alice.user)
    unknown = "file-" + "Z" * 32
    for user in (bob.user, Caller().user):  # an admin too: uploads have no exception
        error = not_found(lambda u=user: rig.uploads.audio(file_id, user=u))
        assert error["code"] == "file_not_found"
        missing = not_found(lambda u=user: rig.uploads.audio(unknown, user=u))
        assert error == {**missing, "message": missing["message"].replace(unknown, file_id)}  # word for word
        assert not_found(lambda u=user: rig.uploads.check(file_id, user=u))["code"] == "file_not_found"


def test_an_upload_with_no_owner_recorded_is_no_ones(rig: Rig) -> None:
    rig.objects.put_legacy("file-" + "L" * 32, b"abc", "audio/wav", filename="old.wav")
    for user in ("static", "alice"):
        assert not_found(lambda u=user: rig.uploads.audio("file-" + "L" * 32, user=u))["code"] == "file_not_found"
        assert not_found(lambda u=user: rig.uploads.check("file-" + "L" * 32, user=u))["code"] == "file_not_found"


def test_another_users_mismatched_upload_is_only_not_found(rig: Rig) -> None:
    alice, _ = rig.caller("alice")
    file_id = rig.upload(alice)
    rig.objects._objects[file_id].size = 2
    assert not_found(lambda: rig.uploads.audio(file_id, user="bob"))["code"] == "file_not_found"
    with pytest.raises(GatewayError) as mismatch:
        rig.uploads.audio(file_id, user="alice")
    assert mismatch.value.code == "upload_mismatch"


def test_an_expired_upload_is_not_found_when_checked_too(rig: Rig) -> None:
    alice, _ = rig.caller("alice")
    file_id = rig.upload(alice)
    rig.clock.now += 2 * 86_400
    assert not_found(lambda: rig.uploads.check(file_id, user="alice"))["code"] == "file_not_found"


# ------------------------------------------------------------------ jobs


def test_a_job_needs_the_submitters_own_upload(rig: Rig) -> None:
    alice, _ = rig.caller("alice")
    bob, _ = rig.caller("bob")
    file_id = rig.upload(alice)
    assert not_found(lambda: rig.submit(bob, file_id))["code"] == "file_not_found"
    assert not_found(lambda: rig.submit(Caller(), file_id))["code"] == "file_not_found"
    job_id = rig.submit(alice, file_id)
    job = rig.jobs.store.get(job_id, rig.clock.now)
    assert job is not None and (job.user, job.key_id) == ("alice", alice.key_id)


def test_only_the_creators_user_and_admins_read_a_job(rig: Rig) -> None:
    alice, _ = rig.caller("alice")
    alice_again, _ = rig.caller("alice")
    bob, _ = rig.caller("bob")
    admin, _ = rig.caller("root", admin=True)
    job_id, unknown = rig.submit(alice, rig.upload(alice)), "job-" + "Q" * 32
    for stranger in (bob, Caller()):
        error = not_found(lambda c=stranger: rig.jobs.get(job_id, caller=c))
        assert error["code"] == "job_not_found"
        missing = not_found(lambda c=stranger: rig.jobs.get(unknown, caller=c))
        assert error["message"] == missing["message"].replace(unknown, job_id)
    for reader in (alice, alice_again, admin):
        assert rig.jobs.get(job_id, caller=reader)["status"] == "queued"


def test_a_stranger_reading_a_lost_job_changes_nothing(rig: Rig) -> None:
    alice, _ = rig.caller("alice")
    job_id = rig.submit(alice, rig.upload(alice))
    rig.clock.now += 901  # its run never came
    not_found(lambda: rig.jobs.get(job_id, caller=Caller(user="bob")))
    job = rig.jobs.store.get(job_id, rig.clock.now)
    assert job is not None and job.status == "queued"
    assert rig.jobs.get(job_id, caller=alice)["error"]["code"] == "job_not_started"


def test_a_job_runs_as_its_creators_key_as_it_is_when_it_runs(rig: Rig) -> None:
    alice, record = rig.caller("alice", models=("groq/*",))
    job_id = rig.submit(alice, rig.upload(alice))
    revise(rig.keys, record, rig.clock.now, policy=Policy(daily_budget_usd=0.5))
    assert rig.jobs.run(job_id, runner="r", remaining_s=None) == "succeeded"
    (ran_as,) = rig.facade.calls
    assert ran_as == Caller(user="alice", key_id=record.id, policy=Policy(daily_budget_usd=0.5))


def test_a_static_job_runs_as_the_static_user(rig: Rig) -> None:
    job_id = rig.submit(Caller(), rig.upload(Caller()))
    assert rig.jobs.run(job_id, runner="r", remaining_s=None) == "succeeded"
    assert rig.facade.calls == [Caller()]


@pytest.mark.parametrize("change", ["revoke", "delete"])
def test_a_job_whose_key_is_gone_fails_with_an_openai_error(rig: Rig, change: str) -> None:
    alice, record = rig.caller("alice")
    file_id = rig.upload(alice)
    job_id = rig.submit(alice, file_id)
    if change == "revoke":
        revise(rig.keys, record, rig.clock.now, revoke=True)
    else:
        rig.keys._by_digest.clear()
    assert rig.jobs.run(job_id, runner="r", remaining_s=None) == "failed"
    assert not rig.facade.calls
    error = rig.jobs.get(job_id, caller=alice)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
    assert record.id in error["message"] and "revoked" in error["message"]
    assert rig.objects.owner(file_id) == "alice"  # kept: the user may submit it again


def test_a_job_whose_key_cannot_be_checked_fails_retryably(rig: Rig) -> None:
    alice, _ = rig.caller("alice")
    job_id = rig.submit(alice, rig.upload(alice))
    rig.jobs.callers = KeyCallers(BrokenKeys())
    assert rig.jobs.run(job_id, runner="r", remaining_s=None) == "failed"
    assert rig.jobs.get(job_id, caller=alice)["error"]["code"] == "key_store_unavailable"
    assert not rig.facade.calls


def test_a_key_that_names_another_user_is_not_the_creators() -> None:
    keys = MemoryKeyStore()
    _, record = issue(keys, "mallory", Policy(), "", NOW)
    with pytest.raises(GatewayError) as refused:
        KeyCallers(keys).resolve("alice", record.id)
    assert refused.value.status == 401 and refused.value.code == "invalid_api_key"
    assert KeyCallers(keys).resolve("mallory", record.id).user == "mallory"


def test_the_job_item_carries_its_creator_and_old_items_read_as_static() -> None:
    job = Job(id="job-1", status="queued", created_at=NOW, updated_at=NOW, lease_until=NOW + 10,
              expires_at=int(NOW) + 100, request={"file_id": "file-x"}, user="alice", key_id="key_0123")
    item = _encode(job)
    assert item["user"] == {"S": "alice"} and item["key_id"] == {"S": "key_0123"}
    assert _decode(item) == job
    old = {k: v for k, v in item.items() if k not in ("user", "key_id")}
    assert (_decode(old).user, _decode(old).key_id) == ("static", "static")
