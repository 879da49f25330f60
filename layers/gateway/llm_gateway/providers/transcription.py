"""Transcription's wire types: the call every transcription adapter is given, the answer that
is not ready yet, and the adapter protocol. Apart from `base.py`, which every chat container
imports, so that those build none of them (two frozen dataclasses and a protocol: about 10 M
instructions of a chat cold start, valgrind).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from llm_gateway.providers.base import HttpRequestSpec, WireAdapter

if TYPE_CHECKING:
    from llm_gateway.selection.catalog import AudioTraits
    from llm_gateway.transcription.transcript import Transcript


@dataclass(frozen=True, slots=True)
class TranscriptionCall:
    """One transcription as every adapter needs it: the audio (bytes read once, re-sent on each
    attempt), what it is, and the caller's options. `url` is a presigned GET URL of the same
    bytes (uploads) for providers that fetch audio too large to send inline."""

    audio: bytes = field(repr=False)
    filename: str
    container: str
    mime_type: str
    duration_s: float
    url: str | None = field(default=None, repr=False)
    translate: bool = False
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    words: bool = False  # word timestamps wanted
    timed: bool = False  # the answer's format needs timestamps (srt, vtt, verbose_json)

    @property
    def size(self) -> int:
        return len(self.audio)


@dataclass(frozen=True, slots=True)
class Poll:
    """An answer that is not ready yet (Replicate predictions): ask `spec` again after `after_s`.
    `cancel`: the request that stops the work, sent when the gateway gives up on it (a running
    prediction is billed until it ends, and the audio is sent to another provider then)."""

    spec: HttpRequestSpec
    after_s: float = 0.5
    cancel: HttpRequestSpec | None = None


@runtime_checkable
class TranscriptionAdapter(WireAdapter, Protocol):
    """A provider's speech-to-text wire mapping. `parse_transcription` may answer `Poll` for
    providers whose answer comes later; the engine polls within the attempt's time budget."""

    def build_transcription(self, call: TranscriptionCall, model: str, traits: AudioTraits,
                            budget_s: float) -> HttpRequestSpec:
        """`traits`: the model's catalog audio block (send inline up to `max_upload_bytes`, else
        by `call.url`; ask for timestamps when `timing` says the model gives them). `budget_s`:
        the attempt's time budget, for providers told how long to hold the answer."""

    def parse_transcription(self, body: bytes, headers: Mapping[str, str], call: TranscriptionCall,
                            model: str) -> Transcript | Poll: ...
