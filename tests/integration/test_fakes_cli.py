"""`llm-gateway fakes --json` as a subprocess, plus the pure helpers behind the fakes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import jsonschema
import pytest

from sandbox.fakes import FAKES
from sandbox.fakes.content import example_for
from sandbox.fakes.wire import go_duration

CLI = Path(sys.executable).with_name("llm-gateway")


def _first_line(proc: subprocess.Popen[str], timeout: float = 10.0) -> str:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline() if proc.stdout else ""))
    reader.start()
    reader.join(timeout)
    assert box, "no JSON line from `llm-gateway fakes --json`"
    return box[0]


def _run(args: list[str]) -> tuple[dict, int]:
    proc = subprocess.Popen(
        [str(CLI), "fakes", "--json", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        described = json.loads(_first_line(proc))
        models = httpx.get(
            described["openai"]["base_url"] + "/models", headers={"Authorization": "Bearer k"}, timeout=5
        )
        assert models.status_code == 200
        assert [m["id"] for m in models.json()["data"]] == described["openai"]["models"]
    finally:
        proc.terminate()
        code = proc.wait(timeout=10)
    return described, code


@pytest.mark.skipif(not CLI.exists(), reason="console script not installed in this environment")
def test_cli_prints_one_json_line_and_serves_until_terminated() -> None:
    described, code = _run([])
    assert code == 0
    assert list(described) == list(FAKES)
    assert described["openai"]["base_url"].startswith("http://127.0.0.1:")
    assert {name: info["models"] for name, info in described.items()} == {
        name: list(spec.models) for name, spec in FAKES.items()}  # fmt: skip


@pytest.mark.skipif(not CLI.exists(), reason="console script not installed in this environment")
def test_cli_config_and_providers(tmp_path: Path) -> None:
    config = tmp_path / "fakes.yaml"
    config.write_text("providers:\n  openai:\n    models: [m-one, m-two]\n  cohere: {}\n  groq: {}\n")
    described, code = _run(["--config", str(config), "--providers", "openai,cohere"])
    assert code == 0
    assert set(described) == {"openai", "cohere"} and described["openai"]["models"] == ["m-one", "m-two"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.012, "12ms"),
        (1, "1s"),
        (7.66, "7.66s"),
        (360, "6m0s"),
        (179.56, "2m59.56s"),
        (52151.04, "14h29m11.04s"),
    ],
)
def test_go_duration_matches_provider_header_format(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


SCHEMAS = [
    {
        "type": "object",
        "properties": {"a": {"type": "string", "minLength": 30, "maxLength": 40}},
        "required": ["a"],
    },
    {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 5, "maximum": 9},
            "x": {"type": "number", "exclusiveMinimum": 0},
            "e": {"enum": ["red", "blue"]},
            "c": {"const": 3},
        },
        "required": ["n", "x", "e", "c"],
    },
    {
        "type": "array",
        "items": {"type": "object", "properties": {"d": {"type": "string", "format": "date"}}},
        "minItems": 2,
    },
    {
        "$defs": {"P": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}},
        "type": "object",
        "properties": {"p": {"$ref": "#/$defs/P"}, "q": {"anyOf": [{"type": "null"}, {"type": "boolean"}]}},
        "required": ["p", "q"],
    },
    {
        "type": "object",
        "properties": {
            "t": {"type": ["null", "string"]},
            "all": {
                "allOf": [
                    {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                    {"type": "object", "properties": {"b": {"type": "boolean"}}, "required": ["b"]},
                ]
            },
        },
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_schema_examples_validate(schema: dict) -> None:
    jsonschema.validate(example_for(schema), schema)


def test_gemini_style_uppercase_types() -> None:
    value = example_for(
        {
            "type": "OBJECT",
            "properties": {"k": {"type": "INTEGER"}, "l": {"type": "ARRAY", "items": {"type": "STRING"}}},
        }
    )
    assert isinstance(value["k"], int) and isinstance(value["l"][0], str)
