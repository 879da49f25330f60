"""Settings changed while the gateway is in active use, through the official `openai` SDK on a
running `make dev` (`llm-gateway serve`: its own fakes, containers in worker processes sharing
the embedded DynamoDB, a local rollout flag): while three clients keep sending
chat requests and streams, the operator moves the rollout 100 % → 0 % → 100 % and narrows a
user's allowed models. Each change reaches every container within 10 s, no restart, and not one
request in flight or after fails."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import openai

from llm_gateway.rollout.cohorts import BASELINE, GATEWAY
from sandbox.rollout_cli import _local_rollout
from tests.e2e.conftest import DEV_KEY
from tests.e2e.test_users_over_http import admin
from tests.gateway_env import running_make_dev

SETTLE_S = 10.0


class Traffic:
    """Client threads sending requests back to back; each answer's headers are kept with the
    time it arrived, and every failure is kept as it was raised."""

    def __init__(self) -> None:
        self.answers: list[tuple[float, str, dict[str, str]]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def run(self, name: str, send: Callable[[], dict[str, str]]) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    headers = send()
                    with self._lock:
                        self.answers.append((time.monotonic(), name, headers))
                except Exception as error:  # an SDK error, a transport error or a failed check alike
                    with self._lock:
                        self.failures.append(f"{name}: {error!r}")
                time.sleep(0.1)

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def since(self, at: float, name: str) -> list[dict[str, str]]:
        with self._lock:
            return [headers for when, who, headers in self.answers if who == name and when > at]

    def until(self, name: str, condition: Callable[[dict[str, str]], bool], after: float) -> float:
        """Seconds from `after` until `name`'s answers meet `condition` and keep meeting it."""
        deadline = after + SETTLE_S
        while time.monotonic() < deadline:
            recent = self.since(after, name)
            if len(recent) >= 3 and all(condition(h) for h in recent[-3:]):
                return time.monotonic() - after
            time.sleep(0.2)
        raise AssertionError(f"{name}: not within {SETTLE_S} s; last answers {self.since(after, name)[-3:]}")


def test_rollout_and_a_users_models_changed_during_use_take_effect_within_10s_and_nothing_fails(tmp_path: Path) -> None:
    with running_make_dev(tmp_path / "serve.log") as gateway_url:
        _change_settings_during_use(gateway_url)


def _change_settings_during_use(gateway_url: str) -> None:
    rollout = _local_rollout(gateway_url)
    made = admin(gateway_url, "POST", body={"user": "e2e-erin", "models": ["groq/*", "gemini/*"]}).json()
    app = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=DEV_KEY, max_retries=0, timeout=30)
    erin = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=made["key"], max_retries=0, timeout=30)
    ask = [{"role": "user", "content": "hi"}]

    def app_chat() -> dict[str, str]:
        raw = app.chat.completions.with_raw_response.create(model="auto", messages=ask, user="end-user-7", max_tokens=16)
        assert raw.parse().choices[0].message.content
        return dict(raw.headers)

    def app_stream() -> dict[str, str]:
        raw = app.chat.completions.with_raw_response.create(model="auto", messages=ask, user="end-user-7",
                                                            max_tokens=16, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        return dict(raw.headers)

    def erin_chat() -> dict[str, str]:
        return dict(erin.chat.completions.with_raw_response.create(model="auto", messages=ask, max_tokens=16).headers)

    traffic = Traffic()
    try:
        rollout.set(100)
        for name, send in (("app", app_chat), ("stream", app_stream), ("erin", erin_chat)):
            traffic.run(name, send)
        time.sleep(1.0)

        moved = time.monotonic()
        rollout.set(0)  # everyone back on the old system: the baseline model
        for name in ("app", "stream"):
            traffic.until(name, lambda h: h["x-gateway-cohort"] == BASELINE
                          and h["x-gateway-provider"] == "openai" and h["x-gateway-model"] == "gpt-4o-mini", moved)

        moved = time.monotonic()
        rollout.set(100)
        for name in ("app", "stream"):
            traffic.until(name, lambda h: h["x-gateway-cohort"] == GATEWAY, moved)

        moved = time.monotonic()
        assert admin(gateway_url, "PATCH", f"/{made['id']}", {"models": ["gemini/*"]}).status_code == 200
        traffic.until("erin", lambda h: h["x-gateway-provider"] == "gemini", moved)
        time.sleep(1.0)
    finally:
        traffic.stop()
    assert traffic.failures == []
    served = {name: len(traffic.since(0.0, name)) for name in ("app", "stream", "erin")}
    assert min(served.values()) >= 10, served  # the traffic really flowed throughout
