"""`llm-gateway usage`: a user's usage (`GET /v1/usage`) as a table (see `sandbox/users_cli.py`)."""

from __future__ import annotations

from sandbox.users_cli import usage_main as main

__all__ = ["main"]
