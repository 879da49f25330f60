"""A policy as the admin API takes it (`tenancy/admin.py`): validated with pydantic, then laid
onto a `Policy` (`tenancy/policy.py`).

Apart from the policy itself because only admin calls need it: the admin API's code imports this
module on its first create or update, so a chat container never builds the input model (about
7 M instructions of a cold start, valgrind). No `from __future__ import annotations`, for the
reason `api/schemas.py` gives.
"""

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
)

from llm_gateway.api.errors import InvalidRequest, from_validation_error
from llm_gateway.tenancy.policy import Policy

MAX_LIMIT = 10**12
MAX_BUDGET_USD = 1_000_000.0
MAX_MODELS = 200
_MODEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+\-]*(/([A-Za-z0-9._:@+\-/]+|\*))?$")


class PolicyInput(BaseModel):
    """A policy as sent to the admin API: every field optional, unknown fields refused, `null`
    clears a limit (in a PATCH, fields not sent are left as they are). Typed as JSON types
    (`api/schemas.py`): `"admin": "yes"` or `"rpm": true` is a 400, not an admin key or rpm 1."""

    model_config = ConfigDict(extra="forbid")

    rpm: StrictInt | None = Field(default=None, ge=0, le=MAX_LIMIT)
    rpd: StrictInt | None = Field(default=None, ge=0, le=MAX_LIMIT)
    tpm: StrictInt | None = Field(default=None, ge=0, le=MAX_LIMIT)
    audio_seconds_per_day: StrictInt | None = Field(default=None, ge=0, le=MAX_LIMIT)
    daily_budget_usd: StrictFloat | None = Field(default=None, ge=0, le=MAX_BUDGET_USD, allow_inf_nan=False)
    monthly_budget_usd: StrictFloat | None = Field(default=None, ge=0, le=MAX_BUDGET_USD, allow_inf_nan=False)
    free_only: StrictBool | None = None
    models: list[str] | None = Field(default=None, max_length=MAX_MODELS)
    admin: StrictBool | None = None
    per_end_user: StrictBool | None = None

    @field_validator("models")
    @classmethod
    def _model_rules(cls, value: list[str] | None) -> list[str] | None:
        for rule in value or []:
            if len(rule) > 200 or not _MODEL_PATTERN.fullmatch(rule):
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
