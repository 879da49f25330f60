"""Which speech models a request may go to, in what order, and what a call is counted as."""

from __future__ import annotations

import pytest

from llm_gateway.api.audio_schemas import TranscriptionRequest
from llm_gateway.api.errors import InvalidRequest, ModelNotFound
from llm_gateway.selection.catalog import default_catalog
from llm_gateway.selection.transcription import AudioFacts, TranscriptionPreparer
from llm_gateway.state.metering import AUDIO_SECONDS, REQUESTS, TOKENS
from llm_gateway.state.store import ModelKey

CATALOG = default_catalog()
ALL = frozenset(e.key for e in CATALOG.for_capability("transcription"))
WAV_2S = AudioFacts("wav", 64_000, 2.0, has_url=False)


def prepare(audio: AudioFacts = WAV_2S, available: frozenset[ModelKey] = ALL, translate: bool = False, **fields):
    request = TranscriptionRequest.model_validate({"model": "auto", **fields})
    return TranscriptionPreparer(CATALOG).prepare(request, audio, available, translate=translate)


def keys(prep) -> list[str]:
    return [str(c.key) for c in prep.candidates]


def dropped(prep) -> dict[str, str]:
    return {str(k): why for k, why in prep.dropped}


def test_auto_tries_groqs_free_whisper_first_then_other_free_then_paid_by_price() -> None:
    order = keys(prepare())
    assert order[:2] == ["groq/whisper-large-v3-turbo", "groq/whisper-large-v3"]
    free = [k for k in order if CATALOG.get(ModelKey(*k.split("/", 1))).is_free]
    assert order[: len(free)] == free  # every free model before any paid one
    assert order.index("mistral/voxtral-mini-latest") < order.index("gemini/gemini-2.5-flash-lite")  # speech models first
    paid = order[len(free):]
    assert paid[0] == "openai/gpt-4o-mini-transcribe" and "openai/whisper-1" in paid


def test_clips_under_ten_seconds_count_as_ten_on_groq_and_as_themselves_elsewhere() -> None:
    by_key = {str(c.key): c.amounts for c in prepare().candidates}
    assert by_key["groq/whisper-large-v3-turbo"] == {REQUESTS: 1, AUDIO_SECONDS: 10}
    assert by_key["openai/whisper-1"] == {REQUESTS: 1, AUDIO_SECONDS: 2}
    gemini = by_key["gemini/gemini-2.5-flash-lite"]
    assert gemini[TOKENS] >= 64 and gemini[AUDIO_SECONDS] == 2  # 32 tokens a second, plus the instruction


def test_subtitles_go_only_to_models_that_return_timestamps() -> None:
    prep = prepare(response_format="srt")
    assert "groq/whisper-large-v3-turbo" in keys(prep)  # rendered by the gateway from Groq's segments
    why = dropped(prep)
    assert "timestamps" in why["openai/gpt-4o-transcribe"] and "timestamps" in why["gemini/gemini-2.5-flash"]


def test_word_timestamps_only_where_words_come_back() -> None:
    prep = prepare(response_format="verbose_json", timestamp_granularities=("word",))
    assert set(keys(prep)) == {"groq/whisper-large-v3-turbo", "groq/whisper-large-v3", "openai/whisper-1"}
    assert "word" in dropped(prep)["mistral/voxtral-mini-latest"]


def test_translation_only_where_offered() -> None:
    assert set(keys(prepare(translate=True))) == {"groq/whisper-large-v3", "openai/whisper-1", "replicate/openai/whisper"}


def test_containers_a_model_does_not_take_are_dropped() -> None:
    prep = prepare(AudioFacts("webm", 50_000, 3.0, has_url=False))
    assert "does not accept webm" in dropped(prep)["gemini/gemini-2.5-flash"]
    assert keys(prep)[0] == "groq/whisper-large-v3-turbo"


def test_a_30_mb_file_never_goes_to_a_25_mb_upload_and_only_by_url_where_fetched() -> None:
    direct = AudioFacts("mp3", 30_000_000, 1800.0, has_url=False)
    with pytest.raises(InvalidRequest, match="upload it first"):
        prepare(direct)
    uploaded = prepare(AudioFacts("mp3", 30_000_000, 1800.0, has_url=True))
    assert "openai/whisper-1" not in keys(uploaded)  # OpenAI takes no URL
    assert {"groq/whisper-large-v3-turbo", "mistral/voxtral-mini-latest", "replicate/openai/whisper"} <= set(keys(uploaded))
    too_big = prepare(AudioFacts("mp3", 50_000_000, 1800.0, has_url=True))
    assert "over its 40 MB limit" in dropped(too_big)["groq/whisper-large-v3"]


def test_replicate_takes_small_audio_inline_and_larger_only_by_url() -> None:
    assert "replicate/openai/whisper" in dropped(prepare(AudioFacts("wav", 2_000_000, 60.0, has_url=False)))


def test_pinning_and_unknown_models() -> None:
    request = TranscriptionRequest(model="whisper-1")
    prep = TranscriptionPreparer(CATALOG).prepare(request, WAV_2S, ALL, translate=False)
    assert prep.pinned == ModelKey("openai", "whisper-1") and keys(prep) == ["openai/whisper-1"]
    pinned = TranscriptionPreparer(CATALOG).prepare(TranscriptionRequest(model="replicate/openai/whisper"), WAV_2S, ALL,
                                                    translate=False)
    assert keys(pinned) == ["replicate/openai/whisper"]
    with pytest.raises(ModelNotFound):
        TranscriptionPreparer(CATALOG).prepare(TranscriptionRequest(model="gpt-4o-mini"), WAV_2S, ALL, translate=False)
    with pytest.raises(ModelNotFound):  # a configured chat model is not a speech model
        TranscriptionPreparer(CATALOG).prepare(TranscriptionRequest(model="groq/llama-3.1-8b-instant"), WAV_2S, ALL,
                                               translate=False)


def test_only_configured_providers_are_candidates() -> None:
    groq_only = frozenset(k for k in ALL if k.provider == "groq")
    assert {c.key.provider for c in prepare(available=groq_only).candidates} == {"groq"}


def test_form_fields_map_onto_the_request() -> None:
    request = TranscriptionRequest.from_form({"model": ["auto"], "response_format": ["verbose_json"],
                                              "timestamp_granularities[]": ["word", "segment"], "temperature": ["0.2"]})
    assert request.timestamp_granularities == ("word", "segment") and request.temperature == 0.2
    with pytest.raises(ValueError, match="verbose_json"):
        TranscriptionRequest.from_form({"model": ["auto"], "timestamp_granularities[]": ["word"]})
    with pytest.raises(ValueError):
        TranscriptionRequest.from_form({"model": ["auto"], "response_format": ["mp3"]})


def test_a_model_of_the_other_capability_is_named_as_such_not_as_missing() -> None:
    """`/v1/models` lists chat and speech models together, so a caller who sends one to the other's
    endpoint was told it "does not exist": the answer says which endpoint serves it (still a 400
    `model_not_found`)."""
    from llm_gateway.selection.planner import resolve

    chat_keys = frozenset(e.key for e in CATALOG.for_capability("chat"))
    for model in ("groq/llama-3.1-8b-instant", "llama-3.1-8b-instant"):
        with pytest.raises(ModelNotFound) as wrong:
            TranscriptionPreparer(CATALOG).prepare(TranscriptionRequest(model=model), WAV_2S, ALL, translate=False)
        assert "chat model" in wrong.value.message and "/v1/chat/completions" in wrong.value.message, model
    for model in ("groq/whisper-large-v3", "whisper-large-v3"):
        with pytest.raises(ModelNotFound) as wrong:
            resolve(model, CATALOG.for_capability("chat"), CATALOG, chat_keys | ALL, lambda m: m == "auto", "chat")
        assert "transcription model" in wrong.value.message and "/v1/audio/transcriptions" in wrong.value.message
    with pytest.raises(ModelNotFound) as missing:
        resolve("nobody/nothing", CATALOG.for_capability("chat"), CATALOG, chat_keys, lambda m: m == "auto", "chat")
    assert "does not exist" in missing.value.message


def test_a_model_of_the_other_capability_whose_provider_is_not_configured_says_so_at_once() -> None:
    """Sent to the other endpoint, such a model would only be refused there as not configured: the
    first answer says both (two round trips of trial and error before)."""
    from llm_gateway.selection.planner import resolve

    chat_keys = frozenset(e.key for e in CATALOG.for_capability("chat"))
    without_groq = frozenset(k for k in chat_keys | ALL if k.provider != "groq")
    with pytest.raises(ModelNotFound) as wrong:
        resolve("groq/whisper-large-v3", CATALOG.for_capability("chat"), CATALOG, without_groq,
                lambda m: m == "auto", "chat")
    message = wrong.value.message
    assert "transcription model" in message and "not configured" in message and "groq" in message
    with pytest.raises(ModelNotFound) as configured:  # configured: no word of it
        resolve("groq/whisper-large-v3", CATALOG.for_capability("chat"), CATALOG, chat_keys | ALL,
                lambda m: m == "auto", "chat")
    assert "not configured" not in configured.value.message


def test_audio_longer_than_gpt_4o_transcribe_takes_never_goes_there() -> None:
    """OpenAI's gpt-4o(-mini)-transcribe answer a 400 `invalid_value` to audio over 1,400 s ("audio
    duration 1830.5 seconds is longer than 1400 seconds which is the maximum for this model"). A
    400 is the caller's error, not a failover, so a 30-minute recording that reached the cheapest
    paid model came back refused although whisper-1 takes it: it must be dropped before."""
    prep = prepare(AudioFacts("mp3", 7_000_000, 1800.0, has_url=False))
    why = dropped(prep)
    assert "1400 s limit" in why["openai/gpt-4o-mini-transcribe"] and "1400 s limit" in why["openai/gpt-4o-transcribe"]
    assert "openai/whisper-1" in keys(prep)
    assert "openai/gpt-4o-mini-transcribe" in keys(prepare(AudioFacts("mp3", 5_000_000, 1400.0, has_url=False)))
