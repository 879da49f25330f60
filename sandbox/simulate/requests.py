"""Request bodies for simulated requests, built once per distinct shape and reused.

The prompt is `N` single-token words (" hello" is one cl100k token), so the gateway's own token
estimate sees a prompt of the size the workload drew, and the last user message ends with a
marker `[sim in=N out=M]`, a text part of its own, that tells the simulated provider what to
count and how long an answer to write. Every text is built once per distinct value and shared by
the bodies that hold it (the marker apart, it does not depend on the answer's length), so the
simulator can count a long text's tokens once (`Simulation._counted_text`).
"""

from __future__ import annotations

from typing import Any

from llm_gateway.api.audio_schemas import TranscriptionRequest
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.providers.transcription import TranscriptionCall
from sandbox.simulate.workload import SimRequest

PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAA"
         "AABJRU5ErkJggg==")
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                     "required": ["city"]}}},
    {"type": "function", "function": {"name": "search_docs", "description": "Search the manual",
                                      "parameters": {"type": "object", "properties": {"query": {"type": "string"}},
                                                     "required": ["query"]}}},
]
LEADS = {
    "plain": "Please answer:",
    "reasoning": "Think step by step and prove it:",
    "tools": "Use the tools if they help:",
    "json": "Reply in JSON:",
    "vision": "Describe the picture:",
}


def _words(count: int) -> str:
    return " hello" * max(0, count)


_TEXTS: dict[tuple[str, int], str] = {}


def _text(lead: str, words: int) -> str:
    """`lead` and `words` words, one shared string per distinct value."""
    found = _TEXTS.get((lead, words))
    if found is None:
        found = _TEXTS[(lead, words)] = lead + _words(words)
    return found


class RequestFactory:
    def __init__(self) -> None:
        self._chat: dict[tuple[Any, ...], ChatCompletionRequest] = {}
        self._audio: dict[tuple[float, bool], tuple[TranscriptionRequest, TranscriptionCall]] = {}

    def chat(self, sim: SimRequest) -> ChatCompletionRequest:
        key = (sim.capability, sim.kind, sim.model, sim.prompt_tokens, sim.output_tokens, sim.max_tokens, sim.turns)
        found = self._chat.get(key)
        if found is None:
            found = self._chat[key] = ChatCompletionRequest.model_validate(self._body(sim))
        return found

    def _body(self, sim: SimRequest) -> dict[str, Any]:
        marker = {"type": "text", "text": f" [sim in={sim.prompt_tokens} out={sim.output_tokens}]"}
        lead = LEADS[sim.kind]
        words = max(0, sim.prompt_tokens - 20)
        messages: list[dict[str, Any]]
        if sim.turns > 1:
            first, answer, last = words // 2, words // 4, words - words // 2 - words // 4
            messages = [{"role": "user", "content": _text(lead, first)},
                        {"role": "assistant", "content": _text("Noted.", answer)},
                        {"role": "user", "content": [{"type": "text", "text": _text("And then?", last)}, marker]}]
        else:
            messages = [{"role": "user", "content": [{"type": "text", "text": _text(lead, words)}, marker]}]
        if sim.kind == "vision":
            messages[-1]["content"].append({"type": "image_url", "image_url": {"url": PIXEL}})
        body: dict[str, Any] = {"model": sim.model, "messages": messages}
        if sim.kind == "tools":
            body["tools"] = TOOLS
        if sim.kind == "json":
            body["response_format"] = {"type": "json_object"}
        if sim.max_tokens is not None:
            body["max_tokens"] = sim.max_tokens
        if sim.capability == "stream":
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def transcription(self, sim: SimRequest) -> tuple[TranscriptionRequest, TranscriptionCall]:
        key = (sim.audio_seconds, sim.translate)
        found = self._audio.get(key)
        if found is None:
            name = f"sim-{sim.audio_seconds:g}s"
            audio = f"{name}.".encode() + bytes(2048)
            call = TranscriptionCall(audio=audio, filename=f"{name}.wav", container="wav", mime_type="audio/wav",
                                     duration_s=sim.audio_seconds, translate=sim.translate,
                                     prompt=None if sim.translate else f"{name}")
            found = self._audio[key] = (TranscriptionRequest.model_validate({"model": "auto"}), call)
        return found
