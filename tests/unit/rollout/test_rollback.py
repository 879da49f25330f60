"""The rollout in AppConfig (operators' `--stack`, the rollback Lambda) against moto.

moto serves AppConfig's applications, profiles and hosted configuration versions, SNS and
CloudFormation, but not environments or deployments: `DeploymentsOnMoto` adds those three calls
(ListDeployments, StopDeployment, StartDeployment) over the moto client, validating each call's
parameters against botocore's AppConfig model as the real client would, and keeping the
deployments so `status` reads back what was deployed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator
from moto import mock_aws

from llm_gateway.rollout.appconfig import RUNNING, AppConfigRollout, AppConfigTarget
from llm_gateway.rollout.flag import LocalRollout, flag_document
from llm_gateway.rollout.rollback import roll_back
from sandbox import rollout_cli
from sandbox.apigw import load_handler_module

REPO = Path(__file__).resolve().parents[3]
EVENT = json.loads((REPO / "events" / "rollback_alarm.json").read_text())


class DeploymentsOnMoto:
    """moto's AppConfig client plus the deployment calls moto lacks (see the module docstring)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.deployments: list[dict[str, Any]] = []
        self.stopped: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _check(self, operation: str, params: dict[str, Any]) -> None:
        shape = self._client.meta.service_model.operation_model(operation).input_shape
        report = ParamValidator().validate(params, shape)
        assert not report.has_errors(), report.generate_report()

    def list_deployments(self, **params: Any) -> dict[str, Any]:
        self._check("ListDeployments", params)
        return {"Items": [dict(d) for d in self.deployments]}

    def stop_deployment(self, **params: Any) -> dict[str, Any]:
        """As the API reference says: without AllowRevert only a DEPLOYING deployment stops
        (BadRequestException otherwise); with it, one in progress is ROLLED_BACK."""
        self._check("StopDeployment", params)
        (deployment,) = [d for d in self.deployments if d["DeploymentNumber"] == params["DeploymentNumber"]]
        if deployment["State"] != "DEPLOYING" and not params.get("AllowRevert"):
            raise ClientError({"Error": {"Code": "BadRequestException",
                                         "Message": "only a DEPLOYING deployment can be stopped"}}, "StopDeployment")
        self.stopped.append(params["DeploymentNumber"])
        deployment["State"] = "ROLLED_BACK" if deployment["State"] in RUNNING else "REVERTED"
        return {}

    def start_deployment(self, **params: Any) -> dict[str, Any]:
        self._check("StartDeployment", params)
        if any(d["State"] in RUNNING | {"ROLLING_BACK"} for d in self.deployments):
            raise ClientError({"Error": {"Code": "ConflictException", "Message": "a deployment is in progress"}},
                              "StartDeployment")
        number = len(self.deployments) + 1
        self.deployments.append({"DeploymentNumber": number, "ConfigurationProfileId": params["ConfigurationProfileId"],
                                 "ConfigurationVersion": params["ConfigurationVersion"],
                                 "DeploymentStrategyId": params["DeploymentStrategyId"], "State": "COMPLETE"})
        return {"DeploymentNumber": number, "State": "DEPLOYING"}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def _flag(percent: float) -> tuple[AppConfigRollout, DeploymentsOnMoto]:
    client = DeploymentsOnMoto(boto3.client("appconfig"))
    app = client.create_application(Name="llm-gateway")["Id"]
    profile = client.create_configuration_profile(ApplicationId=app, Name="rollout", LocationUri="hosted",
                                                  Type="AWS.AppConfig.FeatureFlags")["Id"]
    rollout = AppConfigRollout(client, AppConfigTarget(app, "env1234", profile, "strat12"))
    rollout.set(percent, description="initial")
    return rollout, client


def test_set_deploys_a_new_version_and_status_reads_it_back(aws: Any) -> None:
    rollout, client = _flag(5)
    assert rollout.status()["percent"] == 5
    started = rollout.set(25, description="week 2")
    assert started["version"] == 2 and rollout.status() == {"percent": 25, "version": 2, "deploying": None}
    stored = client.get_hosted_configuration_version(ApplicationId=rollout.target.application,
                                                     ConfigurationProfileId=rollout.target.profile, VersionNumber=2)
    assert json.loads(stored["Content"].read()) == flag_document(25)
    assert client.deployments[-1]["DeploymentStrategyId"] == "strat12"


def test_a_deployment_still_baking_is_stopped_so_the_rollback_never_waits(aws: Any) -> None:
    rollout, client = _flag(5)
    rollout.set(25, description="week 2")
    client.deployments[-1]["State"] = "BAKING"
    assert rollout.status()["deploying"] == {"deployment": 2, "state": "BAKING", "percent": 25}
    rollout.set(0, description="rollback")
    assert client.stopped == [2]
    assert rollout.status()["percent"] == 0


def test_the_rollback_lambda_sets_the_rollout_to_0_on_a_real_alarm_notification(aws: Any) -> None:
    rollout, _ = _flag(25)
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    result = roll_back(EVENT, rollout, sns=sns, topic_arn=topic)
    assert result["rolled_back"] and result["previous"] == 25 and result["percent"] == 0
    assert result["alarm"] == "llm-gateway-rollback"
    assert rollout.status()["percent"] == 0
    (message,) = sqs.receive_message(QueueUrl=queue)["Messages"]
    assert "rollout set to 0% (was 25" in json.loads(message["Body"])["Message"]


def test_an_ok_notification_changes_nothing(aws: Any) -> None:
    rollout, client = _flag(25)
    event = json.loads(json.dumps(EVENT))
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    message["NewStateValue"] = "OK"
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    assert roll_back(event, rollout) == {"rolled_back": False}
    assert rollout.status()["percent"] == 25 and len(client.deployments) == 1


def test_the_handler_reads_its_targets_from_the_template_environment(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rollout, client = _flag(5)
    target = rollout.target
    for name, value in (("APPLICATION", target.application), ("ENVIRONMENT", target.environment),
                        ("PROFILE", target.profile), ("STRATEGY", "immediate")):
        monkeypatch.setenv(f"LLM_GATEWAY_ROLLOUT_APPCONFIG_{name}", value)
    module = load_handler_module("rollback")
    monkeypatch.setattr(module.boto3, "client", lambda service, **kw: client if service == "appconfig" else boto3.client(service, **kw))
    assert module.lambda_handler(EVENT, None)["rolled_back"]
    assert client.deployments[-1]["DeploymentStrategyId"] == "immediate"
    assert rollout.status()["percent"] == 0


def test_the_cli_finds_a_stack_through_its_outputs(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    rollout, client = _flag(5)
    outputs = {"RolloutApplicationId": rollout.target.application, "RolloutEnvironmentId": "env1234",
               "RolloutProfileId": rollout.target.profile, "RolloutImmediateStrategyId": "strat12"}

    class Session:
        def client(self, service: str) -> Any:
            if service == "appconfig":
                return client
            assert service == "cloudformation"
            return type("CF", (), {"describe_stacks": staticmethod(lambda StackName: {"Stacks": [{"Outputs": [
                {"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]}]})})()

    assert rollout_cli.main(["set", "25", "--stack", "gw"], session=Session()) == 0
    assert rollout.status()["percent"] == 25
    assert client.deployments[-1]["DeploymentStrategyId"] == "strat12"  # a step forward is immediate: nothing bakes
    assert rollout_cli.main(["rollback", "--stack", "gw"], session=Session()) == 0
    assert rollout.status()["percent"] == 0
    assert client.deployments[-1]["DeploymentStrategyId"] == "strat12"  # a rollback is immediate
    capsys.readouterr()
    assert rollout_cli.main(["status", "--stack", "gw"], session=Session()) == 0
    assert json.loads(capsys.readouterr().out)["percent"] == 0
    assert rollout_cli.main(["set", "120", "--stack", "gw"], session=Session()) == 2


def test_the_cli_sets_a_local_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rollout.json"
    assert rollout_cli.main(["set", "5", "--file", str(path)]) == 0
    assert LocalRollout(path).status()["percent"] == 5
    assert rollout_cli.main(["rollback", "--file", str(path)]) == 0
    assert LocalRollout(path).status()["percent"] == 0


def test_status_of_a_flag_file_that_is_not_there_is_an_error_not_a_null_percent(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A mistyped `--file` printed `"percent": null` and exited 0, as if the rollout were merely
    unset: it is one line on stderr and exit 2 (`set` still creates the file)."""
    missing = tmp_path / "nope.json"
    assert rollout_cli.main(["status", "--file", str(missing)]) == 2
    assert "no flag file" in capsys.readouterr().err
    assert rollout_cli.main(["set", "5", "--file", str(missing)]) == 0
    assert rollout_cli.main(["status", "--file", str(missing)]) == 0


def test_rehearse_sets_the_rollback_alarm_and_waits_for_the_flag_at_0(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """On AWS the alarm's action runs the rollback Lambda; here setting the alarm state delivers
    the same SNS notification to `roll_back` (what the Lambda runs), so the CLI's wiring is proven:
    the alarm named by the stack output, then the flag read back until 0 %."""
    rollout, client = _flag(25)
    outputs = {"RolloutApplicationId": rollout.target.application, "RolloutEnvironmentId": "env1234",
               "RolloutProfileId": rollout.target.profile, "RolloutImmediateStrategyId": "strat12",
               "RollbackAlarmName": "gw-rollback"}
    set_states: list[dict[str, Any]] = []

    class CloudWatch:
        def set_alarm_state(self, **params: Any) -> None:
            set_states.append(params)
            message = json.loads(EVENT["Records"][0]["Sns"]["Message"])
            message.update(AlarmName=params["AlarmName"], NewStateValue=params["StateValue"])
            event = {"Records": [{"Sns": {"Message": json.dumps(message)}}]}
            roll_back(event, rollout)

    class Session:
        def client(self, service: str) -> Any:
            if service == "appconfig":
                return client
            if service == "cloudwatch":
                return CloudWatch()
            return type("CF", (), {"describe_stacks": staticmethod(lambda StackName: {"Stacks": [{"Outputs": [
                {"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]}]})})()

    assert rollout_cli.main(["rehearse", "--stack", "gw"], session=Session()) == 0
    assert set_states[0]["AlarmName"] == "gw-rollback" and set_states[0]["StateValue"] == "ALARM"
    result = json.loads(capsys.readouterr().out)
    assert result["rehearsal"] == "passed" and result["before"] == 25 and rollout.status()["percent"] == 0


def test_the_rollback_lambda_stops_a_step_still_baking_under_the_alarm(aws: Any) -> None:
    """The case the automatic rollback exists for: `set 25` is baking (10 minutes under the alarm)
    when a trigger fires. StopDeployment refuses a BAKING deployment unless AllowRevert is given."""
    rollout, client = _flag(5)
    rollout.set(25, description="week 2")
    client.deployments[-1]["State"] = "BAKING"
    result = roll_back(EVENT, rollout)
    assert result["rolled_back"] and result["percent"] == 0
    assert client.stopped == [2] and client.deployments[1]["State"] == "ROLLED_BACK"
    assert rollout.status() == {"percent": 0, "version": 3, "deploying": None}


def _deploy_raw(rollout: AppConfigRollout, client: DeploymentsOnMoto, content: bytes) -> None:
    """A version deployed by hand (console, CLI) that the gateway's own `set` would have refused."""
    version = client.create_hosted_configuration_version(
        ApplicationId=rollout.target.application, ConfigurationProfileId=rollout.target.profile,
        Content=content, ContentType="application/json")["VersionNumber"]
    client.start_deployment(ApplicationId=rollout.target.application, EnvironmentId=rollout.target.environment,
                            DeploymentStrategyId="strat12", ConfigurationProfileId=rollout.target.profile,
                            ConfigurationVersion=str(version))


@pytest.mark.parametrize("content", [b'{"rollout_percent": {"default": "25", "boolean_type": false}}', b"not json"])
def test_a_flag_document_that_does_not_parse_never_stops_the_rollback(aws: Any, content: bytes) -> None:
    """What the environment held before is only reported: a document it cannot read (a string
    percentage, broken JSON) must not keep the rollout where it is."""
    rollout, client = _flag(25)
    _deploy_raw(rollout, client, content)
    result = roll_back(EVENT, rollout)
    assert result["rolled_back"] and result["percent"] == 0 and result["previous"] is None
    assert rollout.status()["percent"] == 0


def test_a_failing_status_read_never_stops_the_rollback(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rollout, client = _flag(25)

    def denied(**_params: Any) -> Any:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}},
                          "GetHostedConfigurationVersion")

    monkeypatch.setattr(client, "get_hosted_configuration_version", denied, raising=False)
    result = roll_back(EVENT, rollout)
    assert result["rolled_back"] and result["previous"] is None
    assert client.deployments[-1]["ConfigurationVersion"] == "2"


def test_a_notification_delivered_twice_leaves_the_rollback_alone(aws: Any) -> None:
    """SNS and Lambda's asynchronous retries deliver at least once: a second run while the first
    one's 0 % is still deploying must not stop it (a stopped deployment rolls the environment back
    to the percentage it left), and once 0 % is in force there is nothing to deploy again."""
    rollout, client = _flag(25)
    assert roll_back(EVENT, rollout)["rolled_back"]
    client.deployments[-1]["State"] = "DEPLOYING"
    again = roll_back(EVENT, rollout)
    assert not again["rolled_back"] and client.stopped == [] and len(client.deployments) == 2
    client.deployments[-1]["State"] = "COMPLETE"
    assert not roll_back(EVENT, rollout)["rolled_back"] and len(client.deployments) == 2
    assert rollout.status() == {"percent": 0, "version": 2, "deploying": None}
