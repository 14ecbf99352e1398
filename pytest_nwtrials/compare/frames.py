"""DataFrames and Series in the diff engine: columns, index, dtypes, then values per column.

Columns are paired by label (the k-th column named `a` with the k-th column named `a`), so
a reordering is reported once as a columns change and the values are still compared. Values
are compared by position when both indexes have the same length (a changed index is reported
on its own); numeric columns go through the array kernel with the column's tolerance, other
columns (strings, categoricals, objects) compare exactly with missing equal to missing.
A different representation of the same index (RangeIndex vs an int64 Index) is no change;
a Series' name is its column label, so a renamed Series is a columns change.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..values.codec import Summary, safe_repr, summarize
from ..values.frames import dtype_label
from . import arrays as compare_arrays
from .changes import Kind, Walker
from .rules import child_path

_SHOWN = 5


def compare_pandas(differ: Walker, old: Any, new: Any, path: str) -> None:
    if isinstance(old, pd.Series):
        if not _same_label(old.name, new.name):
            differ.add(path, Kind.COLUMNS_CHANGED, Summary(f"name={safe_repr(old.name, 60)}"),
                       Summary(f"name={safe_repr(new.name, 60)}"))
        pairs = [(path, old, new)]
    else:
        _columns(differ, old.columns, new.columns, path)
        pairs = [(child_path(path, label), old.iloc[:, i], new.iloc[:, j])
                 for label, i, j in _pair_columns(old.columns, new.columns)]
    _index(differ, old.index, new.index, path)
    same_length = len(old.index) == len(new.index)
    for inner, old_column, new_column in pairs:
        if inner != path and differ.rules.ignored(inner):
            continue
        _column(differ, old_column, new_column, inner, old.index, same_length)


def _same_label(old: Any, new: Any) -> bool:
    if old is new:
        return True
    if type(old) is not type(new):
        return False
    try:
        return bool(old == new) or bool(old != old and new != new)  # nan names are the same name
    except Exception:  # names whose == is odd (arrays): fall back to their reprs
        return safe_repr(old, 10_000) == safe_repr(new, 10_000)


def _labels_text(labels: Any) -> str:
    return summarize(list(labels), 200)


def _columns(differ: Walker, old: pd.Index, new: pd.Index, path: str) -> None:
    lines = []
    if not old.equals(new):
        new_set, old_set = set(new), set(old)
        removed = [label for label in old if label not in new_set]
        added = [label for label in new if label not in old_set]
        if removed:
            lines.append(f"Removed: {_labels_text(removed)}")
        if added:
            lines.append(f"Added: {_labels_text(added)}")
        if not removed and not added:
            lines.append(f"Order: {_labels_text(old)} -> {_labels_text(new)}")
    if old.dtype != new.dtype:
        lines.append(f"Label dtype: {dtype_label(old.dtype)} -> {dtype_label(new.dtype)}")
    if list(old.names) != list(new.names):
        lines.append(f"Names: {safe_repr(list(old.names))} -> {safe_repr(list(new.names))}")
    if lines:
        differ.add(path, Kind.COLUMNS_CHANGED, Summary(_labels_text(old)), Summary(_labels_text(new)),
                   "\n".join(lines))


def _pair_columns(old: pd.Index, new: pd.Index) -> list[tuple[Any, int, int]]:
    """(label, old position, new position) for labels on both sides, in the baseline's order."""
    seen: dict[Any, int] = {}
    positions: dict[tuple[Any, int], int] = {}
    for j, label in enumerate(new):
        k = seen[label] = seen.get(label, -1) + 1
        positions[(label, k)] = j
    seen.clear()
    pairs = []
    for i, label in enumerate(old):
        k = seen[label] = seen.get(label, -1) + 1
        if (label, k) in positions:
            pairs.append((label, i, positions[(label, k)]))
    return pairs


def _index(differ: Walker, old: pd.Index, new: pd.Index, path: str) -> None:
    lines = []
    if len(old) != len(new):
        lines.append(f"Length: {len(old)} -> {len(new)}")
    if old.dtype != new.dtype:
        lines.append(f"Dtype: {dtype_label(old.dtype)} -> {dtype_label(new.dtype)}")
    if list(old.names) != list(new.names):
        lines.append(f"Names: {safe_repr(list(old.names))} -> {safe_repr(list(new.names))}")
    if not old.equals(new):
        lines += _label_changes(old, new)
    if lines:
        differ.add(path, Kind.INDEX_CHANGED, Summary(_index_text(old)), Summary(_index_text(new)),
                   "\n".join(lines))


def _index_text(index: pd.Index) -> str:
    return f"{type(index).__name__}(length={len(index)}, dtype={dtype_label(index.dtype)})"


def _label_changes(old: pd.Index, new: pd.Index) -> list[str]:
    try:
        removed, added = old.difference(new, sort=False), new.difference(old, sort=False)
    except Exception:  # labels that cannot be set-compared: show positions instead
        removed = added = None
    if removed is not None and (len(removed) or len(added)):
        lines = []
        for label, found in (("Removed labels", removed), ("Added labels", added)):
            if len(found):
                shown = _labels_text(found[:_SHOWN])
                if len(found) > _SHOWN:
                    shown = shown[:-1] + ", ...]"
                lines.append(f"{label} ({len(found)}): {shown}")
        return lines
    if len(old) != len(new):
        return []
    differing = np.flatnonzero(~_equal_mask(old.array, new.array))
    lines = [f"Same labels in a different order: {len(differing)} positions differ"
             if removed is not None else f"Labels differ at {len(differing)} positions"]
    lines += [f"[{i}]: {summarize(old[i], 40)} -> {summarize(new[i], 40)}" for i in differing[:_SHOWN]]
    return lines


def _column(differ: Walker, old: pd.Series, new: pd.Series, path: str, index: pd.Index, same_length: bool) -> None:
    if old.dtype != new.dtype:
        detail = ""
        if isinstance(old.dtype, pd.CategoricalDtype) and isinstance(new.dtype, pd.CategoricalDtype):
            detail = "\n".join(_category_changes(old.dtype, new.dtype))
        differ.add(path, Kind.DTYPE_CHANGED, Summary(dtype_label(old.dtype)), Summary(dtype_label(new.dtype)),
                   detail)
        if not _comparable(old.dtype, new.dtype):
            return
    if not same_length:
        return
    tolerance = differ.rules.tolerance_for(path)
    a, b = numeric_column(old), numeric_column(new)
    if a is not None and b is not None:
        use = compare_arrays.uses_tolerance(a.dtype, b.dtype, tolerance.explicit)
        found = compare_arrays.array_mismatch(a, b, tolerance.rtol, tolerance.atol, use)
    else:
        bad = ~_equal_mask(old.array, new.array)
        found = compare_arrays.mask_mismatch(bad, old.array, new.array, (len(old),))
    if found is not None:
        def label(i: int) -> str:
            return f"[{safe_repr(index[i], 40)}]"

        differ.add(path, Kind.CHANGED, Summary(_series_text(old)), Summary(_series_text(new)),
                   "\n".join(found.lines(label)))


def _series_text(series: pd.Series) -> str:
    return f"Series(length={len(series)}, dtype={dtype_label(series.dtype)})"


def _comparable(old: Any, new: Any) -> bool:
    kinds = {_kind(old), _kind(new)}
    return len(kinds) == 1 or kinds == {"number", "bool"}


def _kind(dtype: Any) -> str:
    """Families whose values compare across a dtype change: str vs object, int vs float, ..."""
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if isinstance(dtype, pd.CategoricalDtype):
        return "other"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "timedelta"
    return "other"


def numeric_column(series: pd.Series) -> np.ndarray | None:
    """The column as a numpy array for the array kernel, or None for exact comparison."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype):
        return series.to_numpy() if dtype.kind in "biufcmM" else None
    if _kind(dtype) == "number":
        # Nullable numbers (Int64, Float64): missing becomes nan, and nan equals nan.
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    if isinstance(dtype, pd.DatetimeTZDtype):
        return series.array.asi8.view(f"M8[{dtype.unit}]")  # same tz (or a dtype change was reported)
    return None


def _equal_mask(old: Any, new: Any) -> np.ndarray:
    """Element-wise equality of two pandas arrays, missing equal to missing."""
    try:
        eq = old == new
        if isinstance(eq, pd.api.extensions.ExtensionArray):
            eq = eq.to_numpy(dtype=bool, na_value=False)
        eq = np.asarray(eq, dtype=bool)
        if eq.shape != (len(old),):
            raise TypeError("not element-wise")
    except Exception:  # categoricals with other categories, cells holding arrays, ...
        eq = np.fromiter((_cell_equal(x, y) for x, y in zip(old, new)), dtype=bool, count=len(old))
    return eq | (np.asarray(pd.isna(old), dtype=bool) & np.asarray(pd.isna(new), dtype=bool))


def _cell_equal(x: Any, y: Any) -> bool:
    try:
        return bool(x == y)
    except Exception:
        return safe_repr(x, 10_000) == safe_repr(y, 10_000)


def _category_changes(old: pd.CategoricalDtype, new: pd.CategoricalDtype) -> list[str]:
    lines = []
    if not old.categories.equals(new.categories):
        lines.append(f"Categories: {_labels_text(old.categories)} -> {_labels_text(new.categories)}")
    if old.ordered != new.ordered:
        lines.append(f"Ordered: {old.ordered} -> {new.ordered}")
    return lines
