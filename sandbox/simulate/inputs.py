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
        bounds = [f">= {at_least:g}" if at_least is not None else "", f"> {above:g}" if above is not None else "",
                  f"<= {at_most:g}" if at_most is not None else ""]
        raise ValueError(f"{where}: expected a number {' and '.join(b for b in bounds if b)}, got {raw!r}")
    return value
