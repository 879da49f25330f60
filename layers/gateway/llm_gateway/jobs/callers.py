"""Who a job runs as: its creator, as the creator's key stands when the job runs.

A job records the user and key id that submitted it (never the key). When it runs, minutes
later and in another invocation, the key's record is read again from the key store (by id,
strongly consistent on DynamoDB, no cache), so a key revoked, or a policy or budget changed,
since the submit applies to the run: the transcription is then held to the creator's limits,
budgets and model allow-list, and recorded in the creator's usage ledger, exactly as a
synchronous request with that key would be. A key that is gone or revoked (or now names
another user) fails the job with a 401 `invalid_api_key` error; a key store that cannot be read
fails it with a 503 `key_store_unavailable` (submit again). The static user (static keys, and
jobs recorded before creators were) runs as `Caller()`: no record, no limits, as its requests do.
"""

from __future__ import annotations

from typing import Protocol

from llm_gateway.api.auth import STATIC_USER, Caller
from llm_gateway.api.errors import GatewayError
from llm_gateway.state.aws_client import is_aws_failure
from llm_gateway.tenancy.keys import KeyStore


class CallerResolver(Protocol):
    def resolve(self, user: str, key_id: str) -> Caller:
        """The caller a job created by `user` with `key_id` runs as; a `GatewayError` when none may."""
        ...


def key_revoked(key_id: str) -> GatewayError:
    return GatewayError(
        f"The key that submitted this job ({key_id}) was revoked or deleted before the job ran, so the job was "
        "not run. Submit it again with a valid key.", code="invalid_api_key", status=401,
        error_type="invalid_request_error")


def key_store_unavailable() -> GatewayError:
    return GatewayError("The job's key could not be checked when it was due to run (the key store was "
                        "unreachable); submit it again.", code="key_store_unavailable", status=503)


class KeyCallers:
    """`CallerResolver` over the issued keys' store (`tenancy.keys.KeyStore.find`)."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    def resolve(self, user: str, key_id: str) -> Caller:
        if user == STATIC_USER:
            return Caller()
        try:
            record = self.keys.find(key_id)
        except Exception as exc:
            if not is_aws_failure(exc):  # a bug is a bug, not an unreachable key store
                raise
            raise key_store_unavailable() from exc
        if record is None or record.revoked or record.user != user:
            raise key_revoked(key_id)
        return Caller(user=record.user, key_id=record.id, policy=record.policy, admin=record.policy.admin)
