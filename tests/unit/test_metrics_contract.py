"""The metric contract between the code and template.yaml, checked in both directions.

What the code emits is not read from source text but recorded: representative requests run
through a real `Gateway` (the composition root on `httpx.MockTransport` fakes and a fake clock,
see tests/unit/routing/harness.py) with `RecordingMetrics`, covering success, failover, a 429,
a near miss, a paid answer, a total failure, an opening breaker, a capacity wait, a live stream and a state
store outage. Then:

- every metric template.yaml's alarms and dashboard read is emitted, with the dimensions they
  rely on (an exact dimension set for a plain metric reference, since CloudWatch matches those
  exactly; every GROUP BY / WHERE dimension for Metrics Insights);
- every metric the code emits is read by a panel or an alarm, or is in
  `observability.metrics.NOT_ON_DASHBOARD` with its reason;
- every name `observability/metrics.py` defines is really emitted by that traffic;
- EmfMetrics' output parses as CloudWatch EMF carrying exactly those names and dimensions.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import EndpointConnectionError

from llm_gateway.api.errors import GatewayError
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.gateway import Caller, Gateway
from llm_gateway.observability import metrics as m
from llm_gateway.observability.metrics import EmfMetrics, Recorded, RecordingMetrics
from llm_gateway.routing.circuit_breaker import reset_local_counters
from llm_gateway.tenancy.policy import Policy
from tests.unit.routing.harness import Rig, answer, chat, pinned, rig, status
from tests.unit.test_buffered_stream_cap import _sse

cfn_yaml = pytest.importorskip("cfnlint.decode.cfn_yaml")

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"
NAMESPACE = m.NAMESPACE
SERVICE = ("service", m.SERVICE)  # EmfMetrics' default dimension, on every data point
DEFINED = frozenset(
    value for name, value in vars(m).items()
    if name.isupper() and isinstance(value, str) and name not in {"NAMESPACE", "SERVICE"}
)


# --- what the template reads ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Reference:
    """One place the template reads a metric of our namespace."""

    metric: str
    where: str
    exact_dims: frozenset[tuple[str, str]] | None = None  # a plain metric reference: this exact set
    needs_dims: frozenset[str] = frozenset()  # Metrics Insights GROUP BY / WHERE: must be emitted


_INSIGHTS = re.compile(
    r'SELECT\s+\w+\(\s*(?P<metric>\w+)\s*\)\s+FROM\s+(?:"(?P<ns>[^"]+)"|SCHEMA\(\s*"(?P<schema_ns>[^"]+)"'
    r'(?P<schema_dims>(?:\s*,\s*\w+)*)\s*\))(?P<rest>.*)', re.I | re.S)
_CLAUSE_END = r"(?=\s+(?:WHERE|GROUP\s+BY|ORDER\s+BY|LIMIT)\b|$)"
_SEARCH = re.compile(r"SEARCH\(\s*'(?P<query>[^']*)'")


def _insights(expression: str, where: str) -> list[Reference]:
    found = _INSIGHTS.search(expression)
    if not found or NAMESPACE not in (found["ns"], found["schema_ns"]):
        return []
    rest = found["rest"]
    dims: set[str] = {d.strip() for d in (found["schema_dims"] or "").split(",") if d.strip()}
    if group := re.search(rf"GROUP\s+BY\s+(.+?){_CLAUSE_END}", rest, re.I | re.S):
        dims |= {d.strip() for d in group[1].split(",")}
    if condition := re.search(rf"WHERE\s+(.+?){_CLAUSE_END}", rest, re.I | re.S):
        dims |= set(re.findall(r"(\w+)\s*(?:=|!=|LIKE|IN\b)", condition[1], re.I))
    return [Reference(found["metric"], where, needs_dims=frozenset(dims))]


def _searches(expression: str, where: str) -> list[Reference]:
    refs = []
    for query in _SEARCH.finditer(expression):
        text = query["query"]
        namespace = re.search(r'Namespace="([^"]+)"', text)
        if namespace is None or namespace[1] != NAMESPACE:
            assert NAMESPACE not in text, f"{where}: a SEARCH this test cannot read: {text}"
            continue
        names = re.findall(r'MetricName="([^"]+)"', text)
        assert names, f"{where}: a SEARCH over {NAMESPACE} without MetricName: {text}"
        refs += [Reference(name, where) for name in names]
    return refs


def _expression(expression: str, where: str) -> list[Reference]:
    refs = _insights(expression, where) + _searches(expression, where)
    assert refs or NAMESPACE not in expression, f"{where}: an expression this test cannot read: {expression}"
    return refs


def _plain_dims(dimensions: list[dict[str, Any]]) -> frozenset[tuple[str, str]]:
    return frozenset((d["Name"], str(d["Value"])) for d in dimensions)


def alarm_references(template: Mapping[str, Any]) -> list[Reference]:
    refs: list[Reference] = []
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        if props.get("Namespace") == NAMESPACE:
            refs.append(Reference(props["MetricName"], name, _plain_dims(props.get("Dimensions", []))))
        for query in props.get("Metrics", []):
            metric = query.get("MetricStat", {}).get("Metric")
            if metric is not None and metric["Namespace"] == NAMESPACE:
                refs.append(Reference(metric["MetricName"], name, _plain_dims(metric.get("Dimensions", []))))
            if "Expression" in query:
                refs += _expression(query["Expression"], f"{name}.{query['Id']}")
    return refs


def dashboard_body(template: Mapping[str, Any]) -> dict[str, Any]:
    sub = template["Resources"]["GatewayDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    text = sub if isinstance(sub, str) else sub[0]
    return json.loads(re.sub(r"\$\{[^}]+\}", "dummy", text))


def dashboard_references(body: Mapping[str, Any]) -> list[Reference]:
    refs: list[Reference] = []
    for widget in body["widgets"]:
        props = widget.get("properties", {})
        where = f"panel {props.get('title', widget['type'])!r}"
        for row in props.get("metrics", []):
            options = row[-1] if row and isinstance(row[-1], dict) else {}
            plain = [part for part in row if not isinstance(part, dict)]
            if plain and plain[0] == NAMESPACE:
                dims = plain[2:]
                assert len(dims) % 2 == 0, f"{where}: dimension names and values do not pair up: {row}"
                refs.append(Reference(plain[1], where, frozenset(zip(dims[::2], dims[1::2], strict=True))))
            elif plain:
                assert NAMESPACE not in plain, f"{where}: a metric row this test cannot read: {row}"
            if "expression" in options:
                refs += _expression(options["expression"], where)
    return refs


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn_yaml.loads(TEMPLATE_PATH.read_text(encoding="utf-8"), str(TEMPLATE_PATH))


@pytest.fixture(scope="module")
def references(template: dict[str, Any]) -> list[Reference]:
    return alarm_references(template) + dashboard_references(dashboard_body(template))


# --- what the code emits --------------------------------------------------------------------------------
class DynamoDown:
    """A DynamoDB client whose every call fails as when the endpoint cannot be reached."""

    def __getattr__(self, operation: str) -> Any:
        def fail(*_args: Any, **_kwargs: Any) -> Any:
            raise EndpointConnectionError(endpoint_url="https://dynamodb.invalid")

        return fail


def _serve(r: Rig, *requests: Any) -> None:
    """Each request through the Gateway façade (so its own metrics count too); errors are data."""
    gateway = Gateway(r.core, r.router, r.router.available)
    for request in requests:
        with contextlib.suppress(GatewayError):
            gateway.chat(request, Caller(), "req")


def _sse_answer(request: httpx.Request, fleet: Any) -> httpx.Response:
    """A provider's OpenAI-format stream (Groq's: usage in `x_groq` on the last chunk)."""
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=_sse(3, "word "))


def representative_traffic() -> Iterator[Recorded]:
    reset_local_counters()
    try:
        # served free at once; a 429 then a failover to an answer near its limit; a paid answer;
        # then everything failing (groq cools down after its 429, the others answer 500)
        main = rig(paid=("mistral",))
        main.fleet.then("groq", answer(), status(429))
        main.fleet.set("openai", answer(headers={"x-ratelimit-limit-requests": "100",
                                                 "x-ratelimit-remaining-requests": "3"}))
        _serve(main, chat(), chat(), pinned("mistral"))
        for provider in ("groq", "openai", "mistral"):
            main.fleet.set(provider, status(500))
        _serve(main, chat())
        yield from main.metrics.records
        # three server errors in a row on one model open its breaker
        breaker = rig()
        breaker.fleet.set("groq", status(500))
        _serve(breaker, pinned("groq"), pinned("groq"), pinned("groq"))
        yield from breaker.metrics.records
        # two back-to-back requests on a 1 request/s organisation limit: the second waits
        waiting = rig(mistral_rps=1)
        _serve(waiting, pinned("mistral"), pinned("mistral"))
        yield from waiting.metrics.records
        # a stream sent as it is produced (a streaming invocation): time to first token
        streaming = rig()
        streaming.fleet.set("groq", _sse_answer)
        outcome = Gateway(streaming.core, streaming.router, streaming.router.available).chat(
            ChatCompletionRequest.model_validate({"model": "auto", "stream": True,
                                                  "messages": [{"role": "user", "content": "hi"}]}),
            Caller(), "req", live=True)
        assert outcome.sse_stream is not None
        b"".join(outcome.sse_stream)
        yield from streaming.metrics.records
        # the shared state table is unreachable: served on in-container state, degraded
        degraded = rig(dynamodb_client=DynamoDown(), LLM_GATEWAY_STATE_TABLE="state")
        _serve(degraded, chat())
        yield from degraded.metrics.records
        # the baseline cohort (rollout at 0 %): served, streamed live, failed, refused for capacity;
        # then the gateway cohort refused for capacity
        yield from _cohort_traffic()
        # a caller held to its own limit: counted apart, never as a user-visible error
        limited = rig()
        gateway = Gateway(limited.core, limited.router, limited.router.available)
        for _ in range(2):
            with contextlib.suppress(GatewayError):
                gateway.chat(chat(), Caller(user="u", key_id="k", policy=Policy(rpm=1)), "req")
        yield from limited.metrics.records
        # a paid answer that takes a user's spend past 80 % of the daily budget
        from tests.unit.tenancy.test_budget_warning import answer_with, ask

        budgeted = rig(paid=("openai",))
        budgeted.fleet.set("openai", answer_with(100))
        gateway = Gateway(budgeted.core, budgeted.router, budgeted.router.available)
        gateway.chat(ask(), Caller(user="b", key_id="k", policy=Policy(daily_budget_usd=0.00025)), "req")
        yield from budgeted.metrics.records
        yield from _transcription_traffic()
        # at 100 %, the trailing-week function's comparison with the same hour a week before
        from llm_gateway.rollout.trailing_week import run
        from tests.unit.rollout.test_trailing_week import NOW, Hours, figures

        weekly = RecordingMetrics()
        run(Hours(figures(cost=0.02), figures()), weekly, NOW)
        yield from weekly.records
    finally:
        reset_local_counters()


def _cohort_traffic() -> Iterator[Recorded]:
    import tempfile

    from llm_gateway.compose import build_rollout
    from llm_gateway.rollout.flag import write_file

    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/rollout.json"
        write_file(path, 0)
        old = rig(paid=("openai",), LLM_GATEWAY_BASELINE_MODEL="openai/gpt-4o-mini", LLM_GATEWAY_ROLLOUT_FILE=path)
        gateway = Gateway(old.core, old.router, old.router.available, build_rollout(old.core))
        _serve_on(gateway, chat())
        old.fleet.set("openai", _sse_answer)
        outcome = gateway.chat(ChatCompletionRequest.model_validate(
            {"model": "auto", "stream": True, "messages": [{"role": "user", "content": "hi"}]}), Caller(), "req", live=True)
        assert outcome.sse_stream is not None and outcome.headers["x-gateway-cohort"] == "baseline"
        b"".join(outcome.sse_stream)
        old.fleet.set("openai", status(500))
        _serve_on(gateway, chat())
        old.clock.advance(60)
        old.fleet.set("openai", status(429))
        _serve_on(gateway, chat())
        yield from old.metrics.records
    busy = rig()
    for provider in ("groq", "openai", "mistral"):
        busy.fleet.set(provider, status(429))
    _serve(busy, chat())
    yield from busy.metrics.records


def _transcription_traffic() -> Iterator[Recorded]:
    """The transcribe function's requests: served free (Groq) and paid (OpenAI, pinned), bad
    audio, a 429 for want of capacity (Groq cooling down, the others failing), a caller over its
    own limit, and every provider failing."""
    from llm_gateway.api.audio_schemas import TranscriptionRequest
    from llm_gateway.transcription.gateway import AudioInput, Transcriber
    from tests.unit.transcription.test_router import ok_json, verbose
    from tests.unit.transcription.test_router import rig as transcription_rig

    audio = (Path(__file__).parent.parent / "fixtures" / "audio" / "tone.wav").read_bytes()
    r = transcription_rig()
    transcriber = Transcriber(r.core, r.router)

    def transcribe(model: str = "auto", data: bytes = audio, caller: Caller | None = None) -> None:
        with contextlib.suppress(GatewayError):
            transcriber.transcribe(TranscriptionRequest.model_validate({"model": model}), AudioInput(data, "a.wav"),
                                   translate=False, request_id="req", caller=caller)

    r.fleet.then("groq", ok_json(verbose()), lambda _: httpx.Response(429, json={"error": {"message": "slow down"}}))
    r.fleet.then("openai", ok_json({**verbose(), "usage": {"type": "duration", "seconds": 2}}))
    transcribe()
    transcribe("openai/whisper-1")
    transcribe(data=b"not audio at all")
    limited = Caller(user="u", key_id="k", policy=Policy(rpm=1))
    transcribe(caller=limited)
    transcribe(caller=limited)
    r.fleet.handlers.clear()  # every provider now answers 500
    r.clock.advance(120)
    transcribe()
    yield from r.core.metrics.records  # type: ignore[attr-defined]


def _serve_on(gateway: Gateway, *requests: Any) -> None:
    for request in requests:
        with contextlib.suppress(GatewayError):
            gateway.chat(request, Caller(), "req")


@pytest.fixture(scope="module")
def emitted() -> dict[str, set[frozenset[tuple[str, str]]]]:
    """metric → every dimension set it was emitted with (EMF's `service` included)."""
    out: dict[str, set[frozenset[tuple[str, str]]]] = {}
    for record in representative_traffic():
        out.setdefault(record.name, set()).add(frozenset({SERVICE, *record.dimensions}))
    return out


# --- the contract ---------------------------------------------------------------------------------------
def test_the_template_reads_metrics_of_every_kind(references: list[Reference]) -> None:
    """The parser sees alarms and panels, plain rows, Metrics Insights and SEARCH (else the
    checks below could pass on an empty list)."""
    wheres = " ".join(ref.where for ref in references)
    assert "ChatErrorRateAlarm" in wheres and "RateLimitedAlarm" in wheres and "panel" in wheres
    assert any(ref.exact_dims for ref in references)
    assert any(ref.needs_dims for ref in references)
    assert {"Requests", "UserVisibleErrors", "PaidRequests", "CostUSD", "SelectionLatencyMs", "StateLatencyMs",
            "CapacityWaits"} <= {ref.metric for ref in references}


def test_every_name_metrics_py_defines_is_emitted(emitted: Mapping[str, Any]) -> None:
    """A name no request emits is dead (or the traffic above misses a path: add it)."""
    assert set(emitted) == DEFINED


def test_every_metric_the_template_reads_is_emitted(references: list[Reference], emitted: Mapping[str, Any]) -> None:
    missing = sorted({f"{ref.metric} ({ref.where})" for ref in references if ref.metric not in emitted})
    assert not missing, f"template.yaml reads metrics the code never emits: {missing}"


def test_every_emitted_metric_is_read_or_has_a_reason(references: list[Reference], emitted: Mapping[str, Any]) -> None:
    read = {ref.metric for ref in references}
    unread = sorted(set(emitted) - read - set(m.NOT_ON_DASHBOARD))
    assert not unread, f"emitted but on no panel or alarm, and not in NOT_ON_DASHBOARD with a reason: {unread}"
    for name, reason in m.NOT_ON_DASHBOARD.items():
        assert name in emitted, f"NOT_ON_DASHBOARD names {name}, which the code no longer emits"
        assert name not in read, f"NOT_ON_DASHBOARD names {name}, but template.yaml reads it: drop the entry"
        assert len(reason.split()) >= 3, f"NOT_ON_DASHBOARD[{name!r}] needs a reason"


def test_plain_references_match_the_dimension_sets_the_code_emits(
    references: list[Reference], emitted: Mapping[str, set[frozenset[tuple[str, str]]]],
) -> None:
    """A metric named with dimensions matches only data points with exactly those dimensions:
    every emission of it must carry exactly those dimension names, or the alarm or panel misses
    data; and the values it names are emitted (a cohort, an outcome), or for `provider` are a
    provider the code serves (the traffic above runs on three of them)."""
    from llm_gateway.providers.registry import provider_specs

    for ref in references:
        if ref.exact_dims is None or ref.metric not in emitted:
            continue
        names = {frozenset(name for name, _ in dims) for dims in emitted[ref.metric]}
        assert names == {frozenset(name for name, _ in ref.exact_dims)}, (ref.where, ref.metric, names)
        seen = {pair for dims in emitted[ref.metric] for pair in dims}
        for name, value in ref.exact_dims:
            if name == "provider":
                assert value in provider_specs(), (ref.where, value)
            else:
                assert (name, value) in seen, (ref.where, ref.metric, name, value)


def test_grouped_and_filtered_dimensions_are_emitted_with_the_metric(
    references: list[Reference], emitted: Mapping[str, set[frozenset[tuple[str, str]]]],
) -> None:
    """GROUP BY provider needs `provider` on every data point of the metric (else they drop out)."""
    for ref in references:
        for dim in ref.needs_dims:
            for dims in emitted.get(ref.metric, ()):
                assert dim in {name for name, _ in dims}, (ref.where, ref.metric, dim, dims)


def test_the_parser_flags_what_the_contract_forbids() -> None:
    """The extraction itself: a made-up metric in each kind of reference is seen, with its dims."""
    template = {"Resources": {
        "A": {"Type": "AWS::CloudWatch::Alarm", "Properties": {
            "Namespace": NAMESPACE, "MetricName": "Plain", "Dimensions": [{"Name": "service", "Value": "x"}]}},
        "B": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Metrics": [
            {"Id": "q", "Expression": f'SELECT SUM(Insight) FROM SCHEMA("{NAMESPACE}", provider) '
                                      "WHERE model = 'm' GROUP BY to_state ORDER BY SUM() DESC LIMIT 5"},
            {"Id": "s", "Expression": f"SUM(SEARCH('Namespace=\"{NAMESPACE}\" MetricName=\"Searched\"', 'Sum', 60))"},
            {"Id": "e", "Expression": "IF(q > 0, q, 0)"},
        ]}},
    }}
    refs = {ref.metric: ref for ref in alarm_references(template)}
    assert refs["Plain"].exact_dims == {("service", "x")}
    assert refs["Insight"].needs_dims == {"provider", "model", "to_state"}
    assert refs["Searched"].needs_dims == frozenset() and refs["Searched"].exact_dims is None
    body = {"widgets": [{"type": "metric", "properties": {"title": "t", "metrics": [
        [NAMESPACE, "Row", "service", "llm-gateway", {"stat": "Sum"}],
        [{"expression": f'SELECT AVG(Grouped) FROM "{NAMESPACE}" GROUP BY provider, model'}],
    ]}}]}
    rows = {ref.metric: ref for ref in dashboard_references(body)}
    assert rows["Row"].exact_dims == {SERVICE}
    assert rows["Grouped"].needs_dims == {"provider", "model"}
    with pytest.raises(AssertionError, match="cannot read"):
        dashboard_references({"widgets": [{"type": "metric", "properties": {"metrics": [
            [{"expression": f"SEARCH('{{{NAMESPACE},provider}} Requests', 'Sum', 60)"}]]}}]})


# --- EMF ------------------------------------------------------------------------------------------------
def test_emf_lines_carry_the_namespace_names_units_and_dimensions(capsys: pytest.CaptureFixture[str]) -> None:
    """What CloudWatch ingests from the log stream: one EMF document per data point, in the
    template's namespace, with `service` plus exactly the dimensions passed."""
    emf = EmfMetrics()
    emf.count(m.REQUESTS)
    emf.timing(m.PROVIDER_LATENCY_MS, 12.5, provider="groq")
    emf.count(m.COST_USD, 0.25, provider="openai")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    parsed = []
    for doc in lines:
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        (metric,) = directive["Metrics"]
        (dims,) = directive["Dimensions"]
        assert directive["Namespace"] == NAMESPACE
        values = doc[metric["Name"]]
        parsed.append((metric["Name"], metric["Unit"], {d: doc[d] for d in dims},
                       values[0] if isinstance(values, list) else values))
    assert parsed == [
        ("Requests", "Count", {"service": "llm-gateway"}, 1.0),
        ("ProviderLatencyMs", "Milliseconds", {"service": "llm-gateway", "provider": "groq"}, 12.5),
        ("CostUSD", "Count", {"service": "llm-gateway", "provider": "openai"}, 0.25),
    ]


def test_the_template_and_the_functions_use_the_emf_namespace_and_service(template: dict[str, Any]) -> None:
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == NAMESPACE
    assert env["POWERTOOLS_SERVICE_NAME"] == SERVICE[1]
