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


# ---- the configuration table against the code and the template ---------------------------------

CONFIG_PY = REPO / "layers" / "gateway" / "llm_gateway" / "config.py"
SOURCES = [*(REPO / "layers").rglob("*.py"), *(REPO / "functions").rglob("*.py"), *(REPO / "sandbox").rglob("*.py"),
           *(REPO / "functions").rglob("*.sh")]


def _configuration_rows() -> dict[str, str]:
    """Every variable named in the first cell of a row of README's configuration table → its default cell."""
    rows = {}
    for line in _section("## Configuration").splitlines():
        if not line.startswith("| `"):
            continue
        names, default = line.split(" | ")[:2]
        names = re.sub(r"\(e\.g\. [^)]*\)", "", names)  # `<PROVIDER>_MODELS` (e.g. `GROQ_MODELS`)
        for name in re.findall(r"`([A-Z<][A-Z0-9_<>]*)`", names):
            rows[name] = default
    return rows


def _template_variables() -> set[str]:
    """The names template.yaml sets in any function's (or the globals') `Environment: Variables:`."""
    names, indent = set(), None
    for line in (REPO / "template.yaml").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped == "Variables:":
            indent = len(line) - len(line.lstrip())
            continue
        if indent is not None:
            if stripped.startswith("#") or not stripped:
                continue
            if len(line) - len(line.lstrip()) <= indent:
                indent = None
                continue
            names.add(stripped.split(":", 1)[0])
    return names


def _numeric_defaults() -> dict[str, float]:
    """`_float(env, "NAME", default)` / `_int(...)` / `_number(...)` calls in config.py: name → default."""
    import ast

    def value(node: ast.expr) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            return value(node.left) * value(node.right)
        raise ValueError(ast.dump(node))

    found = {}
    for node in ast.walk(ast.parse(CONFIG_PY.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("_float", "_int", "_number")
                and len(node.args) >= 3 and isinstance(node.args[1], ast.Constant)):
            found[node.args[1].value] = value(node.args[2])
    return found


def test_every_variable_the_template_sets_is_in_the_configuration_table():
    missing = _template_variables() - set(_configuration_rows())
    assert not missing, f"set by template.yaml but not in README's configuration table: {sorted(missing)}"


def test_every_variable_config_reads_is_in_the_configuration_table_with_its_default():
    rows = _configuration_rows()
    source = CONFIG_PY.read_text(encoding="utf-8")
    read = set(re.findall(r'"((?:LLM_GATEWAY|POWERTOOLS|AWS)_[A-Z0-9_]+)"', source))
    assert not read - set(rows), f"read by config.py but not in the table: {sorted(read - set(rows))}"
    defaults = _numeric_defaults()
    assert len(defaults) >= 20, defaults
    for name, default in defaults.items():
        if default == 0:  # 0 stands for "unset" (the function timeout, the spend cap): the cell says what sets it
            continue
        first = re.match(r"\s*`([^`]*)`", rows[name])  # the cell's first value is the default (others: `make dev`'s...)
        want = str(int(default) if default.is_integer() else default)
        assert first is not None and first[1] == want, (name, default, rows[name])


def test_every_variable_in_the_configuration_table_is_read_or_set():
    """The reverse: no row for a variable nothing reads (a renamed or removed setting)."""
    from llm_gateway.providers.registry import key_variables, provider_specs

    code = "\n".join(path.read_text(encoding="utf-8") for path in SOURCES)
    template = _template_variables()
    for name in _configuration_rows():
        if name.startswith("<PROVIDER>_"):
            suffix = name.removeprefix("<PROVIDER>")
            assert all(getattr(spec, f"{suffix.strip('_').lower()}_env") == f"{spec.kind.upper()}{suffix}"
                       for spec in provider_specs().values()), name
        elif name in key_variables() or name in template:
            continue
        elif name.startswith("AWS_ENDPOINT_URL_"):  # read as botocore reads them: `AWS_ENDPOINT_URL_<SERVICE>`
            assert f'"{name.removeprefix("AWS_ENDPOINT_URL_")}"' in code, name
        else:
            assert f'"{name}"' in code, f"README's configuration table names {name}, which no code reads"
