"""Every handler answers failures the same way: OpenAI's error format, never a 500 for bad
input, and a bug counted where the canary's rollback alarm reads it. One owner, so chat and
transcription cannot drift apart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import APIGatewayRestResolver, Response
from pydantic import ValidationError

from llm_gateway.api.errors import GatewayError, NotFound, from_validation_error
from llm_gateway.observability import metrics as m
from llm_gateway.observability.metrics import Metrics

AnswerJson = Callable[[int, dict[str, Any], dict[str, str] | None], Response]


def register_error_handlers(app: APIGatewayRestResolver, answer: AnswerJson, metrics: Callable[[], Metrics],
                            logger: Any, dimensions: Callable[[], dict[str, str]] | None = None,
                            headers: Callable[[], dict[str, str]] | None = None) -> None:
    """`answer(status, body, headers)` renders a JSON response the handler's way (its
    redaction, its request id); `metrics()` is read at failure time (tests swap the sink);
    `dimensions()` too: what a bug is counted with besides {service} (chat: the request's cohort);
    `headers()`, what a bug's 500 carries as every other error of the route does (chat: the
    cohort, once one is chosen)."""

    @app.exception_handler(GatewayError)
    def handle_gateway_error(exc: GatewayError) -> Response:
        return answer(exc.status, exc.body(), exc.headers)

    @app.exception_handler(ValidationError)
    def handle_validation_error(exc: ValidationError) -> Response:
        error = from_validation_error(exc)
        return answer(error.status, error.body(), None)

    @app.not_found
    def handle_not_found(exc: Exception) -> Response:
        event = app.current_event
        error = NotFound(f"Unknown route: {event.http_method} {event.path}", code="unknown_url")
        return answer(error.status, error.body(), None)

    @app.exception_handler(Exception)
    def handle_unexpected(exc: Exception) -> Response:
        """The last resort: a bug. Counted with {service} and `dimensions()` (chat: cohort), the
        series the canary's and the rollout's rollback alarms read."""
        metrics().count(m.USER_VISIBLE_ERRORS, 1.0, **(dimensions() if dimensions is not None else {}))
        logger.exception("unhandled error")
        error = GatewayError("The gateway hit an internal error. It has been logged.", code="internal_error")
        return answer(error.status, error.body(), headers() if headers is not None else None)
