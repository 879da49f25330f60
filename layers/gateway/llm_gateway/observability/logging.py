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
        self._secrets: tuple[str, ...] = ()
        self.add_secrets(secrets)

    def add_secrets(self, secrets: Iterable[str]) -> None:
        # Longest first, so a key that contains another key is removed whole.
        merged = set(self._secrets) | {s for s in secrets if s}
        self._secrets = tuple(sorted(merged, key=len, reverse=True))

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self._secrets)


def build_logger(secrets: Iterable[str], service: str = SERVICE_NAME) -> Logger:
    """One Logger per container; `secrets` are the provider and client keys from Settings.

    Powertools Loggers of one service share one stdlib handler, and a second Logger keeps the
    first one's formatter. So the secrets are added to whatever redacting formatter the handler
    already has (a union: every key any gateway in this process holds stays redacted).
    """
    secrets = tuple(secrets)
    logger = Logger(service=service, logger_formatter=RedactingFormatter(secrets))
    for handler in logger.handlers:
        formatter = handler.formatter
        if isinstance(formatter, RedactingFormatter):
            formatter.add_secrets(secrets)
        else:
            handler.setFormatter(RedactingFormatter(secrets))
    return logger
