"""A caller's mistake is answered to that caller and touches nothing shared.

Providers echo request text in their 4xx messages (OpenAI: "Invalid schema for function
'get_daily_report': ..."). Before the fix, words like `daily`, `billing`, `per day` or
`invalid token` in such an echo turned the caller's 400 into "quota exhausted" (a one-hour
cooldown for every caller) or "auth" (a provider breaker count), so one crafted request could
take a model away from everyone. Here a provider answers 400 with such echoes many times; the
same model must keep serving the next ordinary request, and each bad request must come back as
a 400 carrying the provider's reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from llm_gateway.api.errors import GatewayError
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.compose import Clocks
from llm_gateway.config import load_settings
from llm_gateway.gateway import build_gateway
from llm_gateway.observability import metrics as m
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.routing.circuit_breaker import reset_local_counters

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "providers" / "openai"
CLIENT_KEY = "client-key-for-caller-error-tests-0123456789"
ECHOES = {
    "get_daily_report": "Invalid schema for function 'get_daily_report': 'minimum' is not permitted.",
    "bill_billing_account": "Invalid schema for function 'bill_billing_account': None is not of type 'object'.",
    "rate_per_day": "Invalid 'tools[0].function.description': 'rate per day' is too long.",
    "check_invalid_token": "Invalid parameter: function 'check_invalid_token' has an invalid token in 'pattern'.",
    "quota_tool": "You exceeded your current quota in 'messages[0].content': this text came from the caller.",
}


def _provider(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    names = [tool["function"]["name"] for tool in body.get("tools") or []]
    for name in names:
        if name in ECHOES:
            error = {"message": ECHOES[name], "type": "invalid_request_error", "param": "tools", "code": None}
            return httpx.Response(400, json={"error": error})
    return httpx.Response(200, content=(FIXTURES / "chat_text.json").read_bytes(),
                          headers={"content-type": "application/json"})


def _request(tool: str | None = None) -> ChatCompletionRequest:
    body: dict = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    if tool:
        body["tools"] = [{"type": "function", "function": {"name": tool, "parameters": {"type": "object"}}}]
    return ChatCompletionRequest.model_validate(body)


@pytest.fixture
def gateway():
    reset_local_counters()
    client = httpx.Client(transport=httpx.MockTransport(_provider))
    settings = load_settings({"OPENAI_API_KEY": "sk-openai-test-key", "LLM_GATEWAY_API_KEYS": CLIENT_KEY})
    gateway = build_gateway(settings, metrics=RecordingMetrics(), http_client=client)
    yield gateway
    client.close()
    reset_local_counters()


@pytest.mark.parametrize("tool", sorted(ECHOES))
def test_an_echoed_word_never_cools_down_or_breaks_the_model(gateway, tool):
    caller = gateway.authenticate(f"Bearer {CLIENT_KEY}")
    for _ in range(5):  # more than the breaker threshold (3)
        with pytest.raises(GatewayError) as info:
            gateway.chat(_request(tool), caller, "req-bad")
        error = info.value
        assert error.status == 400, error.body()
        assert error.body()["error"]["type"] == "invalid_request_error"
        assert ECHOES[tool] in error.body()["error"]["message"]  # the provider's reason reaches the caller
    outcome = gateway.chat(_request(), caller, "req-good")  # the same pinned model still serves
    assert outcome.status == 200
    assert outcome.headers["x-gateway-model"] == "gpt-4o-mini"
    assert gateway.metrics.total(m.RATE_LIMITED) == 0
    assert gateway.metrics.total(m.USER_VISIBLE_ERRORS) == 0
    status = json.dumps(gateway.status())
    assert "quota_exhausted" not in status and "OPEN" not in status.upper().replace("OPENAI", "")


def test_a_provider_reason_that_echoes_our_key_never_reaches_the_caller():
    """The provider's reason is passed on, but a provider that quotes our own key back (plainly or
    URL-encoded) must not hand it to the caller."""
    provider_key = "sk-openai-echoed+key/" + "e" * 24
    from urllib.parse import quote

    def echoing(_request: httpx.Request) -> httpx.Response:
        message = f"Invalid header value 'Bearer {provider_key}' (also {quote(provider_key, safe='')})."
        return httpx.Response(400, json={"error": {"message": message, "type": "invalid_request_error", "code": None}})

    client = httpx.Client(transport=httpx.MockTransport(echoing))
    settings = load_settings({"OPENAI_API_KEY": provider_key, "LLM_GATEWAY_API_KEYS": CLIENT_KEY})
    gateway = build_gateway(settings, metrics=RecordingMetrics(), http_client=client)
    with pytest.raises(GatewayError) as info:
        gateway.chat(_request(), gateway.authenticate(f"Bearer {CLIENT_KEY}"), "req-echo")
    rendered = json.dumps(info.value.body())
    assert info.value.status == 400 and "Invalid header value" in rendered
    assert provider_key not in rendered and quote(provider_key, safe="") not in rendered
    assert "e" * 24 not in rendered
    client.close()


POISON = "a prompt this provider chokes on"


def _answer(*, failing: bool) -> httpx.Response:
    """OpenAI's 500, or its fixture answer."""
    if failing:
        return httpx.Response(500, json={"error": {"message": "The server had an error while processing your "
                                                   "request.", "type": "server_error", "code": None}})
    return httpx.Response(200, content=(FIXTURES / "chat_text.json").read_bytes(),
                          headers={"content-type": "application/json"})


def _chokes_on_one_prompt(request: httpx.Request) -> httpx.Response:
    """A healthy provider that answers 500 to one prompt, every time it is sent."""
    return _answer(failing=POISON in request.content.decode())


def _ask(text: str, model: str = "openai/gpt-4o-mini") -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": model, "messages": [{"role": "user", "content": text}]})


def test_a_request_retried_by_its_caller_cannot_keep_a_provider_behind_the_others():
    """An SDK retries a 5xx (OpenAI's twice by default) and an app's own loop may go on retrying:
    the same request failing the same way on a provider that answers everyone else is the
    request's doing. Its first failure counts (nothing yet tells it from an outage); a repeat
    after the provider has answered others since counts against neither the model's circuit nor
    the provider's standing. Before, each repeat marked the provider failed again, so one
    caller retrying every 20 s kept it ranked behind every other provider for everyone."""
    reset_local_counters()
    moment = [1_764_000_000.0]
    clocks = Clocks(monotonic=lambda: moment[0], wall=lambda: moment[0], sleep=lambda s: None, rand=lambda: 0.5)
    client = httpx.Client(transport=httpx.MockTransport(_chokes_on_one_prompt))
    settings = load_settings({"OPENAI_API_KEY": "sk-openai-test-key", "LLM_GATEWAY_API_KEYS": CLIENT_KEY})
    gateway = build_gateway(settings, metrics=RecordingMetrics(), http_client=client, clocks=clocks)
    caller = gateway.authenticate(f"Bearer {CLIENT_KEY}")
    try:
        for _ in range(4):  # at 0, 20, 40 and 60 s, each followed by another caller's request
            with pytest.raises(GatewayError) as info:
                gateway.chat(_ask(POISON), caller, "req-poison")
            assert info.value.status >= 500
            served = gateway.chat(_ask("an ordinary question"), caller, "req-other")
            assert served.status == 200 and served.headers["x-gateway-model"] == "gpt-4o-mini"
            moment[0] += 20
        moment[0] -= 15  # 65 s: the first failure's mark (30 s) is over; one from the repeat at 60 s would not be
        assert not gateway.core.failures.recent("openai", moment[0])
        assert _breaker_states(gateway) == {"CLOSED"}
    finally:
        client.close()
        reset_local_counters()


def test_the_same_request_failing_while_the_provider_answers_no_one_still_counts():
    """An outage fails every request, identical ones too (a canary's fixed prompt): with no answer
    from the provider in between, each failure counts and the circuit opens as before."""
    reset_local_counters()
    client = httpx.Client(transport=httpx.MockTransport(
        lambda _request: httpx.Response(500, json={"error": {"message": "down", "type": "server_error"}})))
    settings = load_settings({"OPENAI_API_KEY": "sk-openai-test-key", "LLM_GATEWAY_API_KEYS": CLIENT_KEY})
    gateway = build_gateway(settings, metrics=RecordingMetrics(), http_client=client)
    caller = gateway.authenticate(f"Bearer {CLIENT_KEY}")
    try:
        for _ in range(3):
            with pytest.raises(GatewayError):
                gateway.chat(_ask("the canary's question"), caller, "req-canary")
        assert _model_breaker(gateway, "gpt-4o-mini") == "OPEN"
    finally:
        client.close()
        reset_local_counters()


def _gateway_on(transport: httpx.MockTransport, moment: list[float]):
    clocks = Clocks(monotonic=lambda: moment[0], wall=lambda: moment[0], sleep=lambda s: None, rand=lambda: 0.5)
    settings = load_settings({"OPENAI_API_KEY": "sk-openai-test-key", "LLM_GATEWAY_API_KEYS": CLIENT_KEY})
    return build_gateway(settings, metrics=RecordingMetrics(), http_client=httpx.Client(transport=transport),
                         clocks=clocks)


def test_a_model_down_while_its_provider_answers_other_models_still_opens_its_circuit():
    """Found in review: a canary's fixed prompt on a dead model, while the provider's other models
    answer, was taken for the request's doing (answers were counted per provider)."""
    reset_local_counters()

    def one_model_down(request: httpx.Request) -> httpx.Response:
        return _answer(failing=json.loads(request.content)["model"] == "gpt-4o-mini")

    moment = [1_764_000_000.0]
    gateway = _gateway_on(httpx.MockTransport(one_model_down), moment)
    caller = gateway.authenticate(f"Bearer {CLIENT_KEY}")
    try:
        for _ in range(6):
            with pytest.raises(GatewayError):
                gateway.chat(_ask("ping"), caller, "canary")
            assert gateway.chat(_ask("ping", "openai/gpt-4.1-nano"), caller, "other").status == 200
            moment[0] += 20
        assert _model_breaker(gateway, "gpt-4o-mini") == "OPEN"
    finally:
        reset_local_counters()


def test_a_repeat_still_gets_its_same_model_retry_and_counts_as_a_failed_attempt():
    """Found in review: a provider failing calls at random (1, 2 and 4 here), not the prompt. The
    caller's request fails twice, another is answered, the caller sends its request again: its
    failure is taken for the request's doing as far as the circuit goes, but the request keeps
    its one retry on the same model (call 5 answers it) and the failure is counted for the
    provider-failing alarm as any other."""
    from llm_gateway.observability import metrics as m

    reset_local_counters()
    calls = [0]

    def flaky(_request: httpx.Request) -> httpx.Response:
        calls[0] += 1
        return _answer(failing=calls[0] in (1, 2, 4))

    moment = [1_764_000_000.0]
    gateway = _gateway_on(httpx.MockTransport(flaky), moment)
    caller = gateway.authenticate(f"Bearer {CLIENT_KEY}")
    try:
        with pytest.raises(GatewayError):
            gateway.chat(_ask("mine"), caller, "r1")  # calls 1 and 2
        moment[0] += 1
        assert gateway.chat(_ask("someone else's"), caller, "r2").status == 200  # call 3
        moment[0] += 1
        served = gateway.chat(_ask("mine"), caller, "r3")  # call 4 fails (a repeat), call 5 answers
        assert served.status == 200 and served.headers["x-gateway-attempts"] == "2"
        assert gateway.metrics.total(m.PROVIDER_ATTEMPTS, outcome="failed") == 3
        # and it was taken for a repeat: the provider's standing still dates from the first request
        assert gateway.core.failures.latest("openai").at == moment[0] - 2
    finally:
        reset_local_counters()


def test_a_stream_cut_after_its_first_chunk_is_no_answer_that_hides_a_repeat():
    """Found in review: a model in trouble answers whole requests 500 and breaks streams after
    their first chunk. The stream's first chunk recorded the model as having answered, so the
    retry of the earlier 500 was taken for the request's doing and marked nothing. A stream
    answers only once it ends."""
    first_events = (FIXTURES / "stream_text.sse").read_bytes().split(b"\n\n")[:2]

    class CutAfterFirstChunk(httpx.SyncByteStream):
        def __iter__(self):
            for event in first_events:
                yield event + b"\n\n"
            raise httpx.ReadError("connection reset mid-stream")

    def in_trouble(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content).get("stream"):
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=CutAfterFirstChunk())
        return _answer(failing=True)

    reset_local_counters()
    moment = [1_764_000_000.0]
    clocks = Clocks(monotonic=lambda: moment[0], wall=lambda: moment[0], sleep=lambda s: None, rand=lambda: 0.5)
    settings = load_settings({"OPENAI_API_KEY": "sk-openai-test-key", "LLM_GATEWAY_API_KEYS": CLIENT_KEY,
                              "LLM_GATEWAY_MAX_ATTEMPTS": "1"})
    gateway = build_gateway(settings, metrics=RecordingMetrics(), clocks=clocks,
                            http_client=httpx.Client(transport=httpx.MockTransport(in_trouble)))
    caller = gateway.authenticate(f"Bearer {CLIENT_KEY}")
    streamed = ChatCompletionRequest.model_validate(
        {"model": "openai/gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "someone else's"}]})
    try:
        with pytest.raises(GatewayError):
            gateway.chat(_ask("mine"), caller, "r1")
        moment[0] += 1
        outcome = gateway.chat(streamed, caller, "r2", live=True)
        assert b"stream_interrupted" in b"".join(outcome.sse_stream or ())  # cut after its first chunk
        moment[0] += 1
        with pytest.raises(GatewayError):
            gateway.chat(_ask("mine"), caller, "r3")  # the retry: the model has answered no one whole
        assert gateway.core.failures.latest("openai").at == moment[0]  # counted: marked at the retry
    finally:
        reset_local_counters()


def _model_breaker(gateway, model: str) -> str:
    """The state `/v1/status` gives the OpenAI model's circuit."""
    return gateway.status()["providers"]["openai"]["models"][model]["breaker"]["state"]


def _breaker_states(gateway) -> set[str]:
    """Every circuit state `/v1/status` gives for OpenAI, its own and its models'."""
    provider = gateway.status()["providers"]["openai"]
    return {provider["breaker"]["state"], *(m["breaker"]["state"] for m in provider["models"].values())}
