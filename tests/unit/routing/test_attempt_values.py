"""The records of attempts are immutable values, read by field (they were frozen dataclasses; they
are NamedTuples, made in a fraction of the instructions, with nothing a reader relies on changed)."""

from __future__ import annotations

import pytest

from llm_gateway.retry.handler import AttemptContext, Deadline
from llm_gateway.routing.run import AttemptRecord


def test_an_attempt_record_is_an_immutable_value_with_its_public_view():
    ok = AttemptRecord("openai", "gpt-4o-mini", latency_ms=12.5)
    failed = AttemptRecord("groq", "llama", "rate_limited", 429, 3.0, 1.23456)
    assert (ok.provider, ok.model, ok.error_class, ok.status, ok.latency_ms, ok.retry_after_s) == (
        "openai", "gpt-4o-mini", None, None, 12.5, None)
    assert ok.public() == {"provider": "openai", "model": "gpt-4o-mini", "error_class": None, "status": None}
    assert failed.public() == {"provider": "groq", "model": "llama", "error_class": "rate_limited", "status": 429,
                               "retry_after_s": 1.235}
    for name in ("provider", "error_class", "latency_ms"):
        with pytest.raises(AttributeError):
            setattr(ok, name, None)
    with pytest.raises(AttributeError):
        ok.other = 1  # type: ignore[attr-defined]
    assert ok == AttemptRecord(provider="openai", model="gpt-4o-mini", latency_ms=12.5) and hash(ok) == hash(
        AttemptRecord("openai", "gpt-4o-mini", None, None, 12.5, None))
    assert repr(failed) == ("AttemptRecord(provider='groq', model='llama', error_class='rate_limited', status=429, "
                            "latency_ms=3.0, retry_after_s=1.23456)")


def test_an_attempt_context_is_immutable():
    deadline = Deadline(5.0, lambda: 100.0)
    context = AttemptContext(2, 1.5, deadline)
    assert (context.number, context.timeout_s, context.deadline) == (2, 1.5, deadline)
    with pytest.raises(AttributeError):
        context.timeout_s = 3.0  # type: ignore[misc]
    assert context == AttemptContext(number=2, timeout_s=1.5, deadline=deadline)
