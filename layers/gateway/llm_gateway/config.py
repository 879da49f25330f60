"""Settings, read once per container at cold start and passed in (never a mutable global).

Keys come from the environment locally and from two Secrets Manager secrets in AWS (JSON objects
of the same names, fetched through Powertools Parameters with its cache): the provider secret
holds provider keys only, the client-key secret holds the keys callers and operators present.
Only the chat function may read the second one. A secret supplies only those allow-listed
names; every other setting (base URLs, tables, limits, local mode) comes from the environment.
Every variable is listed in README.md's configuration table; keep the two in step.

Loading also validates: a setting that cannot work (a number that is not one, a malformed or
misspelt catalog override, a model list naming nothing) raises `ConfigError` with one line
naming the variable, so a Lambda's init or `make dev` stops at once instead of failing every
request later.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from llm_gateway.config_check import (
    COMPATIBLE_ENV,
    ConfigError,
    check_baseline,
    check_bucket_name,
    check_catalog,
    check_log_level,
    check_stream_deadline,
    check_table_name,
    check_transcription_limits,
    check_url,
)
from llm_gateway.providers.base import ProviderConfig
from llm_gateway.providers.registry import PROVIDERS, key_variables, provider_spec
from llm_gateway.selection.catalog import Catalog

DEFAULT_DEV_KEY = "local-dev-key"
PROVIDER_SECRET_ENV = "LLM_GATEWAY_PROVIDER_SECRET"
CLIENT_KEY_SECRET_ENV = "LLM_GATEWAY_CLIENT_KEY_SECRET"
CLIENT_KEY_NAMES = ("LLM_GATEWAY_API_KEYS", "LLM_GATEWAY_ADMIN_KEYS")
MIN_CLIENT_KEY_CHARS = 32
def _flag(env: Mapping[str, str], name: str) -> bool:
    """A yes/no variable, read with Powertools' own words for them (`1 y yes t true on`, `0 n no f
    false off`, any case; unset is no), so one variable reads the same here and in Powertools; a
    value that is neither (`maybe`, a typo) stops the load, naming it, rather than reading as no."""
    from aws_lambda_powertools.shared.functions import strtobool

    value = env.get(name, "").strip()
    if not value:
        return False
    try:
        return strtobool(value)
    except ValueError:
        raise ConfigError(f"{name} must be yes or no (1/true/yes/on or 0/false/no/off), got {env[name]!r}") from None
ENDPOINT_FIELDS = ("name", "base_url", "api_key", "api_key_env", "models", "options")


@dataclass(frozen=True)
class RolloutSettings:
    """Safe rollout (llm_gateway.rollout): the baseline model and where the percentage lives.

    `appconfig` (application, environment, profile) wins over `file`; with neither the percentage
    is fixed at `percent`. Without a baseline model there is no rollout: everyone is routed."""

    baseline_model: str | None = None
    appconfig: tuple[str, str, str] | None = None
    file: str | None = None
    percent: float = 100.0
    cache_s: float = 5.0
    endpoint: str | None = None  # AppConfigData endpoint override (AWS_ENDPOINT_URL_APPCONFIGDATA)

    @property
    def enabled(self) -> bool:
        return self.baseline_model is not None


SecretFetch = Callable[[str, int], Mapping[str, str]]  # (secret name, max age in s) → its JSON object


@dataclass(frozen=True)
class AwsAccess:
    """How the gateway calls AWS itself (the state table, without boto3: `state/aws_client.py`):
    the region and the credentials Lambda sets in every function's environment (the execution
    role's, for the container's lifetime)."""

    region: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Settings:
    """Everything the gateway is configured with, read once per container by `load_settings`."""

    providers: tuple[ProviderConfig, ...] = ()
    api_keys: frozenset[str] = field(default=frozenset(), repr=False)
    admin_keys: frozenset[str] = field(default=frozenset(), repr=False)  # may read /v1/status
    deadline_s: float = 25.0
    # A `stream: true` request streamed as it is produced (the streaming invocation) ends by this
    # many seconds; the first chunk must still come within the attempt timeouts (failover).
    stream_deadline_s: float = 300.0
    function_timeout_s: float | None = None  # the Lambda's Timeout (the template passes it) or unknown
    max_attempts: int = 3
    attempt_timeout_s: float = 20.0
    state_table: str | None = None
    dynamodb_endpoint: str | None = None
    catalog_overrides: str | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    local_mode: bool = False
    status_cache_s: float = 5.0  # GET /v1/status answers at most this stale
    max_wait_s: float = 2.0  # wait this long at most for capacity rather than answer 429
    free_wait_s: float = 1.5  # wait this long at most for a free tier rather than pay
    max_containers: int = 2  # how many containers may run at once: each one's share while degraded
    provider_secret: str | None = None
    client_key_secret: str | None = None
    secret_ttl_s: int = 120  # secrets are re-read this often in warm containers (keys.KeySource)
    max_audio_s: float = 7200.0  # longer audio is refused before any provider call
    daily_spend_cap_usd: float | None = None  # gateway-wide: reached, every caller is free-tier-only until 00:00 UTC
    key_cache_s: float = 5.0  # an issued key's record is cached this long per container (policy changes, revocations)
    # --- transcription: uploads (S3) and background jobs (the transcribe function only) ---
    audio_bucket: str | None = None  # uploads and large job results; None = uploads refused
    s3_endpoint: str | None = None  # local runs (the embedded S3); None = AWS
    upload_url_ttl_s: int = 900  # how long a presigned upload URL stays valid
    max_upload_bytes: int = 200 * 1024 * 1024  # what an upload may announce (the Lambda reads it whole)
    job_ttl_s: int = 86_400  # a job and its result are kept this long after the last change
    job_deadline_s: float = 840.0  # all provider attempts of one job (the function's timeout is 900 s)
    job_attempt_timeout_s: float = 300.0  # one provider attempt inside a job
    rollout: RolloutSettings = field(default_factory=RolloutSettings)
    # X-Ray subsegments per provider attempt (routing/tracing.py): in Lambda, unless Powertools'
    # POWERTOOLS_TRACE_DISABLED says no (the template turns active tracing on).
    tracing: bool = False
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)  # what the settings came from
    # AWS_REGION (or AWS_DEFAULT_REGION) and the AWS_* credentials; None when any is missing
    # (then boto3's own credential chain is used: profiles, SSO, instance roles).
    aws: AwsAccess | None = field(default=None, repr=False)
    # How the secrets are re-read (keys.KeySource): the reader load_settings used, so its cache
    # (Powertools Parameters' max_age) is the one warm containers refresh from.
    secret_fetch: SecretFetch | None = field(default=None, repr=False, compare=False)
    # The catalog load_settings validated (built-in plus overrides), so the composition root does
    # not read and validate it a second time; None when Settings are made directly.
    catalog: Catalog | None = field(default=None, repr=False, compare=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every value that must never reach a log line, an error or a response."""
        values = [p.api_key for p in self.providers] + list(self.api_keys) + list(self.admin_keys)
        if self.aws is not None:
            values += [self.aws.secret_access_key, self.aws.session_token or ""]
        return tuple(sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True))


def _aws_access(env: Mapping[str, str]) -> AwsAccess | None:
    """The region and credentials Lambda sets (`AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`); None unless region, key id and secret are all set."""
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    key_id, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if not (region and key_id and secret):
        return None
    return AwsAccess(region, key_id, secret, env.get("AWS_SESSION_TOKEN") or None)


def _number(env: Mapping[str, str], name: str, default: float, *, whole: bool = False, zero_ok: bool = False,
            most: float | None = None) -> float:
    """Every numeric setting's one parser: the default when unset; otherwise a finite number
    above 0 (or 0 too where 0 means "off"), or, `whole`, a whole number of at least 1; at most
    `most` where more would be a typo's doing."""
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be {'a whole number' if whole else 'a number'}, got {raw!r}") from exc
    if whole and not value.is_integer():
        raise ConfigError(f"{name} must be a whole number, got {raw!r}")
    if whole and value < 1:
        raise ConfigError(f"{name} must be at least 1, got {raw!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        raise ConfigError(f"{name} must be {'0 or more' if zero_ok else 'greater than 0'}, got {raw!r}")
    if most is not None and value > most:
        raise ConfigError(f"{name} must be at most {most:g}, got {raw!r}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, zero_ok: bool = False) -> float:
    """Seconds, a percentage, dollars: see `_number`."""
    return _number(env, name, default, zero_ok=zero_ok)


def _int(env: Mapping[str, str], name: str, default: int, *, most: int | None = None) -> int:
    """A count or a size: a whole number of at least 1 (see `_number`)."""
    return int(_number(env, name, default, whole=True, most=most))


MAX_ATTEMPTS_MOST = 10  # each is a provider call, perhaps paid; the deadline ends a request long before
MAX_BODY_BYTES_MOST = 6 * 1024 * 1024  # Lambda's synchronous payload limit: a larger body never arrives
SECRET_TTL_MOST_S = 3600  # a rotated or newly filled key must work within the hour


def _cap(env: Mapping[str, str]) -> float | None:
    """`LLM_GATEWAY_DAILY_SPEND_CAP_USD`: unset = no cap; 0 = free tiers only."""
    if env.get("LLM_GATEWAY_DAILY_SPEND_CAP_USD") in (None, ""):
        return None
    return _float(env, "LLM_GATEWAY_DAILY_SPEND_CAP_USD", 0.0, zero_ok=True)


def _key_cache_s(env: Mapping[str, str]) -> float:
    """`LLM_GATEWAY_KEY_CACHE_S`: at most 60 s, the bound on how long a revoked key keeps working."""
    value = _float(env, "LLM_GATEWAY_KEY_CACHE_S", 5.0, zero_ok=True)
    if value > 60:
        raise ConfigError(f"LLM_GATEWAY_KEY_CACHE_S must be at most 60 (a revoked key works that long), got {value:g}")
    return value


def _providers(env: Mapping[str, str]) -> list[ProviderConfig]:
    """One config per provider kind whose key is set, plus every declared OpenAI-compatible endpoint."""
    configs: list[ProviderConfig] = []
    for kind, (_, key_env) in PROVIDERS.items():
        key = env.get(key_env, "").strip() if key_env else ""
        spec = provider_spec(kind) if key else None
        if spec is None:
            continue
        base_url = env.get(spec.base_url_env, "").strip() or spec.default_base_url
        check_url(spec.base_url_env, base_url)
        # No list = every catalog model of this provider; `<KIND>_MODELS` narrows it.
        models = tuple(m.strip() for m in env.get(spec.models_env, "").split(",") if m.strip())
        configs.append(ProviderConfig(name=kind, kind=kind, base_url=base_url, api_key=key, models=models))
    configs.extend(_compatible_endpoints(env))
    return configs


def _compatible_endpoints(env: Mapping[str, str]) -> list[ProviderConfig]:
    """`LLM_GATEWAY_OPENAI_COMPATIBLE`: a JSON list of {name, base_url, api_key | api_key_env, models, options}.

    An endpoint whose key is not set is absent, as a built-in provider without its key is."""
    raw = env.get(COMPATIBLE_ENV, "").strip()
    if not raw:
        return []
    try:
        entries = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"{COMPATIBLE_ENV} is not valid JSON: {exc}") from exc
    if not isinstance(entries, list):
        raise ConfigError(f"{COMPATIBLE_ENV} must be a JSON list of endpoints, got {type(entries).__name__}")
    configs = []
    for index, entry in enumerate(entries):
        _check_endpoint(index, entry)
        key = entry.get("api_key") or env.get(str(entry.get("api_key_env", "")), "")
        if not key:
            continue
        configs.append(
            ProviderConfig(
                name=str(entry["name"]), kind="openai_compatible", base_url=str(entry["base_url"]),
                api_key=str(key), models=tuple(entry.get("models", ())), options=dict(entry.get("options", {})),
            )
        )
    return configs


def _check_endpoint(index: int, entry: object) -> None:
    where = f"{COMPATIBLE_ENV}[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be an object with {', '.join(ENDPOINT_FIELDS)}")
    unknown = sorted(set(entry) - set(ENDPOINT_FIELDS))
    if unknown:
        raise ConfigError(f"{where} has unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(ENDPOINT_FIELDS)}")
    for required in ("name", "base_url"):
        if not isinstance(entry.get(required), str) or not entry[required].strip():
            raise ConfigError(f"{where} needs a {required!r} (a non-empty string)")
    check_url(f"{where}.base_url", entry["base_url"])
    if entry["name"] in PROVIDERS:
        raise ConfigError(f"{where} is named {entry['name']!r}, a built-in provider; choose another name")
    models = entry.get("models", [])
    if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
        raise ConfigError(f"{where}.models must be a list of model ids")
    if not isinstance(entry.get("options", {}), dict):
        raise ConfigError(f"{where}.options must be an object")


def _local_mode(env: Mapping[str, str]) -> bool:
    """Local mode (the well-known dev key) comes from the environment only and never inside Lambda."""
    if not _flag(env, "LLM_GATEWAY_LOCAL"):
        return False
    if env.get("AWS_LAMBDA_FUNCTION_NAME"):
        raise ConfigError(
            "LLM_GATEWAY_LOCAL is set inside AWS Lambda (AWS_LAMBDA_FUNCTION_NAME is set): local mode accepts "
            "a well-known dev key, so it is refused there. Remove LLM_GATEWAY_LOCAL from the function's environment."
        )
    return True


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _key_list(env: Mapping[str, str], name: str) -> frozenset[str]:
    """Comma-separated client keys, each at least MIN_CLIENT_KEY_CHARS long (the error never shows a key)."""
    keys = [k.strip() for k in env.get(name, "").split(",") if k.strip()]
    for position, key in enumerate(keys, start=1):
        if len(key) < MIN_CLIENT_KEY_CHARS:
            raise ConfigError(
                f"{name}: the {_ordinal(position)} key is {len(key)} characters; client keys must be at least "
                f"{MIN_CLIENT_KEY_CHARS} characters (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')."
            )
    return frozenset(keys)


def _provider_key_names(env: Mapping[str, str]) -> frozenset[str]:
    """The names a provider secret may supply: every provider's key variable, and the `api_key_env`
    of each OpenAI-compatible endpoint the environment declares."""
    names = set(key_variables())
    try:
        declared = json.loads(env.get("LLM_GATEWAY_OPENAI_COMPATIBLE", "").strip() or "[]")
    except ValueError:
        declared = []
    for entry in declared if isinstance(declared, list) else []:
        if isinstance(entry, dict) and entry.get("api_key_env"):
            names.add(str(entry["api_key_env"]))
    return frozenset(names)


def _from_secrets(
    env: Mapping[str, str], provider_values: Mapping[str, str] | None, client_values: Mapping[str, str] | None
) -> dict[str, str]:
    """Only allow-listed values: provider keys from the provider secret, client and admin keys from
    the client-key secret. URLs, tables, limits, modes: environment only, so whoever can write a
    secret cannot redirect traffic, turn on local mode or change how the gateway behaves."""
    provider_values = {k: v for k, v in (provider_values or {}).items() if v}
    misplaced = sorted(set(provider_values) & set(CLIENT_KEY_NAMES))
    if misplaced:
        raise ConfigError(
            f"{', '.join(misplaced)} found in the provider secret: client keys belong in the client-key secret "
            f"({CLIENT_KEY_SECRET_ENV}), which the health function cannot read. Move them there."
        )
    allowed = _provider_key_names(env)
    values = {k: v for k, v in provider_values.items() if k in allowed}
    values.update({k: v for k, v in (client_values or {}).items() if k in CLIENT_KEY_NAMES and v})
    return values


def fetch_secret_values(secret_name: str, max_age_s: int = 120) -> dict[str, str]:
    """A secret holding a JSON object, as a flat mapping; Powertools caches it for `max_age_s`."""
    from aws_lambda_powertools.utilities import parameters

    return _secret_values(secret_name, lambda: parameters.get_secret(secret_name, transform="json", max_age=max_age_s))


def _secret_values(secret_name: str, read: Callable[[], Any]) -> dict[str, str]:
    """A secret read as JSON, flattened to strings. A value that is not a JSON object is named
    without its text or cause: the parse error Powertools chains holds the whole secret string
    (`JSONDecodeError.doc`), and no error report may carry it."""
    value: Any = None
    unreadable = False
    try:
        value = read()
    except Exception as exc:
        from aws_lambda_powertools.utilities.parameters.exceptions import TransformParameterError

        if not isinstance(exc, TransformParameterError):
            raise
        unreadable = True
    # raised outside the handler, so not even `__context__` keeps the parse error
    if unreadable or (value is not None and not isinstance(value, dict)):
        raise ConfigError(f"secret {secret_name!r} is not a JSON object")
    return {str(k): str(v) for k, v in (value or {}).items() if v is not None}


def secret_fetch(access: AwsAccess | None, endpoint: str | None = None) -> SecretFetch:
    """The secrets reader: Powertools Parameters over the gateway's own Secrets Manager client
    (httpx, no boto3: `state/aws_client.py`) when the region and credentials are in the
    environment, as Lambda sets them; otherwise Powertools' default provider (boto3's credential
    chain). Either way the values are cached for `max_age` and read as JSON."""
    if access is None:
        return fetch_secret_values
    from llm_gateway.state.aws_client import secrets_provider

    provider = secrets_provider(access, endpoint)

    def fetch(secret_name: str, max_age_s: int = 120) -> dict[str, str]:
        return _secret_values(secret_name, lambda: provider.get(secret_name, max_age=max_age_s, transform="json"))

    return fetch


def _read_both(fetch: SecretFetch, first: str, second: str, ttl: int) -> tuple[Mapping[str, str], Mapping[str, str]]:
    """Two secrets read at once, the first on a thread: each read is a round trip to Secrets
    Manager that a cold start waited for in turn. Only over the gateway's own client (`aws_client`
    reads on any thread; boto3's default session, which Powertools' own provider builds clients
    from, does not promise that). A failure is raised as the reads in turn raised it: the first
    secret's before the second's."""
    found: list[Mapping[str, str]] = []
    failed: list[BaseException] = []

    def read_first() -> None:
        try:
            found.append(fetch(first, ttl))
        except BaseException as exc:  # raised on the caller's thread below
            failed.append(exc)

    reader = threading.Thread(target=read_first, name="secret-read", daemon=True)
    reader.start()
    try:
        other = fetch(second, ttl)
    finally:
        reader.join()
        if failed:
            raise failed[0]
    return found[0], other


def provider_configs(env: Mapping[str, str], provider_values: Mapping[str, str] | None) -> tuple[ProviderConfig, ...]:
    """Provider configs from the provider secret's allow-listed keys with the environment over them."""
    return tuple(_providers({**_from_secrets(env, provider_values, None), **env}))


def client_keys(env: Mapping[str, str], client_values: Mapping[str, str] | None) -> tuple[frozenset[str], frozenset[str]]:
    """(client keys, admin keys) from the client-key secret with the environment over them."""
    merged = {**_from_secrets(env, None, client_values), **env}
    api_keys, admin_keys = _key_list(merged, "LLM_GATEWAY_API_KEYS"), _key_list(merged, "LLM_GATEWAY_ADMIN_KEYS")
    if _local_mode(env):  # the dev key is exempt from the length rule: it only ever works on a laptop
        dev_key = env.get("LLM_GATEWAY_DEV_KEY", "").strip() or DEFAULT_DEV_KEY
        api_keys, admin_keys = api_keys | {dev_key}, admin_keys | {dev_key}
    return api_keys, admin_keys


ROLLOUT_APPCONFIG_ENV = (
    "LLM_GATEWAY_ROLLOUT_APPCONFIG_APPLICATION", "LLM_GATEWAY_ROLLOUT_APPCONFIG_ENVIRONMENT",
    "LLM_GATEWAY_ROLLOUT_APPCONFIG_PROFILE",
)


def _rollout(env: Mapping[str, str]) -> RolloutSettings:
    """`LLM_GATEWAY_BASELINE_MODEL` (`provider/model`) and the flag's store; a store named without
    a baseline model, or half an AppConfig triple, stops the start with one line."""
    baseline = env.get("LLM_GATEWAY_BASELINE_MODEL") or None
    named = [name for name in ROLLOUT_APPCONFIG_ENV if env.get(name)]
    if named and len(named) != len(ROLLOUT_APPCONFIG_ENV):
        missing = ", ".join(n for n in ROLLOUT_APPCONFIG_ENV if n not in named)
        raise ConfigError(f"the rollout flag in AppConfig needs all three identifiers; missing {missing}")
    appconfig = tuple(env[n] for n in ROLLOUT_APPCONFIG_ENV) if named else None
    file = env.get("LLM_GATEWAY_ROLLOUT_FILE") or None
    percent = _float(env, "LLM_GATEWAY_ROLLOUT_PERCENT", 100.0, zero_ok=True)
    if percent > 100:
        raise ConfigError(f"LLM_GATEWAY_ROLLOUT_PERCENT must be from 0 to 100, got {percent:g}")
    if baseline is not None and "/" not in baseline:
        raise ConfigError(f"LLM_GATEWAY_BASELINE_MODEL must be provider/model (e.g. openai/gpt-4o-mini), got {baseline!r}")
    if baseline is None and (appconfig or file or "LLM_GATEWAY_ROLLOUT_PERCENT" in env):
        raise ConfigError("a rollout percentage is configured but LLM_GATEWAY_BASELINE_MODEL is not: "
                          "name the model the baseline cohort is served by")
    return RolloutSettings(
        baseline_model=baseline, appconfig=appconfig,  # type: ignore[arg-type]
        file=file, percent=percent, cache_s=_float(env, "LLM_GATEWAY_ROLLOUT_CACHE_S", 5.0, zero_ok=True),
        endpoint=_aws_endpoint(env, "APPCONFIGDATA"),
    )


def _aws_endpoint(env: Mapping[str, str], service: str) -> str | None:
    """A service's endpoint override as botocore reads it (`AWS_ENDPOINT_URL_<SERVICE>`, then
    `AWS_ENDPOINT_URL`), so the gateway's own httpx clients go where boto3 would have gone."""
    return env.get(f"AWS_ENDPOINT_URL_{service}") or env.get("AWS_ENDPOINT_URL") or None


def _transcription(env: Mapping[str, str]) -> dict[str, Any]:
    """The transcribe function's settings: the upload bucket, URL lifetimes, the job path's time."""
    bucket = env.get("LLM_GATEWAY_AUDIO_BUCKET") or None
    if bucket is not None:
        check_bucket_name("LLM_GATEWAY_AUDIO_BUCKET", bucket)
    values: dict[str, Any] = {
        "audio_bucket": bucket,
        "s3_endpoint": env.get("LLM_GATEWAY_S3_ENDPOINT") or None,
        "upload_url_ttl_s": _int(env, "LLM_GATEWAY_UPLOAD_URL_TTL_S", 900),
        "max_upload_bytes": _int(env, "LLM_GATEWAY_MAX_UPLOAD_BYTES", 200 * 1024 * 1024),
        "job_ttl_s": _int(env, "LLM_GATEWAY_JOB_TTL_S", 86_400),
        "job_deadline_s": _float(env, "LLM_GATEWAY_JOB_DEADLINE_S", 840.0),
        "job_attempt_timeout_s": _float(env, "LLM_GATEWAY_JOB_ATTEMPT_TIMEOUT_S", 300.0),
    }
    check_transcription_limits(values)
    return values


def load_settings(
    env: Mapping[str, str] | None = None,
    secret_values: Mapping[str, str] | None = None,
    client_secret_values: Mapping[str, str] | None = None,
) -> Settings:
    """Build settings from the environment, with the secrets' allow-listed keys underneath it.

    `secret_values` / `client_secret_values` stand for the provider secret and the client-key
    secret; when None they are fetched if `LLM_GATEWAY_PROVIDER_SECRET` / `LLM_GATEWAY_CLIENT_KEY_SECRET`
    name one.
    """
    env = {k: v for k, v in dict(os.environ if env is None else env).items() if v != ""}
    ttl = _int(env, "LLM_GATEWAY_SECRET_TTL_S", 120, most=SECRET_TTL_MOST_S)
    aws = _aws_access(env)
    fetch = None
    if env.get(PROVIDER_SECRET_ENV) or env.get(CLIENT_KEY_SECRET_ENV):
        # AWS's own variables for another endpoint (local runs, tests against moto's server)
        fetch = secret_fetch(aws, _aws_endpoint(env, "SECRETS_MANAGER"))
    if secret_values is None and client_secret_values is None and aws is not None \
            and env.get(PROVIDER_SECRET_ENV) and env.get(CLIENT_KEY_SECRET_ENV):
        assert fetch is not None
        secret_values, client_secret_values = _read_both(fetch, env[PROVIDER_SECRET_ENV], env[CLIENT_KEY_SECRET_ENV], ttl)
    if secret_values is None and env.get(PROVIDER_SECRET_ENV):
        assert fetch is not None
        secret_values = fetch(env[PROVIDER_SECRET_ENV], ttl)
    if client_secret_values is None and env.get(CLIENT_KEY_SECRET_ENV):
        assert fetch is not None
        client_secret_values = fetch(env[CLIENT_KEY_SECRET_ENV], ttl)
    merged = {**_from_secrets(env, secret_values, client_secret_values), **env}
    local_mode = _local_mode(env)
    api_keys, admin_keys = client_keys(env, client_secret_values)
    settings = Settings(
        providers=tuple(_providers(merged)),
        api_keys=api_keys,
        admin_keys=admin_keys,
        deadline_s=_float(env, "LLM_GATEWAY_DEADLINE_S", 25.0),
        stream_deadline_s=_float(env, "LLM_GATEWAY_STREAM_DEADLINE_S", 300.0),
        function_timeout_s=_float(env, "LLM_GATEWAY_FUNCTION_TIMEOUT_S", 0.0, zero_ok=True) or None,
        max_attempts=_int(env, "LLM_GATEWAY_MAX_ATTEMPTS", 3, most=MAX_ATTEMPTS_MOST),
        attempt_timeout_s=_float(env, "LLM_GATEWAY_ATTEMPT_TIMEOUT_S", 20.0),
        state_table=env.get("LLM_GATEWAY_STATE_TABLE") or None,
        dynamodb_endpoint=env.get("LLM_GATEWAY_DYNAMODB_ENDPOINT") or _aws_endpoint(env, "DYNAMODB"),
        catalog_overrides=env.get("LLM_GATEWAY_CATALOG_OVERRIDES") or None,
        max_body_bytes=_int(env, "LLM_GATEWAY_MAX_BODY_BYTES", 4 * 1024 * 1024, most=MAX_BODY_BYTES_MOST),
        local_mode=local_mode,
        status_cache_s=_float(env, "LLM_GATEWAY_STATUS_CACHE_S", 5.0, zero_ok=True),
        max_wait_s=_float(env, "LLM_GATEWAY_MAX_WAIT_S", 2.0, zero_ok=True),
        free_wait_s=_float(env, "LLM_GATEWAY_FREE_WAIT_S", 1.5, zero_ok=True),
        max_containers=_int(env, "LLM_GATEWAY_MAX_CONTAINERS", 2),
        provider_secret=env.get(PROVIDER_SECRET_ENV),
        client_key_secret=env.get(CLIENT_KEY_SECRET_ENV),
        secret_ttl_s=ttl,
        max_audio_s=_float(env, "LLM_GATEWAY_MAX_AUDIO_S", 7200.0),
        daily_spend_cap_usd=_cap(env),
        key_cache_s=_key_cache_s(env),
        **_transcription(env),
        rollout=_rollout(env),
        tracing=not _flag(env, "POWERTOOLS_TRACE_DISABLED") and bool(env.get("AWS_LAMBDA_FUNCTION_NAME")),
        environment=env,
        aws=aws,
        secret_fetch=fetch,
    )
    catalog = check_catalog(settings.catalog_overrides, settings.providers)
    check_baseline(settings.rollout.baseline_model, catalog)
    settings = replace(settings, catalog=catalog)
    check_log_level(env)
    dynamodb_from = "LLM_GATEWAY_DYNAMODB_ENDPOINT" if env.get("LLM_GATEWAY_DYNAMODB_ENDPOINT") else \
        "AWS_ENDPOINT_URL_DYNAMODB (or AWS_ENDPOINT_URL)"
    for variable, url in ((dynamodb_from, settings.dynamodb_endpoint), ("LLM_GATEWAY_S3_ENDPOINT", settings.s3_endpoint)):
        if url is not None:
            check_url(variable, url)
    if settings.state_table is not None:
        check_table_name("LLM_GATEWAY_STATE_TABLE", settings.state_table)
    check_stream_deadline(settings.stream_deadline_s, settings.deadline_s, settings.function_timeout_s)
    return settings
