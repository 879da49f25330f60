"""EmfMetrics writes, for every data point, the EMF line Powertools' `single_metric` writes."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from llm_gateway.observability.metrics import NAMESPACE, EmfMetrics


def _print_powertools_line(name: str, unit: str, value: float, dimensions: dict[str, str]) -> None:
    """What the gateway wrote before: one `single_metric` per data point (its own code path)."""
    with single_metric(name=name, unit=MetricUnit(unit), value=value, namespace=NAMESPACE,
                       default_dimensions={"service": "llm-gateway"}) as metric:
        for key, dim_value in dimensions.items():
            metric.add_dimension(name=key, value=str(dim_value))


@pytest.mark.parametrize(
    ("call", "name", "unit", "value", "dimensions"),
    [
        ("count", "Requests", "Count", 1.0, {}),
        ("count", "CostUSD", "Count", 5.1e-06, {"provider": "openai"}),
        ("timing", "ProviderLatencyMs", "Milliseconds", 12.5, {"provider": "groq"}),
        ("count", "ProviderErrors", "Count", 1, {"error_class": "rate_limited", "provider": "groq", "model": "m"}),
        ("count", "StateDegraded", "Count", 2, {"operation": "load"}),
        ("count", "Failovers", "Count", 1, {"provider": 'a"b\\c/ü', "to_provider": "日本"}),
        ("timing", "SelectionLatencyMs", "Milliseconds", 1e16, {}),
        ("count", "CostUSD", "Count", float("nan"), {"provider": "x"}),
    ],
)
def test_same_line_as_powertools(capsys: pytest.CaptureFixture[str], call: str, name: str, unit: str,
                                 value: float, dimensions: dict[str, str]) -> None:
    _print_powertools_line(name, unit, value, dimensions)
    theirs = capsys.readouterr().out
    getattr(EmfMetrics(), call)(name, value, **dimensions)
    ours = capsys.readouterr().out
    assert ours.count("\n") == theirs.count("\n") == 1
    mine, reference = json.loads(ours), json.loads(theirs)
    assert abs(mine["_aws"].pop("Timestamp") - reference["_aws"].pop("Timestamp")) < 60_000
    assert json.dumps(mine) == json.dumps(reference)  # NaN-safe equality
    assert list(mine) == list(reference)  # key order too
    timestamp = str(json.loads(theirs)["_aws"]["Timestamp"])
    assert ours.replace(str(json.loads(ours)["_aws"]["Timestamp"]), timestamp, 1) == theirs  # the very same text


def test_a_line_composed_again_from_what_was_kept_is_still_powertools_line(capsys: pytest.CaptureFixture[str]) -> None:
    """The constant text is kept per (metric, unit, dimensions): the second, third... line of a
    series reads it back, and another dimension value or value gets its own."""
    metrics = EmfMetrics()
    for value, provider in ((1.0, "openai"), (2.5, "openai"), (1.0, "groq"), (3.0, "openai")):
        _print_powertools_line("CostUSD", "Count", value, {"provider": provider})
        theirs = capsys.readouterr().out
        metrics.count("CostUSD", value, provider=provider)
        ours = capsys.readouterr().out
        timestamp = str(json.loads(theirs)["_aws"]["Timestamp"])
        assert ours.replace(str(json.loads(ours)["_aws"]["Timestamp"]), timestamp, 1) == theirs
    assert len(metrics._lines) == 2


def test_values_that_compare_equal_but_print_differently_are_not_confused(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = EmfMetrics()
    for value in (1, True, 1.0, "1"):
        metrics.count("StateDegraded", 1.0, operation=value)  # type: ignore[arg-type]
    assert [json.loads(line)["operation"] for line in capsys.readouterr().out.splitlines()] == ["1", "True", "1.0", "1"]


@pytest.mark.parametrize("call", ["count", "timing"])
def test_every_line_of_a_kept_series_is_powertools_line(capsys: pytest.CaptureFixture[str], call: str) -> None:
    """`count` and `timing` write a kept series' lines themselves: each is still Powertools' line,
    whatever the value (int, float, non-finite: those are composed afresh) and dimensions."""
    unit = "Count" if call == "count" else "Milliseconds"
    metrics = EmfMetrics()
    series = [(1, {}), (2.5, {}), (12.345678, {"provider": "openai"}), (0.0, {"provider": "openai"}),
              (float("inf"), {"provider": "openai"}), (3, {"provider": "openai", "model": "m"}),
              (7.25, {"provider": "openai", "model": "m"}), (float("nan"), {}), (1e-7, {})]
    for value, dimensions in series * 2:
        _print_powertools_line("ProviderLatencyMs", unit, value, dimensions)
        theirs = capsys.readouterr().out
        getattr(metrics, call)("ProviderLatencyMs", value, **dimensions)
        ours = capsys.readouterr().out
        if value != value or value in (float("inf"),):  # Powertools refuses non-finite values its own way
            continue
        timestamp = str(json.loads(theirs)["_aws"]["Timestamp"])
        assert ours.replace(str(json.loads(ours)["_aws"]["Timestamp"]), timestamp, 1) == theirs
    assert len(metrics._lines) == 3
