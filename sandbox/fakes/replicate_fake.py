"""Fake Replicate: predictions for Whisper (`openai/whisper`), with `Prefer: wait` and polling.

SDK base URL: `replicate.Client(api_token=..., base_url="http://127.0.0.1:P")` — replicate-python
1.x requests `/v1/predictions`, `/v1/predictions/{id}`, `/v1/predictions/{id}/cancel` and, for
`client.run("owner/name:version", ...)`, `/v1/models/{owner}/{name}/versions/{id}` relative to
`base_url` (`replicate/prediction.py`, `run.py`, `version.py`); it sends `Authorization: Bearer`
(the fake also takes the legacy `Token`). Served (providers.md 8, wave2.md 2):

- `POST /v1/predictions` `{"version": "<64 hex>" | "openai/whisper:<64 hex>", "input": {...}}` →
  201 with the prediction. `Prefer: wait` (60 s) or `Prefer: wait=N` (1-60) holds the answer until
  the prediction ends or the wait runs out; then it is `succeeded`/`failed` with `output`/`error`,
  or still `starting` (as the HTTP reference says) to be polled. Without `Prefer` it is `starting`.
- `GET /v1/predictions/{id}`: `starting` → `processing` (with progress in `logs`) →
  `succeeded` | `failed` | `canceled`; `POST /v1/predictions/{id}/cancel`.
- `GET /v1/models/openai/whisper` and `.../versions/{id}` (the version's OpenAPI schema), `GET /v1/account`.

Whisper input (cog-whisper): `audio` (a data: URL or an http(s) URL, fetched), `model`
(`large-v3`), `transcription` (`plain text` | `srt` | `vtt`), `language` (`auto`, a code or a
name), `translate`, `temperature`, `initial_prompt` and the other tuning fields (accepted, unused).
Output `{"transcription", "segments": [{id, seek, start, end, text, tokens, temperature,
avg_logprob, compression_ratio, no_speech_prob}], "detected_language", "translation",
"txt_file": null, "srt_file": null}`. Audio that cannot be fetched or decoded fails the prediction
(`status: "failed"`, `error`), as a model error does at Replicate.

How long a prediction runs: `job_seconds_per_audio_second` times audio seconds (config; default 0),
or a fault: `slow_job` (`job_seconds`) and `fail_job` (`message`, after `job_seconds`), consumed
only by prediction creation. Errors are problem details: 401 `{"title": "Unauthenticated", ...}`,
422 input validation (`invalid_fields`) and unknown versions, 429
`{"detail": "Request was throttled. Your rate limit resets in ~Ns.", "status": 429}` with
`retry-after` (whether Replicate sends that header is unconfirmed), 404 unknown prediction.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sandbox.fakes.transcription import (
    fetch_audio,
    heard,
    language_name,
    render_srt,
    render_vtt,
    synthesize,
    whisper_segments,
)
from sandbox.fakes.wire import BadRequest, Ctx, ErrorInfo, Route, Wire, match_path

if TYPE_CHECKING:
    from sandbox.fakes.engine import FakeProvider
    from sandbox.fakes.state import Fault

WHISPER = "openai/whisper"
VERSIONS = {  # version id → model (providers.md 8.7, wave2.md 2)
    "8099696689d249cf8b122d833c36ac3f75505c666a395ca40ef26f68e7d3d16e": WHISPER,
    "c7a9a6d5f8118ad988f1a6a09a6174b708dff9c4253f65a3072927aaa7beeabf": WHISPER,
}
LATEST = "8099696689d249cf8b122d833c36ac3f75505c666a395ca40ef26f68e7d3d16e"
FORMATS = ("plain text", "srt", "vtt")
TERMINAL = ("succeeded", "failed", "canceled")
_PREFER = re.compile(r"^wait(=([1-9]|[1-9][0-9]|60))?$")
_HEX = re.compile(r"^[0-9a-f]{64}$")


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _problem(status: int, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"title": title, "detail": detail, "status": status, **extra}


class ReplicateWire(Wire):
    name = "replicate"
    base_path = ""

    def match(self, method: str, path: str) -> Route | None:
        if method == "POST" and path == "/v1/predictions":
            return Route("custom", task="create", starts_job=True)
        if found := match_path(r"/v1/predictions/(?P<id>[a-z0-9]+)(?P<cancel>/cancel)?", path):
            if method == "GET" and not found["cancel"]:
                return Route("custom", task="get", api_version=found["id"])
            if method == "POST" and found["cancel"]:
                return Route("custom", task="cancel", api_version=found["id"])
        if method == "GET" and path == "/v1/account":
            return Route("custom", task="account")
        if method == "GET" and (found := match_path(r"/v1/models/(?P<model>[^/]+/[^/]+)(/versions/(?P<v>[^/]+))?", path)):
            return Route("custom", model=found["model"], task="version" if found["v"] else "model",
                         api_version=found["v"] or "")  # fmt: skip
        return None

    def api_key(self, headers: dict[str, str], query: dict[str, str]) -> str | None:
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        return token.strip() or None if scheme.lower() in ("bearer", "token") else None

    def model_of(self, route: Route, body: dict[str, Any]) -> str | None:
        if route.task == "create":
            version = str(body.get("version") or "")
            return VERSIONS.get(version.split(":")[-1], version.split(":")[0] or None)
        return route.model

    # --- requests ------------------------------------------------------------------------------

    def serve(
        self, fake: FakeProvider, route: Route, body: dict[str, Any], ctx: Ctx, fault: Fault | None
    ) -> tuple[int, Any, dict[str, str]]:
        if route.task == "create":
            return self._create(fake, body, ctx, fault)
        if route.task in ("get", "cancel"):
            with fake.state_lock:
                prediction = fake.state.get("predictions", {}).get(route.api_version)
                if prediction is not None and route.task == "cancel" and self._status(prediction)[0] not in TERMINAL:
                    prediction["canceled_at"] = time.time()
            if prediction is None:
                return 404, _problem(404, "Not found", "The requested resource could not be found."), {}
            return 200, self._view(fake, prediction), {}
        if route.task == "account":
            return 200, {"type": "user", "username": "fake", "name": "Fake User", "github_url": None}, {}
        if route.model not in fake.models:
            return 404, _problem(404, "Not found", f"Model {route.model} not found"), {}
        if route.task == "version":
            if VERSIONS.get(route.api_version) != route.model:
                return 404, _problem(404, "Not found", "Version not found"), {}
            return 200, self._version(route.api_version), {}
        return 200, self._model(str(route.model)), {}

    def _create(self, fake: FakeProvider, body: dict[str, Any], ctx: Ctx, fault: Fault | None) -> tuple[int, Any, dict[str, str]]:
        version_ref = str(body.get("version") or "")
        version = version_ref.split(":")[-1]
        owner_name = version_ref.split(":")[0] if ":" in version_ref else None
        if not _HEX.match(version) or version not in VERSIONS or (owner_name and VERSIONS[version] != owner_name):
            return 422, _problem(422, "Invalid version or not permitted",
                                 "The specified version does not exist (or perhaps you don't have permission to use it?)"), {}  # fmt: skip
        model = VERSIONS[version]
        if model not in fake.models:
            return 422, _problem(422, "Invalid version or not permitted", f"{model} is not served by this fake"), {}
        inputs = body.get("input")
        problems = self._validate(inputs)
        if problems:
            detail = "".join(f"- {p['field']}: {p['description']}\n" for p in problems)
            return 422, _problem(422, "Input validation failed", detail, invalid_fields=problems), {}
        snap = fake.limiter.admit(model, 0)
        if snap.exceeded:
            return self.error(ErrorInfo("rate_limited", model=model, snap=snap), ctx)
        assert isinstance(inputs, dict)
        output, error, audio_s = self._run(inputs)
        seconds = audio_s * fake.config.job_seconds_per_audio_second
        if fault is not None and fault.fault in ("slow_job", "fail_job"):
            seconds = fault.job_seconds
            if fault.fault == "fail_job":
                output, error = None, fault.message
        now = time.time()
        prediction = {"id": ctx.alnum_id("prediction", 26).lower(), "model": model, "version": version,
                      "input": inputs, "created": now, "ends": now + seconds, "output": output,
                      "error": error, "canceled_at": None}  # fmt: skip
        with fake.state_lock:
            fake.state.setdefault("predictions", {})[prediction["id"]] = prediction
        wait = self._wait_seconds(ctx.extra.get("headers", {}).get("prefer", ""))
        if wait:
            fake.stop_event.wait(max(0.0, min(wait, prediction["ends"] - time.time())))
        view = self._view(fake, prediction)
        if not wait or view["status"] not in TERMINAL:  # no wait, or it ran out: poll `urls.get`
            view.update(status="starting", output=None, completed_at=None, metrics={})
        return 201, view, {}

    @staticmethod
    def _wait_seconds(prefer: str) -> float:
        found = _PREFER.match(prefer.strip())
        if not found:
            return 0.0
        return float(found.group(2) or 60)

    @staticmethod
    def _validate(inputs: Any) -> list[dict[str, str]]:
        if not isinstance(inputs, dict):
            return [{"type": "type", "field": "input", "description": "Invalid type. Expected: object"}]
        problems: list[dict[str, str]] = []

        def bad(field: str, kind: str, description: str) -> None:
            problems.append({"type": kind, "field": f"input.{field}", "description": description})

        audio = inputs.get("audio")
        if audio is None:
            bad("audio", "required", "audio is required")
        elif not isinstance(audio, str) or not re.match(r"^(https?://|data:)", audio):
            bad("audio", "format", "Does not match format 'uri'")
        if inputs.get("transcription", "plain text") not in FORMATS:
            bad("transcription", "enum", f"input.transcription must be one of the following: {', '.join(map(repr, FORMATS))}")
        if inputs.get("model", "large-v3") != "large-v3":
            bad("model", "enum", "input.model must be one of the following: 'large-v3'")
        if not isinstance(inputs.get("translate", False), bool):
            bad("translate", "invalid_type", "Invalid type. Expected: boolean, given: string")
        temperature = inputs.get("temperature", 0)
        if isinstance(temperature, bool) or not isinstance(temperature, int | float):
            bad("temperature", "invalid_type", "Invalid type. Expected: number")
        for name in ("language", "initial_prompt"):
            if name in inputs and inputs[name] is not None and not isinstance(inputs[name], str):
                bad(name, "invalid_type", "Invalid type. Expected: string")
        return problems

    @staticmethod
    def _run(inputs: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None, float]:
        """What the model produces: (output, error, audio seconds)."""
        try:
            info = heard(fetch_audio(str(inputs["audio"])))
        except BadRequest as exc:
            return None, f"Prediction failed for an unknown reason. Could not read the audio: {exc}", 0.0
        language = str(inputs.get("language") or "auto")
        code = None if language in ("auto", "None") else language
        transcript = synthesize(info, language=code)
        fmt = inputs.get("transcription", "plain text")
        text = render_srt(transcript) if fmt == "srt" else render_vtt(transcript) if fmt == "vtt" else transcript.text
        translation = synthesize(info, translate=True).text if inputs.get("translate") else None
        output = {"detected_language": language_name(transcript.language) if code is None or len(code) == 2 else code,
                  "segments": whisper_segments(transcript), "transcription": text, "translation": translation,
                  "txt_file": None, "srt_file": None}  # fmt: skip
        return output, None, info.duration_s

    # --- responses -----------------------------------------------------------------------------

    @staticmethod
    def _status(prediction: dict[str, Any]) -> tuple[str, float]:
        """(status, fraction done) now."""
        now = time.time()
        if prediction["canceled_at"] is not None:
            return "canceled", 1.0
        total = prediction["ends"] - prediction["created"]
        if now >= prediction["ends"]:
            return ("failed" if prediction["error"] else "succeeded"), 1.0
        elapsed = now - prediction["created"]
        done = elapsed / total if total > 0 else 1.0
        return ("starting" if elapsed < min(0.2, total / 4) else "processing"), done

    def _view(self, fake: FakeProvider, p: dict[str, Any]) -> dict[str, Any]:
        status, done = self._status(p)
        terminal = status in TERMINAL
        started = p["created"] + min(0.2, (p["ends"] - p["created"]) / 4)
        ended = p["canceled_at"] or p["ends"]
        url = f"{fake.root_url}/v1/predictions/{p['id']}"
        logs = "" if status == "starting" else f"Transcribing... {min(100, math.floor(done * 100))}%\n"
        return {
            "id": p["id"], "model": p["model"], "version": p["version"], "input": p["input"],
            "logs": logs + ("Done.\n" if status == "succeeded" else ""),
            "output": p["output"] if status == "succeeded" else None,
            "error": p["error"] if status == "failed" else None,
            "status": status, "source": "api", "data_removed": False,
            "created_at": _iso(p["created"]), "started_at": _iso(started) if status != "starting" else None,
            "completed_at": _iso(ended) if terminal else None,
            "metrics": {"predict_time": round(max(0.0, ended - started), 3),
                        "total_time": round(ended - p["created"], 3)} if terminal else {},
            "urls": {"get": url, "cancel": f"{url}/cancel", "web": f"https://replicate.com/p/{p['id']}"},
        }  # fmt: skip

    @staticmethod
    def _version(version: str) -> dict[str, Any]:
        schema = {"openapi": "3.0.2", "info": {"title": "Cog", "version": "0.1.0"}, "components": {"schemas": {
            "Input": {"type": "object", "required": ["audio"], "properties": {
                "audio": {"type": "string", "format": "uri"},
                "model": {"type": "string", "enum": ["large-v3"], "default": "large-v3"},
                "transcription": {"type": "string", "enum": list(FORMATS), "default": "plain text"},
                "translate": {"type": "boolean", "default": False},
                "language": {"type": "string", "default": "auto"},
                "temperature": {"type": "number", "default": 0},
                "initial_prompt": {"type": "string"}}},
            "Output": {"type": "object", "properties": {
                "transcription": {"type": "string"}, "segments": {}, "detected_language": {"type": "string"},
                "translation": {"type": "string"}, "txt_file": {"type": "string", "format": "uri"},
                "srt_file": {"type": "string", "format": "uri"}}}}}}  # fmt: skip
        return {"id": version, "created_at": "2023-11-08T00:00:00.000000Z", "cog_version": "0.8.6",
                "openapi_schema": schema}  # fmt: skip

    def _model(self, model: str) -> dict[str, Any]:
        owner, name = model.split("/", 1)
        return {"url": f"https://replicate.com/{model}", "owner": owner, "name": name,
                "description": "Convert speech in audio to text (fake)", "visibility": "public",
                "github_url": None, "paper_url": None, "license_url": None, "run_count": 0,
                "cover_image_url": None, "default_example": None, "latest_version": self._version(LATEST)}  # fmt: skip

    # --- errors --------------------------------------------------------------------------------

    def error(self, info: ErrorInfo, ctx: Ctx) -> tuple[int, dict[str, Any], dict[str, str]]:
        if info.kind == "rate_limited":
            over = info.snap.exceeded if info.snap else None
            wait = info.retry_after if info.retry_after is not None else (over.retry_after if over else 30.0)
            seconds = max(1, math.ceil(wait))
            body = {"detail": f"Request was throttled. Your rate limit resets in ~{seconds}s.", "status": 429}
            return 429, body, {"retry-after": str(seconds)}
        table = {
            "auth_missing": (401, "Unauthenticated", "You did not pass an authentication token"),
            "auth_invalid": (401, "Unauthenticated", "You did not pass a valid authentication token"),
            "auth_fault": (401, "Unauthenticated", "You did not pass a valid authentication token"),
            "path_not_found": (404, "Not found", "The requested resource could not be found."),
            "model_not_found": (404, "Not found", f"Model {info.model} not found"),
            "bad_request": (400, "Bad request", info.message),
            "server_500": (500, "Internal server error", "An unexpected error occurred."),
            "server_503": (503, "Service unavailable", "The service is temporarily unavailable."),
        }
        status, title, detail = table.get(info.kind, table["server_500"])
        return status, _problem(status, title, detail), {}

    def response_headers(self, ctx: Ctx) -> dict[str, str]:
        return {"x-request-id": ctx.hex_id("req", 32)}


WIRE = ReplicateWire()
