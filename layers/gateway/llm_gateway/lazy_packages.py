"""Import a package's submodules without running the package's `__init__` first.

Python runs a package's `__init__` before any of its submodules, and some of our dependencies'
`__init__` files import everything the package offers: Powertools' `event_handler` imports every
resolver it has (AppSync pulls in asyncio, Bedrock, VPC Lattice, …), its circuit-breaker
`persistence` imports the DynamoDB layer and with it boto3 (about 100 ms with s3transfer). A chat
Lambda needs one resolver and, without a state table, no boto3; at a cold start the rest is
pure cost (`benchmarks/bench_cold_start.py` measures it).

`defer_package_init(name)` registers the package module without executing its `__init__`:
- `import package.sub` and `from package import sub` load just that submodule;
- a name the `__init__` re-exports with a top-level `from module import Name` (read from its
  source, not run) loads just that module: Powertools' REST resolver imports five event classes
  by name from `data_classes`, whose `__init__` would import some thirty (and zipfile, bz2, lzma
  for one of them);
- the first lookup of any other name (`__all__`, anything the `__init__` defines itself) runs
  the real `__init__` then, so the package ends up exactly as an ordinary import leaves it.
If the package is already imported, or is not a package found on the path, nothing changes.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

_lock = threading.RLock()


def defer_package_init(name: str) -> None:
    """See the module docstring; idempotent, and a no-op once the package is imported."""
    with _lock:
        if name in sys.modules:
            return
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            return
        package = importlib.util.module_from_spec(spec)
        package.__getattr__ = _completer(package, name)  # type: ignore[method-assign]
        sys.modules[name] = package


def _completer(package: ModuleType, name: str) -> Any:
    loader = package.__spec__.loader if package.__spec__ is not None else None
    reexports: dict[str, tuple[str, str]] | None = None

    def complete(attribute: str) -> Any:
        """PEP 562: called only for names the package does not have yet."""
        nonlocal reexports
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        if importlib.util.find_spec(f"{name}.{attribute}") is not None:
            return importlib.import_module(f"{name}.{attribute}")  # a submodule: no __init__ needed
        if reexports is None:
            reexports = _reexports(loader, name)
        source = reexports.get(attribute)
        if source is not None:
            value = getattr(importlib.import_module(source[0]), source[1])
            setattr(package, attribute, value)
            return value
        with _lock:
            if package.__dict__.pop("__getattr__", None) is not None and loader is not None:
                loader.exec_module(package)
        return getattr(package, attribute)

    return complete


def _reexports(loader: Any, name: str) -> dict[str, tuple[str, str]]:
    """name → (module, attribute) for each top-level `from module import attribute [as name]`
    in the package's `__init__` source; empty when there is no source to read."""
    try:
        source = loader.get_source(name)
    except (AttributeError, ImportError, OSError):
        return {}
    if not source:
        return {}
    found: dict[str, tuple[str, str]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom):
            module = importlib.util.resolve_name("." * node.level + (node.module or ""), name) if node.level \
                else str(node.module)
            for alias in node.names:
                if alias.name != "*":
                    found[alias.asname or alias.name] = (module, alias.name)
    return found
