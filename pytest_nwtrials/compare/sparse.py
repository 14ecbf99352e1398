"""scipy.sparse values in the diff engine: shape, dtype and values, with the array kernel.

Both matrices are brought to their canonical COO form and aligned on the union of their stored
positions; elements stored in neither are zero in both, so they are equal and never looked at.
The two aligned value vectors then go through `compare.arrays.array_mismatch` (tolerances,
nan and inf rules, the pytest-regressions style summary), with counts over every element of
the matrix and positions named `[row, column]`. Memory grows with the stored entries only.
How a matrix is stored (csr, csc, coo, ...) is not compared; a `spmatrix` against a `sparray`
is a type change, as their operators differ.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..values.codec import Summary, summarize
from ..values.sparse import canonical, dense_if_small, flat_positions
from . import arrays as compare_arrays
from .changes import Kind, Walker


def compare_sparse(differ: Walker, old: Any, new: Any, path: str) -> None:
    """Add to `differ` what changed between two sparse values of the same kind at `path`."""
    from ..values.arrays import dtype_label

    if old.shape != new.shape:
        differ.add(path, Kind.SHAPE_CHANGED, Summary(str(old.shape)), Summary(str(new.shape)))
    old_dtype, new_dtype = (dtype_label(v.dtype.newbyteorder("=")) for v in (old, new))
    if old_dtype != new_dtype:
        differ.add(path, Kind.DTYPE_CHANGED, Summary(old_dtype), Summary(new_dtype))
    if old.shape != new.shape or not compare_arrays.comparable(old.dtype, new.dtype):
        return
    tolerance = differ.rules.tolerance_for(path)
    found = sparse_mismatch(old, new, tolerance.rtol, tolerance.atol,
                            compare_arrays.uses_tolerance(old.dtype, new.dtype, tolerance.explicit))
    if found is not None:
        differ.add(path, Kind.CHANGED, sparse_display(old), sparse_display(new), "\n".join(found.lines()))


def sparse_mismatch(old: Any, new: Any, rtol: float, atol: float, tolerance: bool) -> compare_arrays.Mismatch | None:
    """The differing elements of two sparse values of one shape, or None when they are equal."""
    a, b = canonical(old), canonical(new)
    at_a, at_b = flat_positions(a), flat_positions(b)
    union = np.union1d(at_a, at_b)
    x = np.zeros(len(union), a.data.dtype)
    y = np.zeros(len(union), b.data.dtype)
    x[np.searchsorted(union, at_a)] = a.data
    y[np.searchsorted(union, at_b)] = b.data
    found = compare_arrays.array_mismatch(x, y, rtol, atol, tolerance)
    if found is None:
        return None
    shape = tuple(old.shape)
    found.shape, found.total = shape, int(np.prod(shape))
    # flat indices into the union become positions in the matrix
    found.examples = [(int(union[i]), o, n) for i, o, n in found.examples]
    return found


def sparse_display(value: Any) -> Summary:
    """Small matrices show their values; large ones type, shape, dtype and stored entries."""
    from ..values.arrays import dtype_label

    if dense_if_small(value) is not None:
        return Summary(summarize(value, 100))
    return Summary(f"{type(value).__name__}(shape={value.shape}, dtype={dtype_label(value.dtype)}, nnz={value.nnz})")
