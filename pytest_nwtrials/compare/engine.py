"""The diff engine: a baseline trial's tagged values against a new trial's, with tolerances.

One dispatcher over small per-type comparators; every difference is a `Change` record with a
stable path and a kind from a fixed enum, and rendering lives in `render`. Values may be live
objects or decoded documents (`values.decode`); both compare the same way.

Numbers agree when `|new - old| <= atol + rtol * |old|` (relative to the baseline, like
`numpy.isclose(new, old)`); nan equals nan and inf equals inf of the same sign. Which rtol and
atol apply at a path is decided by `Rules` (see compare/rules.py).

Decisions worth knowing:
- Numbers are compared by kind: bool, integer, float, complex. A change of kind (bool -> int,
  int -> float even at an equal value) is a type change. Within a kind a different dtype
  (float32 -> float64, int -> int64) is a dtype change and the values are still compared; a
  Python float counts as float64 and a Python complex as complex128.
- Ints (and integer arrays) compare exactly unless a tolerance was set explicitly; bools,
  strings, bytes, datetimes and everything non-numeric always compare exactly.
- Arrays: shape and dtype changes are their own kinds; after a dtype change the values are
  still compared when both sides are numeric (or of the same kind) and the shapes agree.
- Models (objects with scikit-learn's `get_params`) compare by class, hyperparameters and
  fitted attributes (compare/models.py).
- Anything else compares by type and pickle digest (`OpaqueValue`);
  objects that cannot be pickled compare by type only. So do containers that hold themselves.
- A byte-order difference ('>f8' vs '<f8') is storage, not a dtype change.
"""

from __future__ import annotations

import enum
import sys
from fractions import Fraction
from typing import Any, Mapping

import numpy as np

from ..values.codec import OpaqueValue, Summary, as_opaque, qualified_type_name, safe_repr, summarize
from . import arrays as compare_arrays
from .changes import Change, Kind
from .rules import (
    FixedRules, ResolvedTolerance, Rules, Tolerance, child_path, dotted_path, parse_tolerance_lines, split_path)

__all__ = [
    "NUMBERS", "Category", "Change", "Differ", "Kind", "ResolvedTolerance", "Rules", "Tolerance", "category",
    "child_path", "diff", "diff_tags", "dotted_path", "parse_tolerance_lines", "split_path",
]


_DEFAULT_RULES = Rules()


def diff(old: Any, new: Any, rules: Rules | None = None, path: str = "") -> list[Change]:
    """Differences between a baseline value and a new one, in a stable order."""
    differ = Differ(rules or _DEFAULT_RULES)
    if not differ.rules.ignored(path):
        differ.compare_whole(old, new, path)
    return differ.changes


def diff_tags(old: Mapping[str, Any], new: Mapping[str, Any], rules: Rules | None = None) -> list[Change]:
    """Differences between two trials' tags, by tag name; ignored tags are skipped."""
    differ = Differ(rules or _DEFAULT_RULES)
    for name in sorted(set(old) | set(new)):
        if differ.rules.ignored(name):
            continue
        if name not in new:
            differ.add(name, Kind.REMOVED, display(old[name]), None)
        elif name not in old:
            differ.add(name, Kind.ADDED, None, display(new[name]))
        else:
            differ.compare_whole(old[name], new[name], name)
    return differ.changes


def display(value: Any) -> Any:
    """What a Change keeps of a value: small scalars themselves, anything else a summary."""
    if category(value) in _SCALARS:
        return value
    # Objects (models with their parameters) get more room: the report decides what to show.
    return Summary(summarize(value, 400 if category(value) is Category.OBJECT else 100))


class Category(enum.StrEnum):
    """What a value is compared as: values of different categories are a type change."""

    NONE = "none"
    BOOL = "bool"
    INT = "int"
    FLOAT = "float"
    COMPLEX = "complex"
    STR = "str"
    BYTES = "bytes"
    DATETIME = "datetime64"
    TIMEDELTA = "timedelta64"
    LIST = "list"
    TUPLE = "tuple"
    DICT = "dict"
    SET = "set"
    FROZENSET = "frozenset"
    NDARRAY = "ndarray"
    DATAFRAME = "DataFrame"
    SERIES = "Series"
    SPARSE_MATRIX = "sparse matrix"  # scipy's spmatrix and sparray: their operators differ
    SPARSE_ARRAY = "sparse array"
    OBJECT = "object"


NUMBERS = frozenset({Category.BOOL, Category.INT, Category.FLOAT, Category.COMPLEX})
_SCALARS = NUMBERS | {Category.NONE, Category.STR, Category.BYTES, Category.DATETIME, Category.TIMEDELTA}
_CONTAINERS = {list: Category.LIST, tuple: Category.TUPLE, dict: Category.DICT, set: Category.SET,
               frozenset: Category.FROZENSET, np.ndarray: Category.NDARRAY}


def category(value: Any) -> Category:
    """The comparison category: values of different categories are a type change."""
    kind = type(value)
    if value is None:
        return Category.NONE
    if kind is bool or kind is np.bool_:
        return Category.BOOL
    if isinstance(value, (np.datetime64, np.timedelta64)):  # before integers: timedelta64 is one
        return Category.DATETIME if isinstance(value, np.datetime64) else Category.TIMEDELTA
    if kind is int or isinstance(value, np.integer):
        return Category.INT
    if kind is float or isinstance(value, np.floating):
        return Category.FLOAT
    if kind is complex or isinstance(value, np.complexfloating):
        return Category.COMPLEX
    if kind is str or kind is np.str_:
        return Category.STR
    if kind is bytes or kind is np.bytes_:
        return Category.BYTES
    if kind in _CONTAINERS:
        return _CONTAINERS[kind]
    pd = sys.modules.get("pandas")
    if pd is not None and kind in (pd.DataFrame, pd.Series):
        return Category.DATAFRAME if kind is pd.DataFrame else Category.SERIES
    if "scipy.sparse" in sys.modules:
        from ..values.sparse import is_sparse, kind_label

        if is_sparse(value):
            return Category(kind_label(value))  # "sparse matrix" or "sparse array"
    return Category.OBJECT


def scalar_dtype(value: Any) -> str:
    """The dtype a scalar counts as: Python floats are float64, Python ints just `int`."""
    if isinstance(value, np.generic):
        return value.dtype.name
    names = {bool: "bool", int: "int", float: "float64", complex: "complex128"}
    return names.get(type(value), type(value).__name__)


class Differ:
    """Walks two values side by side and collects Change records."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.changes: list[Change] = []

    def add(self, path: str, kind: Kind, old: Any, new: Any, detail: str = "") -> None:
        self.changes.append(Change(path, kind, old, new, detail))

    def compare_whole(self, old: Any, new: Any, path: str) -> None:
        """compare(), falling back to type and digest for values nested too deep to walk."""
        before = len(self.changes)
        try:
            self.compare(old, new, path)
        except RecursionError:  # a container holding itself, or thousands of levels deep
            del self.changes[before:]
            self._opaque(old, new, path)

    def compare(self, old: Any, new: Any, path: str) -> None:
        old_kind, new_kind = category(old), category(new)
        if old_kind is Category.OBJECT and new_kind is Category.OBJECT and _models(old, new):
            from .models import compare_models

            compare_models(self, old, new, path)
        elif old_kind is Category.OBJECT or new_kind is Category.OBJECT:
            self._opaque(old, new, path)
        elif old_kind != new_kind:
            self.add(path, Kind.TYPE_CHANGED, display(old), display(new))
        elif old_kind in NUMBERS:
            self._number(old, new, path, old_kind)
        elif old_kind in (Category.STR, Category.BYTES):
            if old != new:
                self.add(path, Kind.CHANGED, old, new)
        elif old_kind in (Category.DATETIME, Category.TIMEDELTA):
            self._dtype(scalar_dtype(old), scalar_dtype(new), path)
            if old != new and not (np.isnat(old) and np.isnat(new)):
                self.add(path, Kind.CHANGED, old, new)
        elif old_kind in (Category.LIST, Category.TUPLE):
            self._sequence(old, new, path)
        elif old_kind is Category.DICT:
            self._mapping(old, new, path)
        elif old_kind in (Category.SET, Category.FROZENSET):
            self._set(old, new, path)
        elif old_kind is Category.NDARRAY:
            self._array(old, new, path)
        elif old_kind in (Category.DATAFRAME, Category.SERIES):
            from . import frames as compare_frames

            compare_frames.compare_pandas(self, old, new, path)
        elif old_kind in (Category.SPARSE_MATRIX, Category.SPARSE_ARRAY):
            from . import sparse as compare_sparse

            compare_sparse.compare_sparse(self, old, new, path)

    def differs(self, old: Any, new: Any, tolerance: ResolvedTolerance) -> bool:
        """Whether two values differ at all under one fixed tolerance (object array elements)."""
        inner = Differ(FixedRules(tolerance))
        inner.compare(old, new, "")
        return bool(inner.changes)

    def _dtype(self, old: str, new: str, path: str) -> None:
        if old != new:
            self.add(path, Kind.DTYPE_CHANGED, Summary(old), Summary(new))

    def _number(self, old: Any, new: Any, path: str, kind: Category) -> None:
        self._dtype(scalar_dtype(old), scalar_dtype(new), path)
        if kind is Category.BOOL:
            same = bool(old) == bool(new)
        else:
            tolerance = self.rules.tolerance_for(path)
            if kind is Category.INT and not tolerance.explicit:
                same = int(old) == int(new)
            else:
                same = numbers_close(old, new, tolerance.rtol, tolerance.atol)
        if not same:
            self.add(path, Kind.CHANGED, old, new)

    def _sequence(self, old: Any, new: Any, path: str) -> None:
        common = min(len(old), len(new))
        for i in range(common):
            self._child(old[i], new[i], path, i)
        for i in range(common, len(old)):
            self._one_sided(path, i, old[i], Kind.REMOVED)
        for i in range(common, len(new)):
            self._one_sided(path, i, new[i], Kind.ADDED)

    def _mapping(self, old: dict[Any, Any], new: dict[Any, Any], path: str) -> None:
        for key, value in old.items():
            if key in new:
                self._child(value, new[key], path, key)
            else:
                self._one_sided(path, key, value, Kind.REMOVED)
        for key, value in new.items():
            if key not in old:
                self._one_sided(path, key, value, Kind.ADDED)

    def compare_mapping(self, old: dict[Any, Any], new: dict[Any, Any], path: str) -> None:
        """Compare two mappings key by key under `path` (a model's parameters, ...)."""
        self._mapping(old, new, path)

    def _child(self, old: Any, new: Any, path: str, key: Any) -> None:
        inner = child_path(path, key)
        if not self.rules.ignored(inner):
            self.compare(old, new, inner)

    def _one_sided(self, path: str, key: Any, value: Any, kind: Kind) -> None:
        inner = child_path(path, key)
        if not self.rules.ignored(inner):
            shown = display(value)
            self.add(inner, kind, shown if kind is Kind.REMOVED else None, shown if kind is Kind.ADDED else None)

    def _set(self, old: Any, new: Any, path: str) -> None:
        if old == new:
            return
        lines = []
        for label, items in (("Removed", old - new), ("Added", new - old)):
            if items:
                lines.append(f"{label}: {summarize(sorted(items, key=safe_repr), 200)}")
        self.add(path, Kind.CHANGED, display(old), display(new), "\n".join(lines))

    def _opaque(self, old: Any, new: Any, path: str) -> None:
        # Types first, from names: pickling (for the digest) is only worth it when they agree.
        if _type_name(old) != _type_name(new):
            self.add(path, Kind.TYPE_CHANGED, display(old), display(new))
        else:
            before, after = as_opaque(old), as_opaque(new)
            if before.digest != after.digest:
                # the summaries themselves (small): a report fits each in its room without
                # cutting the type name, and they never read the same
                self.add(path, Kind.CHANGED, before, after)

    def _array(self, old: np.ndarray, new: np.ndarray, path: str) -> None:
        from ..values.arrays import dtype_label

        if old.shape != new.shape:
            self.add(path, Kind.SHAPE_CHANGED, Summary(str(old.shape)), Summary(str(new.shape)))
        self._dtype(dtype_label(_native(old.dtype)), dtype_label(_native(new.dtype)), path)
        if old.shape != new.shape or not compare_arrays.comparable(old.dtype, new.dtype):
            return
        tolerance = self.rules.tolerance_for(path)
        if old.dtype.kind == "O":
            found = compare_arrays.object_mismatch(old, new, lambda x, y: self.differs(x, y, tolerance))
        else:
            use = compare_arrays.uses_tolerance(old.dtype, new.dtype, tolerance.explicit)
            found = compare_arrays.array_mismatch(old, new, tolerance.rtol, tolerance.atol, use)
        if found is not None:
            self.add(path, Kind.CHANGED, array_display(old), array_display(new), "\n".join(found.lines()))


def _native(dtype: np.dtype) -> np.dtype:
    # Byte order is how an array is stored, not what it holds: '>f8' vs '<f8' is no dtype change.
    return dtype.newbyteorder("=") if dtype.byteorder in "<>" else dtype


def _models(old: Any, new: Any) -> bool:
    if "pytest_nwtrials.values.models" not in sys.modules and not (
            hasattr(type(old), "get_params") or hasattr(type(new), "get_params")):
        return False  # no model was stored or met: skip the import
    from ..values.models import is_model

    return is_model(old) and is_model(new)


def _type_name(value: Any) -> str:
    return value.type if isinstance(value, OpaqueValue) else qualified_type_name(value)


def array_display(arr: np.ndarray) -> Summary:
    """Small arrays show their values; large ones shape and dtype (a digest would cost a pass)."""
    from ..values.arrays import dtype_label

    if arr.size <= 20:
        return Summary(summarize(arr, 100))
    return Summary(f"ndarray(shape={arr.shape}, dtype={dtype_label(arr.dtype)})")


def numbers_close(old: Any, new: Any, rtol: float, atol: float) -> bool:
    """`|new - old| <= atol + rtol * |old|`; nan equals nan, infinities compare exactly."""
    x, y = _exact_number(old), _exact_number(new)
    try:
        if x == y:
            return True
        if np.iscomplexobj(x) or np.iscomplexobj(y):
            parts = ((np.real(x), np.real(y)), (np.imag(x), np.imag(y)))
            if not all(_finite(v) for pair in parts for v in pair):
                return all(_same_special(a, b) for a, b in parts)
        elif not (_finite(x) and _finite(y)):
            return _same_special(x, y)
        return bool(abs(y - x) <= atol + rtol * abs(x))
    except OverflowError:  # ints beyond float range: exact rational arithmetic instead
        return bool(abs(y - x) <= Fraction(atol) + Fraction(rtol) * abs(x))


def _exact_number(value: Any) -> Any:
    # Long doubles keep their precision; every other numpy number fits a Python int/float/complex.
    if isinstance(value, np.generic) and not isinstance(value, (np.longdouble, np.clongdouble)):
        return value.item()
    return value


def _finite(value: Any) -> bool:
    return isinstance(value, int) or bool(np.isfinite(value))


def _same_special(x: Any, y: Any) -> bool:
    return bool(x == y or (x != x and y != y))
