"""X-Ray tracing of provider attempts: one subsegment per call, annotated provider, model, outcome.

The runner wraps each provider call (after the breaker let it through) with `AttemptTracer.wrap`.
In Lambda with active tracing the wrapper opens a Powertools Tracer subsegment `## provider/model`
and annotates it (annotations are indexed: filter traces by `annotation.provider = "groq"` or
`annotation.outcome = "failed"`); elsewhere it is the call itself, at no cost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from llm_gateway.providers.base import ProviderError
from llm_gateway.retry.classifier import classify
from llm_gateway.routing.outcomes import attempt_outcome

T = TypeVar("T")


class AttemptTracer(Protocol):
    def wrap(self, provider: str, model: str, call: Callable[[], T]) -> Callable[[], T]: ...


class NoTracing:
    def wrap(self, provider: str, model: str, call: Callable[[], T]) -> Callable[[], T]:
        return call


class SubsegmentTracing:
    """`tracer`: a Powertools `Tracer` (anything with `provider.in_subsegment(name)`)."""

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer

    def wrap(self, provider: str, model: str, call: Callable[[], T]) -> Callable[[], T]:
        def traced() -> T:
            with self.tracer.provider.in_subsegment(f"## {provider}/{model}") as subsegment:
                subsegment.put_annotation("provider", provider)
                subsegment.put_annotation("model", model)
                try:
                    result = call()
                except ProviderError as error:
                    outcome = attempt_outcome(classify(error).error_class, error.request_caused)
                    subsegment.put_annotation("outcome", outcome)
                    subsegment.put_annotation("status", error.status or 0)
                    raise
                except BaseException:
                    subsegment.put_annotation("outcome", "error")
                    raise
                subsegment.put_annotation("outcome", "ok")
                return result

        return traced


def build_tracing(enabled: bool) -> AttemptTracer:
    """Subsegments when tracing is on (in Lambda, `Tracing: Active`), else nothing."""
    if not enabled:
        return NoTracing()
    from aws_lambda_powertools import Tracer

    return SubsegmentTracing(Tracer(auto_patch=False))
