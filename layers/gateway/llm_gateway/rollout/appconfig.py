"""The rollout percentage in AWS AppConfig, as operators and the rollback Lambda change it.

Setting a percentage is two AppConfig calls: a new hosted configuration version holding the
feature-flags document (`flag.flag_document`), then a deployment of it to the environment the
chat function reads. A deployment still running (baking) for the environment would refuse a new
one, so it is stopped first: a rollback must never wait. StopDeployment stops only a DEPLOYING
deployment unless `AllowRevert` is given (the API reference); the stack's own strategy bakes
nothing, but a deployment started by hand with another one may be BAKING when a rollback comes,
so it is stopped with `AllowRevert` (an in-progress deployment then ends ROLLED_BACK, as a plain
stop would). Reading is the newest deployment's version, and a running one is reported too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from llm_gateway.rollout.flag import flag_document, percent_in

RUNNING = frozenset({"BAKING", "DEPLOYING", "VALIDATING"})
CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class AppConfigTarget:
    """AppConfig identifiers of the rollout flag (the stack's outputs)."""

    application: str
    environment: str
    profile: str
    strategy: str  # the deployment strategy for changes (the stack's immediate one)


class AppConfigRollout:
    def __init__(self, appconfig: Any, target: AppConfigTarget) -> None:
        self.appconfig = appconfig
        self.target = target

    def _deployments(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"ApplicationId": self.target.application, "EnvironmentId": self.target.environment}
        while True:
            page = self.appconfig.list_deployments(**kwargs)
            items += page.get("Items", [])
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        mine = [d for d in items if d.get("ConfigurationProfileId", self.target.profile) == self.target.profile]
        return sorted(mine, key=lambda d: d["DeploymentNumber"], reverse=True)

    def _percent_of(self, version: str | int) -> float:
        answer = self.appconfig.get_hosted_configuration_version(
            ApplicationId=self.target.application, ConfigurationProfileId=self.target.profile,
            VersionNumber=int(version))
        content = answer["Content"]
        raw = content.read() if hasattr(content, "read") else content
        return percent_in(json.loads(raw))

    def _revert_allowed(self) -> dict[str, Any]:
        """`AllowRevert=True` when this botocore knows it (a runtime's older one would refuse the
        unknown parameter; the service then still stops a DEPLOYING deployment)."""
        try:
            members = self.appconfig.meta.service_model.operation_model("StopDeployment").input_shape.members
        except AttributeError:  # not a botocore client (a stand-in): give it
            return {"AllowRevert": True}
        return {"AllowRevert": True} if "AllowRevert" in members else {}

    def status(self) -> dict[str, Any]:
        """{"percent": what the environment holds (None: never deployed), "deploying": a running
        deployment's number, state and target percentage, or None}."""
        deployments = self._deployments()
        running = next((d for d in deployments if d.get("State") in RUNNING), None)
        done = next((d for d in deployments if d.get("State") == "COMPLETE"), None)
        status: dict[str, Any] = {"percent": None, "version": None, "deploying": None}
        if done is not None:
            status.update(percent=self._percent_of(done["ConfigurationVersion"]),
                          version=int(done["ConfigurationVersion"]))
        if running is not None:
            status["deploying"] = {"deployment": running["DeploymentNumber"], "state": running["State"],
                                   "percent": self._percent_of(running["ConfigurationVersion"])}
        return status

    def set(self, percent: float, *, description: str) -> dict[str, Any]:
        """Deploy `percent` now (stopping a deployment still running). Returns what was started."""
        document = flag_document(percent)  # refuses a bad percentage before any call
        for deployment in self._deployments():
            if deployment.get("State") in RUNNING:
                self.appconfig.stop_deployment(ApplicationId=self.target.application,
                                               EnvironmentId=self.target.environment,
                                               DeploymentNumber=deployment["DeploymentNumber"],
                                               **self._revert_allowed())
        version = self.appconfig.create_hosted_configuration_version(
            ApplicationId=self.target.application, ConfigurationProfileId=self.target.profile,
            Content=json.dumps(document).encode(), ContentType=CONTENT_TYPE, Description=description[:1024],
        )["VersionNumber"]
        started = self.appconfig.start_deployment(
            ApplicationId=self.target.application, EnvironmentId=self.target.environment,
            DeploymentStrategyId=self.target.strategy, ConfigurationProfileId=self.target.profile,
            ConfigurationVersion=str(version), Description=description[:1024],
        )
        return {"percent": percent_in(document), "version": int(version),
                "deployment": started.get("DeploymentNumber"), "state": started.get("State")}
