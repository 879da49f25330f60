"""The admin API's logic (`/v1/admin/keys`), shared by the chat Lambda and `llm-gateway keys`.

POST creates a key for a user with a policy and returns the key once; GET lists keys (never the
key, never its hash); PATCH changes a policy or name; DELETE revokes (the record stays, listed as
revoked, so usage and reports still name its user). Bad input is a 400 naming the field, an
unknown id a 404. A `models` rule that matches no model of the catalog (chat or transcription)
is bad input: stored, it would have the key refused (403) on every request.
"""

from __future__ import annotations

import builtins
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from llm_gateway.api.errors import GatewayError, InvalidRequest, NotFound
from llm_gateway.tenancy.keys import KeyDirectory, KeyRecord, KeyStore, issue, revise
from llm_gateway.tenancy.policy import Policy

if TYPE_CHECKING:
    from llm_gateway.selection.catalog import Catalog

USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+\-]{0,127}")  # whole value (fullmatch): `$` let "x\n" pass
KEY_ID = re.compile(r"key_[0-9a-f]{16}")
RESERVED_USERS = frozenset({"static", "*"})
MAX_REVISIONS = 5  # reads and writes of one admin change racing others before it gives up (409)


def _text(body: Mapping[str, Any], name: str, *, required: bool = False, pattern: re.Pattern[str] | None = None,
          max_len: int = 200) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidRequest(f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
        return None
    if not isinstance(value, str) or len(value) > max_len or (pattern is not None and not pattern.fullmatch(value)):
        hint = " (letters, digits and . _ @ + -, up to 128)" if pattern is USER_ID else ""
        raise InvalidRequest(f"Invalid value for '{name}'{hint}.", param=name, code="invalid_value")
    return value


def _builtin_catalog() -> Catalog:
    from llm_gateway.selection.catalog import default_catalog

    return default_catalog()


class KeyAdmin:
    """`catalog` gives the catalog `models` rules are checked against: the gateway passes the one
    it routes on (with the operator's overrides); without it, the built-in catalog."""

    def __init__(self, store: KeyStore, directory: KeyDirectory | None = None,
                 clock: Callable[[], float] = time.time, *,
                 catalog: Callable[[], Catalog] = _builtin_catalog) -> None:
        self.store = store
        self.directory = directory
        self._clock = clock
        self._catalog = catalog

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        user = _text(body, "user", required=True, pattern=USER_ID)
        assert user is not None
        if user in RESERVED_USERS:
            raise InvalidRequest(f"'{user}' is reserved: choose another user id.", param="user", code="invalid_value")
        name = _text(body, "name") or ""
        # Here, not with the module: chat containers build a KeyAdmin but seldom call it, and
        # need not build the policy input model at their cold start (see policy_input.py).
        from llm_gateway.tenancy.policy_input import parse_policy

        policy = parse_policy({k: v for k, v in body.items() if k not in {"user", "name"}})
        self._check_models(body.get("models"))
        key, record = issue(self.store, user, policy, name, self._clock())
        return {**record.public(), "key": key}

    def _check_models(self, rules: builtins.list[str] | None) -> None:
        """Each allow-list rule (validated as text by `parse_policy`) lets at least one catalog
        model through, as `Policy.allows` reads it."""
        if not rules:
            return
        entries = self._catalog().entries
        unmatched = [(i, rule) for i, rule in enumerate(rules)
                     if not any(Policy(models=(rule,)).allows(entry) for entry in entries)]
        if unmatched:
            named = ", ".join(repr(rule) for _, rule in unmatched[:5])
            raise InvalidRequest(
                f"Invalid value for 'models': matches no model in the catalog: {named}. A rule is provider/model, "
                "a model id or provider/* of a chat or transcription model the gateway's catalog holds; a key "
                "allowed nothing else would be refused on every request.",
                param=f"models[{unmatched[0][0]}]", code="invalid_value")

    def list(self, user: str | None = None) -> dict[str, Any]:
        records = [r for r in self.store.list() if user is None or r.user == user]
        return {"object": "list", "data": [r.public() for r in records]}

    def get(self, key_id: str) -> KeyRecord:
        record = self.store.find(key_id) if KEY_ID.fullmatch(key_id) else None
        if record is None:
            raise NotFound(f"No key with id '{key_id[:40]}'.", param="id", code="key_not_found")
        return record

    def update(self, key_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        record = self.get(key_id)
        name = _text(body, "name")
        if "user" in body:
            raise InvalidRequest("A key's user cannot change: create a key for the other user.", param="user",
                                 code="invalid_value")
        from llm_gateway.tenancy.policy_input import parse_policy  # see create

        fields = {k: v for k, v in body.items() if k != "name"}
        parse_policy(fields, record.policy)  # the body's mistakes are a 400 before anything is written
        self._check_models(body.get("models"))  # only rules this request sets: a stored one may predate a catalog change
        return self._revised(record, lambda now: revise(
            self.store, now, self._clock(), policy=parse_policy(fields, now.policy), name=name)).public()

    def revoke(self, key_id: str) -> dict[str, Any]:
        return self._revised(self.get(key_id), lambda now: revise(self.store, now, self._clock(), revoke=True)).public()

    def _revised(self, record: KeyRecord, change: Callable[[KeyRecord], KeyRecord | None]) -> KeyRecord:
        """`change` made to the key as stored: made again to the key read anew when another change
        landed between its read and its write (an update made from the record before a revocation
        would otherwise un-revoke the key, and of two updates one would lose the other's fields)."""
        for _ in range(MAX_REVISIONS):
            changed = change(record)
            if changed is not None:
                self._forget(changed)
                return changed
            record = self.get(record.id)
        raise GatewayError("The key kept changing while this change was made; try again.", code="key_changed",
                           status=409, error_type="invalid_request_error")

    def users(self) -> builtins.list[str]:
        """Every user that holds or held a key (for usage across users and the daily report)."""
        return sorted({r.user for r in self.store.list()})

    def _forget(self, record: KeyRecord) -> None:
        if self.directory is not None:
            self.directory.forget(record.digest)
