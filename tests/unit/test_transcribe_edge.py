"""Pure parts of the transcribe edge: body decoding and multipart parsing, ids, settings, the
in-memory job store's transitions and the in-memory audio objects (no sockets)."""

from __future__ import annotations

import base64

import pytest

from llm_gateway.api.errors import InvalidRequest, PayloadTooLarge
from llm_gateway.api.forms import boundary_of, event_body, parse_form
from llm_gateway.config import ConfigError, load_settings
from llm_gateway.jobs.store import Finish, Job, MemoryJobStore
from llm_gateway.uploads.ids import FILE_PREFIX, JOB_PREFIX, is_id, new_id
from llm_gateway.uploads.objects import MemoryAudioObjects, ObjectMissing, ObjectRejected
from sandbox.local_server import function_for
from tests.transcribe_helpers import BOUNDARY, form_body

CT = f"multipart/form-data; boundary={BOUNDARY}"


def test_a_form_with_fields_and_a_file():
    body = form_body({"model": "auto", "prompt": "élan"}, ("C:\\Users\\me\\talk.mp3", "audio/mpeg", b"\x00\xff" * 10),
                     repeated=[("timestamp_granularities[]", "word"), ("timestamp_granularities[]", "segment")])
    form = parse_form(body, CT, max_bytes=10_000)
    assert form.fields == {"model": ["auto"], "prompt": ["élan"], "timestamp_granularities[]": ["word", "segment"]}
    assert form.file is not None and form.file.filename == "talk.mp3" and form.file.data == b"\x00\xff" * 10


def test_quoted_boundaries_and_case_are_accepted():
    assert boundary_of('Multipart/Form-Data; boundary="abc def"') == "abc def"


@pytest.mark.parametrize("body", [
    form_body({}, ("a", "audio/wav", b"1")) + form_body({}, ("b", "audio/wav", b"2")),
])
def test_two_files_are_refused(body):
    with pytest.raises(InvalidRequest):
        parse_form(body.replace(f"--{BOUNDARY}--\r\n--".encode(), b"--", 1), CT, max_bytes=10_000)


def test_a_file_in_another_field_is_refused():
    body = form_body({}, ("a.wav", "audio/wav", b"1")).replace(b'name="file"', b'name="model"')
    with pytest.raises(InvalidRequest, match="Only 'file' may carry a file"):
        parse_form(body, CT, max_bytes=10_000)


def _with_charset(charset: bytes, text: bytes) -> bytes:
    """A form whose `model` part names `charset` in its Content-Type and holds `text`."""
    return form_body({"model": "placeholder"}, None).replace(
        b'name="model"\r\n\r\nplaceholder',
        b'name="model"\r\nContent-Type: text/plain; charset=' + charset + b"\r\n\r\n" + text)


@pytest.mark.parametrize(("charset", "text"), [
    # Python text codecs a client could name: each decoded these to "auto" (or a surprise)
    ("utf-7", b"+AGE-uto"), ("unicode_escape", b"\\u0061uto"), ("raw_unicode_escape", b"\\u0061uto"),
    ("rot13", b"nhgb"), ("utf-16", b"\xff\xfea\x00u\x00t\x00o\x00"), ("cp1252", b"auto"), ("koi8-r", b"auto"),
    # and the ones that fail oddly: `undefined`, `punycode`, `idna` (a UnicodeError that is no
    # UnicodeDecodeError, once a 500), an unknown name, a bytes-to-bytes codec
    ("undefined", b"auto"), ("punycode", b"u"), ("idna", b"xn--abc-"), ("no-such-charset", b"auto"), ("hex", b"61"),
])
def test_a_charset_outside_the_ones_clients_send_is_a_400_naming_it(charset, text):
    """A part's `charset` named any Python codec, so `utf-7` and `unicode_escape` turned other
    bytes into `auto`: only UTF-8, US-ASCII and ISO-8859-1 (by their usual labels) are read."""
    with pytest.raises(InvalidRequest, match=f"'model' names charset '{charset}'; send UTF-8") as refused:
        parse_form(_with_charset(charset.encode(), text), CT, max_bytes=10_000)
    assert (refused.value.param, refused.value.code) == ("model", "unsupported_charset")


@pytest.mark.parametrize(("charset", "text", "expected"), [
    ("utf-8", "élan".encode(), "élan"), ("UTF-8", "élan".encode(), "élan"), ("utf8", b"auto", "auto"),
    ('"utf-8"', "élan".encode(), "élan"), ("us-ascii", b"auto", "auto"), ("US-ASCII", b"auto", "auto"),
    ("ascii", b"auto", "auto"), ("iso-8859-1", b"\xe9lan", "élan"), ("ISO-8859-1", b"\xe9lan", "élan"),
    ("latin1", b"\xe9lan", "élan"), ("latin-1", b"\xe9lan", "élan"), ("iso8859-1", b"\xe9lan", "élan"),
    ("iso_8859-1", b"\xe9lan", "élan"),
])
def test_the_charsets_clients_send_are_read(charset, text, expected):
    assert parse_form(_with_charset(charset.encode(), text), CT, max_bytes=10_000).fields["model"] == [expected]


@pytest.mark.parametrize(("charset", "text"), [("utf-8", b"\xff"), ("us-ascii", b"\xe9"), (None, b"\xff")])
def test_a_field_its_charset_cannot_decode_is_a_400(charset, text):
    body = _with_charset(charset.encode(), text) if charset else form_body({"model": "x"}, None).replace(b"\r\n\r\nx", b"\r\n\r\n" + text)
    encoding = f"text in the charset its part names \\('{charset}'\\)" if charset else "UTF-8 text"
    with pytest.raises(InvalidRequest, match=f"'model' is not {encoding}"):
        parse_form(body, CT, max_bytes=10_000)


def test_a_charset_the_codec_lookup_cannot_take_is_a_400():
    """A quoted charset holding NUL made the codec lookup raise ValueError ("embedded null
    character"), neither UnicodeError nor LookupError: it was a 500. It is now no charset a
    client sends, refused before any lookup."""
    with pytest.raises(InvalidRequest, match="'model' names charset 'utf-8\\\\x00'; send UTF-8"):
        parse_form(_with_charset(b'"utf-8\x00"', b"auto"), CT, max_bytes=10_000)


def test_too_many_parts_is_a_400():
    with pytest.raises(InvalidRequest, match="too many parts"):
        parse_form(form_body({f"f{i}": "x" for i in range(100)}, None), CT, max_bytes=100_000)


def test_a_long_text_field_is_a_400():
    with pytest.raises(InvalidRequest, match="longer than"):
        parse_form(form_body({"prompt": "x" * 20_000}, None), CT, max_bytes=100_000)


def test_size_is_checked_before_decoding():
    encoded = base64.b64encode(b"x" * 1000).decode()
    assert event_body(encoded, True, 1000) == b"x" * 1000
    with pytest.raises(PayloadTooLarge):
        event_body(base64.b64encode(b"x" * 1001).decode(), True, 1000)
    with pytest.raises(PayloadTooLarge):
        event_body("A" * 10_000_000, True, 1000)  # refused on its length alone
    with pytest.raises(PayloadTooLarge):
        event_body("y" * 1001, False, 1000)
    assert event_body(None, True, 10) == b""


def test_ids_are_random_and_shaped():
    ids = {new_id(FILE_PREFIX) for _ in range(100)}
    assert len(ids) == 100 and all(is_id(i, FILE_PREFIX) and len(i) == 37 for i in ids)
    assert not is_id(new_id(JOB_PREFIX), FILE_PREFIX)
    assert not is_id("file-../../x", FILE_PREFIX) and not is_id(None, FILE_PREFIX)


def test_transcription_settings_and_their_checks():
    s = load_settings({"LLM_GATEWAY_AUDIO_BUCKET": "my-audio.bucket", "LLM_GATEWAY_JOB_DEADLINE_S": "600"})
    assert s.audio_bucket == "my-audio.bucket" and s.job_deadline_s == 600 and s.upload_url_ttl_s == 900
    for env, named in [({"LLM_GATEWAY_AUDIO_BUCKET": "Bad_Bucket"}, "LLM_GATEWAY_AUDIO_BUCKET"),
                       ({"LLM_GATEWAY_UPLOAD_URL_TTL_S": "700000"}, "LLM_GATEWAY_UPLOAD_URL_TTL_S"),
                       ({"LLM_GATEWAY_MAX_UPLOAD_BYTES": str(2 * 1024**3)}, "LLM_GATEWAY_MAX_UPLOAD_BYTES"),
                       ({"LLM_GATEWAY_JOB_DEADLINE_S": "1000"}, "LLM_GATEWAY_JOB_DEADLINE_S"),
                       ({"LLM_GATEWAY_JOB_ATTEMPT_TIMEOUT_S": "900"}, "LLM_GATEWAY_JOB_ATTEMPT_TIMEOUT_S"),
                       ({"LLM_GATEWAY_JOB_TTL_S": "soon"}, "LLM_GATEWAY_JOB_TTL_S")]:
        with pytest.raises(ConfigError, match=named):
            load_settings(env)


def _job(now: float) -> Job:
    return Job(id="job-1", status="queued", created_at=now, updated_at=now, lease_until=now + 10,
               expires_at=int(now) + 100, request={"file_id": "file-x"})


def test_memory_job_store_transitions():
    store = MemoryJobStore()
    store.create(_job(0))
    assert store.claim("job-1", "r1", 11, 50, 200) is None  # its queue lease is over
    assert store.expire("job-1", {"code": "job_not_started"}, 11, 200)
    store2 = MemoryJobStore()
    store2.create(_job(0))
    assert store2.claim("job-1", "r1", 1, 50, 200) is not None
    assert store2.claim("job-1", "r2", 2, 50, 200) is None  # only one runner
    assert not store2.finish("job-1", "r2", Finish("succeeded", result="x"), 3, 200)
    assert not store2.expire("job-1", {}, 3, 200)  # lease still on
    assert store2.finish("job-1", "r1", Finish("succeeded", result="x"), 3, 200)
    job = store2.get("job-1", 3)
    assert job is not None and job.status == "succeeded" and job.result == "x"
    assert store2.get("job-1", 200) is None  # expired (TTL is lazy: reads check it)


def test_memory_audio_objects_play_s3s_refusals():
    clock = [0.0]
    objects = MemoryAudioObjects(url_ttl_s=900, wall=lambda: clock[0])
    put = objects.presign_put("file-a", 3, "audio/wav", filename="a.wav", owner="alice")
    assert put.headers["Content-Length"] == "3" and put.expires_at == 900
    with pytest.raises(ObjectMissing):
        objects.read("file-a", max_bytes=10, owner="alice")  # not uploaded yet
    with pytest.raises(ObjectMissing):
        objects.owner("file-a")
    with pytest.raises(ValueError):
        objects.complete_upload("file-a", b"four")
    objects.complete_upload("file-a", b"abc")
    stored = objects.read("file-a", max_bytes=10, owner="alice")
    assert stored.data == b"abc" and stored.owner == "alice" and objects.owner("file-a") == "alice"
    with pytest.raises(ObjectMissing):  # another user's: as if it were not there
        objects.read("file-a", max_bytes=10, owner="bob")
    with pytest.raises(ObjectRejected):
        objects.read("file-a", max_bytes=2, owner="alice")
    objects.delete("file-a")
    with pytest.raises(ObjectMissing):
        objects.read("file-a", max_bytes=10, owner="alice")


@pytest.mark.parametrize(("path", "function"), [
    ("/v1/audio/transcriptions", "transcribe"), ("/v1/audio/jobs/job-1", "transcribe"), ("/v1/audio/uploads/", "transcribe"),
    ("/v1/chat/completions", "chat"), ("/v1/models/groq/x", "chat"), ("/v1/audio", "chat"),
])
def test_the_local_api_routes_audio_to_the_transcribe_function(path, function):
    assert function_for(path) == function
