"""Audio and file content parts are a hard need, like images: a model gets them only when its
catalog entry says it accepts that input, and only adapters that send the part in their
provider's own wire format may declare it (an adapter that drops the part, or passes OpenAI's
shape to a provider that does not speak it, would answer without the caller's input)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from llm_gateway.api.errors import InvalidRequest
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.providers.base import CHAT, ProviderConfig
from llm_gateway.providers.registry import provider_spec
from llm_gateway.selection.analyzer import analyze
from llm_gateway.selection.catalog import default_catalog
from llm_gateway.selection.selector import ChatPreparer
from llm_gateway.selection.tokens import TokenEstimator
from llm_gateway.state.store import ModelKey

from .builders import catalog, entry

AUDIO_DATA = base64.b64encode(b"RIFF....WAVEfmt fake audio bytes").decode()
PDF_DATA = base64.b64encode(b"%PDF-1.4 fake document bytes").decode()
AUDIO = {"type": "input_audio", "input_audio": {"data": AUDIO_DATA, "format": "wav"}}
FILE = {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF_DATA}", "filename": "a.pdf"}}
IMAGE = {"type": "image_url", "image_url": {"url": "https://x/y.png"}}


def req(*parts: dict[str, Any], model: str = "auto", **extra: Any) -> ChatCompletionRequest:
    content = [{"type": "text", "text": "transcribe"}, *parts]
    body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
    return ChatCompletionRequest.model_validate(body)


def test_the_analyzer_sees_audio_and_file_parts() -> None:
    audio = analyze(req(AUDIO), 10)
    assert (audio.needs_audio, audio.needs_file, audio.needs_vision) == (True, False, False)
    file = analyze(req(FILE), 10)
    assert (file.needs_audio, file.needs_file, file.needs_vision) == (False, True, False)
    image = analyze(req(IMAGE), 10)
    assert (image.needs_audio, image.needs_file, image.needs_vision) == (False, False, True)
    both = analyze(req(AUDIO, FILE), 10)
    assert (both.needs_audio, both.needs_file) == (True, True)


def _preparer() -> ChatPreparer:
    return ChatPreparer(catalog([
        entry("p0", "text-only", vision=True),
        entry("p1", "hears", audio_input=True),
        entry("p2", "reads", file_input=True),
    ]), TokenEstimator())


def test_auto_keeps_only_models_that_accept_the_part() -> None:
    prep = _preparer()
    keys = list(prep.catalog.keys())
    audio = prep.prepare(req(AUDIO), keys)
    assert [c.key for c in audio.candidates] == [ModelKey("p1", "hears")]
    assert dict(audio.dropped) == {ModelKey("p0", "text-only"): "does not accept audio input",
                                   ModelKey("p2", "reads"): "does not accept audio input"}
    file = prep.prepare(req(FILE), keys)
    assert [c.key for c in file.candidates] == [ModelKey("p2", "reads")]
    assert dict(file.dropped)[ModelKey("p1", "hears")] == "does not accept file input"
    plain = prep.prepare(req(), keys)
    assert len(plain.candidates) == 3


@pytest.mark.parametrize("part,reason", [(AUDIO, "does not accept audio input"), (FILE, "does not accept file input")])
def test_nothing_accepts_the_part_is_no_model_fits(part: dict[str, Any], reason: str) -> None:
    prep = _preparer()
    keys = list(prep.catalog.keys())
    with pytest.raises(InvalidRequest) as pinned:
        prep.prepare(req(part, model="p0/text-only"), keys)
    assert pinned.value.code == "no_model_fits" and reason in pinned.value.message
    with pytest.raises(InvalidRequest) as both:  # no model takes audio and files at once
        prep.prepare(req(AUDIO, FILE), keys)
    assert both.value.code == "no_model_fits"


def test_the_built_in_catalog_sends_audio_only_to_models_that_hear_it() -> None:
    """The bug: `auto` chose Cohere, whose adapter drops the audio, and answered "You said: transcribe"."""
    cat = default_catalog()
    prep = ChatPreparer(cat, TokenEstimator())
    keys = list(cat.keys())
    for part in (AUDIO, FILE):
        found = prep.prepare(req(part), keys)
        assert found.candidates
        assert all(_sends(c.entry.provider, c.entry.model, part) for c in found.candidates)
        dropped = dict(found.dropped)
        assert dropped[ModelKey("cohere", "command-r7b-12-2024")].startswith("does not accept")
    for pinned in ("cohere/command-r7b-12-2024", "groq/llama-3.1-8b-instant", "openai/gpt-4o-mini",
                   "mistral/mistral-small-latest"):
        with pytest.raises(InvalidRequest) as error:
            prep.prepare(req(AUDIO, model=pinned), keys)
        assert error.value.code == "no_model_fits" and "does not accept audio input" in error.value.message
    # OpenAI's vision models read PDF file parts (its file-inputs guide); its text-only ones do not
    assert prep.prepare(req(FILE, model="openai/gpt-4o-mini"), keys).candidates


def _body(provider: str, model: str, request: ChatCompletionRequest) -> str:
    spec = provider_spec(provider)
    assert spec is not None, provider
    adapter = spec.adapters[CHAT](ProviderConfig(name=provider, kind=provider, base_url="https://example.test",
                                                 api_key="k"))
    return json.dumps(adapter.build_request(request, model, stream=False).json)


def _sends(provider: str, model: str, part: dict[str, Any]) -> bool:
    """The adapter puts the part's data in its request, converted from OpenAI's shape (OpenAI's
    own adapter excepted: that shape is its provider's wire format)."""
    data, openai_shape = (AUDIO_DATA, '"input_audio"') if part is AUDIO else (PDF_DATA, '"file_data"')
    body = _body(provider, model, req(part, model=f"{provider}/{model}"))
    return data in body and (openai_shape not in body or provider == "openai")


def test_only_models_whose_adapter_sends_the_part_declare_it() -> None:
    cat = default_catalog()
    declared = [e for e in cat.for_capability(CHAT) if e.capabilities.audio_input or e.capabilities.file_input]
    assert declared  # Gemini's adapter sends both as inlineData
    for model in cat.for_capability(CHAT):
        for part, flag in ((AUDIO, model.capabilities.audio_input), (FILE, model.capabilities.file_input)):
            assert not flag or _sends(model.provider, model.model, part), (model.key, part["type"])
