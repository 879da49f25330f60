#!/bin/sh
# The chat function's startup command on AWS (template.yaml: Handler: run.sh). The Lambda Web
# Adapter's wrapper (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap) runs it instead of the Python runtime's
# own loop; it starts the HTTP server the adapter forwards each invocation to (PORT 8080), which
# serves app.stream_handler: the same routes as app.lambda_handler. The layer is /opt/python; the
# runtime's own packages (boto3) stay importable through LAMBDA_RUNTIME_DIR, as in AWS's sample.
cd "${LAMBDA_TASK_ROOT:-$(dirname "$0")}" || exit 1
PYTHONPATH="/opt/python:${LAMBDA_TASK_ROOT:-.}:${LAMBDA_RUNTIME_DIR:-/var/runtime}${PYTHONPATH:+:$PYTHONPATH}" \
    exec python3 -m llm_gateway.api.lwa app:stream_handler
