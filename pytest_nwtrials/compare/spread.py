"""Run-to-run spread: how the tagged values of repeated runs of one experiment differ.

`--nw-repeat=N` runs an experiment N times in the session; `measure` compares the runs' values
path by path (a tag, or a path inside it: an element of a list or dict, a frame's column) and
keeps, for each path where they differ, its `PathSpread`: the smallest and largest value seen
(of any element, for an array or a column), the largest deviation from the first run's value
(elementwise for arrays) and that deviation relative to the first run's largest magnitude there.
A path whose runs differ in something that is not a number (a string, a shape, a type, a
model's digest) has a spread without numbers: no tolerance covers it.

A baseline saved with repeats keeps these spreads beside its values (``"spread"`` in its entry):
a later value inside the recorded band is matched "within the recorded run-to-run spread".
No pytest in here.
"""
from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PathSpread", "Stability", "StabilityVerdict", "measure", "spreads_from_json", "spreads_to_json"]


@dataclass(frozen=True)
class PathSpread:
    """The spread of one path across the runs; the numbers are None when it is not numeric."""

    path: str
    low: float | None = None  # smallest value seen in any run (any element of an array or column)
    high: float | None = None  # largest
    deviation: float | None = None  # largest |value - first run's value|, elementwise
    relative: float | None = None  # deviation / largest |first run's value| at the path; None when that is 0
    detail: str = ""  # what differs, when it is not a number ("shape (3,) -> (4,)", "digest ...")

    @property
    def numeric(self) -> bool:
        return self.deviation is not None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"low": self.low, "high": self.high, "deviation": self.deviation,
                               "relative": self.relative}
        if self.detail:
            doc["detail"] = self.detail
        return doc

    @classmethod
    def from_json(cls, path: str, doc: Any) -> PathSpread:
        """A stored spread; ValueError when `doc` is not one (the caller names the file)."""
        if not isinstance(doc, dict):
            raise ValueError(f"the spread of {path!r} is not an object")
        numbers = []
        for key in ("low", "high", "deviation", "relative"):
            value = doc.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"the spread of {path!r} has a {key} that is not a number")
            numbers.append(None if value is None else float(value))
        detail = doc.get("detail", "")
        if not isinstance(detail, str):
            raise ValueError(f"the spread of {path!r} has a detail that is not a string")
        low, high, deviation, relative = numbers
        return cls(path, low, high, deviation, relative, detail=detail)


def spreads_to_json(spreads: Mapping[str, PathSpread]) -> dict[str, Any]:
    return {path: spread.to_json() for path, spread in sorted(spreads.items())}


def spreads_from_json(doc: Any) -> dict[str, PathSpread]:
    """Stored spreads by path; ValueError when `doc` is not a mapping of them."""
    if not isinstance(doc, dict):
        raise ValueError("the spread is not an object of paths")
    return {str(path): PathSpread.from_json(str(path), value) for path, value in doc.items()}


class StabilityVerdict(enum.StrEnum):
    """What N runs of one experiment showed; the value is how `nwtrials show` says it."""

    STABLE = "stable"  # every run gave the same values
    VARIED = "varied within tolerance"  # they differed, each within the comparison's tolerance
    NOT_REPRODUCIBLE = "not reproducible"  # some run differed beyond tolerance


@dataclass(frozen=True)
class Stability:
    """What N runs of one experiment in a session showed: stored in the first run's trial
    (``Trial.stability``) and carried by reports."""

    runs: int
    trials: tuple[str, ...]  # the trial names of the runs, the first (gated, saved) first
    spreads: dict[str, PathSpread] = field(default_factory=dict)  # the paths that differ; {} when stable
    covered: bool = True  # every difference is within the comparison's tolerance
    diverged: tuple[str, ...] = ()  # report lines: the first operation where the runs diverged
    proposal: tuple[str, ...] = ()  # report lines: the tolerance that covers the spread, the seed to set

    @property
    def stable(self) -> bool:
        return not self.spreads

    @property
    def verdict(self) -> StabilityVerdict:
        if self.stable:
            return StabilityVerdict.STABLE
        return StabilityVerdict.VARIED if self.covered else StabilityVerdict.NOT_REPRODUCIBLE

    def to_json(self) -> dict[str, Any]:
        return {"runs": self.runs, "trials": list(self.trials), "stable": self.stable, "covered": self.covered,
                "spread": spreads_to_json(self.spreads), "diverged": list(self.diverged),
                "proposal": list(self.proposal)}

    @classmethod
    def from_json(cls, doc: Any) -> Stability:
        """ValueError when `doc` is not a stability document."""
        if not isinstance(doc, dict):
            raise ValueError("the stability is not an object")
        runs, trials = doc.get("runs"), doc.get("trials")
        if type(runs) is not int or runs < 1:
            raise ValueError("the stability's runs is not a whole number >= 1")
        if not isinstance(trials, list) or not all(isinstance(t, str) for t in trials):
            raise ValueError("the stability's trials is not a list of names")
        lines = []
        for key in ("diverged", "proposal"):
            value = doc.get(key, [])
            if not isinstance(value, list) or not all(isinstance(line, str) for line in value):
                raise ValueError(f"the stability's {key} is not a list of lines")
            lines.append(tuple(value))
        covered = doc.get("covered", True)
        if not isinstance(covered, bool):
            raise ValueError("the stability's covered is not true or false")
        return cls(runs, tuple(trials), spreads_from_json(doc.get("spread", {})), covered, *lines)


def measure(runs: Sequence[Mapping[str, Any]]) -> dict[str, PathSpread]:
    """The spread of every path whose value differs between `runs` (each a trial's decoded
    values by tag name, the first run first); {} when they all agree exactly.

    Paths are spelled as the diff engine spells them (`compare.rules.child_path`): a tag, an
    element ``tag[2]``, a key ``tag['auc']``, a frame's column ``frame['price']``. Arrays and
    numeric columns are measured in one vectorised pass per run; nothing here raises on a value
    it cannot measure: such a path gets a spread without numbers and a `detail`.
    """
    found: dict[str, PathSpread] = {}
    if len(runs) < 2:
        return found
    for name in sorted({name for run in runs for name in run}, key=str):
        present = [run[name] for run in runs if name in run]
        if len(present) < len(runs):
            found[name] = PathSpread(name, detail=f"made by {len(present)} of {len(runs)} runs")
            continue
        try:
            _walk(name, present, found)
        except RecursionError:  # nested thousands of levels deep: judged whole, by digest
            found.pop(name, None)
            if len({_digest(value) for value in present}) > 1:
                found[name] = PathSpread(name, detail="nested too deeply to measure; the values differ")
    return found


_SHOWN = 60  # characters of a non-numeric value shown in a detail


def _walk(path: str, values: list[Any], found: dict[str, PathSpread]) -> None:
    """Add the spreads of `path` (and the paths inside it) over `values`, one per run."""
    from .engine import Category, category

    kinds = [category(value) for value in values]
    if len(set(kinds)) > 1:
        found[path] = PathSpread(path, detail="type " + _sequence(_type_label(v) for v in values))
        return
    kind = kinds[0]
    if kind in (Category.INT, Category.FLOAT, Category.COMPLEX):
        _numbers(path, values, found)
    elif kind is Category.NDARRAY:
        _arrays(path, values, found)
    elif kind in (Category.LIST, Category.TUPLE):
        _sequences(path, values, found)
    elif kind is Category.DICT:
        _mappings(path, values, found)
    elif kind in (Category.DATAFRAME, Category.SERIES):
        _frames(path, values, found)
    elif kind in (Category.SPARSE_MATRIX, Category.SPARSE_ARRAY):  # by value digest (storage aside), no element spread
        from ..values.codec import value_digest

        if len({value_digest(value) for value in values}) > 1:
            found[path] = PathSpread(path, detail=_describe(values, _short))
    elif kind is Category.OBJECT:
        if len({_digest(value) for value in values}) > 1:
            found[path] = PathSpread(path, detail=_describe(values, _digest_text))
    elif _differ_exactly(values):  # None, bool, str, bytes, sets, datetimes: no tolerance applies
        found[path] = PathSpread(path, detail=_describe(values, _short))


def _numbers(path: str, values: list[Any], found: dict[str, PathSpread]) -> None:
    import numpy as np

    try:
        arrays = [np.asarray(value) for value in values]
        if any(a.dtype.kind == "O" for a in arrays):  # a Python int beyond 64 bits
            raise OverflowError
    except (OverflowError, TypeError, ValueError):
        if _differ_exactly(values):
            found[path] = PathSpread(path, detail=_describe(values, _short))
        return
    _arrays(path, arrays, found, scalar=True)


def _arrays(path: str, arrays: list[Any], found: dict[str, PathSpread], scalar: bool = False) -> None:
    """Numeric arrays of one shape: low/high over every element, elementwise deviation."""
    shapes = {a.shape for a in arrays}
    dtypes = {str(a.dtype) for a in arrays}
    if len(shapes) > 1:
        found[path] = PathSpread(path, detail="shape " + _sequence(str(a.shape) for a in arrays))
        return
    if len(dtypes) > 1 and not scalar:
        found[path] = PathSpread(path, detail="dtype " + _sequence(str(a.dtype) for a in arrays))
        return
    if arrays[0].dtype.kind not in "iufc":  # strings, objects, datetimes, bools: exact
        if any(not _same_array(arrays[0], a) for a in arrays[1:]):
            shown = (lambda a: _short(a.item())) if scalar else (lambda a: _short(a))
            found[path] = PathSpread(path, detail=_describe(arrays, shown))
        return
    spread = _numeric_spread(path, arrays)
    if spread is not None:
        found[path] = spread


def _numeric_spread(path: str, arrays: list[Any]) -> PathSpread | None:
    import numpy as np

    complex_ = any(a.dtype.kind == "c" for a in arrays)
    kind = np.complex128 if complex_ else np.float64
    with np.errstate(all="ignore"):
        first = np.asarray(arrays[0], dtype=kind).ravel()
        finite = np.isfinite(first)
        deviation, differ = 0.0, False
        low = high = None
        for a in arrays:
            other = np.asarray(a, dtype=kind).ravel()
            both = finite & np.isfinite(other)
            if not complex_ and both.any():
                values = other[both] if not both.all() else other
                low = float(values.min()) if low is None else min(low, float(values.min()))
                high = float(values.max()) if high is None else max(high, float(values.max()))
            specials = ~both
            if specials.any() and not _same_specials(first[specials], other[specials]):
                return PathSpread(path, detail="nan or inf where other runs have another value")
            if a is arrays[0]:
                continue
            gap = np.abs(other[both] - first[both]) if not both.all() else np.abs(other - first)
            if gap.size:
                largest = float(gap.max())
                # integers beyond 2**53 may differ by less than a float64 tells apart
                differ = differ or largest > 0 or (a.dtype.kind in "iu" and not np.array_equal(a, arrays[0]))
                deviation = max(deviation, largest)
        if not differ:
            return None
        scale = float(np.abs(first[finite]).max()) if finite.any() else 0.0
    if not np.isfinite(deviation):
        return PathSpread(path, detail="the values differ by more than a float can hold")
    relative = deviation / scale if scale > 0 else None
    if relative is not None and not np.isfinite(relative):
        relative = None
    return PathSpread(path, low, high, deviation, relative)


def _same_specials(x: Any, y: Any) -> bool:
    """Elementwise: nan where the other is nan, the same infinity where the other has it."""
    import numpy as np

    return bool(np.all((x == y) | (np.isnan(x) & np.isnan(y))))


def _same_array(x: Any, y: Any) -> bool:
    import numpy as np

    try:
        return bool(np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"))
    except (TypeError, ValueError):
        return _digest(x) == _digest(y)


def _sequences(path: str, values: list[Any], found: dict[str, PathSpread]) -> None:
    from .rules import child_path

    lengths = [len(value) for value in values]
    if len(set(lengths)) > 1:
        found[path] = PathSpread(path, detail="length " + _sequence(str(n) for n in lengths))
    for i in range(min(lengths)):
        _walk(child_path(path, i), [value[i] for value in values], found)


def _mappings(path: str, values: list[Any], found: dict[str, PathSpread]) -> None:
    from .rules import child_path

    keys = [list(value) for value in values]
    common = [key for key in keys[0] if all(key in value for value in values[1:])]
    if any(len(k) != len(common) for k in keys):
        found[path] = PathSpread(path, detail="keys " + _sequence(_short(k) for k in keys))
    for key in common:
        _walk(child_path(path, key), [value[key] for value in values], found)


def _frames(path: str, values: list[Any], found: dict[str, PathSpread]) -> None:
    """Frames by column (``frame['price']``), a Series as one column; labels and index exactly."""
    import numpy as np

    from .rules import child_path

    first = values[0]
    if hasattr(first, "columns"):
        if any(not first.columns.equals(v.columns) for v in values[1:]):
            found[path] = PathSpread(path, detail="columns " + _sequence(_short(list(v.columns)) for v in values))
            return
        columns = [(child_path(path, label), [v.iloc[:, i] for v in values]) for i, label in enumerate(first.columns)]
    else:
        columns = [(path, list(values))]
    if any(not first.index.equals(v.index) for v in values[1:]):
        found[path] = PathSpread(path, detail="index " + _sequence(_short(list(v.index)) for v in values))
        if len({len(v.index) for v in values}) > 1:
            return
    for inner, series in columns:
        if inner in found:  # a repeated column label: its first column speaks for the path
            continue
        if all(s.dtype.kind in "iufc" for s in series) and len({str(s.dtype) for s in series}) == 1:
            _arrays(inner, [np.asarray(s) for s in series], found)
        elif any(not s.equals(series[0]) for s in series[1:]):
            found[inner] = PathSpread(inner, detail=_describe(series, lambda s: _short(list(s))))


def _differ_exactly(values: list[Any]) -> bool:
    first = values[0]
    for value in values[1:]:
        try:
            same = value == first
            if not isinstance(same, bool):
                same = bool(same)
        except Exception:  # an odd __eq__: fall back to the digest
            same = _digest(value) == _digest(first)
        if not same and not (value != value and first != first):  # nan is nan
            return True
    return False


def _digest(value: Any) -> str:
    from ..values.codec import as_opaque, qualified_type_name

    try:
        opaque = as_opaque(value)
        return f"{opaque.type}:{opaque.digest}"
    except Exception:
        return qualified_type_name(value)


def _digest_text(value: Any) -> str:
    text = _digest(value)
    kind, _, digest = text.partition(":")
    return f"{kind.rsplit('.', 1)[-1]} digest {digest[:12]}" if digest and digest != "None" else kind


def _type_label(value: Any) -> str:
    from ..values.codec import OpaqueValue, qualified_type_name

    return value.type if isinstance(value, OpaqueValue) else qualified_type_name(value)


def _short(value: Any) -> str:
    from ..values.codec import summarize

    return summarize(value, _SHOWN)


def _describe(values: Sequence[Any], show: Any) -> str:
    return _sequence(show(value) for value in values)


def _sequence(texts: Any) -> str:
    """``a -> b -> a``: what each run had, consecutive repeats folded (``a -> b`` for a, b, b)."""
    shown: list[str] = []
    for text in texts:
        if not shown or shown[-1] != text:
            shown.append(text)
    return " -> ".join(shown)
