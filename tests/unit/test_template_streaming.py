"""The chat function streams through API Gateway REST: what template.yaml must say for it.

Facts checked against reference/aws.md §4 and wave2.md §6: the integration's
`responseTransferMode: STREAM` with Lambda invoked through the `2021-11-15/.../response-streaming-invocations`
URI (SAM's `ResponseTransferMode: RESPONSE_STREAM` writes both, checked here on the offline
translation), and a Python function streaming through the Lambda Web Adapter layer
(`AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap`, `AWS_LWA_INVOKE_MODE=response_stream`, a startup
command as the handler).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest

from llm_gateway.api.lwa import READY_PATH
from llm_gateway.config_check import FUNCTION_MARGIN_S, STREAM_LIMIT_S
from llm_gateway.retry.handler import chat_deadline
from tests.unit.test_template import ROOT, TEMPLATE_PATH, cfn_yaml, function_props, translate

CHAT_DIR = ROOT / "functions" / "chat"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn_yaml.loads(TEMPLATE_PATH.read_text(encoding="utf-8"), str(TEMPLATE_PATH))


def _default(template: dict[str, Any], name: str) -> Any:
    return template["Parameters"][name]["Default"]


def test_every_chat_route_uses_the_streaming_integration(template):
    events = template["Resources"]["ChatFunction"]["Properties"]["Events"]
    assert events and all(e["Properties"].get("ResponseTransferMode") == "RESPONSE_STREAM" for e in events.values())


def test_translated_integrations_stream_from_the_live_alias(template, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    cfn = translate(template)
    api = next(r for r in cfn["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi")
    paths = api["Properties"]["Body"]["paths"]
    integrations = [op["x-amazon-apigateway-integration"] for item in paths.values() for op in item.values()
                    if isinstance(op, dict) and "x-amazon-apigateway-integration" in op]
    chat = [i for i in integrations if "ChatFunction" in json.dumps(i["uri"])]
    others = [i for i in integrations if i not in chat]
    assert len(chat) >= 5 and others  # the transcribe function's routes stay buffered
    assert all("responseTransferMode" not in i for i in others)
    for integration in chat:
        assert integration["type"] == "aws_proxy" and integration["httpMethod"] == "POST"
        assert integration["responseTransferMode"] == "STREAM"
        uri = integration["uri"]["Fn::Sub"]
        assert "lambda:path/2021-11-15/functions/" in uri and uri.endswith("/response-streaming-invocations")
        assert "${ChatFunctionAliaslive}" in uri  # the canary's alias, as for buffered integrations
        # API Gateway's integration timeout is 29 s unless raised (up to 15 minutes with STREAM); an
        # answer sent whole sends no byte until it is complete, so it must outlast the longest one
        assert integration["timeoutInMillis"] >= chat_deadline(
            25.0, float(_default(template, "StreamDeadlineSeconds")), live=True, stream=False) * 1000
        assert integration["timeoutInMillis"] <= 900_000


def test_chat_function_runs_behind_the_lambda_web_adapter(template):
    props = function_props(template, "ChatFunction")
    env = props["Environment"]["Variables"]
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert env["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert env["AWS_LWA_READINESS_CHECK_PATH"] == READY_PATH
    assert props["Handler"] == "run.sh"
    layer = props["Layers"][-1]["Fn::If"]
    assert layer[0] == "DefaultWebAdapterLayer" and layer[2] == {"Ref": "LambdaWebAdapterLayerArn"}
    assert re.search(r":753240598075:layer:LambdaAdapterLayerX86:\d+$", layer[1]["Fn::Sub"])
    assert {"Ref": "GatewayLayer"} in props["Layers"]


def test_stream_deadline_and_function_timeout_fit_together(template):
    props = function_props(template, "ChatFunction")
    env = props["Environment"]["Variables"]
    assert env["LLM_GATEWAY_STREAM_DEADLINE_S"] == {"Ref": "StreamDeadlineSeconds"}
    assert env["LLM_GATEWAY_FUNCTION_TIMEOUT_S"] == {"Ref": "ChatFunctionTimeout"}
    assert props["Timeout"] == {"Ref": "ChatFunctionTimeout"}
    deadline, timeout = _default(template, "StreamDeadlineSeconds"), _default(template, "ChatFunctionTimeout")
    assert _default(template, "DeadlineSeconds") < deadline
    assert deadline + FUNCTION_MARGIN_S <= timeout <= STREAM_LIMIT_S
    assert template["Parameters"]["ChatFunctionTimeout"]["MaxValue"] <= STREAM_LIMIT_S


def test_the_startup_command_serves_the_stream_handler():
    run = CHAT_DIR / "run.sh"
    assert os.access(run, os.X_OK)
    assert "llm_gateway.api.lwa app:stream_handler" in run.read_text(encoding="utf-8")
    assert "def stream_handler(" in (CHAT_DIR / "app.py").read_text(encoding="utf-8")
    assert "run.sh" in (CHAT_DIR / "Makefile").read_text(encoding="utf-8")


def test_time_to_first_token_is_on_the_dashboard(template):
    body = template["Resources"]["GatewayDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert 'MetricName=\\"TimeToFirstTokenMs\\"' in body


@pytest.mark.parametrize("name", ["StreamDeadlineSeconds", "ChatFunctionTimeout", "LambdaWebAdapterLayerArn"])
def test_streaming_parameters_exist(template, name):
    assert name in template["Parameters"]


def test_translated_chat_function_has_both_layers_once(template, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    cfn = translate(template)
    layers = cfn["Resources"]["ChatFunction"]["Properties"]["Layers"]
    assert len(layers) == 2 and "LambdaAdapterLayerX86" in str(layers) and "GatewayLayer" in str(layers)
