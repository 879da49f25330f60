"""Tracing: a subsegment per provider attempt, annotated with provider, model and outcome."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from llm_gateway.api.errors import GatewayError
from llm_gateway.config import load_settings
from llm_gateway.routing.tracing import NoTracing, SubsegmentTracing, build_tracing
from tests.unit.routing.harness import chat, rig, status


class Subsegment:
    def __init__(self, name: str) -> None:
        self.name = name
        self.annotations: dict[str, Any] = {}

    def put_annotation(self, key: str, value: Any) -> None:
        self.annotations[key] = value


class Provider:
    def __init__(self) -> None:
        self.subsegments: list[Subsegment] = []

    @contextlib.contextmanager
    def in_subsegment(self, name: str) -> Iterator[Subsegment]:
        subsegment = Subsegment(name)
        self.subsegments.append(subsegment)
        yield subsegment


class Tracer:
    def __init__(self) -> None:
        self.provider = Provider()


def test_each_attempt_is_a_subsegment_with_provider_model_and_outcome() -> None:
    tracer = Tracer()
    r = rig()
    r.core.runner.tracing = SubsegmentTracing(tracer)
    r.fleet.then("groq", status(500))
    r.router.complete(chat())
    assert [(s.name, s.annotations["provider"], s.annotations["outcome"]) for s in tracer.provider.subsegments] == [
        ("## groq/llama-3.1-8b-instant", "groq", "failed"), ("## openai/gpt-4o-mini", "openai", "ok")]
    assert tracer.provider.subsegments[0].annotations["status"] == 500
    for provider in ("groq", "openai", "mistral"):
        r.fleet.set(provider, status(429))
    with contextlib.suppress(GatewayError):
        r.router.complete(chat())
    assert {s.annotations["outcome"] for s in tracer.provider.subsegments[2:]} == {"limited"}


def test_tracing_is_on_in_lambda_only_and_powertools_can_turn_it_off() -> None:
    assert not load_settings({}).tracing
    assert load_settings({"AWS_LAMBDA_FUNCTION_NAME": "chat"}).tracing
    assert not load_settings({"AWS_LAMBDA_FUNCTION_NAME": "chat", "POWERTOOLS_TRACE_DISABLED": "true"}).tracing
    assert isinstance(build_tracing(False), NoTracing)
    assert isinstance(build_tracing(True), SubsegmentTracing)
