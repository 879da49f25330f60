"""Who may read operator-only routes (`GET /v1/status`): admin keys, never client keys.

The status answer lists every provider's breakers, cooldowns and remaining capacity: useful to
an operator, and a map of when the gateway is weakest to anyone else. Admin keys come from
`LLM_GATEWAY_ADMIN_KEYS` (in local mode the dev key is one), or are issued keys whose policy
says `admin`. A valid client key gets a 403 (it
is known, just not allowed here); anything else a 401. Every key is compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from llm_gateway.api.errors import PermissionDenied, Unauthorized
from llm_gateway.keys import Keys
from llm_gateway.tenancy.keys import KeyDirectory, looks_issued


def bearer(authorization: str | None) -> str | None:
    """The bearer token, or None. A token that is not text (a lone surrogate, which only an event
    written by hand carries) is none: every key is compared and hashed as its UTF-8 bytes."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token and _is_text(token) else None


def _is_text(token: str) -> bool:
    try:
        token.encode()
    except UnicodeEncodeError:
        return False
    return True


def matches(token: str, keys: Iterable[str]) -> bool:
    found = False
    for key in keys:  # no early exit: the time taken says nothing about which key matched
        found |= hmac.compare_digest(token.encode(), key.encode())
    return found


def require_admin(keys: Keys, authorization: str | None, directory: KeyDirectory | None = None) -> None:
    """Return when the request carries an admin key (a static one, or an issued key whose policy
    says `admin`); raise the OpenAI-style 401/403 otherwise."""
    token = bearer(authorization)
    if token is None:
        raise Unauthorized()
    if matches(token, keys.admins):
        return
    if directory is not None and looks_issued(token):
        from llm_gateway.api.auth import authenticate

        if authenticate(keys, authorization, directory).admin:
            return
        raise PermissionDenied("This endpoint is for operators: it needs a key whose policy says admin.",
                               code="admin_key_required")
    if matches(token, keys.clients):
        raise PermissionDenied("This endpoint is for operators: it needs an admin key (LLM_GATEWAY_ADMIN_KEYS).",
                               code="admin_key_required")
    raise Unauthorized("Invalid API key.")
