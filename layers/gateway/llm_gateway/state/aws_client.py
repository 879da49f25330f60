"""AWS over httpx, signed with SigV4: DynamoDB, Secrets Manager and AppConfig without boto3.

Why: a chat container with a state table used to import boto3 and botocore's client machinery
and build a botocore client (loading DynamoDB's service model and botocore's 1.25 MB
`endpoints.json`): about 0.6 G instructions, 40 % of a memory-state cold start, to send a handful
of JSON POSTs. DynamoDB's API is JSON 1.0 over HTTPS: `POST /` with `X-Amz-Target:
DynamoDB_20120810.<Operation>`, the request as JSON in the very shape boto3's low-level client
takes, the answer as JSON in the shape it returns. So `DynamoDBClient` offers the few methods
the gateway calls, with boto3's keyword arguments and return values, and every store that takes
"a DynamoDB client" works on either (tests run both against moto).

- Signing: `httpx_auth.AWS4Auth` (MIT), whose package `__init__` (OAuth2 flows, a browser, an
  HTTP server) is skipped with `defer_package_init`; only its SigV4 module is loaded. A test
  checks its signatures against botocore's signer.
- Credentials and region: the environment variables Lambda sets (`AWS_ACCESS_KEY_ID`,
  `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`), read in `config.py`. Without
  them (a laptop with a profile or SSO) the composition root falls back to a boto3 client, whose
  credential chain knows those.
- Errors: what AWS answers is an `AwsError` whose `.response` has botocore `ClientError`'s shape
  (`{"Error": {"Code", "Message"}}`), so code that reads the code reads it from either; a request
  that got no answer (connect failure, timeout, reset) is `AwsUnreachable`, an `OSError`, as the
  degraded-mode wrapper expects of an outage.
- Retries: one more attempt after throttling (refused before it was applied), and after a
  transport failure or a 5xx for calls that are safe to repeat (reads, puts, deletes), after a
  short jittered pause (at most 50 ms: state must not hold a request; `resilient.py` degrades when
  the retry fails too). An UpdateItem is never sent again after a timeout or a 5xx: its ADD may
  have landed, and a second one would count twice, or for a give-back (a negative ADD) take off
  twice what was used and let a window admit more than the provider allows.
- Not done: botocore's check of DynamoDB's `x-amz-crc32` response header (TLS already guards the
  answer's integrity), endpoint discovery, FIPS or dual-stack endpoints (set
  `LLM_GATEWAY_DYNAMODB_ENDPOINT` for one).
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from llm_gateway.config import AwsAccess

DYNAMODB_TARGET = "DynamoDB_20120810"
RETRY_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "Throttling", "TooManyRequestsException",
})
MAX_RETRY_PAUSE_S = 0.05
CONNECT_TIMEOUT_S = 1.0  # as the boto3 client's config was: state must never hold a request hostage
READ_TIMEOUT_S = 1.0
COLD_READ_TIMEOUT_S = 5.0  # secrets and the rollout flag: a cold start waits for them, once per max_age


class AwsError(Exception):
    """An error AWS answered. `.response` is shaped like botocore `ClientError.response`."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.status = status
        self.response: dict[str, Any] = {"Error": {"Code": code, "Message": message},
                                         "ResponseMetadata": {"HTTPStatusCode": status}}


# transport failures before the request left: no connection made, or none free in the pool
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class AwsUnreachable(OSError):
    """No answer from AWS: connection refused or reset, or a timeout. `sent`: whether the request
    may have reached AWS (False only when no connection was made, so nothing can have been applied)."""

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of an `AwsError` or a botocore `ClientError` (None for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return None
    error = response.get("Error")
    code = error.get("Code") if isinstance(error, Mapping) else None
    return str(code) if code else None


def is_aws_failure(exc: BaseException) -> bool:
    """An error AWS answered, or no answer at all, from either client (botocore's own
    `BotoCoreError`s only if botocore is loaded: without it, none can have been raised)."""
    if error_code(exc) is not None or isinstance(exc, OSError):
        return True
    botocore = sys.modules.get("botocore.exceptions")
    return botocore is not None and isinstance(exc, botocore.BotoCoreError)


def endpoint_for(service: str, region: str) -> str:
    """The service's regional HTTPS endpoint (China's regions are under `amazonaws.com.cn`)."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{service}.{region}.{suffix}"


def aws_http_client(endpoint: str, *, read_timeout_s: float = READ_TIMEOUT_S) -> httpx.Client:
    """The pooled client for AWS calls, on the container's one TLS context (`tls.py`); a
    plain-HTTP endpoint (moto, DynamoDB Local) needs none, and building one is not free."""
    from llm_gateway.tls import tls_context

    return httpx.Client(
        timeout=httpx.Timeout(read_timeout_s, connect=CONNECT_TIMEOUT_S),
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10, keepalive_expiry=60),
        verify=tls_context() if httpx.URL(endpoint).scheme == "https" else False,
        trust_env=False, follow_redirects=False,
    )


class AwsClient:
    """One AWS service over HTTPS, SigV4-signed, retried once on what may pass (see the module)."""

    def __init__(self, http: httpx.Client, access: AwsAccess, *, service: str, endpoint: str | None = None,
                 signing_name: str | None = None, sleep: Callable[[float], None] = time.sleep,
                 rand: Callable[[], float] = random.random) -> None:
        self.http = http
        self.endpoint = (endpoint or endpoint_for(service, access.region)).rstrip("/")
        self._auth = _sigv4(access.access_key_id, access.secret_access_key, access.region, signing_name or service,
                            security_token=access.session_token)
        self._sleep = sleep
        self._rand = rand

    def send(self, operation: str, method: str, path: str = "/", *, content: bytes | None = None,
             headers: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None,
             repeatable: bool = True) -> httpx.Response:
        """The 2xx answer; `AwsError` or `AwsUnreachable` after one retry. `repeatable`: the call
        may be sent again when it may already have been applied (not an UpdateItem's ADD)."""
        sent = False  # whether an attempt so far may have reached AWS
        for attempt in (0, 1):
            try:
                response = self.http.request(method, self.endpoint + path, content=content, headers=headers,
                                             params=params, auth=self._auth)
            except httpx.TransportError as exc:
                sent = sent or not isinstance(exc, _NOT_SENT)
                if attempt or not repeatable:
                    raise AwsUnreachable(f"{operation}: {type(exc).__name__}: {exc}", sent=sent) from exc
            else:
                if response.is_success:
                    return response
                error = _error(response)
                refused = error.status < 500 and error.code in RETRY_CODES  # throttled: not applied
                if attempt or not (refused or (repeatable and error.status >= 500)):
                    raise error
            self._sleep(self._rand() * MAX_RETRY_PAUSE_S)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


class AwsJsonClient(AwsClient):
    """A service of AWS's JSON protocol: `POST /`, the operation in `X-Amz-Target`."""

    def __init__(self, http: httpx.Client, access: AwsAccess, *, service: str, target: str, json_version: str,
                 endpoint: str | None = None, sleep: Callable[[float], None] = time.sleep,
                 rand: Callable[[], float] = random.random) -> None:
        super().__init__(http, access, service=service, endpoint=endpoint, sleep=sleep, rand=rand)
        self._target = target
        self._content_type = f"application/x-amz-json-{json_version}"

    def call(self, operation: str, body: Mapping[str, Any], *, repeatable: bool = True) -> dict[str, Any]:
        """The operation's answer as a dict."""
        content = json.dumps(body, separators=(",", ":")).encode()
        headers = {"content-type": self._content_type, "x-amz-target": f"{self._target}.{operation}"}
        response = self.send(operation, "POST", content=content, headers=headers, repeatable=repeatable)
        answer: dict[str, Any] = response.json() if response.content else {}
        return answer


def _sigv4(access_key_id: str, secret_access_key: str, region: str, service: str, *,
           security_token: str | None) -> httpx.Auth:
    """httpx-auth's SigV4, loaded when a client is built (only containers with a table need it);
    its package `__init__` (every OAuth2 flow, a browser, an HTTP server) is skipped."""
    from llm_gateway.lazy_packages import defer_package_init

    defer_package_init("httpx_auth")
    from httpx_auth import AWS4Auth

    return AWS4Auth(access_key_id, secret_access_key, region, service, security_token=security_token)


def _error(response: httpx.Response) -> AwsError:
    """Code from `x-amzn-ErrorType` or the body's `__type` (both may carry a prefix or a suffix)."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    raw = response.headers.get("x-amzn-errortype") or str(body.get("__type") or "")
    code = raw.split(":", 1)[0].rsplit("#", 1)[-1] or f"HTTP{response.status_code}"
    message = str(body.get("message") or body.get("Message") or "")
    return AwsError(code, message, response.status_code)


class DynamoDBClient(AwsJsonClient):
    """The DynamoDB operations the gateway's stores call, with boto3's arguments and answers."""

    def __init__(self, http: httpx.Client, access: AwsAccess, *, endpoint: str | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(http, access, service="dynamodb", target=DYNAMODB_TARGET, json_version="1.0",
                         endpoint=endpoint, sleep=sleep)

    def batch_get_item(self, **request: Any) -> dict[str, Any]:
        return self.call("BatchGetItem", request)

    def get_item(self, **request: Any) -> dict[str, Any]:
        return self.call("GetItem", request)

    def put_item(self, **request: Any) -> dict[str, Any]:
        return self.call("PutItem", request)

    def update_item(self, **request: Any) -> dict[str, Any]:
        return self.call("UpdateItem", request, repeatable=False)

    def delete_item(self, **request: Any) -> dict[str, Any]:
        return self.call("DeleteItem", request)


def dynamodb_client(access: AwsAccess, endpoint: str | None) -> DynamoDBClient:
    """The container's DynamoDB client: `endpoint` (local runs) or the region's."""
    url = endpoint or endpoint_for("dynamodb", access.region)
    return DynamoDBClient(aws_http_client(url), access, endpoint=url)


class SecretsManagerClient(AwsJsonClient):
    """`GetSecretValue`, with boto3's arguments and answer (`SecretBinary` as bytes)."""

    def __init__(self, http: httpx.Client, access: AwsAccess, *, endpoint: str | None = None) -> None:
        super().__init__(http, access, service="secretsmanager", target="secretsmanager", json_version="1.1",
                         endpoint=endpoint)

    def get_secret_value(self, **request: Any) -> dict[str, Any]:
        answer = self.call("GetSecretValue", request)
        if "SecretBinary" in answer:
            import base64

            answer["SecretBinary"] = base64.b64decode(answer["SecretBinary"])
        return answer


def secrets_provider(access: AwsAccess, endpoint: str | None = None) -> Any:
    """A Powertools Parameters provider reading Secrets Manager through `SecretsManagerClient`:
    `provider.get(name, max_age=..., transform="json")` caches and transforms as Powertools'
    own `SecretsProvider` does (whose module imports boto3)."""
    from llm_gateway.lazy_packages import defer_package_init

    defer_package_init("aws_lambda_powertools.utilities.parameters")  # its __init__ imports every provider
    from aws_lambda_powertools.utilities.parameters.base import BaseProvider

    class SecretsManagerProvider(BaseProvider):
        def __init__(self, client: SecretsManagerClient) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self.secrets = client

        def _get(self, name: str, **sdk_options: Any) -> str | bytes:
            value = self.secrets.get_secret_value(**{**sdk_options, "SecretId": name})
            secret: str | bytes = value["SecretString"] if "SecretString" in value else value["SecretBinary"]
            return secret

        def _get_multiple(self, path: str, **sdk_options: Any) -> dict[str, str]:
            raise NotImplementedError("the gateway reads its secrets by name")

    url = endpoint or endpoint_for("secretsmanager", access.region)
    client = SecretsManagerClient(aws_http_client(url, read_timeout_s=COLD_READ_TIMEOUT_S), access, endpoint=url)
    return SecretsManagerProvider(client)


class _Body:
    """What boto3 returns as a streaming body, for code that calls `.read()` on it."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self) -> bytes:
        return self._data


class AppConfigDataClient(AwsClient):
    """AppConfig's data API (REST with JSON; signed as `appconfig`), with boto3's arguments and
    answers for the two calls Powertools' AppConfig provider makes."""

    def __init__(self, http: httpx.Client, access: AwsAccess, *, endpoint: str | None = None) -> None:
        super().__init__(http, access, service="appconfigdata", signing_name="appconfig", endpoint=endpoint)

    def start_configuration_session(self, **request: Any) -> dict[str, Any]:
        response = self.send("StartConfigurationSession", "POST", "/configurationsessions",
                             content=json.dumps(request).encode(), headers={"content-type": "application/json"})
        answer: dict[str, Any] = response.json()
        return answer

    def get_latest_configuration(self, ConfigurationToken: str) -> dict[str, Any]:
        response = self.send("GetLatestConfiguration", "GET", "/configuration",
                             params={"configuration_token": ConfigurationToken})
        headers = response.headers
        return {"Configuration": _Body(response.content),
                "NextPollConfigurationToken": headers.get("next-poll-configuration-token", ""),
                "NextPollIntervalInSeconds": int(headers.get("next-poll-interval-in-seconds") or 0),
                "ContentType": headers.get("content-type", ""), "VersionLabel": headers.get("version-label")}


def appconfig_provider(access: AwsAccess, application: str, environment: str, endpoint: str | None = None) -> Any:
    """A Powertools Parameters provider for AppConfig over `AppConfigDataClient`: the session
    and token handling of Powertools' `AppConfigProvider` (whose module imports boto3), with the
    Parameters cache (`max_age`) and JSON transform."""
    from llm_gateway.lazy_packages import defer_package_init

    defer_package_init("aws_lambda_powertools.utilities.parameters")
    from aws_lambda_powertools.utilities.parameters.base import BaseProvider

    class AppConfigDataProvider(BaseProvider):
        def __init__(self, client: AppConfigDataClient) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self.appconfig = client
            self._next_token: dict[str, str] = {}
            self._last: dict[str, bytes] = {}

        def _get(self, name: str, **sdk_options: Any) -> bytes:
            """A session is started once per profile; each read hands back the token it was given
            and gets the next one. An empty configuration means "unchanged since the last read"."""
            if name not in self._next_token:
                session = self.appconfig.start_configuration_session(
                    ApplicationIdentifier=application, EnvironmentIdentifier=environment,
                    ConfigurationProfileIdentifier=name, **sdk_options)
                self._next_token[name] = session["InitialConfigurationToken"]
            answer = self.appconfig.get_latest_configuration(ConfigurationToken=self._next_token[name])
            self._next_token[name] = answer["NextPollConfigurationToken"]
            value: bytes = answer["Configuration"].read()
            if value:
                self._last[name] = value
            return self._last[name]

        def _get_multiple(self, path: str, **sdk_options: Any) -> dict[str, str]:
            raise NotImplementedError("AppConfig has no multiple-value read")

    url = endpoint or endpoint_for("appconfigdata", access.region)
    client = AppConfigDataClient(aws_http_client(url, read_timeout_s=COLD_READ_TIMEOUT_S), access, endpoint=url)
    return AppConfigDataProvider(client)
