"""`llm-gateway invoke FUNCTION EVENT.json`: run a handler on an event file, like `sam local invoke`,
without Docker. Prints the handler's response (the Lambda proxy result) as JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import redirect_stdout
from pathlib import Path

from llm_gateway.config import ConfigError, load_settings
from sandbox.apigw import FUNCTIONS_DIR, LocalContext, load_handler_module
from sandbox.local_env import configured_env, plan_local_env, prepare_local_env

# served through API Gateway: their events are REST proxy events (or, transcribe, a job to run)
HTTP_FUNCTIONS = {"chat", "transcribe"}


def _fail(message: str) -> int:
    print(f"llm-gateway invoke: {message}", file=sys.stderr)
    return 2


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="llm-gateway invoke")
    parser.add_argument("function", help="folder under functions/, e.g. chat")
    parser.add_argument("event", type=Path, help="API Gateway event JSON file, e.g. events/chat.json")
    parser.add_argument("--state", choices=["dynamodb", "memory"], default="memory")
    args = parser.parse_args(argv)
    functions = sorted(p.parent.name for p in FUNCTIONS_DIR.glob("*/app.py"))
    if args.function not in functions:
        return _fail(f"no function {args.function!r}; the functions are {', '.join(functions)}")
    try:
        event = json.loads(args.event.read_text(encoding="utf-8"))
    except OSError as exc:
        return _fail(f"cannot read {args.event}: {exc.strerror or exc}")
    except ValueError as exc:
        return _fail(f"{args.event} is not valid JSON: {exc}")
    if not isinstance(event, dict):
        return _fail(f"{args.event} holds a JSON {type(event).__name__}; an event is an object (see events/)")
    if args.function in HTTP_FUNCTIONS and "httpMethod" not in event and "llm_gateway_job" not in event:
        return _fail(f"{args.event} is not an API Gateway event (no httpMethod); `llm-gateway plan` takes a request "
                     "body, `invoke` an event like those in events/")
    try:
        load_settings(configured_env(os.environ, plan_local_env(os.environ, args.state, args.function == "transcribe")))
    except ConfigError as exc:
        print(f"llm-gateway invoke: invalid configuration: {exc}", file=sys.stderr)
        return 2
    # The transcribe function gets an embedded S3 (uploads answer a real presigned URL); others need none.
    local = prepare_local_env(state=args.state, uploads=args.function == "transcribe")
    for note in local.notes:
        print(note, file=sys.stderr)
    # Like `sam local invoke`: the function's own output (JSON logs, EMF metric lines) goes to
    # stderr, so stdout carries only the handler's result and can be piped to `jq`.
    try:
        with redirect_stdout(sys.stderr):
            module = load_handler_module(args.function)
            result = module.lambda_handler(event, LocalContext(function_name=args.function))
    finally:
        local.stop()
    print(json.dumps(result, indent=2))
    status = result.get("statusCode", 200) if isinstance(result, dict) else 200
    return 0 if int(status) < 500 else 1
