"""Argument types shared by the commands that talk to a running gateway (`keys`, `usage`,
`status`, `loadgen`, `rollout`): checked by argparse, so a mistake is its one-line error (exit 2)
before anything is sent, never an exception from the HTTP client."""

from __future__ import annotations

import argparse
import math

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
