"""The array kernel of the diff engine: which elements differ, summarised like pytest-regressions.

Arrays are walked in blocks that fit in cache with preallocated buffers, so comparing two
large arrays costs about as much as one `numpy.allclose` and needs a few megabytes of
scratch space whatever the array size. Bit-identical inputs return after one
`numpy.array_equal`, and the summary is only built for blocks that hold differences.

Tolerance: `|new - old| <= atol + rtol * |old|`, relative to the baseline value (like
`numpy.isclose(new, old)`); nan equals nan, inf equals inf of the same sign, and an element
holding nan or inf compares exactly (component-wise for complex numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np

_BLOCK = 1 << 16  # elements per block: three float64 buffers stay well inside L2 cache
_EXAMPLES = 5

Order = Literal["C", "F"]  # how a flat index counts: row-major (C) or column-major (Fortran)


@dataclass
class Mismatch:
    """Which elements of two equally shaped arrays differ, and by how much."""

    shape: tuple[int, ...]
    total: int
    order: Order = "C"  # memory order the flat indices count in
    count: int = 0
    examples: list[tuple[int, Any, Any]] = field(default_factory=list)  # (flat index, old, new)
    numeric: bool = False  # error statistics below are over the differing elements
    finite: int = 0  # differing elements with a finite error (pairs involving nan/inf have none)
    max_abs: float = 0.0
    sum_abs: float = 0.0
    max_rel: float = 0.0

    def lines(self, label: Callable[[int], str] | None = None) -> list[str]:
        """The summary text; `label` names an element by its flat index (default `[i, j]`)."""
        label = label or self._position
        share = 100.0 * self.count / self.total
        lines = [f"Shape: {self.shape}", f"Number of differences: {self.count} / {self.total} ({share:.3g}%)"]
        if self.numeric and self.finite:
            lines += [
                f"Max absolute error: {self.max_abs:.6g}",
                f"Mean absolute error: {self.sum_abs / self.finite:.6g}",
                f"Max relative error: {self.max_rel:.6g}",
            ]
        if self.numeric and self.finite < self.count:
            lines.append(f"Differences involving nan or inf: {self.count - self.finite}")
        lines += [f"{label(i)}: {_text(old)} -> {_text(new)}" for i, old, new in self.examples]
        return lines

    def _position(self, flat: int) -> str:
        if len(self.shape) <= 1:
            return f"[{flat}]"
        return "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat, self.shape, order=self.order)) + "]"

    def add(self, start: int, where: np.ndarray, old: Any, new: Any,
            errors: np.ndarray | None = None, scale: np.ndarray | None = None) -> None:
        """Record the differing elements `where` of one block that begins at flat index `start`."""
        self.count += len(where)
        for i in where[: _EXAMPLES - len(self.examples)]:
            self.examples.append((start + int(i), old[i], new[i]))
        if errors is None:
            return
        self.numeric = True
        keep = np.isfinite(errors)
        errors = errors[keep]
        if not len(errors):
            return
        self.finite += len(errors)
        self.sum_abs += float(errors.sum())
        self.max_abs = max(self.max_abs, float(errors.max()))
        if scale is not None:
            with np.errstate(all="ignore"):  # zero baselines give inf, as they should
                relative = errors / scale[keep]
            self.max_rel = max(self.max_rel, float(np.nanmax(relative)))


def _text(value: Any) -> str:
    from ..values.codec import summarize

    return summarize(value, 40)


def comparable(old: np.dtype, new: np.dtype) -> bool:
    """Whether values of these dtypes are compared element by element (after a dtype change)."""
    numeric = "biufc"
    return (old.kind in numeric and new.kind in numeric) or (old.kind == new.kind and old.kind in "MmUSO")


def uses_tolerance(old: np.dtype, new: np.dtype, explicit: bool) -> bool:
    """Floats always compare with a tolerance; integers only when one was set explicitly."""
    kinds = old.kind + new.kind
    return any(k in "fc" for k in kinds) or (explicit and all(k in "iu" for k in kinds))


def _flatten(old: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray, Order]:
    # Walk in memory order when both are Fortran-ordered, so neither is copied.
    order: Order = "F" if old.flags.f_contiguous and new.flags.f_contiguous and not old.flags.c_contiguous else "C"
    return old.ravel(order=order), new.ravel(order=order), order


def array_mismatch(old: np.ndarray, new: np.ndarray, rtol: float, atol: float, tolerance: bool) -> Mismatch | None:
    """The differences between two arrays of equal shape (not object dtype), or None."""
    if old.size == 0 or np.array_equal(old, new):
        return None  # the common case, one pass; arrays holding nan or NaT take the block walk
    a, b, order = _flatten(old, new)
    found = Mismatch(old.shape, old.size, order)
    with np.errstate(all="ignore"):  # inf - inf and overflowing differences are handled, not warned about
        if tolerance:
            _tolerance_blocks(a, b, float(rtol), float(atol), found)
        else:
            _exact_blocks(a, b, found)
    return found if found.count else None


def _tolerance_blocks(a: np.ndarray, b: np.ndarray, rtol: float, atol: float, found: Mismatch) -> None:
    work = np.result_type(a.dtype, b.dtype, np.float64)
    real = work.kind == "f"
    error_type = np.finfo(work).dtype  # the real type of a complex work type
    size = min(a.size, _BLOCK)
    error = np.empty(size, error_type)
    limit = np.empty(size, error_type) if rtol else None
    bad = np.empty(size, bool)
    delta = None if real else np.empty(size, work)
    for start in range(0, a.size, _BLOCK):
        stop = min(start + _BLOCK, a.size)
        n = stop - start
        x, y, e, m = a[start:stop], b[start:stop], error[:n], bad[:n]
        if delta is None:  # a real work type: the difference goes straight into `e`
            np.subtract(y, x, out=e, dtype=work)
            np.absolute(e, out=e)
        else:
            np.subtract(y, x, out=delta[:n], dtype=work)
            np.absolute(delta[:n], out=e)
        if limit is not None:
            t = limit[:n]
            if real:
                np.absolute(x, out=t, dtype=work)
            else:
                np.absolute(x, out=t)
            t *= rtol
            if atol:
                t += atol
            np.greater(e, t, out=m)
        else:
            np.greater(e, atol, out=m)
        if not e.max() < math.inf:
            _fix_special(x, y, m)  # nan or inf somewhere in this block: exact rules apply there
        if m.any():
            where = np.flatnonzero(m)
            found.add(start, where, x, y, e[where], np.absolute(x[where]))


def _fix_special(x: np.ndarray, y: np.ndarray, bad: np.ndarray) -> None:
    special = ~(np.isfinite(x) & np.isfinite(y))
    xs, ys = x[special], y[special]
    if xs.dtype.kind == "c" or ys.dtype.kind == "c":
        same = _same(xs.real, ys.real) & _same(np.imag(xs), np.imag(ys))
    else:
        same = _same(xs, ys)
    bad[special] = ~same


def _same(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x == y) | (np.isnan(x) & np.isnan(y))


def _exact_blocks(a: np.ndarray, b: np.ndarray, found: Mismatch) -> None:
    nat = a.dtype.kind in "Mm" and b.dtype.kind in "Mm"
    numeric = a.dtype.kind in "iuf" and b.dtype.kind in "iuf"
    bad = np.empty(min(a.size, _BLOCK), bool)
    for start in range(0, a.size, _BLOCK):
        stop = min(start + _BLOCK, a.size)
        x, y, m = a[start:stop], b[start:stop], bad[: stop - start]
        try:
            np.not_equal(x, y, out=m)
        except TypeError:  # structured dtypes have no ufunc loop, only the operator
            m[...] = x != y
        if nat:
            m &= ~(np.isnat(x) & np.isnat(y))
        if m.any():
            where = np.flatnonzero(m)
            errors = scale = None
            if numeric:
                xs, ys = x[where].astype(np.float64), y[where].astype(np.float64)
                errors, scale = np.absolute(ys - xs), np.absolute(xs)
            found.add(start, where, x, y, errors, scale)


def mask_mismatch(bad: np.ndarray, old: Any, new: Any, shape: tuple[int, ...]) -> Mismatch | None:
    """A summary from a ready mask of differing elements (object values, pandas extension arrays)."""
    where = np.flatnonzero(bad)
    if not len(where):
        return None
    found = Mismatch(shape, int(np.prod(shape)))
    found.add(0, where, old, new)
    return found


def object_mismatch(old: np.ndarray, new: np.ndarray, differs: Callable[[Any, Any], bool]) -> Mismatch | None:
    """Object arrays, element by element with the full value comparison."""
    a, b, order = _flatten(old, new)
    bad = np.fromiter((differs(x, y) for x, y in zip(a, b)), dtype=bool, count=a.size)
    where = np.flatnonzero(bad)
    if not len(where):
        return None
    found = Mismatch(old.shape, old.size, order)
    found.add(0, where, a, b)
    return found
