"""The local stand-ins for what AWS provides: fake providers when no keys are set, an embedded
DynamoDB (moto server) for state and an embedded S3 (moto server) for audio uploads, announced
loudly so nobody mistakes them for real.

Two steps, so that a bad configuration stops `make dev` before anything starts:
`plan_local_env` decides which stand-ins are needed and `configured_env` shows the environment
the gateway will see once they run (for validating settings); `prepare_local_env` starts them,
in this process or, for `llm-gateway serve`, each in a process of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from llm_gateway.config import DEFAULT_DEV_KEY
from llm_gateway.providers.registry import provider_specs

FAKE_PROVIDER_KEY = "sandbox-fake-key"
LOCAL_REGION = "us-east-1"
PLACEHOLDER_URL = "http://127.0.0.1:9"
PLACEHOLDER_BUCKET = "llm-gateway-audio-local"


@dataclass(frozen=True)
class LocalPlan:
    fakes: bool  # no provider key in the environment: the sandbox's fakes will serve
    dynamodb: bool  # state in DynamoDB and no table configured: the embedded one will hold it
    s3: bool = False  # uploads wanted and no bucket configured: the embedded S3 will hold them


@dataclass
class LocalEnvironment:
    notes: list[str] = field(default_factory=list)
    stops: list[Callable[[], None]] = field(default_factory=list)
    described: dict[str, Any] = field(default_factory=dict)  # where the stand-ins run, for /_sandbox/stats

    def stop(self) -> None:
        for stop in reversed(self.stops):
            stop()


def has_provider_keys(env: Mapping[str, str]) -> bool:
    keys = [spec.key_env for spec in provider_specs().values() if spec.key_env]
    return any(env.get(k) for k in keys) or bool(env.get("LLM_GATEWAY_OPENAI_COMPATIBLE"))


def plan_local_env(env: Mapping[str, str], state: str = "dynamodb", uploads: bool | None = None) -> LocalPlan:
    """`uploads`: start an embedded S3 when no bucket is configured (default: with DynamoDB state,
    i.e. `make dev`; `llm-gateway invoke` runs with memory state and no S3 unless asked)."""
    uploads = state == "dynamodb" if uploads is None else uploads
    return LocalPlan(fakes=not has_provider_keys(env),
                     dynamodb=state == "dynamodb" and not env.get("LLM_GATEWAY_STATE_TABLE"),
                     s3=uploads and not env.get("LLM_GATEWAY_AUDIO_BUCKET"))


def fake_provider_names(fakes_config: str | None = None) -> list[str]:
    """The providers the fakes will serve: those named in their config (all five by default)."""
    from sandbox.fakes import config as fake_config

    specs = provider_specs()
    return [name for name in fake_config.load_raw(fakes_config)["providers"] if name in specs and specs[name].key_env]


def configured_env(env: Mapping[str, str], plan: LocalPlan, fakes_config: str | None = None) -> dict[str, str]:
    """The environment the gateway will see once the planned stand-ins run (their ports are not
    known yet, so placeholder URLs stand in): what settings are validated against before start."""
    out = {**env, "LLM_GATEWAY_LOCAL": "1"}
    out.setdefault("AWS_DEFAULT_REGION", LOCAL_REGION)
    if plan.fakes:
        for name in fake_provider_names(fakes_config):
            spec = provider_specs()[name]
            out[str(spec.key_env)] = FAKE_PROVIDER_KEY
            out[spec.base_url_env] = PLACEHOLDER_URL
    if plan.s3:
        out["LLM_GATEWAY_AUDIO_BUCKET"] = PLACEHOLDER_BUCKET
        out["LLM_GATEWAY_S3_ENDPOINT"] = PLACEHOLDER_URL
    return out


def prepare_local_env(env: MutableMapping[str, str] | None = None, *, state: str = "dynamodb",
                      processes: bool = False, fakes_config: str | None = None,
                      uploads: bool | None = None) -> LocalEnvironment:
    """Start the stand-ins `env` (default: os.environ) lacks, and fill `env` so that `load_settings()`
    builds a working local gateway. `processes=True` runs each stand-in in its own process."""
    env = os.environ if env is None else env
    plan = plan_local_env(env, state, uploads)
    local = LocalEnvironment()
    env["LLM_GATEWAY_LOCAL"] = "1"
    # Local runs have no AWS region; boto3 needs one even for clients it never calls (the health
    # handler builds a DynamoDB client whatever the state backend).
    env.setdefault("AWS_DEFAULT_REGION", LOCAL_REGION)
    env.setdefault("POWERTOOLS_SERVICE_NAME", "llm-gateway")
    env.setdefault("POWERTOOLS_METRICS_NAMESPACE", "LlmGateway")
    try:
        if plan.fakes:
            _start_fakes(env, local, processes, fakes_config)
        if plan.dynamodb:
            _start_dynamodb(env, local, processes)
        if plan.s3:
            _start_s3(env, local, processes)
    except BaseException:
        local.stop()
        raise
    local.notes.append(f"API key for this gateway: {env.get('LLM_GATEWAY_DEV_KEY') or DEFAULT_DEV_KEY}")
    return local


def _start_fakes(env: MutableMapping[str, str], local: LocalEnvironment, processes: bool, config: str | None) -> None:
    if processes:
        from sandbox.child import ChildProcess

        args = ["fakes", *(["--config", config] if config else [])]
        child = ChildProcess.start("the fake providers", "sandbox.stand_ins", args, env=env)
        local.stops.append(child.stop)
        described: dict[str, Any] = child.announced["providers"]
    else:
        from sandbox.fakes import start_fakes

        fleet = start_fakes(config)
        local.stops.append(fleet.stop)
        described = fleet.describe()
    specs = provider_specs()
    for name, fake in described.items():
        spec = specs.get(name)
        if spec is None or spec.key_env is None:
            continue
        env[spec.key_env] = FAKE_PROVIDER_KEY
        env[spec.base_url_env] = fake["base_url"]
    local.described["fakes"] = described
    where = "in their own process" if processes else "in this process"
    local.notes.append(
        f"No provider keys set: serving from the sandbox's FAKE providers ({where}: "
        + ", ".join(f"{n} at {p['base_url']}" for n, p in described.items())
        + "). Set e.g. GROQ_API_KEY to use real ones."
    )


def _start_dynamodb(env: MutableMapping[str, str], local: LocalEnvironment, processes: bool) -> None:
    for name, value in (("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local"), ("AWS_DEFAULT_REGION", LOCAL_REGION)):
        env.setdefault(name, value)
    if processes:
        from sandbox.child import ChildProcess

        child = ChildProcess.start("the embedded DynamoDB", "sandbox.stand_ins", ["dynamodb"], env=env)
        local.stops.append(child.stop)
        endpoint, table = child.announced["endpoint_url"], child.announced["table_name"]
    else:
        from sandbox.local_dynamodb import start_local_dynamodb

        dynamo = start_local_dynamodb()
        local.stops.append(dynamo.stop)
        endpoint, table = dynamo.endpoint_url, dynamo.table_name
    env["LLM_GATEWAY_STATE_TABLE"] = table
    env["LLM_GATEWAY_DYNAMODB_ENDPOINT"] = endpoint
    local.described["dynamodb"] = {"endpoint_url": endpoint, "table_name": table}
    where = "in its own process" if processes else "in this process"
    local.notes.append(f"State: embedded DynamoDB (moto server, {where}) at {endpoint}, table {table}.")


def _start_s3(env: MutableMapping[str, str], local: LocalEnvironment, processes: bool) -> None:
    for name, value in (("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local"), ("AWS_DEFAULT_REGION", LOCAL_REGION)):
        env.setdefault(name, value)
    if processes:
        from sandbox.child import ChildProcess

        child = ChildProcess.start("the embedded S3", "sandbox.stand_ins", ["s3"], env=env)
        local.stops.append(child.stop)
        endpoint, bucket = child.announced["endpoint_url"], child.announced["bucket"]
    else:
        from sandbox.local_s3 import start_local_s3

        s3 = start_local_s3()
        local.stops.append(s3.stop)
        endpoint, bucket = s3.endpoint_url, s3.bucket
    env["LLM_GATEWAY_AUDIO_BUCKET"] = bucket
    env["LLM_GATEWAY_S3_ENDPOINT"] = endpoint
    local.described["s3"] = {"endpoint_url": endpoint, "bucket": bucket}
    where = "in its own process" if processes else "in this process"
    local.notes.append(f"Uploads: embedded S3 (moto server, {where}) at {endpoint}, bucket {bucket}.")
