"""`llm-gateway plan`: text and the documented JSON shape, on empty in-memory state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox import plan_cli


def write(tmp_path: Path, body: dict) -> str:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(body))
    return str(path)


def test_json_output_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}
    assert plan_cli.main([write(tmp_path, body), "--json", "--configured", "groq,openai"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"category", "prompt_tokens", "plan", "dropped"}
    assert out["category"] == "small" and out["prompt_tokens"] > 0
    assert {s["provider"] for s in out["plan"]} == {"groq", "openai"}
    assert all(set(s) == {"provider", "model", "free", "context_window", "reason"} for s in out["plan"])
    assert out["plan"][0]["free"] is True


def test_text_output_lists_drops(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    body = {"model": "auto", "messages": [{"role": "user", "content": image}]}
    assert plan_cli.main([write(tmp_path, body), "--configured", "groq"]) == 0
    text = capsys.readouterr().out
    assert "no vision support" in text and "llama-4-scout" in text


def test_unknown_model_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = {"model": "nope/nothing", "messages": [{"role": "user", "content": "x"}]}
    assert plan_cli.main([write(tmp_path, body)]) == 1
    assert "model_not_found" in capsys.readouterr().err


def test_plan_counts_organisation_wide_limits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The router's own plan: Mistral's free tier is 1 request per second for the whole organisation."""
    body = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}
    assert plan_cli.main([write(tmp_path, body), "--json", "--configured", "mistral"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["plan"] and {s["provider"] for s in out["plan"]} == {"mistral"}
    assert all("1 request left" in s["reason"] for s in out["plan"])


def test_unknown_configured_provider_is_a_clear_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}
    assert plan_cli.main([write(tmp_path, body), "--configured", "nobody"]) == 2
    err = capsys.readouterr().err
    assert "unknown provider(s) nobody" in err and "groq" in err  # names the mistake and what exists
