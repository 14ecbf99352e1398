"""What the diff engine produces, and what its per-type comparators are handed.

Every difference is a `Change(path, kind, old, new, detail)` whose kind is a `Kind` member; the
value of a member is the phrase reports print and the JSON keeps, so a stored report reads the
same whatever the code calls it. `compare` walks the values and dispatches to compare/frames.py,
compare/sparse.py and compare/models.py; they import this module, never `compare`, and call back
through the `Walker` they are given, so the dispatch runs one way.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol

from .rules import Rules

__all__ = ["Change", "Kind", "Walker"]


class Kind(enum.StrEnum):
    """What happened at a path; the value is the phrase used in reports."""

    CHANGED = "changed"
    TYPE_CHANGED = "type changed"
    REMOVED = "missing in the new trial"
    ADDED = "new"
    SHAPE_CHANGED = "shape changed"
    DTYPE_CHANGED = "dtype changed"
    COLUMNS_CHANGED = "columns changed"
    INDEX_CHANGED = "index changed"
    # models (compare/models.py): reported as "model: max_depth: None -> 5" and
    # "model: RandomForestClassifier(...) -> GradientBoostingClassifier(...)"
    HYPERPARAMETER = "hyperparameter changed"
    CLASS_CHANGED = "class changed"


@dataclass(frozen=True)
class Change:
    """One difference. For arrays, frames and other large values `old`/`new` hold `Summary`
    strings, never the data; for shape, dtype, columns and index changes they hold the
    shapes, dtypes or labels as `Summary` strings."""

    path: str
    kind: Kind
    old: Any
    new: Any
    detail: str = ""


class Walker(Protocol):
    """The walk a per-type comparator is part of (`compare.Differ`): the rules that apply, the
    changes found so far, and the way back into the engine for nested values."""

    rules: Rules
    changes: list[Change]

    def add(self, path: str, kind: Kind, old: Any, new: Any, detail: str = "") -> None: ...

    def compare_mapping(self, old: dict[Any, Any], new: dict[Any, Any], path: str) -> None:
        """Compare two mappings key by key under `path` (a model's parameters, ...)."""
        ...
