"""Audio and file parts through the chat handler on the fakes: a model that cannot read them is
never chosen, so the caller gets 400 `no_model_fits` naming the missing input instead of an
answer to the text alone (found by exploratory testing: `auto` answered from Cohere "You said:
transcribe", the audio dropped by its adapter)."""

from __future__ import annotations

import base64
import json
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from tests.conftest import chat_handler_on_fakes
from tests.integration.test_handler_never_500 import assert_clean_400, call
from tests.transcribe_helpers import tone_wav

AUDIO = {"type": "input_audio", "input_audio": {"data": base64.b64encode(tone_wav(0.5)).decode(), "format": "wav"}}
FILE = {"type": "file", "file": {"file_data": "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4 x").decode(),
                                 "filename": "a.pdf"}}
_instances = iter(range(10**6))


def _chat(fakes: Any, monkeypatch: pytest.MonkeyPatch, *, without_gemini: bool) -> ModuleType:
    if without_gemini:  # neither Gemini (audio and files) nor OpenAI (PDF files) configured
        fakes = SimpleNamespace(providers={name: fake for name, fake in fakes.providers.items()
                                           if name not in ("gemini", "openai")})
    return chat_handler_on_fakes(fakes, monkeypatch, f"parts_{next(_instances)}")


def body(part: dict[str, Any], model: str = "auto") -> str:
    content = [{"type": "text", "text": "transcribe"}, part]
    return json.dumps({"model": model, "messages": [{"role": "user", "content": content}]})


@pytest.mark.parametrize("part,missing", [(AUDIO, "does not accept audio input"), (FILE, "does not accept file input")])
def test_auto_without_a_model_that_reads_the_part_is_no_model_fits(fakes, clean_gateway_env, part, missing):
    chat = _chat(fakes, clean_gateway_env, without_gemini=True)
    error = assert_clean_400(*call(chat, body(part)))
    assert error["code"] == "no_model_fits" and missing in error["message"], error


@pytest.mark.parametrize(("model", "part", "missing"), [
    *((m, AUDIO, "does not accept audio input") for m in ("cohere/command-r7b-12-2024", "groq/llama-3.1-8b-instant",
                                                           "openai/gpt-4o-mini", "mistral/mistral-small-latest")),
    *((m, FILE, "does not accept file input") for m in ("cohere/command-r7b-12-2024", "groq/llama-3.1-8b-instant",
                                                         "mistral/mistral-small-latest")),
])
def test_pinned_to_a_model_that_cannot_read_the_part_is_no_model_fits(fakes, clean_gateway_env, model, part, missing):
    chat = _chat(fakes, clean_gateway_env, without_gemini=False)
    error = assert_clean_400(*call(chat, body(part, model)))
    assert error["code"] == "no_model_fits" and missing in error["message"], error


def test_auto_sends_audio_to_a_model_that_hears_it(fakes, clean_gateway_env):
    chat = _chat(fakes, clean_gateway_env, without_gemini=False)
    status, answer = call(chat, body(AUDIO))
    assert status == 200, answer
    assert answer["model"].startswith("gemini"), answer["model"]


def test_a_pdf_pinned_to_an_openai_vision_model_is_sent_as_is(fakes, clean_gateway_env):
    """OpenAI's vision models read PDF `file` parts in Chat Completions (its file-inputs guide): such
    a request pinned to one is sent and answered, not refused (that the part reaches the provider
    unchanged is `tests/unit/selection/test_content_parts.py`'s adapter check)."""
    chat = _chat(fakes, clean_gateway_env, without_gemini=False)
    status, answer = call(chat, body(FILE, "openai/gpt-4o-mini"))
    assert status == 200, answer
