"""What a cold start loads in production's configuration (a state table, both secrets, Lambda's
credentials in the environment): no boto3 and no botocore client, with moto's servers standing
in for DynamoDB and Secrets Manager. Not timed (`benchmarks/bench_cold_start.py` times it); the
memory-state checks are `tests/unit/test_cold_start_imports.py`, whose child script this runs."""

from __future__ import annotations

from sandbox.local_dynamodb import start_local_dynamodb
from sandbox.local_secrets import start_local_secrets
from tests.unit.test_cold_start_imports import KEY, _serve


def test_production_container_serves_without_boto3_or_botocore_clients() -> None:
    """Production's configuration: a state table, both secrets, credentials in the environment as
    Lambda sets them (moto's servers stand in for DynamoDB and Secrets Manager). Powertools may
    import botocore's package (its user-agent hook: a few modules); nothing imports boto3 or
    botocore's client machinery."""
    dynamo = start_local_dynamodb(table_name="cold-start-imports")
    secrets = start_local_secrets({"OPENAI_API_KEY": "test-provider-key"}, {"LLM_GATEWAY_API_KEYS": KEY})
    try:
        seen = _serve({**secrets.env(), "LLM_GATEWAY_STATE_TABLE": dynamo.table_name,
                       "LLM_GATEWAY_DYNAMODB_ENDPOINT": dynamo.endpoint_url, "OPENAI_API_KEY": "",
                       "LLM_GATEWAY_API_KEYS": "", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_REGION": "us-east-1"})
    finally:
        secrets.stop()
        dynamo.stop()
    assert seen["status"] == 200
    assert not [m for m in seen["modules"] if m.startswith(("boto3", "s3transfer"))], seen["modules"]
    assert not [m for m in seen["modules"] if m in ("botocore.client", "botocore.session", "botocore.endpoint")]
