"""The answer to a request the provider refused as the caller's own mistake.

A caller who sent something a provider rejects needs the provider's reason to fix it, and
nothing else: the same request would fail on any other model, so it is returned at once (as a
400, whatever 4xx the provider used) and touches no shared state. The reason is the provider's
text about the caller's own request; it is shortened so a provider echoing a huge request
cannot inflate the answer (keys are removed from every error body by the handler).
"""

from __future__ import annotations

from llm_gateway.api.errors import InvalidRequest
from llm_gateway.providers.base import ProviderError
from llm_gateway.retry.classifier import ErrorClass

MAX_REASON_CHARS = 1000


def provider_reason(error: ProviderError) -> str | None:
    """The provider's message, on one line and at most `MAX_REASON_CHARS` long (None if it sent none)."""
    text = " ".join((error.provider_message or "").split())
    if not text:
        return None
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def caller_error(error: ProviderError, error_class: ErrorClass) -> InvalidRequest:
    """A 400 in OpenAI's shape that says which provider refused the request and why."""
    reason = provider_reason(error)
    message = f"The provider rejected the request ({error_class})" + (f": {reason}" if reason else ".")
    return InvalidRequest(message, code=error.code or "invalid_request")
