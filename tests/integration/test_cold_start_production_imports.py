"""What a cold start loads in production's configuration (a state table, both secrets, Lambda's
credentials in the environment): no boto3 and no botocore client, with moto's servers standing
in for DynamoDB and Secrets Manager. Not timed (`benchmarks/bench_cold_start.py` times it); the
memory-state checks are `tests/unit/test_cold_start_imports.py`, whose child script this runs."""

from __future__ import annotations

import json
import uuid

import boto3
from moto.server import ThreadedMotoServer

from sandbox.local_dynamodb import start_local_dynamodb
from tests.unit.test_cold_start_imports import KEY, _serve


def test_production_container_serves_without_boto3_or_botocore_clients() -> None:
    """Production's configuration: a state table, both secrets, credentials in the environment as
    Lambda sets them (moto's servers stand in for DynamoDB and Secrets Manager). Powertools may
    import botocore's package (its user-agent hook: a few modules); nothing imports boto3 or
    botocore's client machinery."""
    dynamo = start_local_dynamodb(table_name="cold-start-imports")
    secrets = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    secrets.start()
    try:
        host, port = secrets.get_host_and_port()
        url = f"http://{host}:{port}"
        admin = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=url,
                             aws_access_key_id="testing", aws_secret_access_key="testing")
        # moto's server in this process shares its backends with in-process moto: names of its own
        providers, clients = f"providers-{uuid.uuid4().hex}", f"clients-{uuid.uuid4().hex}"
        admin.create_secret(Name=providers, SecretString=json.dumps({"OPENAI_API_KEY": "test-provider-key"}))
        admin.create_secret(Name=clients, SecretString=json.dumps({"LLM_GATEWAY_API_KEYS": KEY}))
        seen = _serve({"LLM_GATEWAY_STATE_TABLE": dynamo.table_name, "LLM_GATEWAY_DYNAMODB_ENDPOINT": dynamo.endpoint_url,
                       "LLM_GATEWAY_PROVIDER_SECRET": providers, "LLM_GATEWAY_CLIENT_KEY_SECRET": clients,
                       "AWS_ENDPOINT_URL_SECRETS_MANAGER": url, "OPENAI_API_KEY": "", "LLM_GATEWAY_API_KEYS": "",
                       "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"})
    finally:
        secrets.stop()
        dynamo.stop()
    assert seen["status"] == 200
    assert not [m for m in seen["modules"] if m.startswith(("boto3", "s3transfer"))], seen["modules"]
    assert not [m for m in seen["modules"] if m in ("botocore.client", "botocore.session", "botocore.endpoint")]
