"""template.yaml holds the properties the design depends on (canary, layer, state table, alarms).

Pure file checks plus an offline SAM translation (aws-sam-translator comes with cfn-lint); no AWS.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

cfn_yaml = pytest.importorskip("cfnlint.decode.cfn_yaml")

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
EVENTS_DIR = ROOT / "events"

REQUIRED_ENV = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "LLM_GATEWAY_STATE_TABLE",
    "LLM_GATEWAY_PROVIDER_SECRET",
    "LLM_GATEWAY_DEADLINE_S",
    "LLM_GATEWAY_MAX_ATTEMPTS",
}
EXPECTED_ROUTES = {
    ("/v1/chat/completions", "post"),
    ("/v1/models", "get"),
    ("/v1/models/{model+}", "get"),
    ("/v1/status", "get"),
    ("/{proxy+}", "any"),
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn_yaml.loads(TEMPLATE_PATH.read_text(encoding="utf-8"), str(TEMPLATE_PATH))


def resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == type_}


def function_props(template: dict[str, Any], name: str) -> dict[str, Any]:
    """A function's properties as SAM sees them: Globals.Function merged under its own (lists,
    such as Layers, are additive in SAM: the global entries first)."""
    merged = dict(template.get("Globals", {}).get("Function", {}))
    for key, value in template["Resources"][name]["Properties"].items():
        merged[key] = merged[key] + value if isinstance(value, list) and isinstance(merged.get(key), list) else value
    return merged


def ref_name(value: Any) -> str | None:
    return value.get("Ref") if isinstance(value, dict) else None


def test_transform_and_parameters(template):
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    params = template["Parameters"]
    assert params["Stage"]["Default"] == "prod"
    assert int(params["DeadlineSeconds"]["Default"]) == 25
    assert int(params["MaxAttempts"]["Default"]) == 3
    assert params["DeploymentType"]["Default"] == "Canary5PercentGateway"  # GatewayCanaryConfig (issue 12)
    for name in ("ProviderSecretName", "LogLevel", "AlarmEmail"):
        assert name in params


def test_globals(template):
    fn = template["Globals"]["Function"]
    assert fn["Runtime"] == "python3.13"
    assert fn["Architectures"] == ["x86_64"]
    assert fn["MemorySize"] == 512
    assert fn["Timeout"] == 29
    assert fn["Tracing"] == "Active"
    env = fn["Environment"]["Variables"]
    assert set(env) >= REQUIRED_ENV
    assert env["POWERTOOLS_SERVICE_NAME"] == "llm-gateway"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "LlmGateway"
    assert env["PYDANTIC_DISABLE_PLUGINS"] == "__all__"  # the layer ships none (layers/gateway/Makefile)
    assert ref_name(env["LLM_GATEWAY_STATE_TABLE"]) == "StateTable"


def test_layer_is_makefile_built_and_publishes_function_versions(template):
    layer = template["Resources"]["GatewayLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    props = layer["Properties"]
    assert props["ContentUri"].rstrip("/") == "layers/gateway"
    assert props["CompatibleRuntimes"] == ["python3.13"]
    assert props["PublishLambdaVersion"] is True


@pytest.mark.parametrize("name", ["ChatFunction", "HealthFunction", "TranscribeFunction"])
def test_functions_publish_live_alias_on_any_change(template, name):
    props = function_props(template, name)
    assert template["Resources"][name]["Metadata"]["BuildMethod"] == "makefile"
    # the chat function streams: its handler is the Lambda Web Adapter's startup command
    # (tests/unit/test_template_streaming.py)
    assert props["Handler"] == ("run.sh" if name == "ChatFunction" else "app.lambda_handler")
    assert props["AutoPublishAlias"] == "live"
    assert props["AutoPublishAliasAllProperties"] is True
    assert {"Ref": "GatewayLayer"} in props["Layers"]


def test_chat_function_canary_with_existing_rollback_alarms(template):
    props = function_props(template, "ChatFunction")
    pref = props["DeploymentPreference"]
    assert pref["Type"] == {"Fn::If": ["GatewayCanary", {"Ref": "GatewayCanaryConfig"}, {"Ref": "DeploymentType"}]}
    alarm_names = [ref_name(a) for a in pref["Alarms"]]
    assert len(alarm_names) >= 3
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    for name in alarm_names:
        assert name in alarms, f"DeploymentPreference alarm {name} is not defined"
        assert alarms[name]["Properties"]["TreatMissingData"] == "notBreaching"


def test_every_api_function_has_a_deployment_preference(template):
    for name, res in resources(template, "AWS::Serverless::Function").items():
        events = res["Properties"].get("Events", {})
        if any(e["Type"] == "Api" for e in events.values()):
            assert function_props(template, name).get("DeploymentPreference", {}).get("Alarms"), name


def test_chat_routes(template):
    events = template["Resources"]["ChatFunction"]["Properties"]["Events"]
    routes = set()
    for event in events.values():
        assert event["Type"] == "Api"
        assert ref_name(event["Properties"]["RestApiId"]) == "GatewayApi"
        routes.add((event["Properties"]["Path"], event["Properties"]["Method"].lower()))
    assert routes >= EXPECTED_ROUTES


def test_health_function_runs_every_five_minutes(template):
    events = template["Resources"]["HealthFunction"]["Properties"]["Events"]
    schedules = [e["Properties"]["Schedule"] for e in events.values() if e["Type"] == "Schedule"]
    assert schedules == ["rate(5 minutes)"]


def test_api_accepts_multipart_uploads(template):
    api = template["Resources"]["GatewayApi"]
    assert api["Type"] == "AWS::Serverless::Api"
    props = api["Properties"]
    assert "multipart~1form-data" in props["BinaryMediaTypes"]
    settings = props["MethodSettings"][0]
    assert settings["MetricsEnabled"] is True
    assert "ThrottlingRateLimit" in settings and "ThrottlingBurstLimit" in settings


def test_state_table(template):
    table = template["Resources"]["StateTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_functions_can_read_state_and_secret(template):
    for name in ("ChatFunction", "HealthFunction"):
        policies = template["Resources"][name]["Properties"]["Policies"]
        kinds = {next(iter(p)) for p in policies if isinstance(p, dict)}
        assert "AWSSecretsManagerGetSecretValuePolicy" in kinds, name
        assert _dynamodb_actions(template, name), name


# ------------------------------------------------------------------ least privilege and the edge

LAYER = ROOT / "layers" / "gateway" / "llm_gateway"
LOCAL_ONLY_CALLS = {"create_table", "update_time_to_live", "get_waiter"}  # state/dynamodb.ensure_table: local runs
HEALTH_MODULES = ("routing/health.py",)  # what the scheduled function writes with (DynamoHealthStore.put)


def _calls_in(paths: list[Path]) -> set[str]:
    """DynamoDB client operations called in these sources (`client.batch_get_item(...)` etc.)."""
    ops = set()
    for path in paths:
        ops |= set(re.findall(r"\bclient\.([a-z_]+)\(", path.read_text(encoding="utf-8")))
    return ops - LOCAL_ONLY_CALLS


def _iam_action(op: str) -> str:
    return "dynamodb:" + "".join(part.capitalize() for part in op.split("_"))


def _dynamodb_actions(template: dict[str, Any], function: str) -> set[str]:
    actions: set[str] = set()
    for policy in template["Resources"][function]["Properties"]["Policies"]:
        assert not (isinstance(policy, dict) and "DynamoDBCrudPolicy" in policy), f"{function}: CRUD is too broad"
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            listed = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            actions |= {a for a in listed if a.startswith("dynamodb:")}
    return actions


def test_iam_grants_only_the_dynamodb_actions_the_code_calls(template):
    """The chat role's DynamoDB actions are exactly the operations the layer (its breaker
    persistence included) calls; TransactWriteItems is authorised per item (UpdateItem)."""
    chat_ops = _calls_in([*LAYER.rglob("*.py")]) - {"transact_write_items"}
    assert {"batch_get_item", "update_item", "put_item", "get_item"} <= chat_ops  # the scan found the calls
    assert _dynamodb_actions(template, "ChatFunction") == {_iam_action(op) for op in chat_ops}
    health_ops = {op for op in _calls_in([LAYER / m for m in HEALTH_MODULES]) if op != "batch_get_item"}
    assert _dynamodb_actions(template, "HealthFunction") == {_iam_action(op) for op in health_ops} == {"dynamodb:PutItem"}
    for function in ("ChatFunction", "HealthFunction"):
        assert not {"dynamodb:Scan", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:Query"} & (
            _dynamodb_actions(template, function))


KMS_USE = {"Sid": "KmsUse", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
           "Resource": {"Fn::GetAtt": ["GatewayKey", "Arn"]}}


def test_dynamodb_statements_name_only_the_state_table(template):
    for function in ("ChatFunction", "HealthFunction"):
        for policy in template["Resources"][function]["Properties"]["Policies"]:
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                if statement != KMS_USE and any(str(action).startswith("dynamodb:") for action in statement["Action"]):
                    assert statement["Resource"] == {"Fn::GetAtt": ["StateTable", "Arn"]}, function


def test_one_rotated_customer_key_encrypts_secrets_table_and_buckets_and_only_functions_use_it(template):
    resources = template["Resources"]
    key = resources["GatewayKey"]
    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True
    key_arn = {"Fn::GetAtt": ["GatewayKey", "Arn"]}
    assert resources["StateTable"]["Properties"]["SSESpecification"] == {
        "SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arn}
    for secret in ("ProviderSecret", "ClientKeySecret"):
        assert resources[secret]["Properties"]["KmsKeyId"] == {"Ref": "GatewayKey"}
    for bucket in ("AudioBucket", "ReportsBucket"):
        rule = resources[bucket]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
    users = [name for name, r in resources.items() if "GatewayKey" in json.dumps(r.get("Properties", {}).get("Policies", []))]
    # the rollback and trailing-week functions touch nothing the key encrypts (AppConfig, the
    # alarm topic, CloudWatch metrics): not granted
    functions = [name for name, r in resources.items()
                 if r["Type"] == "AWS::Serverless::Function" and name not in {"RollbackFunction", "TrailingWeekFunction"}]
    assert sorted(users) == sorted(functions)  # every function that needs it may use it, nothing else is granted it
    for function in functions:
        statements = [s for p in resources[function]["Properties"]["Policies"] for s in p.get("Statement", [])]
        assert KMS_USE in statements, function


def test_chat_function_reserved_concurrency_is_a_parameter(template):
    param = template["Parameters"]["ChatReservedConcurrency"]
    assert param["Type"] == "Number" and int(param["Default"]) > 0 and int(param["MinValue"]) == 0
    reserved = template["Resources"]["ChatFunction"]["Properties"]["ReservedConcurrentExecutions"]
    assert reserved == {"Fn::If": ["HasChatReservedConcurrency", {"Ref": "ChatReservedConcurrency"},
                                   {"Ref": "AWS::NoValue"}]}
    assert template["Conditions"]["HasChatReservedConcurrency"]  # 0 = no reservation (not "throttle all")


def test_optional_waf_with_a_per_ip_rate_rule(template, monkeypatch):
    params = template["Parameters"]
    assert params["EnableWaf"]["Default"] == "false" and params["EnableWaf"]["AllowedValues"] == ["true", "false"]
    assert int(params["WafRequestsPer5MinPerIp"]["MinValue"]) >= 10
    acl = template["Resources"]["GatewayWebAcl"]
    assert acl["Type"] == "AWS::WAFv2::WebACL" and acl["Condition"] == "WafEnabled"
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL" and "Allow" in props["DefaultAction"]
    rule = next(r for r in props["Rules"] if "RateBasedStatement" in r["Statement"])
    assert rule["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    assert rule["Statement"]["RateBasedStatement"]["Limit"] == {"Ref": "WafRequestsPer5MinPerIp"}
    assert "Block" in rule["Action"]
    association = template["Resources"]["GatewayWebAclAssociation"]
    assert association["Type"] == "AWS::WAFv2::WebACLAssociation" and association["Condition"] == "WafEnabled"
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": ["GatewayWebAcl", "Arn"]}
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    cfn = translate(template)
    arn = json.dumps(cfn["Resources"]["GatewayWebAclAssociation"]["Properties"]["ResourceArn"])
    stage = next(k for k, v in cfn["Resources"].items() if v["Type"] == "AWS::ApiGateway::Stage")
    assert "/restapis/" in arn and stage in arn  # the association points at the deployed stage


def test_provider_secret_is_optional(template):
    secret = template["Resources"]["ProviderSecret"]
    assert secret["Condition"] == "CreateProviderSecret"
    props = secret["Properties"]
    placeholder = json.loads(props.get("SecretString") or props["GenerateSecretString"]["SecretStringTemplate"])
    assert all(value == "" for value in placeholder.values())
    assert "GROQ_API_KEY" in placeholder
    assert "LLM_GATEWAY_API_KEYS" not in placeholder  # client keys live in their own secret


def test_client_keys_have_their_own_secret_with_a_long_generated_key(template):
    secret = template["Resources"]["ClientKeySecret"]
    assert secret["Condition"] == "CreateClientKeySecret"
    generated = secret["Properties"]["GenerateSecretString"]
    assert generated["GenerateStringKey"] == "LLM_GATEWAY_API_KEYS"
    assert generated["PasswordLength"] >= 32  # config refuses shorter client keys
    assert json.loads(generated["SecretStringTemplate"]) == {"LLM_GATEWAY_ADMIN_KEYS": ""}
    env = template["Resources"]["ChatFunction"]["Properties"]["Environment"]["Variables"]
    assert "LLM_GATEWAY_CLIENT_KEY_SECRET" in env
    assert "LLM_GATEWAY_CLIENT_KEY_SECRET" not in json.dumps(template["Globals"])


def test_the_health_function_cannot_read_client_keys(template, monkeypatch):
    """Its role (after SAM translation) grants nothing on the client-key secret, and its
    environment does not name it."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    cfn = translate(template)
    role = json.dumps(cfn["Resources"]["HealthFunctionRole"]["Properties"])
    assert "ClientKeySecret" not in role and "ProviderSecret" in role
    health_env = json.dumps(function_props(template, "HealthFunction").get("Environment", {}))
    assert "CLIENT_KEY_SECRET" not in health_env
    chat_role = json.dumps(cfn["Resources"]["ChatFunctionRole"]["Properties"])
    assert "ClientKeySecret" in chat_role and "ProviderSecret" in chat_role


def test_metric_math_alarms_return_exactly_one_series(template):
    for name, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
        metrics = alarm["Properties"].get("Metrics")
        if metrics:
            # an anomaly-detection alarm returns its metric and its band (ThresholdMetricId)
            band = 1 if alarm["Properties"].get("ThresholdMetricId") else 0
            assert sum(1 for m in metrics if m.get("ReturnData") is True) == 1 + band, name
            ids = {m["Id"] for m in metrics}
            for m in metrics:
                if m.get("Expression", "").startswith("SELECT"):  # Metrics Insights: one query only
                    assert len(metrics) == 1 and m.get("Period"), name
                    continue
                for token in re.findall(r"\b[a-z][A-Za-z0-9_]*\b", m.get("Expression", "")):
                    if token not in {"IF", "FILL", "MAX", "ANOMALY_DETECTION_BAND"} and not token.isupper():
                        assert token in ids, f"{name}: expression uses unknown id {token}"


def test_error_rate_alarm_reads_gateway_metrics(template):
    props = template["Resources"]["ChatErrorRateAlarm"]["Properties"]
    names = {
        m["MetricStat"]["Metric"]["MetricName"]
        for m in props["Metrics"]
        if "MetricStat" in m and m["MetricStat"]["Metric"]["Namespace"] == "LlmGateway"
    }
    assert names == {"UserVisibleErrors", "Requests"}


# Metrics emitted with a fixed dimension set (observability/metrics.py), which alarms may name
# series by series; the rest may carry provider/model dimensions and are aggregated with Metrics
# Insights.
FIXED_DIMENSIONS = {
    "Requests": {"service", "cohort"}, "UserVisibleErrors": {"service", "cohort"},
    "CapacityRejected": {"service", "cohort"}, "RequestCostUSD": {"service", "cohort"},
    "RequestLatencyMs": {"service", "cohort"}, "TimeToFirstTokenMs": {"service", "cohort"},
    "ProviderAttempts": {"service", "provider", "outcome"},
    "PaidRequestsTotal": {"service"}, "CostUSDTotal": {"service"}, "BudgetWarnings": {"service"},
    "CostIncreaseVsLastWeekPercent": {"service"}, "LatencyVsLastWeekRatio": {"service"},
}


def test_alarms_read_fixed_dimension_series_only_for_gateway_totals(template):
    """Only the metrics of FIXED_DIMENSIONS are named series by series, with exactly their
    dimensions (tests/unit/test_metrics_contract.py holds the code to them)."""
    for name, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        if props.get("Namespace"):
            stats.append(props)
        for metric in stats:
            if metric["Namespace"] == "LlmGateway":
                assert metric["MetricName"] in FIXED_DIMENSIONS, name
                assert {d["Name"] for d in metric["Dimensions"]} == FIXED_DIMENSIONS[metric["MetricName"]], name
                assert {"Name": "service", "Value": "llm-gateway"} in metric["Dimensions"], name


def test_unexpected_paid_usage_is_alarmed_on_a_learnt_band(template):
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    for name, metric in (("PaidRequestsAnomalyAlarm", "PaidRequestsTotal"), ("CostAnomalyAlarm", "CostUSDTotal")):
        props = alarms[name]["Properties"]
        queries = {q["Id"]: q for q in props["Metrics"]}
        assert props["ComparisonOperator"] == "GreaterThanUpperThreshold" and props["ThresholdMetricId"] == "band"
        assert queries["band"]["Expression"].startswith("ANOMALY_DETECTION_BAND(")
        watched = [q["MetricStat"]["Metric"]["MetricName"] for q in props["Metrics"] if "MetricStat" in q]
        assert watched == [metric] and props["AlarmActions"] == [{"Ref": "AlarmTopic"}], name


def test_operational_alarms_exist(template):
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    for name, metric in (
        ("PaidRequestsSpikeAlarm", "PaidRequests"),
        ("HourlyCostAlarm", "CostUSD"),
        ("RateLimitedAlarm", "RateLimited"),
    ):
        expressions = " ".join(m.get("Expression", "") for m in alarms[name]["Properties"]["Metrics"])
        assert f"SUM({metric})" in expressions, name


def test_latency_alarm_watches_the_gateways_own_latency_not_lambda_duration(template):
    """The Lambda's Duration includes whole streamed answers (minutes): the canary's latency
    alarm reads the gateway's own p95 (answers sent whole) and time to first token (streams)."""
    props = template["Resources"]["ChatLatencyP95Alarm"]["Properties"]
    assert "Namespace" not in props and "Duration" not in json.dumps(props)
    read = {(m["MetricStat"]["Metric"]["MetricName"], m["MetricStat"]["Stat"],
             next(d["Value"] for d in m["MetricStat"]["Metric"]["Dimensions"] if d["Name"] == "cohort"))
            for m in props["Metrics"] if "MetricStat" in m}
    assert read == {(metric, "p95", cohort) for metric in ("RequestLatencyMs", "TimeToFirstTokenMs")
                    for cohort in ("gateway", "baseline")}


def _substitute_placeholders(body: str) -> str:
    return re.sub(r"\$\{[^}]+\}", "dummy", body)


def test_dashboard_body_is_json_with_expected_widgets(template):
    dashboard = template["Resources"]["GatewayDashboard"]
    sub = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    body = json.loads(_substitute_placeholders(sub if isinstance(sub, str) else sub[0]))
    titles = " | ".join(w["properties"].get("title", "") for w in body["widgets"]).lower()
    for words in (
        "requests per provider",
        "free vs paid",
        "per request",
        "by provider",
        "near miss",
        "failovers",
        "selection",
        "state latency",
    ):
        assert words in titles, words
    metric_names = json.dumps(body)
    for name in (
        "FreeTierRequests",
        "PaidRequests",
        "CostUSD",
        "ProviderErrors",
        "RateLimitNearMiss",
        "Failovers",
        "SelectionLatencyMs",
        "StateLatencyMs",
        "UserVisibleErrors",
    ):
        assert name in metric_names, name


def test_outputs(template):
    outputs = template["Outputs"]
    assert outputs["ApiUrl"]["Value"] == {
        "Fn::Sub": "https://${GatewayApi}.execute-api.${AWS::Region}.amazonaws.com/${Stage}/v1"
    }
    for name in ("StateTableName", "ProviderSecretArn", "DashboardName"):
        assert name in outputs


def test_every_makefile_build_has_its_target(template):
    for name, res in template["Resources"].items():
        if res.get("Metadata", {}).get("BuildMethod") != "makefile":
            continue
        props = res["Properties"]
        code_dir = ROOT / (props.get("CodeUri") or props["ContentUri"])
        makefile = (code_dir / "Makefile").read_text(encoding="utf-8")
        assert re.search(rf"^build-{name}:", makefile, re.M), f"{code_dir}/Makefile lacks build-{name}"


# ------------------------------------------------------------------ events

REST_EVENT_KEYS = {
    "resource",
    "path",
    "httpMethod",
    "headers",
    "multiValueHeaders",
    "queryStringParameters",
    "pathParameters",
    "requestContext",
    "body",
    "isBase64Encoded",
}
API_EVENTS = [
    "chat.json",
    "chat_stream.json",
    "chat_tools.json",
    "chat_bad.json",
    "models.json",
    "status.json",
]


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


def test_all_event_files_are_json():
    files = sorted(EVENTS_DIR.glob("*.json"))
    assert {f.name for f in files} >= set(API_EVENTS) | {"health_schedule.json"}
    for f in files:
        assert isinstance(json.loads(f.read_text(encoding="utf-8")), dict), f.name


@pytest.mark.parametrize("name", [*API_EVENTS, "not_found.json"])
def test_rest_proxy_events_are_well_formed(name):
    event = load_event(name)
    assert set(event) >= REST_EVENT_KEYS
    assert event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["requestId"] and ctx["stage"] and ctx["identity"]["sourceIp"]
    assert ctx["httpMethod"] == event["httpMethod"]
    assert ctx["resourcePath"] == event["resource"]
    assert ctx["path"] == f"/{ctx['stage']}{event['path']}"
    assert event["headers"]["Authorization"] == "Bearer local-dev-key"
    assert {k: [v] for k, v in event["headers"].items()} == event["multiValueHeaders"]
    if event["httpMethod"] == "POST":
        assert isinstance(json.loads(event["body"]), dict)
    else:
        assert event["body"] is None


def test_event_bodies_exercise_their_cases():
    routes_in_template = {path for path, _ in EXPECTED_ROUTES}
    for name in API_EVENTS:
        assert load_event(name)["resource"] in routes_in_template, name
    chat = json.loads(load_event("chat.json")["body"])
    assert chat["model"] == "auto" and len(chat["messages"]) == 2 and not chat.get("stream")
    assert json.loads(load_event("chat_stream.json")["body"])["stream"] is True
    tools = json.loads(load_event("chat_tools.json")["body"])
    assert tools["tools"] and tools["tool_choice"] == "required"
    assert json.loads(load_event("chat_bad.json")["body"])["messages"] == []
    assert load_event("models.json")["path"] == "/v1/models"
    assert load_event("status.json")["path"] == "/v1/status"


def test_schedule_event_is_eventbridge_shaped():
    event = load_event("health_schedule.json")
    assert event["source"] == "aws.events"
    assert event["detail-type"] == "Scheduled Event"
    assert event["resources"] and "time" in event


# ------------------------------------------------------------------ SAM translation (offline)


def translate(template: dict[str, Any], layer_uri: str = "s3://bucket/layer-v1.zip") -> dict[str, Any]:
    translator_mod = pytest.importorskip("samtranslator.translator.translator")
    parser_mod = pytest.importorskip("samtranslator.parser.parser")
    doc = copy.deepcopy(template)
    for res in doc["Resources"].values():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::Serverless::Function":
            props["CodeUri"] = f"s3://bucket/{props['CodeUri'].strip('/').replace('/', '-')}.zip"
        elif res["Type"] == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = layer_uri
    translator = translator_mod.Translator(managed_policy_map={}, sam_parser=parser_mod.Parser())
    return translator.translate(sam_template=doc, parameter_values={}, passthrough_metadata=True)


def version_ids(cfn: dict[str, Any], prefix: str) -> set[str]:
    return {
        k for k, v in cfn["Resources"].items() if v["Type"] == "AWS::Lambda::Version" and k.startswith(prefix)
    }


def test_translation_wires_canary_to_alias(template, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    cfn = translate(template)
    res = cfn["Resources"]
    assert res["ChatFunctionAliaslive"]["Type"] == "AWS::Lambda::Alias"
    assert res["HealthFunctionAliaslive"]["Type"] == "AWS::Lambda::Alias"
    group = res["ChatFunctionDeploymentGroup"]["Properties"]
    alarm_refs = [a["Name"]["Ref"] for a in group["AlarmConfiguration"]["Alarms"]]
    assert set(alarm_refs) == {"ChatErrorRateAlarm", "ChatLatencyP95Alarm", "ChatAliasErrorsAlarm", *CODE_CANARY_TRIGGERS}
    assert group["DeploymentConfigName"] == {"Fn::If": ["GatewayCanary", {"Ref": "GatewayCanaryConfig"},
                                                        {"Fn::Sub": ["CodeDeployDefault.Lambda${ConfigName}",
                                                                     {"ConfigName": {"Ref": "DeploymentType"}}]}]} or \
        "GatewayCanaryConfig" in json.dumps(group["DeploymentConfigName"])
    permissions = [v["Properties"] for v in res.values() if v["Type"] == "AWS::Lambda::Permission"]
    chat_perms = [p for p in permissions if "Chat" in json.dumps(p["FunctionName"])]
    assert chat_perms and all(p["FunctionName"] == {"Ref": "ChatFunctionAliaslive"} for p in chat_perms)


def test_layer_only_change_publishes_new_function_versions(template, monkeypatch):
    """The reason for PublishLambdaVersion + AutoPublishAliasAllProperties (aws.md section 1)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    v1 = translate(template, "s3://bucket/layer-v1.zip")
    v2 = translate(template, "s3://bucket/layer-v2.zip")
    for fn in ("ChatFunctionVersion", "HealthFunctionVersion"):
        before, after = version_ids(v1, fn), version_ids(v2, fn)
        assert len(before) == 1 and len(after) == 1
        assert before != after, f"{fn}: a layer-only change would not run the canary"


def test_samconfig_defaults():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))["default"]
    deploy = config["deploy"]["parameters"]
    assert deploy["stack_name"] == "llm-gateway"
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True and deploy["confirm_changeset"] is True
    assert deploy["region"]
    build = config["build"]["parameters"]
    assert build["cached"] is True and build["parallel"] is True


class _Datapoint(float):
    """A metric value: dividing by a zero datapoint gives no value (NaN) instead of raising, as in
    metric math, so both branches of IF can be computed eagerly."""

    def __rtruediv__(self, other: float) -> float:
        return math.nan if self == 0 else float(other) / float(self)

    def __truediv__(self, other: float) -> float:
        return math.nan if other == 0 else float(self) / float(other)


def _eval_metric_math(expression: str, **series: float | None) -> float:
    """Evaluate the IF/FILL/MAX subset of CloudWatch metric math the alarms use."""
    code = expression.replace("IF(", "_if(").replace("FILL(", "_fill(").replace("MAX(", "_max(")
    helpers = {
        "_max": lambda values: max(float(v) for v in values),
        "_if": lambda cond, a, b: a if cond else b,
        "_fill": lambda value, default: _Datapoint(default if value is None else value),
    }
    return float(eval(code, {"__builtins__": {}}, {**helpers, **series}))  # only our own template's text


@pytest.mark.parametrize(("errors", "requests", "breaching"), [
    (0, 100, False), (5, 100, True), (1, 1000, False),
    (3, None, True),   # a crash before the request was counted: errors without Requests
    (None, 50, False), (0, 0, False),
])
def test_error_rate_alarm_counts_errors_even_without_requests(template, errors, requests, breaching):
    props = template["Resources"]["ChatErrorRateAlarm"]["Properties"]
    expression = next(m["Expression"] for m in props["Metrics"] if m.get("ReturnData"))
    threshold = float(template["Parameters"]["ErrorRateThresholdPercent"]["Default"])
    assert (_eval_metric_math(expression, errors=errors, requests=requests) > threshold) is breaching


# ------------------------------------------------------------------ transcription (issue 10)

TRANSCRIBE_ROUTES = {
    ("/v1/audio/transcriptions", "post"),
    ("/v1/audio/translations", "post"),
    ("/v1/audio/uploads", "post"),
    ("/v1/audio/jobs", "post"),
    ("/v1/audio/jobs/{id}", "get"),
}
TRANSCRIBE_ALARMS = {"TranscribeErrorRateAlarm", "TranscribeLatencyP95Alarm", "TranscribeAliasErrorsAlarm",
                     "TranscriptionProviderFailingAlarm"}


def test_transcribe_function_is_built_like_chat_with_its_own_time(template):
    props = function_props(template, "TranscribeFunction")
    assert template["Resources"]["TranscribeFunction"]["Metadata"]["BuildMethod"] == "makefile"
    assert props["Handler"] == "app.lambda_handler" and props["CodeUri"] == "functions/transcribe/"
    assert props["AutoPublishAlias"] == "live" and props["AutoPublishAliasAllProperties"] is True
    assert {"Ref": "GatewayLayer"} in props["Layers"]
    assert props["Timeout"] == 900 and props["MemorySize"] >= 1024
    assert props["EventInvokeConfig"] == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 900}
    env = props["Environment"]["Variables"]
    assert env["LLM_GATEWAY_AUDIO_BUCKET"] == {"Ref": "AudioBucket"}
    assert "LLM_GATEWAY_CLIENT_KEY_SECRET" in env  # same auth model as chat


def test_transcribe_routes_on_the_same_api(template):
    events = template["Resources"]["TranscribeFunction"]["Properties"]["Events"]
    routes = set()
    for event in events.values():
        assert event["Type"] == "Api" and ref_name(event["Properties"]["RestApiId"]) == "GatewayApi"
        routes.add((event["Properties"]["Path"], event["Properties"]["Method"].lower()))
    assert routes == TRANSCRIBE_ROUTES


def test_transcribe_canary_with_its_own_alarms(template):
    pref = function_props(template, "TranscribeFunction")["DeploymentPreference"]
    assert pref["Type"] == {"Fn::If": ["GatewayCanary", {"Ref": "GatewayCanaryConfig"}, {"Ref": "DeploymentType"}]}
    assert {ref_name(a) for a in pref["Alarms"]} == TRANSCRIBE_ALARMS
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    for name in TRANSCRIBE_ALARMS:
        assert alarms[name]["Properties"]["TreatMissingData"] == "notBreaching"
    alias_dims = {d["Name"]: d["Value"] for d in alarms["TranscribeAliasErrorsAlarm"]["Properties"]["Dimensions"]}
    assert alias_dims["Resource"] == {"Fn::Sub": "${TranscribeFunction}:live"}
    rate = alarms["TranscribeErrorRateAlarm"]["Properties"]["Metrics"]
    resources_read = {dim["Value"] for m in rate if "MetricStat" in m
                      for dim in m["MetricStat"]["Metric"]["Dimensions"] if dim["Name"] == "Resource"}
    assert resources_read == {"/v1/audio/transcriptions", "/v1/audio/translations"}
    assert [m["Id"] for m in rate if m.get("ReturnData")] == ["transcribeErrorRate"]


def test_api_takes_multipart_as_binary(template):
    assert "multipart~1form-data" in template["Resources"]["GatewayApi"]["Properties"]["BinaryMediaTypes"]


def test_audio_bucket_is_private_encrypted_and_short_lived(template):
    bucket = template["Resources"]["AudioBucket"]
    assert bucket["Type"] == "AWS::S3::Bucket"
    props = bucket["Properties"]
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    rules = props["LifecycleConfiguration"]["Rules"]
    assert any(r["Status"] == "Enabled" and r["ExpirationInDays"] <= 1 and "Prefix" not in r for r in rules)
    policy = template["Resources"]["AudioBucketPolicy"]["Properties"]
    assert ref_name(policy["Bucket"]) == "AudioBucket"
    (deny,) = policy["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def _statements(template: dict[str, Any], function: str) -> list[dict[str, Any]]:
    return [s for p in template["Resources"][function]["Properties"]["Policies"] if isinstance(p, dict)
            for s in p.get("Statement", [])]


def test_transcribe_role_is_least_privilege(template):
    statements = _statements(template, "TranscribeFunction")
    assert _dynamodb_actions(template, "TranscribeFunction") == _dynamodb_actions(template, "ChatFunction")
    for statement in statements:
        actions = set(statement["Action"])
        assert not any("*" in a for a in actions)
        if any(a.startswith("dynamodb:") for a in actions):
            assert statement["Resource"] == {"Fn::GetAtt": ["StateTable", "Arn"]}
        elif actions == {"s3:PutObject", "s3:GetObject", "s3:DeleteObject"}:
            assert statement["Resource"] == {"Fn::Sub": "${AudioBucket.Arn}/*"}
        elif actions == {"s3:ListBucket"}:
            assert statement["Resource"] == {"Fn::GetAtt": ["AudioBucket", "Arn"]}
        elif statement == KMS_USE:
            continue
        elif actions == {"lambda:InvokeFunction"}:
            # itself only, by its fixed name (a Ref/GetAtt of the function would be circular)
            assert all("function:${AWS::StackName}-transcribe" in r["Fn::Sub"] for r in statement["Resource"])
        else:
            raise AssertionError(f"unexpected statement {statement}")
    assert template["Resources"]["TranscribeFunction"]["Properties"]["FunctionName"] == {
        "Fn::Sub": "${AWS::StackName}-transcribe"}


def test_the_code_calls_no_s3_or_lambda_operation_the_role_lacks():
    """S3 operations in uploads/s3.py (through `self._s3`) and the self-invocation in jobs/launcher.py."""
    s3_source = (LAYER / "uploads" / "s3.py").read_text(encoding="utf-8")
    ops = set(re.findall(r"self\._s3\.([a-z_]+)\b", s3_source)) - {"generate_presigned_url"}
    allowed = {"head_object": "s3:GetObject", "get_object": "s3:GetObject", "put_object": "s3:PutObject",
               "delete_object": "s3:DeleteObject"}
    assert ops and ops <= set(allowed), ops - set(allowed)
    launcher = (LAYER / "jobs" / "launcher.py").read_text(encoding="utf-8")
    assert set(re.findall(r"self\._lambda\.([a-z_]+)\(", launcher)) == {"invoke"}


def test_transcribe_translation_wires_its_canary(template, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    cfn = translate(template)
    res = cfn["Resources"]
    assert res["TranscribeFunctionAliaslive"]["Type"] == "AWS::Lambda::Alias"
    group = res["TranscribeFunctionDeploymentGroup"]["Properties"]
    assert {a["Name"]["Ref"] for a in group["AlarmConfiguration"]["Alarms"]} == TRANSCRIBE_ALARMS
    permissions = [v["Properties"] for v in res.values() if v["Type"] == "AWS::Lambda::Permission"]
    mine = [p for p in permissions if "Transcribe" in json.dumps(p["FunctionName"])]
    assert len(mine) == len(TRANSCRIBE_ROUTES)
    assert all(p["FunctionName"] == {"Ref": "TranscribeFunctionAliaslive"} for p in mine)
    invoke_config = [v for v in res.values() if v["Type"] == "AWS::Lambda::EventInvokeConfig"]
    assert invoke_config and invoke_config[0]["Properties"]["Qualifier"] == "live"


def test_transcribe_events_are_well_formed():
    event = load_event("transcribe.json")
    assert set(event) >= REST_EVENT_KEYS and event["isBase64Encoded"] is True
    assert event["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
    body = base64.b64decode(event["body"])
    assert b'name="file"; filename="tone.wav"' in body and b"RIFF" in body and b"WAVE" in body
    assert event["requestContext"]["path"] == f"/{event['requestContext']['stage']}{event['path']}"
    assert load_event("transcribe_translation.json")["path"] == "/v1/audio/translations"
    assert b'name="file"' not in base64.b64decode(load_event("transcribe_bad.json")["body"])
    assert json.loads(load_event("transcribe_upload.json")["body"])["bytes"] > 4_500_000
    assert set(load_event("transcribe_job_run.json")) == {"llm_gateway_job"}


def test_transcribe_events_are_what_the_script_writes():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_transcribe_event", EVENTS_DIR / "make_transcribe_event.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, event in module.events().items():
        assert load_event(name) == event, f"events/{name} is stale: run python events/make_transcribe_event.py"


# ------------------------------------------------------------------ the safe rollout (issue 12)

ROLLOUT_TRIGGERS = {"GatewayCohortErrorRateAlarm", "GatewayCohortCapacityAlarm", "GatewayCohortCostAlarm",
                    "GatewayCohortLatencyAlarm", "ProviderFailingAlarm",
                    "TrailingWeekCostAlarm", "TrailingWeekLatencyAlarm"}
# The code canaries watch the triggers that can see a 5-minute canary (not the hour-long
# trailing-week comparison), within CodeDeploy's limit of 10 alarms.
CODE_CANARY_TRIGGERS = ROLLOUT_TRIGGERS - {"TrailingWeekCostAlarm", "TrailingWeekLatencyAlarm"}


def _alarm_metrics(template: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    return {m["Id"]: m for m in template["Resources"][name]["Properties"]["Metrics"]}


def _series(query: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    metric = query["MetricStat"]["Metric"]
    return metric["MetricName"], query["MetricStat"]["Stat"], {d["Name"]: d["Value"] for d in metric["Dimensions"]}


def test_each_trigger_is_an_alarm_in_the_composite_that_notifies_the_rollback_lambda(template):
    res = template["Resources"]
    composite = res["RollbackAlarm"]
    assert composite["Type"] == "AWS::CloudWatch::CompositeAlarm"
    rule = composite["Properties"]["AlarmRule"]["Fn::Sub"]
    assert set(re.findall(r'ALARM\("\$\{(\w+)\.Arn\}"\)', rule)) == ROLLOUT_TRIGGERS
    assert rule.count(" OR ") == len(ROLLOUT_TRIGGERS) - 1
    for name in ROLLOUT_TRIGGERS:
        assert res[name]["Type"] == "AWS::CloudWatch::Alarm"
        assert res[name]["Properties"]["TreatMissingData"] == "notBreaching"
    assert {"Ref": "RollbackTopic"} in composite["Properties"]["AlarmActions"]
    rollback = function_props(template, "RollbackFunction")
    assert rollback["Events"]["RollbackAlarm"] == {"Type": "SNS", "Properties": {"Topic": {"Ref": "RollbackTopic"}}}
    env = rollback["Environment"]["Variables"]
    assert env["LLM_GATEWAY_ROLLOUT_APPCONFIG_STRATEGY"] == {"Ref": "RolloutImmediateStrategy"}
    assert res["RolloutImmediateStrategy"]["Properties"]["FinalBakeTimeInMinutes"] == 0
    assert res["RolloutImmediateStrategy"]["Properties"]["DeploymentDurationInMinutes"] == 0
    # the CodeDeploy canaries watch the same triggers
    chat_alarms = {ref_name(a) for a in function_props(template, "ChatFunction")["DeploymentPreference"]["Alarms"]}
    assert chat_alarms >= CODE_CANARY_TRIGGERS and len(chat_alarms) <= 10  # CodeDeploy's limit
    canary = res["GatewayCanaryConfig"]["Properties"]["TrafficRoutingConfig"]
    assert canary["Type"] == "TimeBasedCanary" and canary["TimeBasedCanary"]["CanaryPercentage"] == 5


def test_the_error_trigger_is_the_gateway_cohorts_user_visible_error_rate(template):
    metrics = _alarm_metrics(template, "GatewayCohortErrorRateAlarm")
    assert _series(metrics["errors"]) == ("UserVisibleErrors", "Sum", {"service": "llm-gateway", "cohort": "gateway"})
    assert _series(metrics["requests"]) == ("Requests", "Sum", {"service": "llm-gateway", "cohort": "gateway"})
    threshold = template["Resources"]["GatewayCohortErrorRateAlarm"]["Properties"]["Threshold"]
    assert threshold == {"Ref": "ErrorRateThresholdPercent"} and template["Parameters"]["ErrorRateThresholdPercent"]["Default"] == 1
    capacity = _alarm_metrics(template, "GatewayCohortCapacityAlarm")
    assert _series(capacity["rejected"])[0] == "CapacityRejected"
    assert template["Parameters"]["CapacityRejectedThresholdPercent"]["Default"] == 0.1


@pytest.mark.parametrize(("gateway", "baseline", "breaching"), [
    (0.0015, 0.001, False),  # +50 %: at the threshold, not above
    (0.0016, 0.001, True), (0.0, 0.001, False), (0.01, None, False),  # no baseline traffic: no comparison
])
def test_the_cost_trigger_compares_cost_per_request_with_the_baseline(template, gateway, baseline, breaching):
    metrics = _alarm_metrics(template, "GatewayCohortCostAlarm")
    assert _series(metrics["costGateway"]) == ("RequestCostUSD", "Average", {"service": "llm-gateway", "cohort": "gateway"})
    assert _series(metrics["costBaseline"])[2]["cohort"] == "baseline"
    expression = metrics["costIncrease"]["Expression"]
    threshold = float(template["Parameters"]["CostIncreaseThresholdPercent"]["Default"])
    if baseline is None:
        return  # metric math yields no datapoint without both series: missing data, not breaching
    value = _eval_metric_math(expression, costGateway=_Datapoint(gateway), costBaseline=_Datapoint(baseline))
    assert (value > threshold) is breaching


@pytest.mark.parametrize(("lat", "ttft", "breaching"), [((900, 500), (0, 0), False), ((1100, 500), (0, 0), True),
                                                        ((500, 500), (2500, 1000), True)])
def test_the_latency_trigger_is_twice_the_baseline_for_answers_or_first_tokens(template, lat, ttft, breaching):
    metrics = _alarm_metrics(template, "GatewayCohortLatencyAlarm")
    values = {"latencyGateway": _Datapoint(lat[0]), "latencyBaseline": _Datapoint(lat[1]),
              "ttftGateway": _Datapoint(ttft[0]), "ttftBaseline": _Datapoint(ttft[1])}
    ratios = {name: _eval_metric_math(metrics[name]["Expression"], **values) for name in ("latencyRatio", "ttftRatio")}
    assert metrics["worstRatio"]["Expression"] == "MAX([latencyRatio, ttftRatio])"
    threshold = float(template["Parameters"]["LatencyRatioThreshold"]["Default"])
    assert (max(ratios.values()) > threshold) is breaching


@pytest.mark.parametrize(("ok", "failed", "breaching"), [(10, 10, False), (4, 11, True), (1, 3, False), (None, 6, True)])
def test_the_provider_trigger_is_failed_over_attempts_for_consecutive_minutes(template, ok, failed, breaching):
    """Every built-in provider is watched: the chat providers (their chat and transcription
    attempts alike) by the chat rollout's trigger, Replicate, which serves transcription only, by
    the transcribe canary's alarm, never by the chat rollout's composite."""
    from llm_gateway.providers.registry import provider_specs

    composite = template["Resources"]["RollbackAlarm"]["Properties"]["AlarmRule"]["Fn::Sub"]
    assert "TranscriptionProviderFailingAlarm" not in composite

    watched: list[str] = []
    for name in ("ProviderFailingAlarm", "TranscriptionProviderFailingAlarm"):
        props = template["Resources"][name]["Properties"]
        assert props["EvaluationPeriods"] == props["DatapointsToAlarm"] == {"Ref": "ProviderFailingMinutes"}
        assert props["Threshold"] == {"Ref": "ProviderFailingThresholdPercent"}
        stats = [m for m in _alarm_metrics(template, name).values() if "MetricStat" in m]
        assert len(stats) <= 10
        watched += [_series(m)[2]["provider"] for m in stats if _series(m)[2]["outcome"] == "failed"]
    # OpenAI-compatible providers are named by operators at deploy time: no static alarm can name them
    assert sorted(watched) == sorted(kind for kind in provider_specs() if kind != "openai_compatible")
    metrics = _alarm_metrics(template, "ProviderFailingAlarm")
    value = _eval_metric_math(metrics["groqRate"]["Expression"], groqOk=ok, groqFailed=failed)
    more = _alarm_metrics(template, "TranscriptionProviderFailingAlarm")
    assert _eval_metric_math(more["replicateRate"]["Expression"], replicateOk=ok, replicateFailed=failed) == value
    threshold = float(template["Parameters"]["ProviderFailingThresholdPercent"]["Default"])
    assert (value > threshold) is breaching


def test_at_100_percent_the_trailing_week_triggers_compare_with_the_same_hour_a_week_before(template):
    """The function's two figures against the cohort triggers' own thresholds (+50 % cost, 2x
    latency: one owner each); the function runs on a schedule with read access to metrics only."""
    res = template["Resources"]
    for alarm, metric, threshold in (("TrailingWeekCostAlarm", "CostIncreaseVsLastWeekPercent", "CostIncreaseThresholdPercent"),
                                     ("TrailingWeekLatencyAlarm", "LatencyVsLastWeekRatio", "LatencyRatioThreshold")):
        props = res[alarm]["Properties"]
        assert (props["Namespace"], props["MetricName"], props["Statistic"]) == ("LlmGateway", metric, "Maximum")
        assert props["Dimensions"] == [{"Name": "service", "Value": "llm-gateway"}]
        assert props["Threshold"] == {"Ref": threshold} and props["ComparisonOperator"] == "GreaterThanThreshold"
        assert props["TreatMissingData"] == "notBreaching"  # nothing published below 100 %
    assert res["GatewayCohortCostAlarm"]["Properties"]["Threshold"] == {"Ref": "CostIncreaseThresholdPercent"}
    function = function_props(template, "TrailingWeekFunction")
    assert function["CodeUri"] == "functions/trailing_week/"
    assert function["Events"]["EveryTenMinutes"]["Properties"]["Schedule"] == "rate(10 minutes)"
    statements = [st for p in function["Policies"] if isinstance(p, dict) for st in p.get("Statement", [])]
    assert [st["Action"] for st in statements] == [["cloudwatch:GetMetricData"]]


def test_the_flag_lives_in_appconfig_and_the_chat_function_reads_it(template):
    res = template["Resources"]
    assert res["RolloutProfile"]["Properties"]["Type"] == "AWS.Freeform"  # Powertools' schema, not AppConfig's
    content = res["RolloutInitialVersion"]["Properties"]["Content"]["Fn::Sub"]
    assert json.loads(content.replace("${InitialRolloutPercent}", "0")) == {
        "rollout_percent": {"default": 0, "boolean_type": False}}
    env = function_props(template, "ChatFunction")["Environment"]["Variables"]
    assert env["LLM_GATEWAY_BASELINE_MODEL"] == {"Ref": "BaselineModel"}
    for name, resource in (("APPLICATION", "RolloutApplication"), ("ENVIRONMENT", "RolloutEnvironment"),
                           ("PROFILE", "RolloutProfile")):
        assert env[f"LLM_GATEWAY_ROLLOUT_APPCONFIG_{name}"] == {"Ref": resource}
    statements = [s for p in res["ChatFunction"]["Properties"]["Policies"] if isinstance(p, dict)
                  for s in p.get("Statement", [])]
    reads = next(s for s in statements if s.get("Sid") == "RolloutFlagRead")
    assert set(reads["Action"]) == {"appconfig:StartConfigurationSession", "appconfig:GetLatestConfiguration"}
    # No AppConfig monitor: it would roll back any deployment made while the rollback alarm is in
    # ALARM, the rollback Lambda's 0 % included; the Lambda alone rolls back, and is alarmed.
    assert "Monitors" not in res["RolloutEnvironment"]["Properties"]
    assert res["RollbackFunctionErrorsAlarm"]["Properties"]["Dimensions"][0]["Value"] == {"Ref": "RollbackFunction"}
    strategies = [r["Properties"] for r in res.values() if r["Type"] == "AWS::AppConfig::DeploymentStrategy"]
    assert [(s["DeploymentDurationInMinutes"], s["FinalBakeTimeInMinutes"]) for s in strategies] == [(0, 0)]
    outputs = template["Outputs"]
    from sandbox.rollout_cli import STACK_OUTPUTS

    assert set(STACK_OUTPUTS.values()) | {"RollbackAlarmName"} <= set(outputs)


def test_the_rollback_role_holds_exactly_the_appconfig_calls_the_code_makes(template):
    source = (LAYER / "rollout" / "appconfig.py").read_text(encoding="utf-8")
    calls = set(re.findall(r"\bself\.appconfig\.([a-z_]+)\(", source))
    assert calls, "the scan found no call"
    statements = [s for p in template["Resources"]["RollbackFunction"]["Properties"]["Policies"]
                  if isinstance(p, dict) for s in p.get("Statement", [])]
    actions = {a for s in statements for a in s["Action"] if a.startswith("appconfig:")}
    assert actions == {"appconfig:" + "".join(part.capitalize() for part in op.split("_")) for op in calls}


@pytest.mark.parametrize("function", ["RollbackFunction", "TrailingWeekFunction"])
def test_a_failing_rollback_or_trailing_week_function_is_told_on_the_alarm_topic(template, function):
    """The automatic path has no caller to see it fail: a rollback Lambda that AppConfig refuses
    leaves the rollout where it was while the composite alarm says ALARM, and a trailing-week
    function that fails publishes nothing, which its alarms treat as not breaching (no trigger at
    100 %). Each one's Lambda Errors notify the alarm topic."""
    found = []
    for name, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        dims = {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
        if props.get("Namespace") == "AWS/Lambda" and props.get("MetricName") == "Errors" \
                and dims == {"FunctionName": {"Ref": function}}:
            found.append(name)
            assert props["Statistic"] == "Sum" and props["Threshold"] == 1
            assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
            assert props["TreatMissingData"] == "notBreaching"
            assert {"Ref": "AlarmTopic"} in props["AlarmActions"]
    assert len(found) == 1, found
