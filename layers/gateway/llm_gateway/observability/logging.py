"""Structured logging (Powertools Logger) that cannot leak a configured secret, from any logger.

Redaction works on final lines, after every field (message, extra keys, exception text) has been
rendered, so no code path can route a key around it. It covers:

- every logger, not only ours: botocore, httpx and any library log through the root logger's
  handler (on Lambda, the runtime's), so every handler that exists when a gateway starts gets a
  redacting formatter (`redact_all_handlers`), as does `logging.lastResort`;
- keys the gateway issued (`sk-gw-…`), by their shape, though no process knows them all;
- escaped forms of each key, as they appear once a key has passed through JSON (`\\"`, `\\\\`,
  `\\u00e9`) or a URL (`%2B`, `+`): a key quoted in a logged request body or URL is still a key.

The secrets are one process-wide set (logging itself is process-wide): every key any gateway in
this process holds is redacted from every line.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import formatter as _powertools_formatter
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

# Powertools tests every attribute of every record against this tuple (24 names, a linear scan
# each, about 8 µs a line); it is only ever used with `in`, so a frozenset answers the same.
_powertools_formatter.RESERVED_LOG_ATTRS = frozenset(_powertools_formatter.RESERVED_LOG_ATTRS)  # type: ignore[assignment]
# A message whose first character is none of these cannot be JSON (Powertools tries to decode
# every str message, and a failed json.loads raises); "-" starts a number, "I"/"N" Infinity/NaN.
_MAY_BE_JSON = frozenset('{["-0123456789tfnIN \t\n\r')

REDACTED = "[REDACTED]"
SERVICE_NAME = "llm-gateway"
MIN_SECRET_CHARS = 4  # shorter values would redact ordinary words


def secret_forms(secret: str) -> set[str]:
    """The key and the spellings it takes once JSON-escaped or URL-encoded."""
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
    }
    # a JSON log line escapes once more (Powertools keeps non-ASCII as is; others write \\uXXXX)
    forms |= {json.dumps(form, ensure_ascii=ascii)[1:-1] for form in list(forms) for ascii in (True, False)}
    return {form for form in forms if len(form) >= MIN_SECRET_CHARS}


class _SecretSet:
    """Every form of every secret registered in this process, longest first."""

    def __init__(self) -> None:
        self._forms: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[str]) -> None:
        new = set().union(*(secret_forms(s) for s in secrets if s and len(s) >= MIN_SECRET_CHARS))
        with self._lock:
            # Longest first, so a key that contains another key is removed whole.
            self._forms = tuple(sorted(set(self._forms) | new, key=len, reverse=True))

    @property
    def forms(self) -> tuple[str, ...]:
        return self._forms


_SECRETS = _SecretSet()


# Keys the gateway issues (`tenancy/keys.py`: `sk-gw-` + URL-safe base64, which no JSON or URL
# escaping changes) are not known to the process until they are used: they are redacted by shape.
_ISSUED_KEY = re.compile(r"sk-gw-[A-Za-z0-9_\-]{16,}")


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """`text` with every form of every registered secret (and of `secrets`) replaced, and every
    gateway-issued key."""
    if "sk-gw-" in text:
        text = _ISSUED_KEY.sub(REDACTED, text)
    forms: Iterable[str] = _SECRETS.forms
    if secrets is not None:
        forms = sorted(set(forms).union(*(secret_forms(s) for s in secrets if s)), key=len, reverse=True)
    for form in forms:
        if form in text:
            text = text.replace(form, REDACTED)
    return text


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter whose final line is redacted."""

    def __init__(self, secrets: Iterable[str], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.add_secrets(secrets)

    def add_secrets(self, secrets: Iterable[str]) -> None:
        _SECRETS.add(secrets)

    def _extract_log_message(self, log_record: logging.LogRecord) -> Any:
        """Powertools' own, without its failing `json.loads` for a plain-text message (the result
        is the same: a message that is not JSON stays the string it is)."""
        message = log_record.msg
        if isinstance(message, str) and not log_record.args and message and message[0] not in _MAY_BE_JSON:
            return message
        return super()._extract_log_message(log_record)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _RedactingWrapper(logging.Formatter):
    """Wraps another handler's formatter (Lambda's, pytest's, a library's) and redacts its output."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


def _redacting(formatter: logging.Formatter | None) -> bool:
    return isinstance(formatter, RedactingFormatter | _RedactingWrapper)


def redact_all_handlers() -> None:
    """Give every existing handler (root's, each logger's, `logging.lastResort`) a redacting formatter."""
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    handlers = [h for lg in loggers for h in lg.handlers]
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if not _redacting(handler.formatter):
            handler.setFormatter(_RedactingWrapper(handler.formatter))


def build_logger(secrets: Iterable[str], service: str = SERVICE_NAME) -> Logger:
    """One Logger per container; `secrets` are the provider, client and admin keys from Settings.

    Powertools Loggers of one service share one stdlib handler, and a second Logger keeps the
    first one's formatter; the secret set is process-wide, so every key stays redacted either way.
    """
    secrets = tuple(secrets)
    _SECRETS.add(secrets)
    logger = Logger(service=service, logger_formatter=RedactingFormatter(secrets))
    for handler in logger.handlers:
        if not _redacting(handler.formatter):
            handler.setFormatter(RedactingFormatter(secrets))
    redact_all_handlers()
    return logger
