"""The pieces of a report's data (`render/html.py` documents the whole): a value change and a
tagged value as JSON-ready summaries. The gate's report and the trial browser build them alike.
No pytest in here."""
from __future__ import annotations

import numbers
from typing import Any

__all__ = ["change_doc", "tag_doc"]


def tag_doc(value: Any) -> Any:
    """A tagged value as report data: scalars as numbers (non-finite floats as text), others as summaries."""
    from ..values.codec import summarize

    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    try:
        if isinstance(value, numbers.Real) and getattr(value, "ndim", 0) == 0:
            return float(value)
    except (TypeError, ValueError):
        pass
    return summarize(value, 120)


def change_doc(change: Any) -> dict[str, Any]:
    """One value change (`compare.Change`) as report data."""
    from ..values.codec import summarize

    return {"path": change.path, "kind": str(change.kind), "old": summarize(change.old, 120),
            "new": summarize(change.new, 120), "detail": change.detail}
