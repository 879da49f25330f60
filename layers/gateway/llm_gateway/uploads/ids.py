"""Random, unguessable ids for uploads (`file-…`) and jobs (`job-…`): 24 random bytes, urlsafe.

An id is the only thing that names an upload or a job, so it is checked against its exact shape
before it reaches S3 or DynamoDB: nothing a caller sends becomes part of a key unchecked.
"""

from __future__ import annotations

import re
import secrets

FILE_PREFIX = "file-"
JOB_PREFIX = "job-"
_RANDOM_BYTES = 24
_RANDOM_CHARS = 32  # base64 of 24 bytes, unpadded
_SHAPES = {prefix: re.compile(rf"^{prefix}[A-Za-z0-9_-]{{{_RANDOM_CHARS}}}$") for prefix in (FILE_PREFIX, JOB_PREFIX)}


def new_id(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(_RANDOM_BYTES)


def is_id(value: object, prefix: str) -> bool:
    return isinstance(value, str) and bool(_SHAPES[prefix].match(value))
