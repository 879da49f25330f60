"""The provider fixtures were synthesized from SDK types and docs, never recorded from live
traffic. Nothing that names or describes them may say "recorded": a reader would take their
illustrative ids, numbers and headers for ground truth observed on the wire."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "providers"
RECORDED = re.compile(r"\brecorded\b", re.IGNORECASE)


def test_no_fixture_file_or_text_about_them_says_recorded() -> None:
    describing = [*FIXTURES.rglob("*"), *(ROOT / "tests" / "unit" / "providers").glob("*.py"),
                  ROOT / "sandbox" / "fakes" / "README.md"]  # fmt: skip
    offenders = [
        str(path.relative_to(ROOT)) for path in describing
        if path != Path(__file__) and (RECORDED.search(path.name) or (path.is_file() and RECORDED.search(path.read_text())))
    ]  # fmt: skip
    assert offenders == []


def test_the_repository_readme_calls_them_synthesized() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    about_fixtures = [line for line in lines if re.search(r"payload|fixture|response", line, re.IGNORECASE)]
    assert not [line for line in about_fixtures if RECORDED.search(line)]
    assert "synthesized" in (FIXTURES / "README.md").read_text().splitlines()[0].lower()
