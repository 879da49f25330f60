"""The façade the transcribe Lambda calls: authenticate, check the audio, route, render.

The audio is checked before any provider sees it (`llm_gateway.audio`: container sniffed from
the bytes, duration read from them; unknown, corrupt, empty or over-long audio is a 400), and
its duration, not the provider's answer, drives the audio-second windows and the cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from llm_gateway.api.audio_schemas import TranscriptionRequest
from llm_gateway.api.auth import Caller, authenticate
from llm_gateway.api.errors import GatewayError
from llm_gateway.api.served import (
    GATEWAY_FAULT,
    USER_LIMITED,
    count_served,
    failure_kind,
    log_served,
    served_headers,
    told_usd,
)
from llm_gateway.audio import check_duration, probe
from llm_gateway.compose import Core, build_core, build_transcription
from llm_gateway.config import Settings
from llm_gateway.observability import metrics as m
from llm_gateway.observability.metrics import Metrics
from llm_gateway.providers.transcription import TranscriptionCall
from llm_gateway.retry.handler import request_budget
from llm_gateway.routing.transcription import RoutedTranscript, TranscriptionRouter
from llm_gateway.selection.transcription import TIMED_FORMATS
from llm_gateway.tenancy.limits import model_not_allowed
from llm_gateway.tenancy.usage import ServedRequest
from llm_gateway.transcription.render import render


@dataclass(frozen=True, slots=True)
class AudioInput:
    """The audio of one request, read once and re-sent on every attempt.

    `url`: a presigned GET URL of the same bytes (uploads), for providers that fetch audio
    themselves when it is too large to send inline."""

    data: bytes = field(repr=False)
    filename: str
    url: str | None = field(default=None, repr=False)


@dataclass
class TranscriptionOutcome:
    """What the handler sends back: the rendered body, its content type, and gateway headers."""

    status: int
    headers: dict[str, str]
    body: str
    content_type: str


SERVED = "served"  # the other TranscriptionRequests outcomes are `api.served.failure_kind`'s


class Transcriber:
    def __init__(self, core: Core, router: TranscriptionRouter) -> None:
        self.core = core
        self.settings = core.settings
        self.router = router
        self.metrics: Metrics = core.metrics
        self.logger = core.logger

    def authenticate(self, authorization: str | None) -> Caller:
        return authenticate(self.core.keys.current(), authorization, self.core.tenancy.directory)

    def transcribe(self, request: TranscriptionRequest, audio: AudioInput, *, translate: bool, request_id: str,
                   remaining_s: float | None = None, caller: Caller | None = None) -> TranscriptionOutcome:
        """`remaining_s`: what the Lambda invocation has left (None outside Lambda); the deadline
        is the configured one cut to it (jobs build their façade with their own, longer one).
        `caller`: who asked (their limits, budgets and usage ledger); None = a static key."""
        try:
            outcome = self._transcribe(request, audio, translate=translate, request_id=request_id,
                                       remaining_s=remaining_s, caller=caller)
        except GatewayError as exc:
            kind = failure_kind(exc.status, exc.code)
            if kind == USER_LIMITED:
                self.metrics.count(m.USER_LIMITED, code=str(exc.code))
            self.metrics.count(m.TRANSCRIPTION_REQUESTS, outcome=kind)
            raise
        except Exception:
            self.metrics.count(m.TRANSCRIPTION_REQUESTS, outcome=GATEWAY_FAULT)
            raise
        self.metrics.count(m.TRANSCRIPTION_REQUESTS, outcome=SERVED)
        return outcome

    def admit(self, request: TranscriptionRequest, *, translate: bool, caller: Caller) -> None:
        """What can be refused before the audio is read (a job's submit): an unknown model, one
        that cannot do what is asked (translate, timestamps), one the caller's key may not use.
        Budgets and rate limits are met when the job runs, as they stand then."""
        pinned, entries = self.router.admissible(request, translate=translate)
        if not any(caller.policy.allows(entry) for entry in entries):
            raise model_not_allowed(caller.policy, pinned)

    def _transcribe(self, request: TranscriptionRequest, audio: AudioInput, *, translate: bool, request_id: str,
                    remaining_s: float | None, caller: Caller | None) -> TranscriptionOutcome:
        retry = self.core.runner.retry
        deadline = retry.deadline(request_budget(retry.settings.deadline_s, remaining_s))
        info = probe(audio.data)
        check_duration(info, self.settings.max_audio_s)
        call = TranscriptionCall(
            audio=audio.data, filename=audio.filename, container=info.container, mime_type=info.mime_type,
            duration_s=info.duration_s, url=audio.url, translate=translate, language=request.language,
            prompt=request.prompt, temperature=request.temperature, words=request.wants_words,
            timed=request.response_format in TIMED_FORMATS,
        )
        caller = caller or Caller()
        limits = self.core.tenancy.limits_for(caller.user, caller.policy, request.user)
        try:
            routed = self.router.transcribe(request, call, deadline, limits=limits)
        except GatewayError as exc:
            self.logger.warning("transcription failed", extra={"status": exc.status, "code": exc.code})
            raise
        count_served(self.metrics, routed.provider, routed.free, routed.cost_usd)
        self.metrics.count(m.AUDIO_SECONDS_SERVED, routed.billed_s, provider=routed.provider,
                           tier="free" if routed.free else "paid")
        served = ServedRequest(caller.user, routed.provider, routed.model, routed.free, routed.cost_usd,
                               routed.transcript.input_tokens or 0, routed.transcript.output_tokens or 0,
                               routed.billed_s)
        self.core.tenancy.record(served)
        log_served(self.logger, caller, "transcription", served, routed.attempts)
        body, content_type = render(routed.transcript, request.response_format, duration_s=info.duration_s,
                                    usage=_usage(routed), task="translate" if translate else "transcribe",
                                    words=request.wants_words)
        headers = served_headers(routed.provider, routed.model, len(routed.attempts), routed.cost_usd,
                                 routed.cost_estimated, request_id)
        headers["x-gateway-audio-seconds"] = f"{routed.billed_s:.3f}"
        return TranscriptionOutcome(200, headers, body, content_type)


def _usage(routed: RoutedTranscript) -> dict[str, Any]:
    """OpenAI's duration usage (whole seconds billed), with the cost as chat answers carry it."""
    usage: dict[str, Any] = {"type": "duration", "seconds": math.ceil(routed.billed_s), "cost_usd": told_usd(routed.cost_usd)}
    if routed.cost_estimated:
        usage["cost_estimated"] = True
    return usage


def build_transcriber(settings: Settings, **overrides: Any) -> Transcriber:
    """Cold-start composition of the transcription gateway; `overrides` go to `compose.build_core`."""
    core = build_core(settings, **overrides)
    return Transcriber(core, build_transcription(core))
