"""The gateway's own DynamoDB client (`state/aws_client.py`) against moto, for tests that also run
boto3's: in this process (inside `mock_aws`, through moto's DynamoDB WSGI app, so both clients
see one backend) or over HTTP (a moto server)."""

from __future__ import annotations

from typing import Any

import httpx

from llm_gateway.config import AwsAccess
from llm_gateway.state.aws_client import DynamoDBClient, aws_http_client

ACCESS = AwsAccess("us-east-1", "testing", "testing", "testing")
IN_PROCESS_ENDPOINT = "http://dynamodb.us-east-1.amazonaws.com"


def ours_in_process() -> DynamoDBClient:
    """Our client on moto's in-process backend (call inside `mock_aws`)."""
    from moto.moto_server.werkzeug_app import create_backend_app

    http = httpx.Client(transport=httpx.WSGITransport(app=create_backend_app("dynamodb")))
    return DynamoDBClient(http, ACCESS, endpoint=IN_PROCESS_ENDPOINT)


def ours_over_http(url: str) -> DynamoDBClient:
    """Our client on a moto server at `url`, over real HTTP."""
    return DynamoDBClient(aws_http_client(url), ACCESS, endpoint=url)


def count_calls(client: Any) -> dict[str, int]:
    """Operation name → calls made from now on, for a boto3 client or ours."""
    counts: dict[str, int] = {}
    if isinstance(client, DynamoDBClient):
        def on_request(request: httpx.Request) -> None:
            name = request.headers["x-amz-target"].rsplit(".", 1)[-1]
            counts[name] = counts.get(name, 0) + 1

        client.http.event_hooks["request"].append(on_request)
        return counts

    def hook(model: Any, **_: Any) -> None:
        counts[model.name] = counts.get(model.name, 0) + 1

    client.meta.events.register("before-call.dynamodb.*", hook)
    return counts
