"""Replicate: Whisper models run as predictions (transcription only; no chat adapter).

Base URL is the API root (`https://api.replicate.com`), as the official `replicate` SDK takes it.
A prediction is created with `Prefer: wait=N` (N inside the attempt's budget, at most 60), so a
short clip usually answers in the one request; a prediction still `starting`/`processing` is
polled at `GET /v1/predictions/{id}` by the engine until the budget runs out, and then canceled
(`POST /v1/predictions/{id}/cancel`: a prediction is billed by the second while it runs, and the
request fails over to another provider). The poll and cancel URLs are
built from our own base URL and the prediction id, never taken from the answer, so the token
only ever goes to the configured endpoint. `failed`/`canceled` predictions are provider errors
(a failover); a failed one whose error names the input (`_THE_INPUTS_FAULT`) is the caller's and
counts for no circuit. Errors are RFC 7807 problem details (`{"title","status","detail"}`).

Models are community models, run by pinned version: `options.versions` maps a catalog model id
to its version id; the built-in table pins `openai/whisper` (large-v3).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from llm_gateway.providers.base import (
    TRANSCRIPTION,
    HttpRequestSpec,
    ProviderConfig,
    ProviderError,
    RateLimitInfo,
)
from llm_gateway.providers.headers import parse_retry_after
from llm_gateway.providers.openai import _error_fields
from llm_gateway.providers.registry import ProviderSpec
from llm_gateway.providers.transcription import Poll, TranscriptionCall
from llm_gateway.providers.transcripts import data_url, inline, segments_from
from llm_gateway.selection.catalog import AudioTraits
from llm_gateway.transcription.transcript import Transcript

VERSIONS = {"openai/whisper": "8099696689d249cf8b122d833c36ac3f75505c666a395ca40ef26f68e7d3d16e"}
MAX_WAIT_S = 60  # Replicate's ceiling for `Prefer: wait=N`
POLL_EVERY_S = 0.5
_PENDING = frozenset({"starting", "processing"})
_STOPPED = frozenset({"failed", "canceled", "aborted"})
_THE_INPUTS_FAULT = re.compile(r"ffmpeg|decod|invalid (?:audio|data|file|input)|unsupported|corrupt|"
                               r"could not (?:open|read|load)|no audio|empty (?:audio|file|input)|"
                               r"not a valid|format not recognised|format not recognized", re.IGNORECASE)


class ReplicateTranscriptionAdapter:
    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        versions = config.options.get("versions")
        self.versions = {**VERSIONS, **(dict(versions) if isinstance(versions, Mapping) else {})}

    @property
    def name(self) -> str:
        return self.config.name

    def _url(self, path: str) -> str:
        return self.config.base_url.rstrip("/") + path

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.api_key}", "Content-Type": "application/json",
                "Accept": "application/json"}

    def build_transcription(self, call: TranscriptionCall, model: str, traits: AudioTraits,
                            budget_s: float) -> HttpRequestSpec:
        version = self.versions.get(model)
        if version is None:
            raise ProviderError(f"{self.name} has no pinned version for {model}", provider=self.name, model=model,
                                status=404, code="model_not_found")
        audio = data_url(call) if inline(call, traits.max_upload_bytes) else call.url
        payload: dict[str, Any] = {"audio": audio, "model": "large-v3", "transcription": "plain text",
                                   "translate": call.translate, "language": call.language or "auto"}
        if call.temperature is not None:
            payload["temperature"] = call.temperature
        if call.prompt:
            payload["initial_prompt"] = call.prompt
        wait = max(1, min(MAX_WAIT_S, int(budget_s) - 1))
        headers = {**self._headers(), "Prefer": f"wait={wait}"}
        return HttpRequestSpec("POST", self._url("/v1/predictions"), headers, {"version": version, "input": payload})

    def parse_transcription(self, body: bytes, headers: Mapping[str, str], call: TranscriptionCall,
                            model: str) -> Transcript | Poll:
        prediction = json.loads(body)
        status = prediction.get("status")
        if status in _PENDING:
            at = f"/v1/predictions/{_safe_id(prediction['id'])}"
            headers = {k: v for k, v in self._headers().items() if k != "Content-Type"}
            return Poll(HttpRequestSpec("GET", self._url(at), headers), POLL_EVERY_S,
                        cancel=HttpRequestSpec("POST", self._url(at + "/cancel"), headers))
        if status in _STOPPED:
            why = str(prediction.get("error") or "")
            stopped = ProviderError(f"{self.name} prediction {status}", provider=self.name, model=model, status=502,
                                    code=f"prediction_{status}", provider_message=why[:500])
            # A community model's error text is all there is: a failure that names the input (the
            # audio could not be decoded, was empty or unsupported) is the caller's, and must not
            # open Replicate's circuit for everyone; any other, silent ones included, is Replicate's,
            # so a real outage still opens it.
            stopped.request_caused = status == "failed" and bool(_THE_INPUTS_FAULT.search(why))
            stopped.work_ended = True
            raise stopped
        if status != "succeeded":
            raise ValueError(f"unknown prediction status {status!r}")
        output = prediction.get("output") or {}
        text = output.get("translation") if call.translate and output.get("translation") else output.get("transcription")
        if not isinstance(text, str):
            raise ValueError("prediction output has no transcription")
        language = output.get("detected_language")
        return Transcript(text=text.strip(), language=str(language) if language else None,
                          segments=segments_from(output.get("segments")) if not call.translate else None)

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, model: str | None) -> ProviderError:
        code, message = _error_fields(body)
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            payload = {}
        if isinstance(payload, dict) and isinstance(payload.get("title"), str):
            code = payload["title"]
        return ProviderError(
            f"{self.name} returned HTTP {status}" + (f" ({code})" if code else ""),
            provider=self.name, model=model, status=status, code=code,
            rate_limit=self.parse_rate_limits(headers), provider_message=message,
        )

    def parse_rate_limits(self, headers: Mapping[str, str]) -> RateLimitInfo | None:
        """No documented rate-limit headers; a Retry-After, if one comes, is honoured."""
        retry = parse_retry_after(headers)
        return RateLimitInfo(retry_after_s=retry) if retry is not None else None


def _safe_id(value: Any) -> str:
    text = str(value)
    if not text.isalnum() or len(text) > 64:
        raise ValueError("prediction id is not an opaque alphanumeric id")
    return text


SPEC = ProviderSpec(
    kind="replicate",
    default_base_url="https://api.replicate.com",
    key_env="REPLICATE_API_TOKEN",
    adapters={TRANSCRIPTION: ReplicateTranscriptionAdapter},
)
