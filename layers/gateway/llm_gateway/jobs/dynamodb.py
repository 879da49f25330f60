"""`JobStore` on the state table: `job#<id>` items, each transition one conditional write.

Table conventions are the state table's (`state/dynamodb.py`): partition key `pk`, TTL attribute
`expires_at` (epoch seconds). Calls: PutItem (create), GetItem with a consistent read (a job's
status just written must be what the next GET sees), UpdateItem (claim, finish, expire). The
client variable is `client` on purpose: tests/unit/test_template.py derives the functions'
DynamoDB permissions from the `client.<operation>(` calls in the layer.

The creator (`user`, `key_id`) is written when the job is created and never changed. Items
written before creators were recorded have neither and read as the static user's (`Job`'s
defaults), as such a job was run before: as `static`.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from llm_gateway.api.auth import STATIC_USER
from llm_gateway.jobs.store import Finish, Job, JobStoreUnavailable, job_pk

_CONDITION_FAILED = "ConditionalCheckFailedException"


def _encode(job: Job) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": job_pk(job.id)},
        "status": {"S": job.status},
        "created_at": {"N": repr(float(job.created_at))},
        "updated_at": {"N": repr(float(job.updated_at))},
        "lease_until": {"N": repr(float(job.lease_until))},
        "expires_at": {"N": str(int(job.expires_at))},
        "request": {"S": json.dumps(job.request)},
        "gateway": {"S": json.dumps(job.gateway)},
        "result_in_store": {"BOOL": job.result_in_store},
        "user": {"S": job.user},
        "key_id": {"S": job.key_id},
    }
    for name in ("runner", "result", "result_type"):
        value = getattr(job, name)
        if value is not None:
            item[name] = {"S": value}
    if job.error is not None:
        item["error"] = {"S": json.dumps(job.error)}
    return item


def _decode(item: dict[str, Any]) -> Job:
    def text(name: str) -> str | None:
        return item[name]["S"] if name in item else None

    error = text("error")
    return Job(
        id=str(item["pk"]["S"]).removeprefix("job#"),
        status=item["status"]["S"],
        created_at=float(item["created_at"]["N"]),
        updated_at=float(item["updated_at"]["N"]),
        lease_until=float(item["lease_until"]["N"]),
        expires_at=int(float(item["expires_at"]["N"])),
        request=json.loads(item["request"]["S"]),
        runner=text("runner"),
        result=text("result"),
        result_type=text("result_type"),
        result_in_store=bool(item.get("result_in_store", {}).get("BOOL", False)),
        error=json.loads(error) if error else None,
        gateway=json.loads(text("gateway") or "{}"),
        user=text("user") or STATIC_USER,
        key_id=text("key_id") or STATIC_USER,
    )


def _unavailable(exc: Exception) -> JobStoreUnavailable:
    code = exc.response.get("Error", {}).get("Code", "error") if isinstance(exc, ClientError) else type(exc).__name__
    return JobStoreUnavailable(f"DynamoDB {code}")


class DynamoJobStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def create(self, job: Job) -> None:
        try:
            self.client.put_item(TableName=self.table, Item=_encode(job),
                                 ConditionExpression="attribute_not_exists(pk)")
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc

    def get(self, job_id: str, now: float) -> Job | None:
        try:
            response = self.client.get_item(TableName=self.table, Key={"pk": {"S": job_pk(job_id)}},
                                            ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc
        item = response.get("Item")
        if not item or float(item.get("expires_at", {}).get("N", "inf")) <= now:
            return None
        return _decode(item)

    def claim(self, job_id: str, runner: str, now: float, lease_until: float, expires_at: int) -> Job | None:
        try:
            response = self.client.update_item(
                TableName=self.table, Key={"pk": {"S": job_pk(job_id)}},
                UpdateExpression="SET #s = :running, runner = :runner, updated_at = :now, lease_until = :lease, "
                                 "expires_at = :exp",
                ConditionExpression="#s = :queued AND lease_until > :now",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":running": {"S": "running"}, ":queued": {"S": "queued"}, ":runner": {"S": runner},
                    ":now": {"N": repr(float(now))}, ":lease": {"N": repr(float(lease_until))},
                    ":exp": {"N": str(int(expires_at))},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                return None
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        return _decode(response["Attributes"])

    def finish(self, job_id: str, runner: str, outcome: Finish, now: float, expires_at: int) -> bool:
        names = {"#s": "status"}
        values: dict[str, Any] = {
            ":status": {"S": outcome.status}, ":running": {"S": "running"}, ":runner": {"S": runner},
            ":now": {"N": repr(float(now))}, ":exp": {"N": str(int(expires_at))},
            ":gateway": {"S": json.dumps(outcome.gateway)}, ":in_store": {"BOOL": outcome.result_in_store},
        }
        sets = ["#s = :status", "updated_at = :now", "expires_at = :exp", "gateway = :gateway",
                "result_in_store = :in_store"]
        for name, value in (("result", outcome.result), ("result_type", outcome.result_type),
                            ("error", json.dumps(outcome.error) if outcome.error is not None else None)):
            if value is not None:
                sets.append(f"#{name} = :{name}")
                names[f"#{name}"] = name
                values[f":{name}"] = {"S": value}
        return self._conditional(job_id, "SET " + ", ".join(sets), "#s = :running AND runner = :runner", names, values)

    def expire(self, job_id: str, error: dict[str, Any], now: float, expires_at: int) -> bool:
        values = {
            ":failed": {"S": "failed"}, ":queued": {"S": "queued"}, ":running": {"S": "running"},
            ":now": {"N": repr(float(now))}, ":exp": {"N": str(int(expires_at))}, ":error": {"S": json.dumps(error)},
        }
        return self._conditional(
            job_id, "SET #s = :failed, updated_at = :now, expires_at = :exp, #e = :error",
            "(#s = :queued OR #s = :running) AND lease_until <= :now", {"#s": "status", "#e": "error"}, values,
        )

    def _conditional(self, job_id: str, update: str, condition: str, names: dict[str, str],
                     values: dict[str, Any]) -> bool:
        try:
            self.client.update_item(
                TableName=self.table, Key={"pk": {"S": job_pk(job_id)}}, UpdateExpression=update,
                ConditionExpression=condition, ExpressionAttributeNames=names, ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                return False
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        return True
