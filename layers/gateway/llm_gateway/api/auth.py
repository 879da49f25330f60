"""Who is calling: every capability's handler authenticates the same way.

Constant-time comparison against every client key; no key configured means no access.
"""

from __future__ import annotations

from dataclasses import dataclass

from llm_gateway.api.admin import bearer, matches
from llm_gateway.api.errors import Unauthorized
from llm_gateway.keys import Keys


@dataclass(frozen=True)
class Caller:
    """Who is calling (users and their key ids come with the users issue)."""


def authenticate(keys: Keys, authorization: str | None) -> Caller:
    token = bearer(authorization)
    if token is None:
        raise Unauthorized()
    if matches(token, keys.clients):
        return Caller()
    raise Unauthorized("Invalid API key.")
