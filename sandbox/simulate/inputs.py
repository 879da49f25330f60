"""The one reader of a number in a workload file or a `simulate` option: ValueError naming where
it is and what it must be, never Python's own message about a float."""

from __future__ import annotations

import math
from typing import Any


def number(raw: Any, where: str, *, at_least: float | None = None, above: float | None = None,
           at_most: float | None = None, whole: bool = False) -> float:
    """A workload's number, or ValueError naming where it is and what it must be."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(f"{where}: expected a number, got {raw!r}")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{where}: expected a number, got {raw!r}") from None
    if not math.isfinite(value) or (whole and not value.is_integer()):
        raise ValueError(f"{where}: expected a {'whole ' if whole else ''}number, got {raw!r}")
    if (at_least is not None and value < at_least) or (above is not None and value <= above) \
            or (at_most is not None and value > at_most):
        bounds = [f">= {_shown(at_least)}" if at_least is not None else "",
                  f"> {_shown(above)}" if above is not None else "",
                  f"<= {_shown(at_most)}" if at_most is not None else ""]
        raise ValueError(f"{where}: expected a number {' and '.join(b for b in bounds if b)}, got {raw!r}")
    return value


def _shown(bound: float) -> str:
    """A bound as an operator types it: 1,000,000 rather than :g's 1e+06."""
    return f"{bound:,.0f}" if abs(bound) >= 1e6 and float(bound).is_integer() else f"{bound:g}"
