"""Transcription preparation: which speech models could serve this audio, and what a call costs.

The capability-specific half of selection for `/v1/audio/transcriptions` and `/translations`
(`planner.py` ranks the result against shared state, exactly as for chat). From the request, the
probed audio and the catalog alone: resolve `model` (`auto`, a bare id such as `whisper-1`, or
`provider/model`), then drop, with the reason, every model that could never serve it: a
container it does not accept, audio over its upload size (or over its URL size when the provider
can fetch an uploaded file), longer than it takes, a response format that needs timestamps it
does not return (srt, vtt, verbose_json are rendered by the gateway from segments), word
timestamps from a model that has none, a translation from a model that does not translate.

What a call consumes is counted from the audio's own duration, never from the answer (text, srt
and vtt answers carry no usage): one request, the billed audio seconds (Groq bills clips under
10 s as 10 s), and for token-metered audio (Gemini: 32 tokens a second) the tokens.

Static rank: dedicated speech models before general LLMs that transcribe by instruction, then
list price per audio minute (not of this clip: Groq's 10 s minimum must not push its free
Whisper behind a model that is dearer per minute). Free tiers come first anyway (the planner's rule), so `auto` tries Groq's free
Whisper before any paid model.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

from llm_gateway.api.audio_schemas import TranscriptionRequest
from llm_gateway.selection.catalog import TRANSCRIPTION, AudioTraits, Catalog, ModelEntry
from llm_gateway.selection.cost import audio_cost
from llm_gateway.selection.planner import Candidate, Preparation, bounded, nothing_fits, resolve
from llm_gateway.state.metering import AUDIO_SECONDS, REQUESTS, TOKENS, Amounts
from llm_gateway.state.store import ModelKey

AUTO = "auto"
TIMED_FORMATS = frozenset({"srt", "vtt", "verbose_json"})
PROMPT_TOKENS = 200  # the instruction and prompt sent with token-metered audio, generously
SPOKEN_TOKENS_PER_S = 5.0  # transcript tokens per second of speech, generously (fast speech ≈ 4)
MB = 1_000_000


@dataclass(frozen=True, slots=True)
class AudioFacts:
    """What selection needs to know about the audio (from `llm_gateway.audio.probe`)."""

    container: str
    size_bytes: int
    duration_s: float
    has_url: bool  # an uploaded file the provider could fetch by a presigned URL


@dataclass(frozen=True, slots=True)
class TranscriptionDetail:
    audio: AudioFacts
    translate: bool


def billed_seconds(traits: AudioTraits, duration_s: float) -> float:
    return max(duration_s, traits.min_billed_s)


def audio_tokens(traits: AudioTraits, duration_s: float) -> tuple[int, int] | None:
    """(input, output) tokens a token-metered model is expected to count for this audio."""
    if traits.tokens_per_second is None:
        return None
    return (math.ceil(duration_s * traits.tokens_per_second) + PROMPT_TOKENS,
            math.ceil(duration_s * SPOKEN_TOKENS_PER_S) + 16)


def amounts_for(traits: AudioTraits, duration_s: float) -> Amounts:
    amounts: dict[str, int] = {REQUESTS: 1, AUDIO_SECONDS: math.ceil(billed_seconds(traits, duration_s))}
    tokens = audio_tokens(traits, duration_s)
    if tokens is not None:
        amounts[TOKENS] = sum(tokens)
    return amounts


def _static_drop(traits: AudioTraits, request: TranscriptionRequest, audio: AudioFacts, translate: bool) -> str | None:
    if audio.container not in traits.formats:
        return f"does not accept {audio.container} audio (takes {', '.join(traits.formats)})"
    if audio.size_bytes > traits.max_upload_bytes:
        if not audio.has_url or traits.max_url_bytes is None:
            return (f"audio is {audio.size_bytes / MB:.1f} MB, over its {traits.max_upload_bytes / MB:.0f} MB upload limit"
                    + ("" if audio.has_url else " (upload it first: POST /v1/audio/uploads)"))
        if audio.size_bytes > traits.max_url_bytes:
            return f"audio is {audio.size_bytes / MB:.1f} MB, over its {traits.max_url_bytes / MB:.0f} MB limit"
    if traits.max_duration_s is not None and audio.duration_s > traits.max_duration_s:
        return f"audio is {audio.duration_s:.0f} s, over its {traits.max_duration_s:.0f} s limit"
    return _request_drop(traits, request, translate)


def _request_drop(traits: AudioTraits, request: TranscriptionRequest, translate: bool) -> str | None:
    """Why the model cannot serve what the request asks, whatever its audio."""
    if translate and not traits.translate:
        return "does not translate"
    if request.response_format in TIMED_FORMATS and traits.timing == "none":
        return f"returns no timestamps (response_format={request.response_format} needs them)"
    if request.wants_words and traits.timing != "word":
        return "returns no word timestamps"
    return None


class TranscriptionPreparer:
    """Holds the catalog's speech models (per container)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.entries = catalog.for_capability(TRANSCRIPTION)

    def admissible(self, request: TranscriptionRequest, available: Collection[ModelKey], *,
                   translate: bool) -> tuple[ModelKey | None, list[ModelEntry]]:
        """(pinned key or None, the models that could serve the request whatever its audio), or the
        error `prepare` would raise for that: a job is refused at submit, not failed at its run."""
        pinned, pool = resolve(request.model, self.entries, self.catalog, available, lambda m: m == AUTO,
                               TRANSCRIPTION)
        dropped = [(entry.key, why) for entry in pool if (why := _request_drop(_traits(entry), request, translate))]
        if len(dropped) == len(pool):
            raise nothing_fits(dropped)
        return pinned, [entry for entry in pool if entry.key not in {key for key, _ in dropped}]

    def prepare(self, request: TranscriptionRequest, audio: AudioFacts, available: Collection[ModelKey], *,
                translate: bool) -> Preparation:
        """Everything decidable before state is loaded; raises for requests nothing can serve."""
        pinned, pool = resolve(request.model, self.entries, self.catalog, available, lambda m: m == AUTO,
                               TRANSCRIPTION)
        label = "translation" if translate else "transcription"
        kept: list[Candidate] = []
        dropped = []
        for entry in pool:
            traits = _traits(entry)
            why = _static_drop(traits, request, audio, translate)
            if why is not None:
                dropped.append((entry.key, why))
                continue
            billed = billed_seconds(traits, audio.duration_s)
            price = entry.price
            cost = 0.0 if entry.is_free or price is None else audio_cost(price, billed, audio_tokens(traits, audio.duration_s))
            per_minute = audio_cost(price, 60.0, audio_tokens(traits, 60.0)) if price is not None else 0.0
            tier = ("pinned, " if pinned else "") + ("free tier" if entry.is_free else "paid")
            kept.append(Candidate(
                entry=entry, amounts=amounts_for(traits, audio.duration_s),
                rank=(traits.tokens_per_second is not None, round(per_minute, 9), entry.provider, entry.model),
                est_cost_usd=cost, reason=f"{tier}; {billed:.0f} audio s; est. ${cost:.6f}; ",
                slow_by_request=audio.duration_s > 600,
            ))
        if not kept:
            raise nothing_fits(dropped)
        kept.sort(key=lambda c: (not c.entry.is_free, *c.rank))
        meters = {c.key: self.catalog.meters(c.entry) for c in kept}
        loaded, beyond = bounded(kept, meters)
        dropped += [(c.key, "not loaded: ranked below the best candidates") for c in beyond]
        return Preparation(label=label, candidates=tuple(loaded), dropped=tuple(dropped),
                           meters=meters, pinned=pinned, detail=TranscriptionDetail(audio, translate),
                           rest=tuple(beyond))


def _traits(entry: ModelEntry) -> AudioTraits:
    assert entry.audio is not None  # the catalog validates every transcription model has one
    return entry.audio
