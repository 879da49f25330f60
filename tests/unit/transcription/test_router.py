"""The transcription router on the shared failover runner, over `httpx.MockTransport` and a fake
clock: each provider's wire format as the adapters send and read it, failover on 429/5xx/timeouts,
Replicate's polling, and audio-second windows counted from the audio's own duration."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from llm_gateway.api.audio_schemas import TranscriptionRequest
from llm_gateway.api.errors import GatewayError
from llm_gateway.compose import Core, build_core, build_transcription
from llm_gateway.config import load_settings
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.providers.transcription import TranscriptionCall
from llm_gateway.retry.handler import RetrySettings
from llm_gateway.routing.transcription import TranscriptionRouter
from llm_gateway.selection.catalog import default_catalog
from llm_gateway.state.memory import MemoryStore
from tests.unit.routing.harness import FakeClock

KEYS = {"GROQ_API_KEY": "gsk_groq-secret-0123456789", "OPENAI_API_KEY": "sk-openai-secret-0123456789",
        "MISTRAL_API_KEY": "mistral-secret-0123456789", "GEMINI_API_KEY": "gemini-secret-0123456789",
        "REPLICATE_API_TOKEN": "r8_replicate-secret-0123456789"}
HOSTS = {"api.groq.com": "groq", "api.openai.com": "openai", "api.mistral.ai": "mistral",
         "generativelanguage.googleapis.com": "gemini", "api.replicate.com": "replicate"}
AUDIO = b"RIFF....WAVEfmt " + bytes(2000)
Handler = Callable[[httpx.Request], httpx.Response]


def verbose(text: str = "hello there", duration: float = 2.0) -> dict:
    return {"task": "transcribe", "language": "english", "duration": duration, "text": text,
            "segments": [{"id": 0, "start": 0.0, "end": 1.2, "text": "hello"},
                         {"id": 1, "start": 1.2, "end": duration, "text": " there"}],
            "words": [{"word": "hello", "start": 0.0, "end": 0.5}, {"word": "there", "start": 1.2, "end": 1.6}]}


@dataclass
class Fleet:
    clock: FakeClock
    handlers: dict[str, list[Handler]] = field(default_factory=dict)
    seen: list[tuple[str, httpx.Request]] = field(default_factory=list)

    def then(self, provider: str, *handlers: Handler) -> None:
        self.handlers.setdefault(provider, []).extend(handlers)

    def handle(self, request: httpx.Request) -> httpx.Response:
        provider = HOSTS[request.url.host]
        request.read()
        self.seen.append((provider, request))
        queue = self.handlers.get(provider) or []
        if not queue:
            return httpx.Response(500, json={"error": {"message": f"no handler left for {provider}"}})
        return queue.pop(0)(request) if len(queue) > 1 else queue[0](request)

    def providers(self) -> list[str]:
        return [p for p, _ in self.seen]


@dataclass
class Rig:
    router: TranscriptionRouter
    core: Core
    fleet: Fleet
    clock: FakeClock
    store: MemoryStore


def rig(store: MemoryStore | None = None, clock: FakeClock | None = None, **env: str) -> Rig:
    clock = clock or FakeClock()
    fleet = Fleet(clock)
    store = store or MemoryStore()
    client = httpx.Client(transport=httpx.MockTransport(fleet.handle))
    settings = load_settings({**KEYS, "LLM_GATEWAY_MAX_WAIT_S": "0", **env})
    core = build_core(settings, metrics=RecordingMetrics(), http_client=client, store=store, clocks=clock.clocks(),
                      catalog=default_catalog(),
                      retry=RetrySettings(max_attempts=3, deadline_s=25.0, attempt_timeout_s=20.0))
    return Rig(build_transcription(core), core, fleet, clock, store)


def call(duration: float = 2.0, *, translate: bool = False, words: bool = False, url: str | None = None,
         size: int | None = None, container: str = "wav") -> TranscriptionCall:
    audio = AUDIO if size is None else bytes(size)
    return TranscriptionCall(audio=audio, filename="talk.wav", container=container, mime_type="audio/wav",
                             duration_s=duration, url=url, translate=translate, language="en", prompt="Names: Ada",
                             temperature=0.0, words=words)


def request(model: str = "auto", **fields: object) -> TranscriptionRequest:
    return TranscriptionRequest.model_validate({"model": model, **fields})


def form(req: httpx.Request) -> tuple[dict[str, list[str]], dict[str, bytes]]:
    """Parse a multipart request body the way a server would (email's parser, stdlib)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    head = f"Content-Type: {req.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + req.content)
    fields: dict[str, list[str]] = {}
    files: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if part.get_filename():
            files[name] = payload
        else:
            fields.setdefault(name, []).append(payload.decode())
    return fields, files


def ok_json(body: dict, status: int = 200) -> Handler:
    return lambda request: httpx.Response(status, json=body)


def test_groq_is_tried_first_and_gets_the_audio_as_multipart_asking_for_segments() -> None:
    r = rig()
    r.fleet.then("groq", ok_json(verbose()))
    routed = r.router.transcribe(request(), call(), r.core.runner.retry.deadline())
    assert (routed.provider, routed.model) == ("groq", "whisper-large-v3-turbo")
    assert routed.free and routed.cost_usd == 0.0 and routed.billed_s == 10.0  # Groq's 10 s minimum
    sent = r.fleet.seen[0][1]
    assert sent.url.path == "/openai/v1/audio/transcriptions"
    assert sent.headers["authorization"] == f"Bearer {KEYS['GROQ_API_KEY']}"
    fields, files = form(sent)
    assert files == {"file": AUDIO}
    assert fields["model"] == ["whisper-large-v3-turbo"] and fields["response_format"] == ["verbose_json"]
    assert fields["timestamp_granularities[]"] == ["segment"] and fields["language"] == ["en"]
    assert routed.transcript.segments and routed.transcript.segments[1].text == " there"


def test_a_429_from_groq_fails_over_to_the_next_free_model_and_cools_groq_down() -> None:
    r = rig()
    r.fleet.then("groq", lambda _: httpx.Response(429, headers={"retry-after": "30"},
                                                  json={"error": {"message": "slow down", "code": "rate_limit_exceeded"}}))
    r.fleet.then("mistral", ok_json({"model": "voxtral-mini-latest", "text": "hello there", "language": "en",
                                     "segments": [{"text": "hello there", "start": 0.0, "end": 2.0}],
                                     "usage": {"prompt_audio_seconds": 2, "prompt_tokens": 4, "total_tokens": 10}}))
    routed = r.router.transcribe(request(), call(), r.core.runner.retry.deadline())
    assert routed.provider == "mistral" and len(routed.attempts) == 2
    fields, files = form(r.fleet.seen[-1][1])
    assert r.fleet.seen[-1][1].url.path == "/v1/audio/transcriptions" and files == {"file": AUDIO}
    assert "prompt" not in fields and "response_format" not in fields  # Mistral refuses fields it does not know
    # json needs no timestamps, so the language hint goes (Mistral refuses the two together)
    assert fields["language"] == ["en"] and "timestamp_granularities" not in fields


def test_openai_is_priced_per_minute_and_whisper_gets_word_timestamps_when_asked() -> None:
    r = rig()
    r.fleet.then("openai", ok_json({**verbose(), "usage": {"type": "duration", "seconds": 2}}))
    routed = r.router.transcribe(request("whisper-1", response_format="verbose_json",
                                         timestamp_granularities=["word"]), call(90.0, words=True),
                                 r.core.runner.retry.deadline())
    assert routed.provider == "openai" and not routed.free
    assert routed.cost_usd == pytest.approx(0.006 * 1.5) and not routed.cost_estimated
    fields, _ = form(r.fleet.seen[0][1])
    assert fields["timestamp_granularities[]"] == ["segment", "word"] and fields["prompt"] == ["Names: Ada"]
    assert routed.transcript.words and routed.transcript.words[0].word == "hello"


def test_gpt4o_transcribe_is_priced_by_the_tokens_it_reports() -> None:
    r = rig()
    r.fleet.then("openai", ok_json({"text": "hi", "usage": {"type": "tokens", "input_tokens": 1000,
                                                            "output_tokens": 100, "total_tokens": 1100}}))
    routed = r.router.transcribe(request("gpt-4o-transcribe"), call(), r.core.runner.retry.deadline())
    assert routed.cost_usd == pytest.approx((1000 * 2.5 + 100 * 10.0) / 1e6)
    fields, _ = form(r.fleet.seen[0][1])
    assert fields["response_format"] == ["json"]  # the only format it has besides text


def test_translations_go_to_the_translation_endpoint_without_a_language() -> None:
    r = rig()
    r.fleet.then("groq", ok_json(verbose("hello (in English)")))
    routed = r.router.transcribe(request(), call(translate=True), r.core.runner.retry.deadline())
    assert routed.model == "whisper-large-v3"  # turbo does not translate
    sent = r.fleet.seen[0][1]
    assert sent.url.path == "/openai/v1/audio/translations" and "language" not in form(sent)[0]


def test_gemini_gets_inline_base64_audio_and_counts_its_tokens() -> None:
    r = rig()
    r.fleet.then("gemini", ok_json({"candidates": [{"content": {"parts": [{"text": " hello there \n"}]},
                                                    "finishReason": "STOP"}],
                                    "usageMetadata": {"promptTokenCount": 90, "candidatesTokenCount": 4}}))
    routed = r.router.transcribe(request("gemini/gemini-2.5-flash-lite"), call(), r.core.runner.retry.deadline())
    assert routed.transcript.text == "hello there" and routed.free
    body = json.loads(r.fleet.seen[0][1].content)
    parts = body["contents"][0]["parts"]
    assert parts[1]["inlineData"]["mimeType"] == "audio/wav" and "Transcribe" in parts[0]["text"]
    assert r.fleet.seen[0][1].url.path == "/v1beta/models/gemini-2.5-flash-lite:generateContent"


def test_replicate_polls_a_prediction_that_outlives_the_wait_within_the_attempt() -> None:
    r = rig()
    created = {"id": "abc123", "status": "starting", "urls": {"get": "https://evil.example/steal"}}
    done = {"id": "abc123", "status": "succeeded",
            "output": {"transcription": " hello there", "detected_language": "english",
                       "segments": [{"id": 0, "start": 0.0, "end": 2.0, "text": " hello there"}]}}
    r.fleet.then("replicate", ok_json(created, 201), ok_json({**created, "status": "processing"}), ok_json(done))
    routed = r.router.transcribe(request("replicate/openai/whisper"), call(), r.core.runner.retry.deadline())
    assert routed.transcript.text == "hello there" and routed.transcript.language == "english"
    create, *polls = [req for _, req in r.fleet.seen]
    payload = json.loads(create.content)
    assert payload["version"] == "8099696689d249cf8b122d833c36ac3f75505c666a395ca40ef26f68e7d3d16e"
    assert payload["input"]["audio"].startswith("data:audio/wav;base64,")
    assert create.headers["prefer"].startswith("wait=")
    assert [p.url for p in polls] == [httpx.URL("https://api.replicate.com/v1/predictions/abc123")] * 2  # never evil.example
    assert r.clock.sleeps  # it waited between polls, on the injected clock


def test_a_failed_prediction_is_a_provider_error_that_fails_over() -> None:
    r = rig()
    r.fleet.then("replicate", ok_json({"id": "x1", "status": "failed", "error": "CUDA out of memory"}, 201))
    with pytest.raises(GatewayError) as raised:
        r.router.transcribe(request("replicate/openai/whisper"), call(), r.core.runner.retry.deadline())
    assert raised.value.status in (502, 503)


@pytest.mark.parametrize(("status", "error", "replicates_own"), [
    ("failed", "CUDA out of memory", True),
    ("failed", "Prediction timed out", True),
    ("failed", None, True),  # silent: a real outage must still open the circuit
    ("failed", "IndexError: list index out of range", True),
    ("canceled", None, True),
    ("failed", "ffmpeg: Invalid data found when processing input", False),
    ("failed", "ValueError: could not decode audio", False),
])
def test_a_failed_prediction_counts_against_replicate_unless_its_error_names_the_input(
        status: str, error: str | None, replicates_own: bool) -> None:
    """A community model's failure text is all there is to go on: a model that could not decode
    the audio it was given fails on the caller's input, which must not open Replicate's circuit
    for everyone; any other failure, a silent one included, is Replicate's, so an outage still
    opens it (the request fails over either way)."""
    from llm_gateway.providers.base import ProviderConfig, ProviderError
    from llm_gateway.providers.replicate import ReplicateTranscriptionAdapter
    from llm_gateway.retry.classifier import Action, classify

    adapter = ReplicateTranscriptionAdapter(ProviderConfig("replicate", "replicate", "https://api.replicate.com", "t"))
    body = json.dumps({"id": "x1", "status": status, "error": error}).encode()
    with pytest.raises(ProviderError) as stopped:
        adapter.parse_transcription(body, {}, call(), "openai/whisper")
    decision = classify(stopped.value)
    assert decision.action is not Action.RETURN  # another provider may still transcribe it
    assert stopped.value.request_caused is not replicates_own
    assert decision.counts_for_circuit is replicates_own


def test_a_pinned_prediction_that_failed_on_its_input_is_not_tried_again() -> None:
    """A last-chance retry is for a provider's passing trouble: the same audio would fail the
    same way, and a paid model would be paid twice."""
    r = rig()
    r.fleet.then("replicate", ok_json({"id": "x1", "status": "failed", "error": "ffmpeg: Invalid data found"}, 201))
    with pytest.raises(GatewayError):
        r.router.transcribe(request("replicate/openai/whisper"), call(), r.core.runner.retry.deadline())
    assert r.fleet.providers() == ["replicate"]


def test_a_large_uploaded_file_goes_to_groq_by_url_not_inline() -> None:
    r = rig()
    r.fleet.then("groq", ok_json(verbose()))
    url = "https://bucket.s3.amazonaws.com/file-abc?X-Amz-Signature=sig"
    r.router.transcribe(request(), call(1500.0, url=url, size=30_000_000, container="mp3"),
                        r.core.runner.retry.deadline())
    fields, files = form(r.fleet.seen[0][1])
    assert files == {} and fields["url"] == [url]


def test_audio_second_windows_hold_across_two_containers_sharing_state() -> None:
    """Groq's free tier allows 7,200 audio seconds an hour: two containers sharing one store
    send it 7,200 s of 1,800 s clips, and the fifth clip goes elsewhere without calling Groq."""
    store, clock = MemoryStore(), FakeClock()
    one, two = rig(store, clock), rig(store, clock)
    for r in (one, two):
        r.fleet.then("groq", ok_json(verbose(duration=1800.0)))
        r.fleet.then("mistral", ok_json({"text": "hi", "segments": [], "usage": {"prompt_audio_seconds": 1800}}))
    served = [(one if n % 2 else two).router.transcribe(request(model="groq/whisper-large-v3-turbo"), call(1800.0),
                                                        one.core.runner.retry.deadline()).provider
              for n in range(4)]
    assert served == ["groq"] * 4
    with pytest.raises(GatewayError) as raised:  # pinned: nothing else may serve it
        one.router.transcribe(request(model="groq/whisper-large-v3-turbo"), call(1800.0), one.core.runner.retry.deadline())
    assert raised.value.status == 429
    assert one.fleet.providers().count("groq") + two.fleet.providers().count("groq") == 4
    fallback = two.router.transcribe(request(), call(1800.0), two.core.runner.retry.deadline())
    assert fallback.provider != "groq" or fallback.model == "whisper-large-v3"  # turbo's hour is spent


def test_a_provider_that_hangs_is_cut_at_its_timeout_and_the_next_one_answers() -> None:
    r = rig()

    def hang(request: httpx.Request) -> httpx.Response:
        timeout = request.extensions["timeout"]["read"]
        r.clock.advance(timeout)
        raise httpx.ReadTimeout("no answer", request=request)

    r.fleet.then("groq", hang)
    r.fleet.then("mistral", ok_json({"text": "hello", "segments": [], "usage": {"prompt_audio_seconds": 2}}))
    routed = r.router.transcribe(request(), call(), r.core.runner.retry.deadline())
    assert routed.provider == "mistral" and [a.provider for a in routed.attempts] == ["groq", "mistral"]
    assert r.clock.now < 25.0  # within the request's deadline



def test_audio_gemini_will_not_transcribe_is_the_callers_not_gemini_s_failure() -> None:
    """A transcript blocked for its content (no candidates) comes from the caller's audio: the
    request may fail over, but it counts against no breaker, so one caller's audio cannot open
    Gemini's circuit (nor mark it failing: outcomes skip request-caused errors) for everyone."""
    from llm_gateway.providers.base import ProviderConfig, ProviderError
    from llm_gateway.providers.gemini import GeminiTranscriptionAdapter
    from llm_gateway.retry.classifier import Action, classify

    adapter = GeminiTranscriptionAdapter(ProviderConfig("gemini", "gemini", "https://g", "k"))
    with pytest.raises(ProviderError) as blocked:
        adapter.parse_transcription(json.dumps({"promptFeedback": {"blockReason": "SAFETY"}}).encode(), {}, call(),
                                    "gemini-2.5-flash-lite")
    assert blocked.value.request_caused
    decision = classify(blocked.value)
    assert decision.action is not Action.RETURN and not decision.counts_for_circuit


def test_a_prediction_given_up_on_is_canceled_before_the_failover() -> None:
    """A prediction still running when the attempt's budget ran out was left running: Replicate
    bills it by the second until it ends, while the same audio went to the next provider. It is
    canceled now (at our own base URL, whatever the answer's `urls` say)."""
    from llm_gateway.providers.base import ProviderConfig, ProviderError
    from llm_gateway.providers.engine import ProviderEngine
    from llm_gateway.providers.replicate import ReplicateTranscriptionAdapter
    from llm_gateway.state.store import ModelKey

    seen: list[httpx.Request] = []
    running = {"id": "abc123", "status": "processing", "urls": {"cancel": "https://evil.example/x"}}

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201 if request.url.path == "/v1/predictions" else 200, json=running)

    engine = ProviderEngine(httpx.Client(transport=httpx.MockTransport(handle)), sleep=lambda _: None)
    adapter = ReplicateTranscriptionAdapter(ProviderConfig(name="replicate", kind="replicate", api_key="r8_test",
                                                           base_url="https://api.replicate.com"))
    traits = default_catalog().get(ModelKey("replicate", "openai/whisper")).audio
    with pytest.raises(ProviderError) as raised:
        engine.transcribe(adapter, call(), "openai/whisper", traits, timeout_s=0.2)  # less than one poll's wait
    assert raised.value.transport == "timeout"
    assert [(r.method, str(r.url)) for r in seen] == [
        ("POST", "https://api.replicate.com/v1/predictions"),
        ("POST", "https://api.replicate.com/v1/predictions/abc123/cancel")]
    assert seen[-1].headers["authorization"] == "Bearer r8_test"


def test_a_prediction_that_already_stopped_is_not_canceled() -> None:
    """The cancel went out for any failure after a poll, also when the prediction itself came back
    `failed` (nothing left running): a POST for nothing before each such failover, up to 1 s
    (found in review). A prediction the provider says has stopped is not canceled."""
    from llm_gateway.providers.base import ProviderConfig, ProviderError
    from llm_gateway.providers.engine import ProviderEngine
    from llm_gateway.providers.replicate import ReplicateTranscriptionAdapter
    from llm_gateway.state.store import ModelKey

    seen: list[httpx.Request] = []
    answers = iter([{"id": "abc123", "status": "processing"}, {"id": "abc123", "status": "failed", "error": "OOM"}])

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201 if request.url.path == "/v1/predictions" else 200, json=next(answers, {}))

    engine = ProviderEngine(httpx.Client(transport=httpx.MockTransport(handle)), sleep=lambda _: None)
    adapter = ReplicateTranscriptionAdapter(ProviderConfig(name="replicate", kind="replicate", api_key="r8_test",
                                                           base_url="https://api.replicate.com"))
    traits = default_catalog().get(ModelKey("replicate", "openai/whisper")).audio
    with pytest.raises(ProviderError) as raised:
        engine.transcribe(adapter, call(), "openai/whisper", traits, timeout_s=30)
    assert raised.value.code == "prediction_failed"
    assert [(r.method, r.url.path) for r in seen] == [("POST", "/v1/predictions"), ("GET", "/v1/predictions/abc123")]


@pytest.mark.parametrize(("response_format", "sent_language", "sent_timestamps"),
                         [("json", True, False), ("text", True, False), ("srt", False, True),
                          ("verbose_json", False, True)])
def test_mistral_never_gets_a_language_and_timestamps_together(response_format: str, sent_language: bool,
                                                                sent_timestamps: bool) -> None:
    """Mistral refuses `language` with `timestamp_granularities` (a 400: "cannot be combined"),
    and a provider's 400 is the caller's error, not a failover: every request naming its language
    that reached Voxtral was refused. The timestamps are asked for only when the format needs
    them, the language hint only when they are not (Voxtral detects the language itself)."""
    r = rig()
    r.fleet.then("mistral", ok_json({"model": "voxtral-mini-latest", "text": "hello there", "language": "en",
                                     "segments": [{"text": "hello there", "start": 0.0, "end": 2.0}],
                                     "usage": {"prompt_audio_seconds": 2, "prompt_tokens": 4, "total_tokens": 10}}))
    timed = response_format in ("srt", "vtt", "verbose_json")
    sent = TranscriptionCall(audio=AUDIO, filename="talk.wav", container="wav", mime_type="audio/wav",
                             duration_s=2.0, language="en", **({"timed": True} if timed else {}))
    r.router.transcribe(request("mistral/voxtral-mini-latest", response_format=response_format), sent,
                        r.core.runner.retry.deadline())
    fields, _ = form(r.fleet.seen[-1][1])
    assert ("language" in fields) is sent_language and ("timestamp_granularities" in fields) is sent_timestamps


@pytest.mark.parametrize("reason", ["MAX_TOKENS", "SAFETY", "RECITATION", "OTHER"])
def test_a_gemini_transcript_cut_short_is_not_served_as_the_whole(reason: str) -> None:
    """Gemini ends a long transcript at its output limit (finishReason MAX_TOKENS: a few hours of
    speech fill 65,536 tokens) or mid-way for its filters; the part it wrote was served as the
    whole transcript, a 200 that lost the rest. It is a provider error now (a failover), not
    counted against Gemini's circuit, and a transcript that ended normally is still served."""
    r = rig()
    r.fleet.then("gemini", ok_json({"candidates": [{"content": {"parts": [{"text": "the first half"}]},
                                                    "finishReason": reason}],
                                    "usageMetadata": {"promptTokenCount": 90, "candidatesTokenCount": 4}}))
    with pytest.raises(GatewayError):
        r.router.transcribe(request("gemini/gemini-2.5-flash-lite"), call(), r.core.runner.retry.deadline())
    whole = rig()
    whole.fleet.then("gemini", ok_json({"candidates": [{"content": {"parts": [{"text": "all of it"}]},
                                                        "finishReason": "STOP"}]}))
    served = whole.router.transcribe(request("gemini/gemini-2.5-flash-lite"), call(), whole.core.runner.retry.deadline())
    assert served.transcript.text == "all of it"
