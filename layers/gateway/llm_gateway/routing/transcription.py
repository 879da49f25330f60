"""Transcription routing: transcription preparation on the shared failover runner.

Everything not specific to speech (planning, reservations in requests and audio seconds,
breakers, failover, deadlines, aggregated errors) is the runner's. This module says how to call
a transcription adapter and what a call consumed: one request and the billed audio seconds
(from the audio's own duration, so the answer format cannot change them), plus the tokens a
token-metered model reported.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import partial

from llm_gateway.api.audio_schemas import TranscriptionRequest
from llm_gateway.providers.engine import ProviderEngine
from llm_gateway.providers.pool import AdapterPool
from llm_gateway.providers.transcription import TranscriptionAdapter, TranscriptionCall
from llm_gateway.retry.handler import Deadline
from llm_gateway.routing.run import AttemptRecord
from llm_gateway.routing.runner import CallerLimits, CallResult, FailoverRunner
from llm_gateway.selection.catalog import AudioTraits, ModelEntry
from llm_gateway.selection.cost import audio_cost
from llm_gateway.selection.planner import Plan, PlanStep
from llm_gateway.selection.transcription import (
    AudioFacts,
    TranscriptionPreparer,
    audio_tokens,
    billed_seconds,
)
from llm_gateway.state.metering import AUDIO_SECONDS, REQUESTS, TOKENS, USD_MICROS, Amounts, usd_micros
from llm_gateway.state.store import ModelKey
from llm_gateway.transcription.transcript import Transcript


@dataclass
class RoutedTranscript:
    transcript: Transcript
    provider: str
    model: str
    attempts: list[AttemptRecord]
    billed_s: float
    cost_usd: float
    free: bool
    cost_estimated: bool


def _traits(entry: ModelEntry) -> AudioTraits:
    assert entry.audio is not None  # validated by the catalog for every transcription model
    return entry.audio


def consumed(traits: AudioTraits, duration_s: float, transcript: Transcript, cost_usd: float = 0.0) -> Amounts:
    """What a call used: one request, its billed audio seconds, tokens where metered, and its cost
    (which settles a budget's reservation)."""
    used = {REQUESTS: 1, AUDIO_SECONDS: math.ceil(billed_seconds(traits, duration_s)), USD_MICROS: usd_micros(cost_usd)}
    if traits.tokens_per_second is not None:
        reported = (transcript.input_tokens, transcript.output_tokens)
        tokens = reported if None not in reported else audio_tokens(traits, duration_s)
        used[TOKENS] = sum(t or 0 for t in tokens or ())
    return used


def transcript_cost(step: PlanStep, duration_s: float, transcript: Transcript) -> tuple[float, bool]:
    """(USD, estimated): by tokens when the model is billed in tokens and they were reported, else
    by billed seconds (estimated for a token-billed model that reported none)."""
    if step.free or step.entry.price is None:
        return 0.0, False
    billed = billed_seconds(_traits(step.entry), duration_s)
    reported = (transcript.input_tokens, transcript.output_tokens)
    tokens = (reported[0] or 0, reported[1] or 0) if None not in reported else None
    token_billed = step.entry.price.audio_input is not None
    return audio_cost(step.entry.price, billed, tokens), token_billed and tokens is None


def facts(call: TranscriptionCall) -> AudioFacts:
    return AudioFacts(call.container, call.size, call.duration_s, call.url is not None)


class TranscriptionRouter:
    def __init__(self, *, preparer: TranscriptionPreparer, runner: FailoverRunner, engine: ProviderEngine,
                 adapters: AdapterPool[TranscriptionAdapter]) -> None:
        self.preparer = preparer
        self.runner = runner
        self.engine = engine
        self.adapters = adapters

    def available(self) -> frozenset[ModelKey]:
        return self.adapters.current().available

    def admissible(self, request: TranscriptionRequest, *, translate: bool) -> tuple[ModelKey | None, list[ModelEntry]]:
        """The configured models that could serve `request` whatever its audio (a job's submit)."""
        return self.preparer.admissible(request, self.available(), translate=translate)

    def plan(self, request: TranscriptionRequest, call: TranscriptionCall) -> Plan:
        """The plan this request would follow now (for `llm-gateway plan`)."""
        prep = self.preparer.prepare(request, facts(call), self.available(), translate=call.translate)
        return self.runner.plan(prep)[0]

    def transcribe(self, request: TranscriptionRequest, call: TranscriptionCall, deadline: Deadline, *,
                   limits: CallerLimits | None = None) -> RoutedTranscript:
        view = self.adapters.current()
        prep = self.preparer.prepare(request, facts(call), view.available, translate=call.translate)

        def attempt(step: PlanStep, timeout: float) -> CallResult[Transcript]:
            traits = _traits(step.entry)
            reply = self.engine.transcribe(view.adapters[step.key.provider], call, step.key.model, traits, timeout)
            cost, _ = transcript_cost(step, call.duration_s, reply.value)
            return CallResult(reply.value, reply.rate_limits, consumed(traits, call.duration_s, reply.value, cost))

        served = self.runner.run(prep, attempt, deadline, limits=limits, fingerprint=partial(fingerprint, call))
        step, transcript = served.step, served.value
        billed = billed_seconds(_traits(step.entry), call.duration_s)
        cost, estimated = transcript_cost(step, call.duration_s, transcript)
        return RoutedTranscript(transcript, step.key.provider, step.key.model, served.run.attempts, billed, cost,
                                step.free, cost_estimated=estimated)


def fingerprint(call: TranscriptionCall) -> str:
    """What tells this transcription from others to a provider: its audio and options (a file a
    provider chokes on chokes it whoever sends it again)."""
    digest = hashlib.blake2b(call.audio, digest_size=16)
    digest.update(repr((call.translate, call.language, call.prompt, call.temperature, call.words)).encode())
    return digest.hexdigest()
