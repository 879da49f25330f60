"""An embedded S3 for `make dev`: moto's S3 app on loopback, with the audio bucket created.

Uploads then work locally as in AWS: `POST /v1/audio/uploads` answers a presigned URL of this
server, the client PUTs the bytes to it over HTTP, and the gateway reads them back by `file_id`
(the same `S3AudioObjects`, path-style addressing). moto does not check signatures or enforce
the bucket's lifecycle; the gateway checks the size and the age itself. Served by werkzeug's
threaded server (not `sandbox.wsgi_server`, which answers HEAD with Content-Length 0: S3's HEAD
must carry the object's size).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

DEFAULT_BUCKET = "llm-gateway-audio-local"
REGION = "us-east-1"


@dataclass
class LocalS3:
    endpoint_url: str
    bucket: str
    server: Any
    thread: threading.Thread

    def client(self) -> Any:
        from llm_gateway.uploads.s3 import s3_client

        return s3_client(self.endpoint_url)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def start_local_s3(port: int = 0, bucket: str = DEFAULT_BUCKET) -> LocalS3:
    """Start moto's S3 on 127.0.0.1 (port 0 = any free port) and create the bucket."""
    from moto.moto_server.werkzeug_app import create_backend_app
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            return  # the gateway's own request lines are what `make dev` prints

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", REGION)):
        os.environ.setdefault(name, value)
    server = make_server("127.0.0.1", port, create_backend_app("s3"), threaded=True, request_handler=Quiet)
    thread = threading.Thread(target=server.serve_forever, name="local-s3", daemon=True)
    thread.start()
    local = LocalS3(endpoint_url=f"http://127.0.0.1:{server.server_port}", bucket=bucket, server=server, thread=thread)
    try:
        local.client().create_bucket(Bucket=bucket)
    except ClientError as exc:
        # moto keeps one backend per process: a second server in the same process sees the bucket
        if exc.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            local.stop()
            raise
    except Exception:
        local.stop()
        raise
    return local
