"""An embedded DynamoDB for `make dev`: moto's server on loopback with the state table created.

The local path should be the real one: the same DynamoStateStore, the same conditional writes,
over real HTTP, just against moto instead of AWS. Fake credentials are set only if none exist,
so nothing here can reach a real account by accident (the endpoint is loopback anyway).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from llm_gateway.state.dynamodb import DynamoStateStore, client_config, create_table
from sandbox.wsgi_server import KeepAliveWSGIServer

DEFAULT_TABLE = "llm-gateway-state"
REGION = "us-east-1"


@dataclass
class LocalDynamo:
    endpoint_url: str
    table_name: str
    server: DynamoDBServer

    def client(self) -> Any:
        return boto3.client(
            "dynamodb", region_name=REGION, endpoint_url=self.endpoint_url, config=client_config(),
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )

    def store(self) -> DynamoStateStore:
        return DynamoStateStore(self.client(), self.table_name)

    def stop(self) -> None:
        self.server.stop()


_WRITE_LOCK = threading.RLock()
_WRITES = ("update_item", "put_item", "delete_item", "transact_write_items")


def make_moto_atomic() -> None:
    """Give moto the per-item atomicity real DynamoDB has (idempotent, process-wide).

    moto 5.2 evaluates a ConditionExpression and applies the write without any lock (read,
    check, write), and `transact_write_items` restores a deep copy of the table when a
    transaction is cancelled, erasing concurrent writes. Under concurrent containers both
    over-admit, which DynamoDB never does. So the embedded DynamoDB (and every test that drives
    moto from several threads) serializes moto's writes; what stays real is our part: the
    condition expressions and the one-call shapes.
    """
    from moto.dynamodb.models import DynamoDBBackend

    for name in _WRITES:
        original = getattr(DynamoDBBackend, name)
        if getattr(original, "_serialized", False):
            continue

        def serialized(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with _WRITE_LOCK:
                return _original(self, *args, **kwargs)

        serialized._serialized = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, serialized)


class DynamoDBServer:
    """moto's DynamoDB app alone, on a keep-alive threaded server on loopback.

    moto's `ThreadedMotoServer` serves every AWS service: for each request its dispatcher matches
    the Host against the URL patterns of all of them, under one lock, and its werkzeug server
    closes every connection after one request (`sandbox.wsgi_server` says why that hurt). Under
    a local load test those two cost more than DynamoDB itself. The app is moto's own DynamoDB
    app, so the API and its behaviour are unchanged.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import create_backend_app

        self._server = KeepAliveWSGIServer(host, port, create_backend_app("dynamodb"))
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-dynamodb", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def start_local_dynamodb(port: int = 0, table_name: str = DEFAULT_TABLE) -> LocalDynamo:
    """Start moto on 127.0.0.1 (port 0 = any free port) and create the state table."""
    make_moto_atomic()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    server = DynamoDBServer("127.0.0.1", port)
    server.start()
    host, bound = server.get_host_and_port()
    local = LocalDynamo(endpoint_url=f"http://{host}:{bound}", table_name=table_name, server=server)
    try:
        create_table(local.client(), table_name)
    except ClientError as exc:
        # moto keeps one backend per process: a second server in the same process sees the table
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            server.stop()
            raise
    except Exception:
        server.stop()
        raise
    return local
