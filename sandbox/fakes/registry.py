"""The registry of fakes: the one place that says which fake providers exist.

A fake is its wire module (`*_fake.py`: the provider's format) plus its default settings (the
models it serves, its limits). Configuration, `start_fakes`, the CLI and the test fixtures all
read `FAKES`, so adding a provider means writing its module and adding one `FakeSpec` below —
not editing lists of names, module paths and default models in several files. The defaults are
generous on purpose: tests are never rate-limited unless they configure limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.fakes import cohere_fake, gemini_fake, groq_fake, mistral_fake, openai_fake, replicate_fake
from sandbox.fakes.limits import DEFAULT_LIMITS
from sandbox.fakes.wire import Wire

GROQ_WHISPER_FREE = {"rpm": 20, "rpd": 2_000, "ash": 7_200, "asd": 28_800}


@dataclass(frozen=True)
class FakeSpec:
    wire: Wire
    models: tuple[str, ...]  # served when the config lists none; the catalog's models must be among them
    limits: Mapping[str, Mapping[str, int]] = field(default_factory=lambda: {"default": DEFAULT_LIMITS})

    @property
    def name(self) -> str:
        return self.wire.name

    def settings(self) -> dict[str, Any]:
        """The defaults as a config section (`providers.<name>`), ready to be edited."""
        return {"models": list(self.models), "limits": {k: dict(v) for k, v in self.limits.items()}}


FAKES: dict[str, FakeSpec] = {spec.name: spec for spec in (
    FakeSpec(openai_fake.WIRE, ("gpt-4o-mini", "gpt-4o", "gpt-4.1-nano", "gpt-4.1-mini", "gpt-5-nano", "gpt-5-mini",
                                "whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")),
    FakeSpec(groq_fake.WIRE, ("llama-3.1-8b-instant", "llama-3.3-70b-versatile",
                              "meta-llama/llama-4-scout-17b-16e-instruct", "openai/gpt-oss-20b",
                              "openai/gpt-oss-120b", "qwen/qwen3-32b", "whisper-large-v3", "whisper-large-v3-turbo"),
             limits={"default": {**DEFAULT_LIMITS, "rpd": 100_000},  # Groq's requests headers count per day
                     # the free tier's speech-to-text limits (wave2.md 2), in billed audio seconds
                     "whisper-large-v3": GROQ_WHISPER_FREE, "whisper-large-v3-turbo": GROQ_WHISPER_FREE}),
    FakeSpec(gemini_fake.WIRE, ("gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.5-pro", "gemini-2.0-flash",
                                "gemini-2.0-flash-lite", "gemini-3-flash-preview")),
    FakeSpec(cohere_fake.WIRE, ("command-a-03-2025", "command-r-08-2024", "command-r7b-12-2024",
                                "command-r-plus-08-2024")),
    FakeSpec(mistral_fake.WIRE, ("mistral-small-latest", "mistral-large-latest", "ministral-8b-latest",
                                 "open-mistral-nemo", "mistral-medium-latest", "codestral-2508",
                                 "voxtral-mini-latest", "voxtral-mini-2507")),
    FakeSpec(replicate_fake.WIRE, (replicate_fake.WHISPER,)),  # speech to text only
)}  # fmt: skip


def spec_of(name: str) -> FakeSpec:
    """The spec of a registered fake (KeyError otherwise)."""
    return FAKES[name]
