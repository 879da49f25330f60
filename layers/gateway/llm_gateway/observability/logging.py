"""Structured logging (Powertools Logger) that cannot leak a configured secret.

Redaction works on the final JSON line, after every field (message, extra keys, exception
text) has been rendered, so no code path can route a key around it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

REDACTED = "[REDACTED]"
SERVICE_NAME = "llm-gateway"


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFormatter(LambdaPowertoolsFormatter):
    def __init__(self, secrets: Iterable[str], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        # Longest first, so a key that contains another key is removed whole.
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self._secrets)


def build_logger(secrets: Iterable[str], service: str = SERVICE_NAME) -> Logger:
    """One Logger per container; `secrets` are the provider and client keys from Settings."""
    return Logger(service=service, logger_formatter=RedactingFormatter(secrets))
