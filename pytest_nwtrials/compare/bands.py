"""Gating within a baseline's recorded run-to-run spread (its "band").

A baseline saved from repeated runs (``--nw-save-baseline=NAME --nw-repeat=N``) knows, for each
path whose value differed between the runs, how far apart the runs were (`spread.PathSpread`).
A later value that changed at such a path is matched when it lies inside that band:

- a number: within ``deviation`` of the saved value (a band that holds every run, ``low`` to
  ``high``: the saved run is one draw of the N, so the band is centred on it, and a rerun lands
  in it with probability about (N-1)/N rather than the (N-1)/(N+1) of ``low..high`` alone), each
  bound widened by the comparison's tolerance there (``atol + rtol * |bound|``, none for
  integers without an explicit tolerance, as in `compare`);
- an array or a frame column (or a Series): every element within ``deviation`` of the saved
  value, plus the tolerance (``|new - old| <= deviation + atol + rtol * |old|``); nan matches only
  nan, an infinity only the same infinity.

The band of the narrowest enclosing path applies when the change's own path has none (a spread
recorded for a whole frame covers its columns); there only ``deviation`` is meaningful, so a
number inside it is checked like an array element. Only value changes can be matched: a change
of type, shape, dtype, columns, index, or a value added or removed, is always reported, as is
one at a path whose runs differed in something other than a number. A change that remains at a
path with a band says how it left it. No pytest in here.
"""
from __future__ import annotations

import ast
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .engine import NUMBERS, Category, Change, Kind, Rules, category, split_path
from .rules import ResolvedTolerance
from .spread import PathSpread
from .stability import listed

__all__ = ["Banded", "apply_bands", "matched_note", "value_at"]

PHRASE = "the recorded run-to-run spread"


@dataclass(frozen=True)
class Banded:
    """The changes that remain after the band, and the paths whose change lay inside it."""

    changes: tuple[Change, ...]
    within: tuple[str, ...]


def matched_note(experiment: str, paths: Sequence[str]) -> str:
    """What the summary and reports say of an experiment whose every change lay inside the band."""
    return f"{experiment}: matched within {PHRASE} ({listed(paths)})"


def apply_bands(changes: Sequence[Change], old: Mapping[str, Any], new: Mapping[str, Any],
                spreads: Mapping[str, PathSpread], rules: Rules | None = None) -> Banded:
    """Drop the changes that lie inside the recorded spread of their path.

    `old` and `new` are the tagged values by tag name that `changes` came from (`compare.diff_tags`);
    `spreads` the baseline's spread by path. With no spreads the changes come back as they are.
    """
    if not spreads:
        return Banded(tuple(changes), ())
    rules = rules or Rules()
    kept: list[Change] = []
    within: list[str] = []
    for change in changes:
        found = band_of(change.path, spreads)
        if found is None:
            kept.append(change)
            continue
        spread, exact = found
        verdict = _judge(change, spread, exact, old, new, rules.tolerance_for(change.path))
        if verdict is None:
            within.append(change.path)
        else:
            kept.append(_noted(change, verdict) if verdict else change)
    return Banded(tuple(kept), tuple(dict.fromkeys(within)))


def band_of(path: str, spreads: Mapping[str, PathSpread]) -> tuple[PathSpread, bool] | None:
    """The spread recorded at `path` (True) or at the narrowest path enclosing it (False)."""
    if path in spreads:
        return spreads[path], True
    tag, *keys = split_path(path)
    enclosing = [tag]
    for key in keys[:-1]:
        enclosing.append(f"{enclosing[-1]}[{key}]")
    for candidate in reversed(enclosing):
        if candidate in spreads:
            return spreads[candidate], False
    return None


def _judge(change: Change, spread: PathSpread, exact: bool, old: Mapping[str, Any], new: Mapping[str, Any],
           tolerance: ResolvedTolerance) -> str | None:
    """None when `change` lies inside `spread`; else the line saying how it left it ("" for none)."""
    if not spread.numeric:
        what = f" ({spread.detail})" if spread.detail else ""
        return f"the saved runs already differed here{what}: no band covers it"
    if change.kind is not Kind.CHANGED:
        return ""
    try:
        before, after = value_at(old, change.path), value_at(new, change.path)
    except LookupError:
        return ""
    if category(before) in NUMBERS and category(after) in NUMBERS:
        try:
            return _scalar(before, after, spread, exact, tolerance)
        except OverflowError:  # an integer beyond float range: no band reaches it
            return ""
    pair = _arrays(before, after)
    if pair is None:
        return ""
    return _elements(*pair, spread, tolerance)


def _tolerance(explicit_needed: bool, tolerance: ResolvedTolerance) -> tuple[float, float]:
    """rtol and atol that apply: integers compare exactly unless a tolerance was set."""
    if explicit_needed and not tolerance.explicit:
        return 0.0, 0.0
    return tolerance.rtol, tolerance.atol


def _scalar(before: Any, after: Any, spread: PathSpread, exact: bool, tolerance: ResolvedTolerance) -> str | None:
    assert spread.deviation is not None  # `_judge` passes numeric spreads only
    kinds = {category(before), category(after)}
    rtol, atol = _tolerance(kinds <= {Category.BOOL, Category.INT}, tolerance)
    if exact and spread.low is not None and spread.high is not None and Category.COMPLEX not in kinds:
        value, base, reach = float(after), float(before), spread.deviation or 0.0
        # the saved value give or take the largest deviation of a run from it, which holds
        # every run (low..high): the saved run is one draw, so the band is centred on it
        low, high = spread.low, spread.high
        if math.isfinite(base):
            low, high = min(low, base - reach), max(high, base + reach)
        low -= atol + rtol * abs(low)
        high += atol + rtol * abs(high)
        if low <= value <= high:
            return None
        return f"outside {PHRASE} {low:.6g}..{high:.6g} ({base:.6g} ± {reach:.6g})"
    # a complex number, or a band recorded for an enclosing path: the distance from the saved value
    saved, new = complex(before), complex(after)
    if _finite(saved) and _finite(new) and abs(new - saved) <= spread.deviation + atol + rtol * abs(saved):
        return None
    return f"outside {PHRASE} (±{spread.deviation:.6g} of the baseline)"


def _finite(number: complex) -> bool:
    return math.isfinite(number.real) and math.isfinite(number.imag)


def _arrays(before: Any, after: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Both values as numeric arrays of one shape, None when they are not."""
    pd = _pandas()
    if pd is not None and isinstance(before, pd.Series) and isinstance(after, pd.Series):
        from .frames import numeric_column

        if len(before) != len(after):
            return None
        before, after = numeric_column(before), numeric_column(after)
        if before is None or after is None:
            return None
    if not (isinstance(before, np.ndarray) and isinstance(after, np.ndarray)):
        return None
    if before.shape != after.shape or before.dtype.kind not in "biuf" or after.dtype.kind not in "biuf":
        return None
    return before, after


def _elements(before: np.ndarray, after: np.ndarray, spread: PathSpread, tolerance: ResolvedTolerance) -> str | None:
    from .arrays import array_mismatch

    assert spread.deviation is not None  # `_judge` passes numeric spreads only
    integers = before.dtype.kind in "biu" and after.dtype.kind in "biu"
    rtol, atol = _tolerance(integers, tolerance)
    found = array_mismatch(before.astype(np.float64, copy=False), after.astype(np.float64, copy=False),
                           rtol, atol + spread.deviation, True)
    if found is None:
        return None
    return (f"outside {PHRASE} (±{spread.deviation:.6g} of the baseline) at {found.count} of "
            f"{found.total} elements")


def _noted(change: Change, line: str) -> Change:
    """`change` with `line` first in its detail, where a long array summary cannot cut it off."""
    return replace(change, detail=line + ("\n" + change.detail if change.detail else ""))


def _pandas() -> Any:
    import sys

    return sys.modules.get("pandas")  # a pandas value was decoded only if pandas is loaded


def value_at(values: Mapping[str, Any], path: str) -> Any:
    """The value at `path` (``summary['auc']``, ``layers[2]``, ``frame['price']``) of the tagged
    `values`; LookupError when the path does not lead to one."""
    tag, *keys = split_path(path)
    if tag not in values:
        raise LookupError(path)
    value = values[tag]
    for text in keys:
        try:
            key = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise LookupError(path) from None
        value = _step(value, key, path)
    return value


def _step(value: Any, key: Any, path: str) -> Any:
    pd = _pandas()
    if pd is not None and isinstance(value, pd.DataFrame):
        if not value.columns.is_unique:
            raise LookupError(path)  # columns are paired by position there; not worth guessing
        try:
            return value[key]
        except (KeyError, TypeError):
            raise LookupError(path) from None
    if isinstance(value, (dict, list, tuple)):
        try:
            return value[key]
        except (KeyError, IndexError, TypeError):
            raise LookupError(path) from None
    raise LookupError(path)
