"""Which environment variables configure a gateway: one owner, so every test that starts a
process "as a new user's shell" strips the same ones (a provider whose key variable does not end
in `_API_KEY`, such as `REPLICATE_API_TOKEN`, included)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from llm_gateway.providers.registry import provider_specs

REPO = Path(__file__).resolve().parents[1]
PROVIDER_KEY_ENVS = frozenset(spec.key_env for spec in provider_specs().values() if spec.key_env)


def is_gateway_setting(name: str) -> bool:
    return (name.startswith("LLM_GATEWAY_") or name.endswith(("_API_KEY", "_BASE_URL", "_MODELS"))
            or name in PROVIDER_KEY_ENVS)


def without_gateway_settings(env: Mapping[str, str] | None = None, *, drop_aws: bool = False) -> dict[str, str]:
    source = os.environ if env is None else env
    return {k: v for k, v in source.items() if not is_gateway_setting(k) and not (drop_aws and k.startswith("AWS_"))}


@contextlib.contextmanager
def running_make_dev(log_path: Path, **env: str) -> Iterator[str]:
    """`llm-gateway serve` (what `make dev` runs) as a subprocess on its own fakes and embedded
    DynamoDB, started as a new user's shell would (no gateway settings but `env`); yields its
    base URL once it answers, and stops it after. The log holds what it announced."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        server = subprocess.Popen([sys.executable, "-m", "sandbox.cli", "serve", "--port", str(port)], cwd=REPO,
                                  env={**without_gateway_settings(), **env}, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 90  # a loaded machine starts the stand-ins slowly
            while True:
                try:
                    httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer local-dev-key"}, timeout=5)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and server.poll() is None, log_path.read_text()
                    time.sleep(0.2)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=15)
