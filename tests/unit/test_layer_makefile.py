"""The layer's Makefile (`sam build`, BuildMethod: makefile) says when it ships no bytecode.

`sam build` shows what a makefile build writes to stdout and drops its stderr when the build
succeeds (SAM CLI 1.170), so a note written to stderr never reached the person building: the
README promises that a build without a Python 3.13 "says so".
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

LAYER = Path(__file__).resolve().parents[2] / "layers" / "gateway"


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_a_layer_built_without_python_3_13_says_so_on_stdout(tmp_path: Path) -> None:
    (tmp_path / "python" / "pkg").mkdir(parents=True)
    (tmp_path / "python" / "pkg" / "m.py").write_text("X = 1\n")
    done = subprocess.run(
        ["make", "-s", "-C", str(LAYER), "layer-bytecode", f"ARTIFACTS_DIR={tmp_path}",
         "LAMBDA_PYTHON=/nonexistent/python3.13"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert "ships without bytecode" in done.stdout, (done.stdout, done.stderr)
    assert not list(tmp_path.rglob("*.pyc"))


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_a_layer_built_with_the_runtimes_python_is_byte_compiled(tmp_path: Path) -> None:
    """The other branch, with this interpreter standing in for the runtime's (its version given)."""
    import sys

    (tmp_path / "python" / "pkg").mkdir(parents=True)
    (tmp_path / "python" / "pkg" / "m.py").write_text("X = 1\n")
    done = subprocess.run(
        ["make", "-s", "-C", str(LAYER), "layer-bytecode", f"ARTIFACTS_DIR={tmp_path}", f"LAMBDA_PYTHON={sys.executable}",
         f"LAMBDA_PYTHON_VERSION={sys.version_info[0]}.{sys.version_info[1]}"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert "ships without bytecode" not in done.stdout
    assert list(tmp_path.rglob("m.*.pyc"))
