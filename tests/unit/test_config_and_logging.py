from __future__ import annotations

import io
import json
import logging

import pytest
from aws_lambda_powertools.utilities.parameters.exceptions import TransformParameterError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_gateway.api.errors import Unauthorized
from llm_gateway.config import DEFAULT_DEV_KEY, ConfigError, _secret_values, load_settings
from llm_gateway.gateway import Caller, build_gateway
from llm_gateway.observability.logging import REDACTED, build_logger
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.providers.base import CHAT
from llm_gateway.providers.factory import build_adapters


def test_providers_come_from_keys_and_base_urls():
    settings = load_settings({
        "GROQ_API_KEY": "gk-test-123", "GROQ_BASE_URL": "http://127.0.0.1:9/", "OPENAI_API_KEY": "",
    })
    assert [p.name for p in settings.providers] == ["groq"]
    assert settings.providers[0].base_url == "http://127.0.0.1:9/"
    assert "gk-test-123" in settings.secrets
    assert "gk-test-123" not in repr(settings)


def test_secret_values_sit_under_env():
    settings = load_settings({"OPENAI_API_KEY": "from-env"}, secret_values={"OPENAI_API_KEY": "from-secret", "GROQ_API_KEY": "g-secret"})
    keys = {p.name: p.api_key for p in settings.providers}
    assert keys == {"groq": "g-secret", "openai": "from-env"}


def test_openai_compatible_endpoints_are_declared_as_data():
    # Each model of an endpoint needs its catalog entry (config validation rejects one that has none).
    m1 = {"provider": "together", "model": "m1", "category": "small", "context_window": 8192, "max_output": 1024,
          "capabilities": {}, "free_tier": {"rpm": 10}}
    settings = load_settings({
        "TOGETHER_KEY": "tk-1234",
        "LLM_GATEWAY_OPENAI_COMPATIBLE": json.dumps([
            {"name": "together", "base_url": "http://127.0.0.1:1/v1", "api_key_env": "TOGETHER_KEY", "models": ["m1"]},
            {"name": "nokey", "base_url": "http://x/v1", "models": ["m"]},
        ]),
        "LLM_GATEWAY_CATALOG_OVERRIDES": json.dumps(
            {"providers": {"together": {"as_of": "2026-11-25", "source": "test"}}, "models": [m1]}),
    })
    assert [(p.name, p.kind, p.models) for p in settings.providers] == [("together", "openai_compatible", ("m1",))]
    assert "together" in build_adapters(settings.providers, CHAT)


def test_bad_numbers_fail_loudly():
    with pytest.raises(ValueError, match="LLM_GATEWAY_DEADLINE_S"):
        load_settings({"LLM_GATEWAY_DEADLINE_S": "soon"})


def test_local_mode_accepts_dev_key_and_nothing_else():
    settings = load_settings({"LLM_GATEWAY_LOCAL": "1"})
    gateway = build_gateway(settings, metrics=RecordingMetrics())
    assert isinstance(gateway.authenticate(f"Bearer {DEFAULT_DEV_KEY}"), Caller)  # no key id until users exist
    for header in (None, "", "Bearer", "Basic abc", "Bearer wrong"):
        with pytest.raises(Unauthorized):
            gateway.authenticate(header)


def test_no_client_keys_means_no_access_outside_local_mode():
    settings = load_settings({})
    gateway = build_gateway(settings, metrics=RecordingMetrics())
    with pytest.raises(Unauthorized):
        gateway.authenticate(f"Bearer {DEFAULT_DEV_KEY}")


def test_logger_redacts_every_configured_secret_everywhere():
    secret = "sk-test-" + "x" * 24
    logger = build_logger([secret, "client-key-1"], service="test-redaction")
    stream = io.StringIO()
    for handler in logger.handlers:
        handler.stream = stream  # type: ignore[attr-defined]
    logger.info(f"calling with {secret}", extra={"auth": f"Bearer {secret}", "client": "client-key-1"})
    try:
        raise RuntimeError(f"provider said: bad key {secret}")
    except RuntimeError:
        logger.exception("boom")
    output = stream.getvalue()
    assert secret not in output and "client-key-1" not in output
    assert output.count(REDACTED) >= 4


C1, C2 = "c1-" + "a" * 40, "c2-" + "b" * 40


def test_provider_and_client_keys_from_their_own_secrets(monkeypatch):
    """Provider keys and client keys live in two secrets, so the health function (which needs
    only provider keys) is given no way to read the client keys."""
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name="llm-gateway/providers", SecretString=json.dumps({"GROQ_API_KEY": "gk-from-secret"}))
        client.create_secret(Name="llm-gateway/clients", SecretString=json.dumps({"LLM_GATEWAY_API_KEYS": f"{C1},{C2}"}))
        settings = load_settings({"LLM_GATEWAY_PROVIDER_SECRET": "llm-gateway/providers",
                                  "LLM_GATEWAY_CLIENT_KEY_SECRET": "llm-gateway/clients"})
        health_view = load_settings({"LLM_GATEWAY_PROVIDER_SECRET": "llm-gateway/providers"})
    assert [(p.name, p.api_key) for p in settings.providers] == [("groq", "gk-from-secret")]
    assert settings.api_keys == frozenset({C1, C2})
    assert [(p.name, p.api_key) for p in health_view.providers] == [("groq", "gk-from-secret")]
    assert health_view.api_keys == frozenset()


def test_a_second_logger_of_the_same_service_still_redacts_its_own_keys():
    first = build_logger(["first-secret-key"], service="test-two-loggers")
    second = build_logger(["second-secret-key"], service="test-two-loggers")
    stream = io.StringIO()
    for handler in second.handlers:
        handler.stream = stream  # type: ignore[attr-defined]
    second.info("second-secret-key and first-secret-key")
    first.info("first-secret-key")
    assert "secret-key" not in stream.getvalue()
    assert stream.getvalue().count(REDACTED) == 3


# --- configuration that cannot be turned against the deployment -----------------------------------
def test_local_mode_is_refused_inside_lambda():
    with pytest.raises(ValueError, match=r"LLM_GATEWAY_LOCAL.*Lambda"):
        load_settings({"LLM_GATEWAY_LOCAL": "1", "AWS_LAMBDA_FUNCTION_NAME": "llm-gateway-chat"})
    assert not load_settings({"AWS_LAMBDA_FUNCTION_NAME": "llm-gateway-chat", "LLM_GATEWAY_LOCAL": ""}).local_mode


def test_local_mode_and_the_dev_key_never_come_from_a_secret():
    planted = {"LLM_GATEWAY_LOCAL": "1", "LLM_GATEWAY_DEV_KEY": "d" * 40}
    settings = load_settings({}, secret_values=planted, client_secret_values=planted)
    assert not settings.local_mode
    assert settings.api_keys == frozenset() and settings.admin_keys == frozenset()


def test_secrets_supply_only_keys_and_everything_else_comes_from_the_environment():
    planted = {
        "GROQ_API_KEY": "gk-secret-value", "GROQ_BASE_URL": "https://attacker.example/v1", "GROQ_MODELS": "x",
        "LLM_GATEWAY_STATE_TABLE": "other-table", "LLM_GATEWAY_DEADLINE_S": "1", "LLM_GATEWAY_MAX_BODY_BYTES": "1",
        "LLM_GATEWAY_CATALOG_OVERRIDES": '{"disable": ["groq/llama-3.1-8b-instant"]}',
        "LLM_GATEWAY_DYNAMODB_ENDPOINT": "http://attacker.example",
        "LLM_GATEWAY_OPENAI_COMPATIBLE": json.dumps([{"name": "evil", "base_url": "https://attacker.example", "api_key": "x"}]),
        "TOGETHER_KEY": "tk-from-secret",
    }
    env = {"LLM_GATEWAY_OPENAI_COMPATIBLE": json.dumps([
        {"name": "together", "base_url": "http://127.0.0.1:1/v1", "api_key_env": "TOGETHER_KEY", "models": ["m1"]}]),
        "LLM_GATEWAY_CATALOG_OVERRIDES": json.dumps({  # an endpoint's model needs its catalog entry
            "providers": {"together": {"as_of": "2026-11-29", "source": "test"}},
            "models": [{"provider": "together", "model": "m1", "category": "small", "context_window": 8192,
                        "max_output": 1024, "capabilities": {}, "price": {"input": 0.1, "output": 0.1}}]})}
    settings = load_settings(env, secret_values=planted)
    assert {p.name: (p.base_url, p.api_key, p.models) for p in settings.providers} == {
        "groq": ("https://api.groq.com", "gk-secret-value", ()),           # key from the secret, URL from code
        "together": ("http://127.0.0.1:1/v1", "tk-from-secret", ("m1",)),  # a declared endpoint's key may come from it
    }
    assert (settings.state_table, settings.deadline_s, settings.max_body_bytes) == (None, 25.0, 4 * 1024 * 1024)
    assert settings.catalog_overrides == env["LLM_GATEWAY_CATALOG_OVERRIDES"]  # the environment's, not the secret's
    assert settings.dynamodb_endpoint is None


def test_client_keys_do_not_belong_in_the_provider_secret():
    with pytest.raises(ValueError, match=r"LLM_GATEWAY_API_KEYS.*client-key secret"):
        load_settings({}, secret_values={"GROQ_API_KEY": "gk-1", "LLM_GATEWAY_API_KEYS": C1})
    settings = load_settings({}, client_secret_values={"LLM_GATEWAY_API_KEYS": C1, "GROQ_API_KEY": "gk-planted"})
    assert settings.api_keys == frozenset({C1}) and settings.providers == ()


@pytest.mark.parametrize("name", ["LLM_GATEWAY_API_KEYS", "LLM_GATEWAY_ADMIN_KEYS"])
def test_short_client_keys_are_refused_at_load_without_echoing_them(name):
    with pytest.raises(ValueError, match="at least 32 characters") as info:
        load_settings({name: f"{C1},tiny-key-123"})
    assert "tiny-key-123" not in str(info.value)
    assert "2nd" in str(info.value)


def test_admin_keys_and_the_dev_key_in_local_mode():
    admin = "adm-" + "z" * 40
    settings = load_settings({"LLM_GATEWAY_API_KEYS": C1, "LLM_GATEWAY_ADMIN_KEYS": admin})
    assert settings.admin_keys == frozenset({admin}) and admin in settings.secrets
    local = load_settings({"LLM_GATEWAY_LOCAL": "1"})
    assert DEFAULT_DEV_KEY in local.admin_keys and DEFAULT_DEV_KEY in local.api_keys


# --- redaction: every logger, every escaped form ----------------------------------------------------
ODD_KEY = 'sk-live+key/with=odd"chars\\é-' + "q" * 16


def _escaped_forms(secret: str) -> list[str]:
    from urllib.parse import quote, quote_plus

    return [secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], quote(secret, safe=""),
            quote_plus(secret), quote(secret)]


def test_escaped_forms_of_a_key_are_redacted():
    logger = build_logger([ODD_KEY], service="test-escaped")
    stream = io.StringIO()
    for handler in logger.handlers:
        handler.stream = stream  # type: ignore[attr-defined]
    for form in _escaped_forms(ODD_KEY):
        logger.info("form: " + form)
    logger.info("as a field", extra={"body": json.dumps({"key": ODD_KEY})})
    output = stream.getvalue()
    for form in _escaped_forms(ODD_KEY):
        assert form not in output, form
    assert "q" * 16 not in output


def test_library_loggers_are_redacted_too():
    """botocore, httpx and anything else log through the root logger's handler (Lambda's), not
    through our Powertools logger: the redaction must sit there as well."""
    secret = "sk-library-" + "w" * 24
    stream = io.StringIO()
    root_handler = logging.StreamHandler(stream)
    logging.getLogger().addHandler(root_handler)  # what the Lambda runtime installs before our code
    try:
        build_logger([secret], service="test-libraries")
        for name in ("botocore.endpoint", "httpx", "urllib3.connectionpool", "some.library"):
            logging.getLogger(name).warning("sending Authorization: Bearer %s to %s", secret, name)
        try:
            raise RuntimeError(f"failed with key={secret}")
        except RuntimeError:
            logging.getLogger("httpx").exception("request failed")
    finally:
        logging.getLogger().removeHandler(root_handler)
    output = stream.getvalue()
    assert output.count("sending Authorization") == 4
    assert secret not in output and "w" * 24 not in output


def test_the_health_function_redacts_its_keys(monkeypatch):
    from sandbox.apigw import load_handler_module

    secret = "gk-health-" + "h" * 24
    monkeypatch.setenv("GROQ_API_KEY", secret)
    monkeypatch.setenv("GROQ_BASE_URL", "http://127.0.0.1:9")
    stream = io.StringIO()
    root_handler = logging.StreamHandler(stream)
    logging.getLogger().addHandler(root_handler)  # Lambda's handler exists before the module loads
    try:
        module = load_handler_module("health", instance="redaction")
        for handler in module.logger.handlers:
            handler.stream = stream  # type: ignore[attr-defined]
        module.logger.info(f"checking with {secret}", extra={"key": secret})
        logging.getLogger("botocore").warning("key %s", secret)
    finally:
        logging.getLogger().removeHandler(root_handler)
    output = stream.getvalue()
    assert "checking with" in output and "key " in output
    assert secret not in output
    assert output.count(REDACTED) >= 3


@pytest.mark.parametrize("message", ["request served", "  {\"a\": 1}", "{\"a\": 1}", "[1, 2]", "42", "-1", "true",
                                     "null", "NaN", "Infinity", "\"quoted\"", "", "tfoo", "Request {x}", "é"])
def test_the_redacting_formatter_reads_messages_as_powertools_does(message):
    """Its plain-text shortcut gives the very line Powertools' own message extraction gives."""
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    from llm_gateway.observability.logging import RedactingFormatter

    record = logging.LogRecord("x", logging.INFO, __file__, 1, message, (), None, func="f")
    ours = RedactingFormatter(())
    assert repr(ours._extract_log_message(record)) == repr(LambdaPowertoolsFormatter._extract_log_message(ours, record))


# --- the per-request line's own path (`log_info`) -----------------------------------------------
def _emit(logger, fast, message, extra):
    """Both paths from one line, so their `location` (function:line) is the same."""
    from llm_gateway.observability.logging import log_info

    (log_info(logger, message, extra) if fast else logger.info(message, extra=extra))


SERVED = {"user": "u1", "key_id": "k1", "capability": "chat", "provider": "openai", "model": "gpt-4o-mini",
          "free": False, "attempts": 1, "latency_ms": 12.3, "tokens_in": 19, "tokens_out": 8, "audio_seconds": 0.0,
          "cost_usd": 5.1e-06, "cohort": "gateway", "note": "é sk-fast-path-secret-1 \"q\"", "none": None}


@pytest.mark.parametrize("options", [{}, {"utc": True}, {"use_rfc3339": True}, {"datefmt": "%H:%M:%S.%F"},
                                     {"log_record_order": ["message", "level"]}])
@pytest.mark.parametrize("keys", ["none", "appended", "context", "xray", "all"])
def test_log_info_writes_the_very_line_logger_info_writes(monkeypatch, options, keys):
    """Byte for byte, at one instant: every field, its order, the redaction; and it is the short
    path (no LogRecord is made) that wrote it."""
    import time as time_module

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.logging.formatter import clear_context_keys, set_context_keys

    from llm_gateway.observability.logging import RedactingFormatter

    monkeypatch.setattr(logging.root, "handlers", [])  # pytest's capture handler would see (and take) the record
    monkeypatch.setattr(time_module, "time", lambda: 1_790_000_000.123456)
    monkeypatch.setattr(time_module, "time_ns", lambda: 1_790_000_000_123_456_789)
    logger = Logger(service=f"test-fast-line-{len(options)}-{keys}",
                    logger_formatter=RedactingFormatter(["sk-fast-path-secret-1"], **options))
    stream = io.StringIO()
    for handler in logger.handlers:
        handler.stream = stream  # type: ignore[attr-defined]
    if keys in ("appended", "all"):
        logger.append_keys(function_request_id="req-1", cold_start=True, correlation_id=None)
    if keys in ("context", "all"):
        set_context_keys(tenant="t-1")
    if keys in ("xray", "all"):
        monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8")
    try:
        for fast in (False, True):
            made = []
            monkeypatch.setattr(logging.Logger, "makeRecord", _counting(logging.Logger.makeRecord, made))
            _emit(logger, fast, "request served", SERVED)
            assert bool(made) is not fast
    finally:
        clear_context_keys()
    slow_line, fast_line = stream.getvalue().splitlines()
    assert fast_line == slow_line
    assert "sk-fast-path-secret-1" not in fast_line and json.loads(fast_line)["user"] == "u1"


_SCALARS = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats() | st.text(max_size=5)
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(
    st.text(max_size=3), inner, max_size=2), max_leaves=4)
# keys Powertools and this formatter treat apart, and keys of neither; an extra may reuse any but
# the record's own (`level`, `timestamp`: `log_info` leaves those to `logger.info`)
_EXTRA_KEYS = st.sampled_from(["service", "sampling_rate", "exception", "exception_name", "exception_notes",
                               "stack_trace", "xray_trace_id", "cold_start", "a", "b", "é"])
_TEMPLATES = st.sampled_from(["%(levelname)s", "%(asctime)s", "at %(funcName)s:%(lineno)d", "plain", "", None])
_KEYS = st.builds(lambda own, record: {**own, **record}, st.dictionaries(_EXTRA_KEYS, _VALUES, max_size=3),
                  st.dictionaries(st.sampled_from(["level", "timestamp"]), _TEMPLATES, max_size=2))
_FAST_LINE_LOGGER: list[object] = []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(appended=_KEYS, context=_KEYS,
       extra=st.dictionaries(_EXTRA_KEYS, _VALUES, max_size=5), trace=st.booleans(), stacktrace=st.booleans())
def test_log_info_writes_the_very_line_for_any_keys_and_values(appended, context, extra, trace, stacktrace):
    """Generated: keys appended to the formatter, context keys and extra keys, each may reuse
    another's key or a key Powertools sets itself (the exception keys, `stack_trace`, the trace
    id), with None, nested and non-finite values; the short path's line is `logger.info`'s."""
    import os
    from unittest import mock

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.logging.formatter import clear_context_keys, set_context_keys

    from llm_gateway.observability.logging import RedactingFormatter

    if not _FAST_LINE_LOGGER:
        _FAST_LINE_LOGGER.append(Logger(service="test-fast-line-generated",
                                        logger_formatter=RedactingFormatter(["sk-fast-path-secret-1"])))
    logger = _FAST_LINE_LOGGER[0]
    formatter = logger.registered_formatter
    saved, saved_stack = dict(formatter.log_format), formatter.serialize_stacktrace
    stream = io.StringIO()
    env = {"_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8"} if trace else {}
    try:
        with (mock.patch.object(logging.root, "handlers", []), mock.patch("time.time", lambda: 1_790_000_000.123456),
              mock.patch("time.time_ns", lambda: 1_790_000_000_123_456_789), mock.patch.dict(os.environ, env),
              mock.patch.object(logger.handlers[0], "stream", stream)):
            if not trace:
                os.environ.pop("_X_AMZN_TRACE_ID", None)
            formatter.serialize_stacktrace = stacktrace
            logger.append_keys(**appended)
            set_context_keys(**context)
            made: list[int] = []
            with mock.patch.object(logging.Logger, "makeRecord", _counting(logging.Logger.makeRecord, made)):
                _emit(logger, False, "request served", extra)
                assert made
                made.clear()
                _emit(logger, True, "request served", extra)
                assert not made  # the short path wrote it
    finally:
        formatter.log_format, formatter.serialize_stacktrace = saved, saved_stack
        clear_context_keys()
    slow_line, fast_line, end = stream.getvalue().split("\n")  # one line each (splitlines would split at U+0085)
    assert fast_line == slow_line and not end


def test_log_info_follows_the_formatter_keys_as_they_change_between_lines(monkeypatch):
    """A key appended, changed to an equal value of another type (1, then True), or removed
    between two lines from the very same call site still gives `logger.info`'s line each time
    (a per-call-site cache of the filled-in keys got the type change wrong; it was reverted)."""
    from aws_lambda_powertools import Logger

    from llm_gateway.observability.logging import RedactingFormatter

    monkeypatch.setattr(logging.root, "handlers", [])
    monkeypatch.setattr("time.time", lambda: 1_790_000_000.123456)
    monkeypatch.setattr("time.time_ns", lambda: 1_790_000_000_123_456_789)
    logger = Logger(service="test-fast-line-sites", logger_formatter=RedactingFormatter(["sk-fast-path-secret-1"]))
    stream = io.StringIO()
    for handler in logger.handlers:
        handler.stream = stream  # type: ignore[attr-defined]
    changes = [lambda: None, lambda: logger.append_keys(flag=1), lambda: logger.append_keys(flag=True),
               lambda: logger.append_keys(flag="1"), lambda: logger.remove_keys(["flag"])]
    for change in changes:
        change()
        for fast in (False, True):
            _emit(logger, fast, "request served", SERVED)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 * len(changes)
    for slow_line, fast_line in zip(lines[::2], lines[1::2], strict=True):
        assert fast_line == slow_line
    assert '"flag":true' in lines[5] and '"flag":1' in lines[3] and "flag" not in lines[9]


def test_the_line_encoder_writes_what_json_dumps_writes():
    """Made once from Powertools' serializer options, it gives `json.dumps`'s text for whatever a
    line may hold; a structure holding itself still fails (and the line is then written the
    standard way, whose `json.dumps` raises into the handler's `handleError`)."""
    import math
    from functools import partial

    from llm_gateway.observability.logging import _encoder_of

    class Odd:
        def __str__(self) -> str:
            return "odd \u00e9"

    samples = [{}, {"a": 1, "b": None, "c": [1.5, math.nan, -math.inf, {"d": True}], "é": "\x00\"\u2028"},
               {1: "int key", 2.5: "float key", None: "none key", False: "bool key"}, {"o": Odd(), "t": (1, 2)},
               {"big": 10**30, "neg": -0.0, "s": "sk-gw-" + "x" * 20}]
    for options in ({"default": str, "separators": (",", ":"), "indent": None, "ensure_ascii": False},
                    {"default": str, "ensure_ascii": True}, {"default": str, "separators": (", ", ": ")}):
        encode = _encoder_of(partial(json.dumps, **options))
        assert encode is not None
        for sample in samples:
            assert encode(sample) == json.dumps(sample, **options)
        looped: dict[str, object] = {}
        looped["self"] = looped
        with pytest.raises((ValueError, RecursionError)):
            encode(looped)
        assert encode({"after": "a failure"}) == json.dumps({"after": "a failure"}, **options)
    assert _encoder_of(partial(json.dumps, sort_keys=True)) is None  # options it does not mirror: the serializer


def _counting(make_record, made):
    def counted(*args, **kwargs):
        made.append(1)
        return make_record(*args, **kwargs)
    return counted


def test_log_info_takes_the_standard_path_when_anything_else_would_see_the_record(caplog, monkeypatch):
    """pytest's capture handler (a root handler Powertools did not silence), a filter, a level
    above INFO, an extra key a record reserves, a message that may be JSON: each gets exactly what
    `logger.info` gives."""
    from llm_gateway.observability.logging import log_info

    logger = build_logger(["sk-fast-path-secret-2"], service="test-fast-line-fallback")
    stream = io.StringIO()
    for handler in logger.handlers:
        handler.stream = stream  # type: ignore[attr-defined]
    with caplog.at_level(logging.INFO):
        log_info(logger, "request served", {"user": "u2"})
    assert [r.getMessage() for r in caplog.records] == ["request served"] and caplog.records[0].user == "u2"
    assert caplog.records[0].funcName == "test_log_info_takes_the_standard_path_when_anything_else_would_see_the_record"
    monkeypatch.setattr(logging.root, "handlers", [])
    logger.setLevel(logging.WARNING)
    log_info(logger, "request served", {"user": "u3"})
    logger.setLevel(logging.INFO)
    with pytest.raises(KeyError):  # as logging.Logger.makeRecord refuses it
        log_info(logger, "request served", {"filename": "x"})
    log_info(logger, "{\"a\": 1}", {"user": "u4"})
    logger.addFilter(lambda record: False)
    log_info(logger, "request served", {"user": "u5"})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["message"], line.get("user")) for line in lines] == [("request served", "u2"), ({"a": 1}, "u4")]


def test_log_info_never_fails_a_request_on_a_line_it_cannot_format(monkeypatch):
    """Found in review: the short path formatted the line outside the handler's error handling, so
    a field the formatter chokes on raised into a request already served. It now takes the
    standard path, where the handler's `handleError` deals with it, as for `logger.info`."""
    from llm_gateway.observability.logging import RedactingFormatter, log_info

    monkeypatch.setattr(logging.root, "handlers", [])
    logger = build_logger(["sk-fast-path-secret-3"], service="test-fast-line-unformattable")
    stream = io.StringIO()
    for handler in logger.handlers:
        handler.stream = stream  # type: ignore[attr-defined]

    def choke(*_args, **_kwargs):
        raise TypeError("not serialisable")

    monkeypatch.setattr(RedactingFormatter, "format_fields", choke)
    log_info(logger, "request served", {"user": "u4"})  # must not raise
    assert json.loads(stream.getvalue())["user"] == "u4"  # written the standard way


# --- the two secrets of a cold start are read at once ----------------------------------------------
def test_both_secrets_are_read_at_once_and_a_failure_is_raised_as_reads_in_turn_raised_it():
    import threading

    from llm_gateway.config import _read_both

    both_waiting = threading.Barrier(2, timeout=5)  # each read waits for the other: they must overlap

    def overlapping(name: str, max_age_s: int) -> dict[str, str]:
        both_waiting.wait()
        return {"secret": name, "ttl": str(max_age_s)}

    assert _read_both(overlapping, "providers", "clients", 120) == (
        {"secret": "providers", "ttl": "120"}, {"secret": "clients", "ttl": "120"})

    def failing(*names: str):
        def fetch(name: str, max_age_s: int) -> dict[str, str]:
            if name in names:
                raise LookupError(name)
            return {}
        return fetch

    for broken, raised in ((("providers", "clients"), "providers"), (("clients",), "clients"),
                           (("providers",), "providers")):
        with pytest.raises(LookupError, match=f"^{raised}$"):
            _read_both(failing(*broken), "providers", "clients", 120)


def test_a_secret_that_is_not_json_is_named_without_its_text_or_cause() -> None:
    """Powertools chains the JSON parse error to its TransformParameterError, and that error holds
    the whole secret string (`JSONDecodeError.doc`): an error report walking the chain would print
    the keys. The gateway's error names the secret and nothing else, with no chain."""
    text = "GROQ_API_KEY=gsk_this-must-never-leave-the-secret"

    def read() -> object:
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise TransformParameterError(str(exc)) from exc
        raise AssertionError("unreachable")

    with pytest.raises(ConfigError) as caught:
        _secret_values("gateway/providers", read)
    error = caught.value
    assert "gateway/providers" in str(error) and error.__cause__ is None and error.__context__ is None
    assert "gsk_" not in repr(error)
    with pytest.raises(ConfigError):
        _secret_values("gateway/providers", lambda: ["not", "an", "object"])


@pytest.mark.parametrize("options", [{}, {"utc": True}, {"use_rfc3339": True}, {"datefmt": "%H:%M:%S.%F"},
                                     {"use_rfc3339": True, "utc": True}])
def test_the_redacting_formatter_stamps_lines_as_powertools_does(options):
    """Its per-second timestamp text gives Powertools' own stamp at every instant: across
    milliseconds, seconds, minutes and a year's turn, in local time and UTC, whatever was stamped
    before (the cache is per second)."""
    import random

    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    from llm_gateway.observability.logging import RedactingFormatter

    ours, theirs = RedactingFormatter((), **options), LambdaPowertoolsFormatter(**options)
    rand = random.Random(7)
    instants = [1_767_225_599.0 + i * 0.0137 for i in range(300)]  # through 2026-01-01T00:00:00Z
    instants += [rand.uniform(0, 2_000_000_000) for _ in range(300)] + [1_790_000_000.999999, 1_790_000_000.0005]
    for created in instants + instants[::-1]:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
        record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
        assert ours.formatTime(record) == theirs.formatTime(record), created
