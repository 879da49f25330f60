"""The gateway's own AWS JSON client (`state/aws_client.py`) on `httpx.MockTransport`: what it
sends, how it signs (against botocore's signer), what it raises, when it retries."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from llm_gateway.config import AwsAccess, load_settings
from llm_gateway.state.aws_client import (
    AwsError,
    AwsUnreachable,
    DynamoDBClient,
    aws_http_client,
    endpoint_for,
    error_code,
    is_aws_failure,
)
from llm_gateway.state.resilient import is_outage, not_applied

ACCESS = AwsAccess("eu-west-1", "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-value")


def client(handler: Any, sleeps: list[float] | None = None) -> DynamoDBClient:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return DynamoDBClient(http, ACCESS, sleep=(sleeps if sleeps is not None else []).append)


def test_a_call_is_a_signed_json_post_with_the_operation_as_target() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"Item": {"pk": {"S": "a"}}})

    got = client(answer).get_item(TableName="t", Key={"pk": {"S": "a"}})
    assert got == {"Item": {"pk": {"S": "a"}}}
    (request,) = seen
    assert str(request.url) == "https://dynamodb.eu-west-1.amazonaws.com/"
    assert request.method == "POST"
    assert request.headers["x-amz-target"] == "DynamoDB_20120810.GetItem"
    assert request.headers["content-type"] == "application/x-amz-json-1.0"
    assert json.loads(request.content) == {"TableName": "t", "Key": {"pk": {"S": "a"}}}
    assert request.headers["x-amz-security-token"] == "session-token-value"
    assert request.headers["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") and "/eu-west-1/dynamodb/aws4_request" in request.headers[
        "authorization"]


def _same_signature_as_botocores(request: httpx.Request, service: str) -> None:
    """The request, its signed headers and its time signed by botocore's SigV4 give the same
    signature and the same signed headers."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    fields = dict(part.split("=", 1) for part in request.headers["authorization"].split(" ", 1)[1].split(", "))
    signed = fields["SignedHeaders"].split(";")
    theirs = AWSRequest(method=request.method, url=str(request.url), data=request.content or None,
                        headers={name: request.headers[name] for name in signed})
    theirs.context["timestamp"] = request.headers["x-amz-date"]
    signer = SigV4Auth(Credentials(ACCESS.access_key_id, ACCESS.secret_access_key, ACCESS.session_token),
                       service, ACCESS.region)
    string_to_sign = signer.string_to_sign(theirs, signer.canonical_request(theirs))
    assert set(signer.headers_to_sign(theirs).keys()) == set(signed)
    assert fields["Signature"] == signer.signature(string_to_sign, theirs)


def test_the_signature_is_botocores() -> None:
    seen: list[httpx.Request] = []
    client(lambda request: seen.append(request) or httpx.Response(200, json={})).update_item(
        TableName="t", Key={"pk": {"S": "rl#x y/z"}}, UpdateExpression="ADD #n :a",
        ExpressionAttributeNames={"#n": "n"}, ExpressionAttributeValues={":a": {"N": "1"}})
    (request,) = seen
    _same_signature_as_botocores(request, "dynamodb")


def test_a_signed_get_with_a_query_string_is_botocores_too() -> None:
    """AppConfig's flag read: a GET whose token (base64: `+`, `/`, `=`) travels in the query."""
    from llm_gateway.state.aws_client import AppConfigDataClient

    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b'{"rollout_percent": {"default": 5}}',
                              headers={"next-poll-configuration-token": "next", "content-type": "application/json"})

    appconfig = AppConfigDataClient(httpx.Client(transport=httpx.MockTransport(answer)), ACCESS)
    got = appconfig.get_latest_configuration(ConfigurationToken="AYAD+tok/en==")
    assert got["NextPollConfigurationToken"] == "next"
    (request,) = seen
    assert request.method == "GET" and request.url.params["configuration_token"] == "AYAD+tok/en=="
    _same_signature_as_botocores(request, "appconfig")


def test_an_error_answer_is_an_aws_error_shaped_like_botocores() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
                                         "message": "The conditional request failed"})

    sleeps: list[float] = []
    with pytest.raises(AwsError) as caught:
        client(answer, sleeps).update_item(TableName="t")
    assert caught.value.response["Error"] == {"Code": "ConditionalCheckFailedException",
                                              "Message": "The conditional request failed"}
    assert error_code(caught.value) == "ConditionalCheckFailedException" and caught.value.status == 400
    assert sleeps == []  # a refusal is an answer: never retried
    assert is_aws_failure(caught.value) and not is_outage(caught.value)


def test_the_error_type_header_wins_and_loses_its_suffix() -> None:
    answer = httpx.Response(400, headers={"x-amzn-errortype": "ValidationException:http://internal.amazon.com/coral/"},
                            content=b"not json")
    with pytest.raises(AwsError) as caught:
        client(lambda request: answer).put_item(TableName="t")
    assert caught.value.code == "ValidationException"


@pytest.mark.parametrize("failure", [
    httpx.Response(500, json={"__type": "InternalServerError"}),
    httpx.Response(400, json={"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException"}),
    httpx.Response(400, json={"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"}),
])
def test_throttling_and_server_errors_are_retried_once(failure: httpx.Response) -> None:
    answers = [failure, httpx.Response(200, json={"ok": 1})]
    sleeps: list[float] = []
    assert client(lambda request: answers.pop(0), sleeps).batch_get_item(RequestItems={}) == {"ok": 1}
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.05


def test_a_second_throttling_is_raised_as_an_outage() -> None:
    sleeps: list[float] = []
    with pytest.raises(AwsError) as caught:
        client(lambda request: httpx.Response(400, json={"__type": "x#ThrottlingException"}), sleeps).put_item()
    assert len(sleeps) == 1 and is_outage(caught.value)


def test_no_answer_twice_is_unreachable_an_oserror_and_an_outage() -> None:
    calls: list[int] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(AwsUnreachable) as caught:
        client(refuse).get_item(TableName="t")
    assert len(calls) == 2
    assert isinstance(caught.value, OSError) and is_outage(caught.value)


def test_a_timeout_then_an_answer_is_an_answer() -> None:
    calls: list[int] = []

    def slow_once(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json={})

    assert client(slow_once).put_item(TableName="t") == {}


def test_endpoints_by_region_and_a_plain_http_endpoint_gets_no_tls_context() -> None:
    assert endpoint_for("dynamodb", "us-east-1") == "https://dynamodb.us-east-1.amazonaws.com"
    assert endpoint_for("dynamodb", "cn-north-1") == "https://dynamodb.cn-north-1.amazonaws.com.cn"
    plain = aws_http_client("http://127.0.0.1:8000")
    assert plain._transport._pool._ssl_context.verify_mode.name == "CERT_NONE"  # type: ignore[attr-defined]
    secure = aws_http_client("https://dynamodb.us-east-1.amazonaws.com")
    assert secure._transport._pool._ssl_context.verify_mode.name == "CERT_REQUIRED"  # type: ignore[attr-defined]


def test_settings_read_lambdas_credentials_and_keep_them_out_of_logs_and_repr() -> None:
    env = {"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
           "AWS_SECRET_ACCESS_KEY": "secret-access-key-value", "AWS_SESSION_TOKEN": "session-token-value"}
    settings = load_settings(env)
    assert settings.aws == AwsAccess("eu-west-1", "AKIDEXAMPLE", "secret-access-key-value", "session-token-value")
    assert {"secret-access-key-value", "session-token-value"} <= set(settings.secrets)
    assert "secret-access-key-value" not in repr(settings) and "session-token-value" not in repr(settings.aws)
    assert load_settings({**env, "AWS_REGION": "", "AWS_DEFAULT_REGION": "us-east-2"}).aws.region == "us-east-2"  # type: ignore[union-attr]
    for missing in ("AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert load_settings({k: v for k, v in env.items() if k != missing}).aws is None


def test_secrets_manager_provider_reads_a_secret_once_per_max_age_as_json() -> None:
    from llm_gateway.state import aws_client

    calls: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content))
        assert request.headers["x-amz-target"] == "secretsmanager.GetSecretValue"
        assert request.headers["content-type"] == "application/x-amz-json-1.1"
        return httpx.Response(200, json={"Name": "s", "SecretBinary": "eyJrIjogInYifQ=="})  # {"k": "v"}

    provider = aws_client.secrets_provider(ACCESS, "http://secrets.test")
    provider.secrets.http = httpx.Client(transport=httpx.MockTransport(answer))
    assert provider.get("s", max_age=60, transform="json") == {"k": "v"}
    assert provider.get("s", max_age=60, transform="json") == {"k": "v"}
    assert calls == [{"SecretId": "s"}]


def test_every_https_client_of_a_container_shares_one_tls_context() -> None:
    from llm_gateway.providers.engine import build_http_client
    from llm_gateway.tls import tls_context

    contexts = {id(client._transport._pool._ssl_context) for client in (  # type: ignore[attr-defined]
        aws_http_client("https://dynamodb.us-east-1.amazonaws.com"),
        aws_http_client("https://secretsmanager.us-east-1.amazonaws.com"), build_http_client())}
    assert contexts == {id(tls_context())}


@pytest.mark.parametrize("failure", [
    httpx.ReadTimeout("slow"),
    httpx.Response(500, json={"__type": "InternalServerError"}),
], ids=["timeout", "500"])
def test_an_update_that_may_have_been_applied_is_not_sent_twice(failure: Any) -> None:
    """UpdateItem ADDs: after a timeout or a 5xx the first write may have landed, and sending it
    again would count it twice, or, for a give-back (a negative ADD), take off twice what was
    used, letting the window admit more than the provider allows. So it is not retried (the
    store degrades instead); a throttled one, refused before it was applied, still is."""
    calls: list[int] = []

    def fail_once(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            if isinstance(failure, Exception):
                raise failure
            return failure
        return httpx.Response(200, json={})

    with pytest.raises((AwsError, AwsUnreachable)) as caught:
        client(fail_once).update_item(TableName="t", Key={}, UpdateExpression="ADD #n :v")
    assert len(calls) == 1 and is_outage(caught.value)
    throttled = [httpx.Response(400, json={"__type": "x#ThrottlingException"}), httpx.Response(200, json={})]
    assert client(lambda request: throttled.pop(0)).update_item(TableName="t") == {}


@pytest.mark.parametrize(("failure", "applied_maybe"), [
    (httpx.ConnectError("refused"), False),
    (httpx.ConnectTimeout("no route"), False),
    (httpx.PoolTimeout("no connection free"), False),
    (httpx.ReadTimeout("slow"), True),
    (httpx.RemoteProtocolError("reset mid-answer"), True),
    (httpx.Response(500, json={"__type": "InternalServerError"}), True),
    (httpx.Response(400, json={"__type": "x#ThrottlingException"}), False),
], ids=["connect-refused", "connect-timeout", "pool-timeout", "read-timeout", "reset", "500", "throttled-twice"])
def test_a_failed_update_says_whether_it_may_have_been_applied(failure: Any, applied_maybe: bool) -> None:
    """What lets the degraded store write a usage record again later (`resilient.not_applied`):
    only a write that cannot have landed, so none counts twice."""
    def fail(request: httpx.Request) -> httpx.Response:
        if isinstance(failure, Exception):
            raise failure
        return failure

    with pytest.raises((AwsError, AwsUnreachable)) as caught:
        client(fail).update_item(TableName="t", Key={}, UpdateExpression="ADD #n :v")
    assert is_outage(caught.value) and not_applied(caught.value) is not applied_maybe


@pytest.mark.parametrize("answer", [
    httpx.Response(503, text="<html>Service Unavailable</html>"),
    httpx.Response(400, json={"__type": "x#TooManyRequestsException"}),
    httpx.Response(400, json={"__type": "Throttling"}),
], ids=["503-without-a-code", "too-many-requests", "throttling"])
def test_any_server_error_or_throttling_is_an_outage_the_store_degrades_on(answer: httpx.Response) -> None:
    """Not a 500 for every chat request: an edge 503 with an HTML body, or a throttling code
    other than DynamoDB's own, still sends the resilient store to in-container state."""
    with pytest.raises(AwsError) as caught:
        client(lambda request: answer).get_item(TableName="t")
    assert is_outage(caught.value)


def test_an_https_endpoint_is_verified_however_its_scheme_is_written() -> None:
    shouting = aws_http_client("HTTPS://dynamodb.us-east-1.amazonaws.com")
    assert shouting._transport._pool._ssl_context.verify_mode.name == "CERT_REQUIRED"  # type: ignore[attr-defined]


def test_endpoint_overrides_are_read_as_botocore_reads_them_for_every_client() -> None:
    """The gateway's own clients go where boto3 would have gone: `AWS_ENDPOINT_URL_<SERVICE>`,
    then `AWS_ENDPOINT_URL` (a local stack), and the gateway's own DynamoDB variable first."""
    base = {"GROQ_API_KEY": "gsk_" + "x" * 20, "LLM_GATEWAY_BASELINE_MODEL": "openai/gpt-4o-mini",
            "OPENAI_API_KEY": "sk-" + "y" * 20}
    everything = load_settings({**base, "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"})
    assert everything.dynamodb_endpoint == "http://127.0.0.1:4566"
    assert everything.rollout.endpoint == "http://127.0.0.1:4566"
    each = load_settings({**base, "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
                          "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000",
                          "AWS_ENDPOINT_URL_APPCONFIGDATA": "http://127.0.0.1:2772"})
    assert (each.dynamodb_endpoint, each.rollout.endpoint) == ("http://127.0.0.1:8000", "http://127.0.0.1:2772")
    ours = load_settings({**base, "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000",
                          "LLM_GATEWAY_DYNAMODB_ENDPOINT": "http://127.0.0.1:9000"})
    assert ours.dynamodb_endpoint == "http://127.0.0.1:9000"
    assert load_settings(base).dynamodb_endpoint is None and load_settings(base).rollout.endpoint is None
