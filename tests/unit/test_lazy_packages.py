"""defer_package_init: submodules without the package's __init__, the __init__ on first name lookup."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_gateway.lazy_packages import defer_package_init


@pytest.fixture
def package(tmp_path: Path) -> Iterator[str]:
    """A package whose __init__ records that it ran and imports its heavy submodule."""
    root = tmp_path / "deferred_pkg"
    root.mkdir()
    (root / "__init__.py").write_text(
        "import sys\nsys.modules['deferred_pkg_trace'].init_runs += 1\n"
        "from deferred_pkg.heavy import HEAVY\nfrom deferred_pkg.light import LIGHT\nEXPORTED = 'exported'\n"
    )
    (root / "light.py").write_text("LIGHT = 'light'\n")
    (root / "heavy.py").write_text("import sys\nsys.modules['deferred_pkg_trace'].heavy_runs += 1\nHEAVY = 'heavy'\n")
    trace = type(sys)("deferred_pkg_trace")
    trace.init_runs = trace.heavy_runs = 0  # type: ignore[attr-defined]
    sys.modules["deferred_pkg_trace"] = trace
    sys.path.insert(0, str(tmp_path))
    try:
        yield "deferred_pkg"
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("deferred_pkg")]:
            del sys.modules[name]


def _trace() -> object:
    return sys.modules["deferred_pkg_trace"]


def test_submodules_import_without_the_init(package: str) -> None:
    defer_package_init(package)
    from deferred_pkg import light  # type: ignore[import-not-found]
    from deferred_pkg.light import LIGHT  # type: ignore[import-not-found]

    assert LIGHT == light.LIGHT == "light"
    assert _trace().init_runs == 0 and _trace().heavy_runs == 0  # type: ignore[attr-defined]


def test_a_reexported_name_loads_only_its_module(package: str) -> None:
    defer_package_init(package)
    from deferred_pkg import HEAVY  # type: ignore[import-not-found]  # `from deferred_pkg.heavy import HEAVY`

    assert HEAVY == "heavy"
    assert _trace().heavy_runs == 1 and _trace().init_runs == 0  # type: ignore[attr-defined]


def test_a_name_of_the_package_runs_the_init_once(package: str) -> None:
    defer_package_init(package)
    from deferred_pkg import EXPORTED, HEAVY  # type: ignore[import-not-found]

    assert (EXPORTED, HEAVY) == ("exported", "heavy")
    import deferred_pkg  # type: ignore[import-not-found]

    assert deferred_pkg.LIGHT == "light"
    assert _trace().init_runs == 1 and _trace().heavy_runs == 1  # type: ignore[attr-defined]
    with pytest.raises(ImportError):
        from deferred_pkg import missing  # type: ignore[import-not-found]  # noqa: F401


def test_no_op_for_imported_packages_and_modules(package: str) -> None:
    import deferred_pkg  # type: ignore[import-not-found]

    defer_package_init(package)
    assert sys.modules[package] is deferred_pkg and _trace().init_runs == 1  # type: ignore[attr-defined]
    defer_package_init("json.decoder")  # a module, not a package: left alone
    defer_package_init("no_such_package_anywhere")
    assert "no_such_package_anywhere" not in sys.modules
