"""`log_info` writes the very line `logger.info` writes, in the cases a per-call-site cache of
the formatter's keys got wrong (a review of perf9 found them; the cache was reverted)."""

from __future__ import annotations

import io
import logging
from types import SimpleNamespace


def _logger(monkeypatch, service):
    from aws_lambda_powertools import Logger

    from llm_gateway.observability.logging import RedactingFormatter

    monkeypatch.setattr(logging.root, "handlers", [])
    monkeypatch.setattr("time.time", lambda: 1_790_000_000.123456)
    monkeypatch.setattr("time.time_ns", lambda: 1_790_000_000_123_456_789)
    formatter = RedactingFormatter(["sk-test-secret"])
    logger = Logger(service=service, logger_formatter=formatter)
    stream = io.StringIO()
    for handler in logger.handlers:
        handler.stream = stream  # type: ignore[attr-defined]
    return logger, formatter, stream


def _emit(logger, fast, message, extra):
    """Both paths from one line, so their `location` (function:line) is the same."""
    from llm_gateway.observability.logging import log_info

    (log_info(logger, message, extra) if fast else logger.info(message, extra=extra))


def test_log_info_keeps_the_key_order_of_a_key_removed_and_appended_again(monkeypatch):
    """A key removed and appended again (same value) between two lines of a call site moves to
    the end of `logger.info`'s line: so in `log_info`'s (a cache compared by dict equality, which
    ignores order, kept it in its old place)."""
    logger, _, stream = _logger(monkeypatch, "key-order")
    logger.append_keys(tenant="t1", region="eu")
    _emit(logger, True, "request served", {"user": "u1"})  # fills the site cache: ..., tenant, region
    logger.remove_keys(["tenant"])
    logger.append_keys(tenant="t1")  # equal dict, order now ..., region, tenant
    for fast in (False, True):
        _emit(logger, fast, "request served", {"user": "u1"})
    slow_line, fast_line = stream.getvalue().splitlines()[1:]
    assert fast_line == slow_line


def test_lines_equal_logger_infos_across_lambda_invocations(monkeypatch):
    """In Lambda (and `make dev`, through `lambda_handler`), `inject_lambda_context` appends
    `cold_start` (a bool) and a new `function_request_id` (and `correlation_id`) on every
    invocation: each line still equals `logger.info`'s. (perf9's per-call-site cache of the
    formatter's keys never hit there, as the benchmarks, which call `gateway.chat` without the
    decorator, did: it cost about 22 k instructions a line in Lambda and was reverted.)"""
    logger, _, stream = _logger(monkeypatch, "lambda-lines")

    @logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
    def handler(event, context):
        for fast in (False, True):
            _emit(logger, fast, "request served", {"user": "u1"})

    for n in range(3):
        handler({"requestContext": {"requestId": f"api-{n}"}},
                SimpleNamespace(function_name="chat", memory_limit_in_mb=1024,
                                invoked_function_arn="arn:aws:lambda:eu-west-1:1:function:chat",
                                aws_request_id=f"req-{n}"))
    lines = stream.getvalue().splitlines()
    # cold_start is the process's (true only on its first invocation, whichever test made it): a bool either way
    assert len(lines) == 6 and all('"cold_start":true' in line or '"cold_start":false' in line for line in lines)
    assert '"function_request_id":"req-2"' in lines[5]
    for slow_line, fast_line in zip(lines[::2], lines[1::2], strict=True):
        assert fast_line == slow_line
