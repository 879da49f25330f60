"""A gateway key's policy: what its user may use, and how much of it. Pure.

Every field is optional; a key without a limit is never refused for it (a key with no budget
never gets `budget_exceeded`). Limits are counted per user (all keys of one user share the
counters; each request is checked against its own key's numbers). When `per_end_user` is set,
for apps that put many users behind one key, the rate windows are counted per end user (the
request's `user` field) and the budgets still per user: the end user is the request's free text.

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
from dataclasses import asdict, dataclass, fields
from typing import Any

from llm_gateway.selection.catalog import ModelEntry


@dataclass(frozen=True, slots=True)
class Policy:
    """What one key's user may use, and how much of it (see the module docstring)."""

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

    @property
    def restricts(self) -> bool:
        """Whether `allows` can say no to any model (so a caller may skip asking it per model):
        kept beside `allows`, which it must follow."""
        return self.free_only or bool(self.models)

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
