"""A fakes config's numbers are read as workload numbers are (`simulate.inputs.number`): a NaN,
an infinite or a negative latency, or a seed that is no whole number, is a FakesConfigError
naming the field before any fake starts (a bare float() took NaN, inf and -5, and an infinite
latency then failed every request to that fake)."""

from __future__ import annotations

import pytest

from sandbox.fakes.config import FakesConfigError, provider_configs


@pytest.mark.parametrize(("conf", "named"), [
    ({"providers": {"groq": {"latency_ms": float("nan")}}}, "providers.groq.latency_ms"),
    ({"providers": {"groq": {"latency_ms": float("inf")}}}, "providers.groq.latency_ms"),
    ({"providers": {"groq": {"chunk_delay_ms": -5}}}, "providers.groq.chunk_delay_ms"),
    ({"providers": {"groq": {"seed": "x"}}}, "providers.groq.seed"),
    ({"seed": 1.5}, "seed"),
])
def test_a_number_that_cannot_work_is_refused_naming_it(conf: dict, named: str) -> None:
    with pytest.raises(FakesConfigError, match=named.replace(".", r"\.")):
        provider_configs(conf)


def test_ordinary_numbers_are_taken() -> None:
    configs = provider_configs({"seed": 7, "providers": {"groq": {"latency_ms": 250, "chunk_delay_ms": 0}}})
    assert configs["groq"].latency_ms == 250.0 and configs["groq"].seed == 7
