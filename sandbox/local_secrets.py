"""The chat function's two secrets on moto's Secrets Manager server, for tests and benchmarks of
the production configuration (keys read from Secrets Manager, as on AWS).

The names are unique per call: moto's server in a process shares its backends with in-process
moto, so two users of fixed names in one test worker would collide.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import boto3
from moto.server import ThreadedMotoServer


@dataclass
class LocalSecrets:
    url: str
    provider_secret: str
    client_secret: str
    server: ThreadedMotoServer = field(repr=False)

    def env(self) -> dict[str, str]:
        """What names the secrets and where they are, as the template sets it on AWS."""
        return {"LLM_GATEWAY_PROVIDER_SECRET": self.provider_secret, "LLM_GATEWAY_CLIENT_KEY_SECRET": self.client_secret,
                "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.url}

    def put(self, name: str, value: dict[str, str]) -> None:
        """Replace a secret's value (a key rotated, or a secret filled after the deploy)."""
        self._client().put_secret_value(SecretId=name, SecretString=json.dumps(value))

    def stop(self) -> None:
        self.server.stop()

    def _client(self):  # type: ignore[no-untyped-def]
        return boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=self.url,
                            aws_access_key_id="testing", aws_secret_access_key="testing")


def start_local_secrets(providers: dict[str, str], clients: dict[str, str]) -> LocalSecrets:
    """Start the server with the provider-key secret and the client-key secret holding these."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    suffix = uuid.uuid4().hex
    local = LocalSecrets(f"http://{host}:{port}", f"providers-{suffix}", f"clients-{suffix}", server)
    admin = local._client()
    admin.create_secret(Name=local.provider_secret, SecretString=json.dumps(providers))
    admin.create_secret(Name=local.client_secret, SecretString=json.dumps(clients))
    return local
