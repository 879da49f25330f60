"""What README.md shows works as shown: its configuration examples load, its counts match.

The OpenAI-compatible recipe used to fail as written (no `providers` entry, missing mandatory
fields); this test reads the block out of the README, so the two cannot drift apart again.
"""

from __future__ import annotations

import json
import re
import shlex
from collections import Counter
from pathlib import Path

from llm_gateway.config import load_settings
from llm_gateway.gateway import build_gateway
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.selection.catalog import BUILTIN_PATH, load_catalog

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _section(heading: str) -> str:
    start = README.index(heading)
    following = README.find("\n#", start + len(heading))
    return README[start: following if following != -1 else None]


def _exports(block: str) -> dict[str, str]:
    """`export NAME=value` lines of a bash block, values unquoted as bash would."""
    env = {}
    for line in block.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = shlex.split(value)[0]
    return env


def test_the_openai_compatible_endpoint_example_loads_exactly_as_written():
    section = _section("### Adding an OpenAI-compatible endpoint")
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    env = _exports(block.group(1))
    assert set(env) == {"VLLM_API_KEY", "LLM_GATEWAY_OPENAI_COMPATIBLE", "LLM_GATEWAY_CATALOG_OVERRIDES"}
    settings = load_settings({**env, "LLM_GATEWAY_API_KEYS": "k" * 32})
    assert [(p.name, p.kind, p.models) for p in settings.providers] == [("vllm", "openai_compatible", ("llama3.1:8b",))]
    gateway = build_gateway(settings, metrics=RecordingMetrics())
    assert {card.id for card in gateway.list_models().data} >= {"vllm/llama3.1:8b", "auto"}


def test_the_catalog_overrides_example_loads():
    section = _section("**The catalog**")
    example = re.search(r"`(\{\"models\".*?\})`", section)
    assert example is not None
    overrides = json.loads(example.group(1))
    catalog = load_catalog(json.dumps(overrides))
    assert all(e.key.model != "gpt-5-mini" for e in catalog.entries)
    load_settings({"LLM_GATEWAY_CATALOG_OVERRIDES": json.dumps(overrides)})


def test_the_model_counts_stated_match_the_catalog():
    text = " ".join(_section("**The catalog**").split())
    stated = re.search(r"(\d+) chat models \(([^)]*)\) plus one disabled example entry", text)
    speech = re.search(r"(\d+) speech-to-text models \(([^)]*)\)", text)
    assert stated is not None and speech is not None, text[:300]
    raw = json.loads(BUILTIN_PATH.read_text(encoding="utf-8"))
    enabled = [m for m in raw["models"] if m.get("enabled", True)]
    names = {"groq": "Groq", "gemini": "Gemini", "mistral": "Mistral", "openai": "OpenAI", "cohere": "Cohere",
             "replicate": "Replicate"}
    for found, capability in ((stated, "chat"), (speech, "transcription")):
        models = [m for m in enabled if capability in m.get("serves", ["chat"])]
        assert int(found.group(1)) == len(models)
        per_provider = {f"{names[p]} {n}" for p, n in Counter(m["provider"] for m in models).items()}
        assert per_provider == {part.strip() for part in found.group(2).split(",")}
    assert len(raw["models"]) - len(enabled) == 1


def test_nothing_points_at_files_outside_the_repository():
    for text in (README, json.loads(BUILTIN_PATH.read_text(encoding="utf-8"))["about"]):
        for gone in ("DESIGN.md", "seed plan", "/work/"):
            assert gone not in text
