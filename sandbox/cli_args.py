"""Argument types shared by the commands that talk to a running gateway (`keys`, `usage`,
`status`, `loadgen`, `rollout`): checked by argparse, so a mistake is its one-line error (exit 2)
before anything is sent, never an exception from the HTTP client."""

from __future__ import annotations

import argparse
import math
import os

import httpx


def gateway_url(text: str) -> str:
    """An http(s) URL with a host. httpx.InvalidURL (`http://[::1`) is no httpx.HTTPError, so the
    commands' "could not reach" handling let it through as a traceback."""
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise argparse.ArgumentTypeError(f"not a URL ({exc}): {text!r}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL, got {text!r}")
    return text


def finite_number(text: str) -> float:
    """A finite number: `float` takes nan and inf, which no JSON body can carry."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def connection_args(parser: argparse.ArgumentParser, *, table: bool = False) -> None:
    """`--url`, `--key` (an admin key) and `--json`, defaulting to `LLM_GATEWAY_URL` and
    `LLM_GATEWAY_ADMIN_KEY` (else the local `make dev`); with `table`, `--table` and
    `--endpoint-url` to work on a state table directly."""
    parser.add_argument("--url", default=os.environ.get("LLM_GATEWAY_URL", "http://127.0.0.1:3000"), type=gateway_url,
                        help="gateway base URL, without /v1 (default: $LLM_GATEWAY_URL, else the local one)")
    parser.add_argument("--key", default=os.environ.get("LLM_GATEWAY_ADMIN_KEY", "local-dev-key"),
                        help="an admin key (a client key gets 403; default: $LLM_GATEWAY_ADMIN_KEY, else the local "
                             "dev key)")
    parser.add_argument("--json", action="store_true", help="print the raw JSON")
    if table:
        parser.add_argument("--table", help="work on this DynamoDB state table directly (AWS credentials)")
        parser.add_argument("--endpoint-url", help="DynamoDB endpoint (the embedded one of `make dev`)")
