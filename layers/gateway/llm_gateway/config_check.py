"""Cold-start checks of the catalog as configured: overrides, and each provider's model list.

The catalog's own validation (pydantic, in `selection/catalog.py`) proves the merged result is
well-formed. It cannot tell an operator's typo from an intent: a misspelt model id in the
overrides becomes an incomplete *new* model, a `disable` entry naming nothing does nothing, and a
`GROQ_MODELS` naming no catalog model leaves Groq with nothing to serve. Each of those used to
surface as failing requests; here each becomes one line naming the variable and the fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from llm_gateway.providers.base import ProviderConfig
from llm_gateway.providers.registry import provider_spec
from llm_gateway.selection.catalog import (
    BUILTIN_PATH,
    CHAT,
    OVERRIDES_ENV,
    Catalog,
    CatalogData,
    ModelEntry,
    merge_overrides,
)

OVERRIDE_KEYS = ("providers", "models", "disable")
NEW_MODEL_NEEDS = ("category", "context_window", "max_output", "capabilities")
COMPATIBLE_ENV = "LLM_GATEWAY_OPENAI_COMPATIBLE"


class ConfigError(ValueError):
    """A setting that cannot work. The message is one line: the variable, what is wrong, the fix."""


# API Gateway REST ends a streamed response after 15 minutes (aws.md §4, "API Gateway REST API
# response streaming"), and Lambda's own maximum timeout is the same 900 s.
STREAM_LIMIT_S = 900.0
FUNCTION_MARGIN_S = 2.0  # retry.handler.LAMBDA_MARGIN_S: kept for the state writes after the answer


def check_stream_deadline(stream_deadline_s: float, deadline_s: float, function_timeout_s: float | None) -> None:
    """The streaming deadline must be longer than the buffered one (else streaming only loses),
    within API Gateway's 15 minutes, and leave the function its margin before its own timeout."""
    name = "LLM_GATEWAY_STREAM_DEADLINE_S"
    if stream_deadline_s <= deadline_s:
        raise ConfigError(f"{name} ({stream_deadline_s:g}) must be longer than LLM_GATEWAY_DEADLINE_S "
                          f"({deadline_s:g}); raise it (default 300)")
    if stream_deadline_s > STREAM_LIMIT_S:
        raise ConfigError(f"{name} ({stream_deadline_s:g}) is past API Gateway's 15-minute streaming limit; "
                          f"use at most {STREAM_LIMIT_S:g}")
    if function_timeout_s is not None and stream_deadline_s + FUNCTION_MARGIN_S > function_timeout_s:
        raise ConfigError(f"{name} ({stream_deadline_s:g}) leaves no {FUNCTION_MARGIN_S:g} s margin before the "
                          f"function timeout (LLM_GATEWAY_FUNCTION_TIMEOUT_S={function_timeout_s:g}); lower it "
                          "or raise the function's Timeout")


def check_catalog(overrides: str | None, providers: Sequence[ProviderConfig], builtin: Path = BUILTIN_PATH) -> Catalog:
    """The catalog the gateway will route on, or ConfigError naming what is wrong with it."""
    raw = json.loads(builtin.read_text(encoding="utf-8"))
    patch = _read(overrides)
    _check_shape(patch)
    known = {(m["provider"], m["model"]) for m in raw["models"]}
    for index, model in enumerate(patch.get("models", [])):
        _check_model_patch(index, model, known)
    merged = merge_overrides(raw, patch)
    for index, model in enumerate(patch.get("models", [])):
        if model["provider"] not in merged["providers"]:
            raise ConfigError(
                f"{OVERRIDES_ENV}: models[{index}] ({model['provider']}/{model['model']}) names provider "
                f"{model['provider']!r}, which has no entry under providers; add "
                f'"providers": {{"{model["provider"]}": {{"as_of": "<date>", "source": "<where the figures come from>"}}}}'
            )
    _check_disable(patch.get("disable", []), {(m["provider"], m["model"]) for m in merged["models"]})
    try:
        catalog = Catalog(CatalogData.model_validate(merged))
    except ValidationError as exc:
        raise ConfigError(f"{OVERRIDES_ENV}: {_first_error(exc, merged)}") from exc
    for config in providers:
        _check_served(config, catalog)
    return catalog


def _read(value: str | None) -> dict[str, Any]:
    """Inline JSON when the value starts with `{`, else a file path (as `read_overrides` reads it)."""
    if not value or not value.strip():
        return {}
    if value.lstrip().startswith("["):
        raise ConfigError(f"{OVERRIDES_ENV} must hold a JSON object with {', '.join(OVERRIDE_KEYS)}, not a list")
    if value.lstrip().startswith("{"):
        text, source = value, "is not valid JSON"
    else:
        try:
            text = Path(value).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"{OVERRIDES_ENV}: cannot read file {value!r} ({exc.strerror or exc}); give a path or inline JSON "
                "starting with {"
            ) from exc
        source = f"file {value!r} is not valid JSON"
    try:
        loaded = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{OVERRIDES_ENV} {source}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{OVERRIDES_ENV} must hold a JSON object with {', '.join(OVERRIDE_KEYS)}")
    return loaded


def _check_shape(patch: Mapping[str, Any]) -> None:
    unknown = sorted(set(patch) - set(OVERRIDE_KEYS))
    if unknown:
        raise ConfigError(
            f"{OVERRIDES_ENV} has unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(OVERRIDE_KEYS)}"
        )
    providers = patch.get("providers", {})
    if not isinstance(providers, dict) or not all(isinstance(v, dict) for v in providers.values()):
        raise ConfigError(f"{OVERRIDES_ENV}: providers must be an object of provider name -> object")
    if not isinstance(patch.get("models", []), list):
        raise ConfigError(f"{OVERRIDES_ENV}: models must be a list of model objects")
    disable = patch.get("disable", [])
    if not isinstance(disable, list) or not all(isinstance(d, str) for d in disable):
        raise ConfigError(f"{OVERRIDES_ENV}: disable must be a list of \"provider/model\" strings")


def _check_model_patch(index: int, model: object, known: set[tuple[str, str]]) -> None:
    where = f"{OVERRIDES_ENV}: models[{index}]"
    if not isinstance(model, dict):
        raise ConfigError(f"{where} must be an object")
    provider, name = model.get("provider"), model.get("model")
    if not isinstance(provider, str) or not provider or not isinstance(name, str) or not name:
        raise ConfigError(f"{where} needs \"provider\" and \"model\" (non-empty strings) to say which model it changes")
    ident = f"{provider}/{name}"
    fields = _entry_keys()
    unknown = sorted(set(model) - fields)
    if unknown:
        raise ConfigError(
            f"{where} ({ident}) has unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(fields))}"
        )
    if (provider, name) in known:
        return
    missing = [f for f in NEW_MODEL_NEEDS if f not in model]
    if model.get("free_tier") is None and model.get("price") is None:
        missing.append("free_tier or price")
    if missing:
        raise ConfigError(
            f"{where} ({ident}) matches no catalog model{_did_you_mean(ident, known)}; to add it as a new model, "
            f"give {', '.join(missing)}"
        )


def _check_disable(disable: Iterable[str], models: set[tuple[str, str]]) -> None:
    for item in disable:
        provider, _, name = item.partition("/")
        if not provider or not name:
            raise ConfigError(f"{OVERRIDES_ENV}: disable entry {item!r} must be \"provider/model\"")
        if (provider, name) not in models:
            raise ConfigError(
                f"{OVERRIDES_ENV}: disable entry {item!r} matches no catalog model{_did_you_mean(item, models)}"
            )


def _check_served(config: ProviderConfig, catalog: Catalog) -> None:
    """Every id a provider's model list names is a catalog model of it, and something is left to serve."""
    spec = provider_spec(config.kind)
    source = spec.models_env if spec is not None and spec.key_env else f"{COMPATIBLE_ENV} endpoint {config.name!r}"
    ours = {m.model: m for m in catalog.data.models if m.provider == config.name}
    for model in config.models:
        if model in ours:
            continue
        if spec is None or not spec.key_env:
            raise ConfigError(
                f"{source}: model {config.name}/{model} has no catalog entry; add one to {OVERRIDES_ENV} "
                f"(provider {config.name!r} under providers, the model under models)"
            )
        raise ConfigError(
            f"{source}: {model!r} is not a {config.name} model in the catalog{_did_you_mean(model, set(ours))}"
        )
    enabled = [m for m in ours.values() if m.enabled and (not config.models or m.model in config.models)]
    if not enabled:
        listed = f" (it lists {', '.join(config.models)}: disabled)" if config.models else " (all disabled)"
        raise ConfigError(f"{source}: leaves {config.name} with no model to serve{listed}")


def _did_you_mean(value: str, candidates: Iterable[object]) -> str:
    import difflib  # only for a setting already found wrong: not at every cold start (3.6 M instructions)

    names = [c if isinstance(c, str) else "/".join(c) for c in candidates]  # type: ignore[arg-type]
    close = difflib.get_close_matches(value, names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _entry_keys() -> set[str]:
    keys: set[str] = set()
    for name, field in ModelEntry.model_fields.items():
        keys.add(field.alias or name)
    return keys


def _first_error(exc: ValidationError, merged: Mapping[str, Any]) -> str:
    """pydantic's first error as one line, with `models.3` shown as the model it is."""
    errors = exc.errors()
    first = errors[0]
    loc = list(first["loc"])
    where = ".".join(str(part) for part in loc)
    if len(loc) >= 2 and loc[0] == "models" and isinstance(loc[1], int) and loc[1] < len(merged["models"]):
        model = merged["models"][loc[1]]
        rest = ".".join(str(part) for part in loc[2:])
        where = f"models[{model.get('provider')}/{model.get('model')}]" + (f".{rest}" if rest else "")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where + ': ' if where else ''}{first['msg']}{more}"


# --- transcription (uploads and jobs) ------------------------------------------------------------
_BUCKET = re.compile(r"^(?!xn--)(?!.*-s3alias$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MAX_PRESIGN_S = 7 * 24 * 3600  # SigV4's longest presigned URL
MAX_UPLOAD_CAP = 1024 * 1024 * 1024  # api/audio_schemas.MAX_UPLOAD_BYTES
MAX_JOB_DEADLINE_S = 890.0  # Lambda's 900 s timeout, less the time to write the result


def check_bucket_name(variable: str, name: str) -> None:
    if not _BUCKET.match(name) or ".." in name:
        raise ConfigError(f"{variable}={name!r} is not an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)")


_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL", "NOTSET")  # `logging`'s names


def check_url(variable: str, url: str) -> None:
    """A base URL or endpoint: http(s) with a host, as httpx and botocore need it (without a scheme
    every call fails as a connection error, so every request would). The message names the
    value without what could be a credential in it (`user:key@`, a query)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        shown = url
        if "@" in shown:  # userinfo first: a password may hold a `?`
            shown = "…@" + shown.rsplit("@", 1)[1]
        shown = shown.split("?", 1)[0]
        raise ConfigError(f"{variable}={shown!r} is not an http(s) URL; give it as http://host[:port][/path]")


def check_table_name(variable: str, name: str) -> None:
    if not _TABLE.match(name):
        raise ConfigError(f"{variable}={name!r} is not a DynamoDB table name (3-255 letters, digits, _ . -)")


def check_log_level(env: Mapping[str, str]) -> None:
    """`POWERTOOLS_LOG_LEVEL` as Powertools' Logger takes it (any case); anything else stopped the
    handler's import inside Powertools with no variable named."""
    level = env.get("POWERTOOLS_LOG_LEVEL")
    if level and level.upper() not in _LOG_LEVELS:
        raise ConfigError(f"POWERTOOLS_LOG_LEVEL={level!r} is not a log level; use DEBUG, INFO, WARNING, ERROR, "
                          "CRITICAL, FATAL or NOTSET")


def check_baseline(baseline: str | None, catalog: Catalog) -> None:
    """The rollout's baseline model must be a chat model of the catalog: every request of the
    baseline cohort is pinned to it."""
    if baseline is None:
        return
    provider, _, model = baseline.partition("/")
    if not any(e.provider == provider and e.model == model for e in catalog.for_capability(CHAT)):
        raise ConfigError(f"LLM_GATEWAY_BASELINE_MODEL names {baseline!r}, which is no chat model of the catalog")


def check_transcription_limits(values: Mapping[str, Any]) -> None:
    """The upload URL must be presignable, an upload announceable, a job finishable inside Lambda."""
    if values["upload_url_ttl_s"] > MAX_PRESIGN_S:
        raise ConfigError(f"LLM_GATEWAY_UPLOAD_URL_TTL_S must be at most {MAX_PRESIGN_S} (SigV4's limit), "
                          f"got {values['upload_url_ttl_s']}")
    if values["max_upload_bytes"] > MAX_UPLOAD_CAP:
        raise ConfigError(f"LLM_GATEWAY_MAX_UPLOAD_BYTES must be at most {MAX_UPLOAD_CAP} (1 GiB), "
                          f"got {values['max_upload_bytes']}")
    if values["job_deadline_s"] > MAX_JOB_DEADLINE_S:
        raise ConfigError(f"LLM_GATEWAY_JOB_DEADLINE_S must be at most {MAX_JOB_DEADLINE_S:g} (Lambda stops a "
                          f"function at 900 s), got {values['job_deadline_s']:g}")
    if values["job_attempt_timeout_s"] > values["job_deadline_s"]:
        raise ConfigError("LLM_GATEWAY_JOB_ATTEMPT_TIMEOUT_S must not exceed LLM_GATEWAY_JOB_DEADLINE_S "
                          f"({values['job_attempt_timeout_s']:g} > {values['job_deadline_s']:g})")
