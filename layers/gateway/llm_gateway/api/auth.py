"""Who is calling: every capability's handler authenticates the same way.

Static keys (`LLM_GATEWAY_API_KEYS`, the client-key secret) are compared in constant time and
belong to the user `static` with no limits: they are the bootstrap keys. Keys the gateway issued
(`sk-gw-…`, `tenancy/keys.py`) are looked up by their SHA-256 (cached a few seconds per
container) and carry their user and policy. No key configured means no access.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llm_gateway.api.admin import bearer, matches
from llm_gateway.api.errors import GatewayError, Unauthorized
from llm_gateway.keys import Keys
from llm_gateway.tenancy.keys import KeyDirectory, KeyUnavailable, looks_issued
from llm_gateway.tenancy.policy import Policy

STATIC_USER = "static"


@dataclass(frozen=True)
class Caller:
    """Who is calling: a user, the id of the key used (never the key), its policy, and whether
    it may use the admin API."""

    user: str = STATIC_USER
    key_id: str = STATIC_USER
    policy: Policy = field(default_factory=Policy)
    admin: bool = False


def authenticate(keys: Keys, authorization: str | None, directory: KeyDirectory | None = None, *,
                 admins_too: bool = False) -> Caller:
    """The caller a bearer key stands for (401 otherwise). Static admin keys are not client keys;
    `admins_too` lets them in as callers of routes that serve both (`/v1/usage`)."""
    token = bearer(authorization)
    if token is None:
        raise Unauthorized()
    if matches(token, keys.clients) or (admins_too and matches(token, keys.admins)):
        return Caller(admin=matches(token, keys.admins))
    if directory is not None and looks_issued(token):
        try:
            record = directory.lookup(token)
        except KeyUnavailable:
            raise GatewayError("Keys cannot be checked right now; retry shortly.", code="key_store_unavailable",
                               status=503, headers={"Retry-After": "5"}) from None
        if record is not None:
            return Caller(user=record.user, key_id=record.id, policy=record.policy, admin=record.policy.admin)
    raise Unauthorized("Invalid API key.")
