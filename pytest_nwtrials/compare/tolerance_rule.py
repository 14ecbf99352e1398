"""The one rule for a tolerance (an rtol or an atol), wherever it is given: the ini, the command
line, a marker, `tag()`, `nwtrials diff`, a tolerance line. It imports nothing but `math`, so the
capture process can use it before the experiment's own imports."""
from __future__ import annotations

import math

RULE = "a finite number >= 0"


def is_tolerance(value: object) -> bool:
    """Whether `value` is a valid tolerance: a number (not a bool) that is finite and >= 0."""
    return (not isinstance(value, bool) and isinstance(value, (int, float))
            and math.isfinite(value) and value >= 0)


def tolerance_from_text(text: str) -> float | None:
    """The tolerance written as `text` (an ini value, a command-line argument); None when it is
    not a number or breaks the rule."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if is_tolerance(value) else None
