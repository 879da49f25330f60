"""Review of perf9 (rev9): cases the branch's own tests do not cover."""

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
    formatter = RedactingFormatter(["sk-rev9-secret"])
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
    """perf9 reused a call site's filled-in keys (`_Site`) while `site.log_format ==
    self.log_format`, and dict equality ignores order: a key removed and appended again (same
    value) between two lines of a call site moved to the end of `logger.info`'s line but stayed
    where it was in `log_info`'s."""
    logger, _, stream = _logger(monkeypatch, "rev9-order")
    logger.append_keys(tenant="t1", region="eu")
    _emit(logger, True, "request served", {"user": "u1"})  # fills the site cache: ..., tenant, region
    logger.remove_keys(["tenant"])
    logger.append_keys(tenant="t1")  # equal dict, order now ..., region, tenant
    for fast in (False, True):
        _emit(logger, fast, "request served", {"user": "u1"})
    slow_line, fast_line = stream.getvalue().splitlines()[1:]
    assert fast_line == slow_line


def test_no_per_site_work_is_redone_on_every_lambda_invocation(monkeypatch):
    """In Lambda (and `make dev`, through `lambda_handler`), `inject_lambda_context` appends
    `cold_start` (a bool) and a new `function_request_id` (and `correlation_id`) on every
    invocation. perf9's `_Site` (the formatter's whole keys per call site) was then never stored
    (a bool value) and would have missed anyway (a new request id): each `request served` line
    built one and threw it away, about 22 k instructions a line more than 5e21c47 (valgrind),
    while the benchmarks, which call `gateway.chat` without the decorator, always hit it. Lines
    stay `logger.info`'s; whatever is kept per call site is built once, not per invocation."""
    from llm_gateway.observability.logging import RedactingFormatter

    logger, _, stream = _logger(monkeypatch, "rev9-lambda")
    built: list[tuple[object, ...]] = []
    if hasattr(RedactingFormatter, "_site"):  # perf9's per-site cache
        real = RedactingFormatter._site
        monkeypatch.setattr(RedactingFormatter, "_site", lambda self, *a: built.append(a) or real(self, *a))

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
    assert len(lines) == 6 and '"cold_start":true' in lines[0] and '"cold_start":false' in lines[2]
    for slow_line, fast_line in zip(lines[::2], lines[1::2], strict=True):
        assert fast_line == slow_line
    assert len(built) <= 1, f"a call site's keys were built again on {len(built)} of 3 invocations"
