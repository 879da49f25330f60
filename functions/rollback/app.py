"""Rollback Lambda: the composite rollback alarm's notification in (SNS), the rollout at 0 % out.

Thin: the logic is `llm_gateway.rollout.rollback`. The AppConfig identifiers and the alarm topic
come from the environment the template sets; without them (`llm-gateway invoke rollback
events/rollback_alarm.json`) the local flag file (LLM_GATEWAY_ROLLOUT_FILE) is rolled back.
"""

from __future__ import annotations

import os
from typing import Any

import boto3

from llm_gateway.rollout.appconfig import AppConfigRollout, AppConfigTarget
from llm_gateway.rollout.flag import LocalRollout
from llm_gateway.rollout.rollback import roll_back


def _target() -> AppConfigTarget:
    return AppConfigTarget(
        application=os.environ["LLM_GATEWAY_ROLLOUT_APPCONFIG_APPLICATION"],
        environment=os.environ["LLM_GATEWAY_ROLLOUT_APPCONFIG_ENVIRONMENT"],
        profile=os.environ["LLM_GATEWAY_ROLLOUT_APPCONFIG_PROFILE"],
        strategy=os.environ["LLM_GATEWAY_ROLLOUT_APPCONFIG_STRATEGY"],
    )


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    topic = os.environ.get("LLM_GATEWAY_ALARM_TOPIC_ARN")
    rollout: Any
    if os.environ.get("LLM_GATEWAY_ROLLOUT_APPCONFIG_APPLICATION") or not os.environ.get("LLM_GATEWAY_ROLLOUT_FILE"):
        rollout = AppConfigRollout(boto3.client("appconfig"), _target())
    else:
        rollout = LocalRollout(os.environ["LLM_GATEWAY_ROLLOUT_FILE"])
    return roll_back(event, rollout, sns=boto3.client("sns") if topic else None, topic_arn=topic)
