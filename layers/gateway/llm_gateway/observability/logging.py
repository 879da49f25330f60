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
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any
from urllib.parse import quote, quote_plus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import formatter as _powertools_formatter
from aws_lambda_powertools.logging.filters import SuppressFilter
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
        # Powertools' serializer is `partial(json.dumps, **options)`, which builds a JSONEncoder
        # for every line: the line path encodes with one built once from the same options.
        self._serializer = self.json_serializer
        self._encode = _encoder_of(self._serializer)
        # (second, converter, format, text before the milliseconds, text after) of the last stamp
        self._second: tuple[int, object, str, str, str] = (-1, None, "", "", "")

    def add_secrets(self, secrets: Iterable[str]) -> None:
        _SECRETS.add(secrets)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """Powertools' default timestamp (`2021-05-03 10:20:19,650+0200`) with the text around the
        milliseconds composed once per second: `strftime` and the time-zone lookup were about a
        sixth of a line's cost. Any other format takes Powertools' own path."""
        if datefmt or not self._stamps_cached():
            return str(super().formatTime(record, datefmt))
        return self._stamp(record.created, record.msecs)

    def _stamps_cached(self) -> bool:
        """Whether this formatter's stamps are the default format, which `_stamp` composes."""
        return not (self.use_rfc3339_iso8601 or self.datefmt or self.converter not in _CONVERTERS)

    def _stamp(self, created: float, msecs: float) -> str:
        """`formatTime`'s default stamp of the instant `created` (`msecs` its milliseconds)."""
        second = int(created)
        cached = self._second
        if cached[0] != second or cached[1] is not self.converter or cached[2] != self.default_time_format:
            head, _, tail = self.default_time_format.partition(self.custom_ms_time_directive)
            moment = self.converter(created)
            cached = self._second = (second, self.converter, self.default_time_format,
                                     time.strftime(head, moment), time.strftime(tail, moment) if tail else "")
        return f"{cached[3]}{int(msecs):03d}{cached[4]}"

    def _extract_log_message(self, log_record: logging.LogRecord) -> Any:
        """Powertools' own, without its failing `json.loads` for a plain-text message (the result
        is the same: a message that is not JSON stays the string it is)."""
        message = log_record.msg
        if isinstance(message, str) and not log_record.args and message and message[0] not in _MAY_BE_JSON:
            return message
        return super()._extract_log_message(log_record)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))

    def format_fields(self, levelname: str, func: str, lineno: int, message: str,
                      extra: Mapping[str, object]) -> str | None:
        """The line `format` gives a record of this level, call site, plain-text message and
        extra keys, composed without a `LogRecord`; None when this formatter's keys need more of
        a record than that (a `%(process)d` key, say): the caller then logs the ordinary way.

        The same steps as Powertools' `format` in the same order, so the keys keep their order:
        the formatter's keys (record templates filled in), the context keys, the extra keys, the
        message; a record without exception info adds no exception or stack keys; the X-Ray trace
        id; None values dropped; the formatter's own serializer; redaction.

        Two of those steps are taken as their result rather than literally (the line is the same,
        `test_log_info_writes_the_very_line_logger_info_writes` holds it so): Powertools sets the
        three exception keys to their own value (None when absent, so dropped) and `stack_trace`
        to None (dropped), then copies the dict without its None values; here an absent key is
        not added, `stack_trace` is removed, and only the keys that were ever set to None are
        looked at again. That copy and those keys were about 17,000 instructions of a line."""
        created, msecs = _now()
        stamp = self._stamp(created, msecs) if self._stamps_cached() else self.formatTime(
            _Stamp(created, msecs))  # type: ignore[arg-type]
        fields = {"levelname": levelname, "funcName": func, "lineno": lineno, "asctime": stamp}
        formatted: dict[str, Any] = {}
        nulls: list[str] = []  # keys set to None on the way: dropped at the end unless set again
        reserved = _powertools_formatter.RESERVED_LOG_ATTRS
        try:
            for key, value in self.log_format.items():
                if value is None:
                    nulls.append(key)
                formatted[key] = value % fields if value and key in reserved else value
            for key, value in _powertools_formatter._get_context().get().items():
                if value is None:
                    nulls.append(key)
                formatted[key] = value % fields if value and key in reserved else value
        except (KeyError, TypeError, ValueError):  # a template names a record attribute not given here
            return None
        formatted.update(extra)
        if None in extra.values():
            nulls += [key for key, value in extra.items() if value is None]
        formatted["message"] = message
        if self.serialize_stacktrace:
            formatted.pop("stack_trace", None)  # what Powertools gives a record without exception info: None
        trace = self._get_latest_trace_id()
        if trace is None:
            formatted.pop("xray_trace_id", None)
        else:
            formatted["xray_trace_id"] = trace
        for key in nulls:
            if key in formatted and formatted[key] is None:
                del formatted[key]
        encode = self._encode
        return redact(encode(formatted) if encode is not None and self.json_serializer is self._serializer else
                      self.serialize(formatted))


_CONVERTERS = (time.localtime, time.gmtime)


def _encoder_of(serializer: object) -> Callable[[Any], str] | None:
    """`serializer` as one encoder made once, when it is `partial(json.dumps, **options)` with
    options a JSONEncoder takes; else None.

    `json.dumps` builds a JSONEncoder per call, and its `encode` a C encoder per call (about
    7,000 instructions of a line): with no indent, the C encoder `JSONEncoder.iterencode` would
    make is made here once and called for each line, so the text is the one `json.dumps` writes.
    It is made without the circular-reference markers (a dict shared by every line, and so by
    threads): a structure that contains itself then fails as a RecursionError rather than
    json's ValueError, and `log_info` writes that line the standard way, which raises the
    ValueError into the handler's `handleError` as before."""
    if not isinstance(serializer, partial) or serializer.func is not json.dumps or serializer.args:
        return None
    options = dict(serializer.keywords)
    if set(options) - {"default", "separators", "indent", "ensure_ascii"}:
        return None
    encoder = json.JSONEncoder(**options)
    make: Callable[..., Callable[[Any, int], Iterable[str]]] | None = getattr(json.encoder, "c_make_encoder", None)
    if make is None or encoder.indent is not None:
        return encoder.encode
    strings = json.encoder.encode_basestring_ascii if encoder.ensure_ascii else json.encoder.encode_basestring
    try:
        encode = make(None, encoder.default, strings, encoder.indent, encoder.key_separator,
                      encoder.item_separator, encoder.sort_keys, encoder.skipkeys, encoder.allow_nan)
    except TypeError:  # another Python's C encoder, made with other arguments
        return encoder.encode

    def encoded(fields: Any) -> str:
        return "".join(encode(fields, 0)) if type(fields) is dict else encoder.encode(fields)

    return encoded


class _Stamp:
    """What `formatTime` reads of a record."""

    __slots__ = ("created", "msecs")

    def __init__(self, created: float, msecs: float) -> None:
        self.created = created
        self.msecs = msecs


if sys.version_info >= (3, 13):
    def _now() -> tuple[float, float]:
        """(created, msecs) as `LogRecord` computes them on this Python."""
        ns = time.time_ns()
        return ns / 1e9, (ns % 1_000_000_000) // 1_000_000 + 0.0
else:
    def _now() -> tuple[float, float]:
        """(created, msecs) as `LogRecord` computes them on this Python."""
        ct = time.time()
        return ct, int((ct - int(ct)) * 1000) + 0.0


def _task_name() -> str | None:
    """The asyncio task a `LogRecord` would name (`taskName`, Python 3.12+), which Powertools
    would write as a key: such a line takes the standard path."""
    if sys.version_info < (3, 12) or not getattr(logging, "logAsyncioTasks", False):
        return None
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return None
    try:
        return str(asyncio.current_task().get_name())
    except Exception:
        return None


# Names a `LogRecord` has (an extra key may not reuse one) and those Powertools drops from extras.
_RECORD_NAMES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"} | frozenset(
    _powertools_formatter.RESERVED_LOG_ATTRS)


def log_info(logger: Logger, message: str, extra: Mapping[str, object]) -> None:
    """`logger.info(message, extra=extra)`, for a line written on every request: the very line,
    to the very handler, composed by the logger's own formatter (`format_fields`) without the
    `LogRecord`, caller lookup and handler chain the standard path costs (about 0.2 M instructions
    a line). It takes the standard path whenever anything could see a difference: a filter, a
    second handler, a handler up the propagation chain that Powertools did not silence (pytest's
    caplog, say), a log buffer, a disabled level, a message that could read as JSON, an extra key
    a record or Powertools reserves."""
    std = getattr(logger, "_logger", None)
    if not isinstance(std, logging.Logger):  # not a Powertools Logger (a test's stand-in)
        logger.info(message, extra=extra)
        return
    handler = _only_handler(logger, std)
    if (handler is None or not std.isEnabledFor(logging.INFO) or not message or message[0] in _MAY_BE_JSON
            or not _RECORD_NAMES.isdisjoint(extra) or _task_name() is not None):
        logger.info(message, extra=extra, stacklevel=3)
        return
    caller = sys._getframe(1)
    formatter = handler.formatter
    assert isinstance(formatter, RedactingFormatter)  # checked by _only_handler
    try:
        line = formatter.format_fields("INFO", caller.f_code.co_name, caller.f_lineno, message, extra)
    except Exception:  # as on the standard path, a line that cannot be formatted never fails the request
        line = None
    if line is None:
        logger.info(message, extra=extra, stacklevel=3)
        return
    with handler.lock:  # type: ignore[union-attr]  # StreamHandler.emit, under the lock Handler.handle takes
        try:
            stream = handler.stream
            stream.write(line + handler.terminator)
            if stream and hasattr(stream, "flush"):  # StreamHandler.flush's body: its lock is the one held
                stream.flush()
        except RecursionError:
            raise
        except Exception:
            handler.handleError(std.makeRecord(std.name, logging.INFO, __file__, 0, message, (), None))


def _only_handler(logger: Logger, std: logging.Logger) -> logging.StreamHandler[Any] | None:
    """The logger's one plain stream handler with our formatter, when nothing else would see or
    change an INFO record of it; else None."""
    handlers = std.handlers
    if len(handlers) != 1 or std.filters or std.disabled or getattr(logger, "_buffer_config", None):
        return None
    handler = handlers[0]
    if (type(handler) is not logging.StreamHandler or handler.filters or handler.level > logging.INFO
            or type(handler.formatter) is not RedactingFormatter):
        return None
    parent = std.parent if std.propagate else None
    while parent is not None:
        for other in parent.handlers:  # Powertools silences the handlers that existed when it started
            if other.level <= logging.INFO and not any(
                    isinstance(f, SuppressFilter) and f.logger in std.name for f in other.filters):
                return None
        parent = parent.parent if parent.propagate else None
    return handler


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


def redact_into(logger: Any) -> Callable[[tuple[str, ...]], None]:
    """What tells `logger`'s redacting formatters of secrets read after it was built (a rotated
    or newly filled key): added before any use of them."""
    def add(secrets: tuple[str, ...]) -> None:
        for handler in logger.handlers:
            adder = getattr(handler.formatter, "add_secrets", None)
            if adder is not None:
                adder(secrets)

    return add
