"""A gateway key's policy: what its user may use, and how much of it. Pure.

Every field is optional; a key without a limit is never refused for it (a key with no budget
never gets `budget_exceeded`). Limits are counted per user (all keys of one user share the
counters; each request is checked against its own key's numbers), or per end user (the
request's `user` field) when `per_end_user` is set, for apps that put many users behind one key.

| field | meaning | window |
|---|---|---|
| `rpm`, `tpm` | requests, tokens (prompt + expected output) | a minute, sliding |
| `rpd`, `audio_seconds_per_day` | requests, billed audio seconds | the UTC day |
| `daily_budget_usd`, `monthly_budget_usd` | USD of paid calls | the UTC day, the UTC month |
| `free_only` | free tiers only | |
| `models` | allow-list: `provider/model`, a bare model id, or `provider/*` (empty: all) | |
| `admin` | may use the admin API (`/v1/admin/*`, any user's usage, `/v1/status`) | |
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llm_gateway.api.errors import InvalidRequest, from_validation_error
from llm_gateway.selection.catalog import ModelEntry

MAX_LIMIT = 10**12
MAX_BUDGET_USD = 1_000_000.0
MAX_MODELS = 200
_MODEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+\-]*(/([A-Za-z0-9._:@+\-/]+|\*))?$")


@dataclass(frozen=True, slots=True)
class Policy:
    rpm: int | None = None
    rpd: int | None = None
    tpm: int | None = None
    audio_seconds_per_day: int | None = None
    daily_budget_usd: float | None = None
    monthly_budget_usd: float | None = None
    free_only: bool = False
    models: tuple[str, ...] = ()
    admin: bool = False
    per_end_user: bool = False

    def allows(self, entry: ModelEntry) -> bool:
        """Whether this key may use the model (allow-list and `free_only`)."""
        if self.free_only and not entry.is_free:
            return False
        if not self.models:
            return True
        full = f"{entry.provider}/{entry.model}"
        return any(rule in (full, entry.model, f"{entry.provider}/*") for rule in self.models)

    def public(self) -> dict[str, Any]:
        """The policy as the admin API and `/v1/usage` show it."""
        out = asdict(self)
        out["models"] = list(self.models)
        return out

    def encode(self) -> str:
        return json.dumps(self.public(), sort_keys=True)

    @classmethod
    def decode(cls, text: str) -> Policy:
        """From the stored JSON; unknown fields (a newer version's) are ignored."""
        raw = json.loads(text) if text else {}
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        if "models" in values:
            values["models"] = tuple(values["models"] or ())
        return cls(**values)


class PolicyInput(BaseModel):
    """A policy as sent to the admin API: every field optional, unknown fields refused, `null`
    clears a limit (in a PATCH, fields not sent are left as they are)."""

    model_config = ConfigDict(extra="forbid")

    rpm: int | None = Field(default=None, ge=0, le=MAX_LIMIT)
    rpd: int | None = Field(default=None, ge=0, le=MAX_LIMIT)
    tpm: int | None = Field(default=None, ge=0, le=MAX_LIMIT)
    audio_seconds_per_day: int | None = Field(default=None, ge=0, le=MAX_LIMIT)
    daily_budget_usd: float | None = Field(default=None, ge=0, le=MAX_BUDGET_USD, allow_inf_nan=False)
    monthly_budget_usd: float | None = Field(default=None, ge=0, le=MAX_BUDGET_USD, allow_inf_nan=False)
    free_only: bool | None = None
    models: list[str] | None = Field(default=None, max_length=MAX_MODELS)
    admin: bool | None = None
    per_end_user: bool | None = None

    @field_validator("models")
    @classmethod
    def _model_rules(cls, value: list[str] | None) -> list[str] | None:
        for rule in value or []:
            if len(rule) > 200 or not _MODEL_PATTERN.match(rule):
                raise ValueError(f"{rule[:50]!r} is not a model rule (use provider/model, a model id or provider/*)")
        return value

    def onto(self, base: Policy) -> Policy:
        """`base` with the fields this input set (a PATCH); `null` clears a limit."""
        changes: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if name == "models":
                value = tuple(dict.fromkeys(value or ()))
            elif name in {"free_only", "admin", "per_end_user"}:
                value = bool(value)
            changes[name] = value
        return replace(base, **changes)


def parse_policy(body: Mapping[str, Any], base: Policy | None = None) -> Policy:
    """A policy from an admin request body (a 400 naming the field when it is wrong)."""
    try:
        return PolicyInput.model_validate(dict(body)).onto(base or Policy())
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"Invalid policy: {exc}", code="invalid_policy") from None
