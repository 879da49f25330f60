"""One TLS context per container, shared by every HTTPS client the gateway makes.

Building a verifying context loads certifi's CA bundle (about 150 certificates): some 0.24 G
instructions, 25-40 ms of a cold start, each time. httpx builds one per client by default, and a
chat container makes up to four (the providers' engine; DynamoDB, Secrets Manager and AppConfig,
`state/aws_client.py`). An `ssl.SSLContext` is safe to share between clients and threads once
configured, and this one is never changed after it is built.
"""

from __future__ import annotations

import ssl
from functools import cache

import httpx


@cache
def tls_context() -> ssl.SSLContext:
    """httpx's default verifying context (certifi's bundle; `SSL_CERT_*` variables ignored, as
    the engine's client always did), built on first use and kept for the process."""
    return httpx.create_ssl_context(trust_env=False)
