"""The automatic rollback: an alarm notification in, the rollout at 0 % and a notice out.

The rollback Lambda (functions/rollback/app.py) is subscribed to the rollback topic, which only
the composite rollback alarm notifies. A notification whose new state is ALARM sets the rollout
to 0 % at once (AppConfig, the immediate strategy, stopping any deployment still running) and
publishes what it did on the alarm topic; OK and INSUFFICIENT_DATA notifications change nothing
(going forward again is an operator's decision). What the environment held before is read only
to be reported: a read that fails (a document deployed by hand that does not parse, AppConfig
refusing the read) is logged and the rollback goes on. A notification delivered again (SNS and
Lambda's retries are at least once) finds 0 % in force or deploying and leaves it alone.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from llm_gateway.rollout.appconfig import AppConfigRollout

LOG = logging.getLogger("llm_gateway.rollout")


def alarm_notifications(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The CloudWatch alarm notifications in an SNS event (others are skipped, logged)."""
    found = []
    for record in event.get("Records") or []:
        try:
            message = json.loads(record["Sns"]["Message"])
        except (KeyError, TypeError, ValueError):
            LOG.warning("not an SNS alarm notification: %s", str(record)[:200])
            continue
        if isinstance(message, dict) and "NewStateValue" in message:
            found.append(message)
    return found


def roll_back(event: dict[str, Any], rollout: AppConfigRollout, *, sns: Any = None,
              topic_arn: str | None = None) -> dict[str, Any]:
    """Set the rollout to 0 % for the first notification that says ALARM; notify."""
    for alarm in alarm_notifications(event):
        name = str(alarm.get("AlarmName", "?"))
        if alarm.get("NewStateValue") != "ALARM":
            LOG.info("alarm %s is %s: nothing to do", name, alarm.get("NewStateValue"))
            continue
        before = _status_before(rollout)
        deploying = before.get("deploying") or {}
        if deploying.get("percent") == 0 or (before.get("percent") == 0 and not deploying):
            # delivered again (SNS, Lambda retries): stopping a 0 % still deploying would put the
            # environment back where it was, and 0 % in force needs no new version
            LOG.warning("alarm %s in ALARM: the rollout is already at 0 %% or on its way there", name)
            return {"rolled_back": False, "alarm": name, "reason": "the rollout is already at 0 % or deploying it"}
        started = rollout.set(0, description=f"automatic rollback: {name} in ALARM")
        reason = str(alarm.get("NewStateReason", ""))[:500]
        summary = (f"llm-gateway rollout set to 0% (was {before.get('percent')}%) because {name} is in ALARM. "
                   f"Reason: {reason} Every user is served by the baseline within the flag cache time. "
                   "Go forward again with `llm-gateway rollout set N --stack <stack>` once the cause is fixed.")
        LOG.warning(summary)
        if sns is not None and topic_arn:
            sns.publish(TopicArn=topic_arn, Subject="llm-gateway: rollout rolled back to 0%"[:100], Message=summary)
        return {"rolled_back": True, "alarm": name, "previous": before.get("percent"), **started}
    return {"rolled_back": False}


def _status_before(rollout: AppConfigRollout) -> dict[str, Any]:
    """The rollout's status for the notice, or {} when it cannot be read."""
    try:
        return rollout.status()
    except Exception as exc:  # only reported: never a reason not to roll back
        LOG.warning("rollout status unreadable before the rollback (rolling back anyway): %s", exc)
        return {}
