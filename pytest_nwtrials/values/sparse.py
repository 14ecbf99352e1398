"""scipy.sparse matrices and arrays in value documents: `.npz` files, never pickles.

    {"__nw__": "sparse", "type": "csr_matrix", "format": "csr", "dtype": "float64",
     "shape": [100, 50], "nnz": 120, "blob": "<sha256>.npz"}

The blob is what `scipy.sparse.save_npz` writes, read back by `scipy.sparse.load_npz`, which
loads with ``allow_pickle=False``. Its zip entries get a fixed timestamp, so one matrix always
gives the same bytes: blobs are content-addressed, and a resaved baseline must not change
because of the clock. Formats save_npz cannot write (lil, dok) are stored as csr and converted
back to their format when read. Both scipy's `spmatrix` and `sparray` classes are kept apart.

Values are what matters, not how they are stored: the canonical form (`canonical`) has no
duplicate or explicitly stored zero entries and sorted coordinates, so csr and csc holding the
same numbers have the same digest and compare equal. Nothing here densifies a matrix, except
`dense_if_small` for the display of one with at most `DENSE_DISPLAY_MAX` elements.

scipy is imported only when a value already is a sparse matrix (the experiment imported it),
or when a stored one is read; it is not a dependency of the plugin.
"""

from __future__ import annotations

import io
import sys
import zipfile
from typing import Any

import numpy as np

from ..errors import StoreError
from .blobs import BlobStore
from .types import TAG, ValueEncoder, safe_repr

DENSE_DISPLAY_MAX = 20  # as arrays: matrices with at most this many elements show their values
_SAVABLE = ("csr", "csc", "bsr", "dia", "coo")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold


def is_sparse(value: Any) -> bool:
    """Whether `value` is a scipy.sparse matrix or array (False without importing scipy)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(value)


def kind_label(value: Any) -> str:
    """"sparse array" for scipy's `sparray` classes, "sparse matrix" for `spmatrix` ones."""
    import scipy.sparse as sp

    return "sparse array" if isinstance(value, sp.sparray) else "sparse matrix"


def encode_sparse(value: Any, encoder: ValueEncoder) -> dict[str, Any]:
    """The document of a sparse matrix, its data in an `.npz` blob; an object dtype stays opaque."""
    from .arrays import dtype_label

    if value.dtype.hasobject:
        return encoder.opaque(value, note="sparse matrix of Python objects")
    stored = value if value.format in _SAVABLE else value.tocsr()
    return {TAG: "sparse", "type": type(value).__name__, "format": value.format, "dtype": dtype_label(value.dtype),
            "shape": list(value.shape), "nnz": int(value.nnz), "blob": encoder.blobs.put_bytes(_npz(stored), "npz")}


def _npz(value: Any) -> bytes:
    """save_npz's bytes with every zip entry dated `_ZIP_TIME`, so equal matrices give equal bytes."""
    import scipy.sparse as sp

    written = io.BytesIO()
    sp.save_npz(written, value, compressed=True)
    fixed = io.BytesIO()
    with zipfile.ZipFile(written) as source, zipfile.ZipFile(fixed, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(entry, source.read(info))
    return fixed.getvalue()


def decode_sparse(doc: dict[str, Any], blobs: BlobStore | None) -> Any:
    """The sparse matrix of a document, read from its `.npz` blob without unpickling anything."""
    try:
        import scipy.sparse as sp
    except ImportError:
        raise StoreError(f"the value file {doc.get('blob')} holds a scipy.sparse matrix: install scipy to "
                         "read it") from None
    if blobs is None:
        raise StoreError(f"decoding {doc['blob']} needs a blob store, and none was given")
    name, shape = doc["blob"], tuple(doc["shape"])
    with blobs.open(name) as f:
        try:
            value = sp.load_npz(f)  # np.load(..., allow_pickle=False) inside: an object array is refused
        except Exception as exc:  # zipfile, numpy and scipy raise many kinds for a damaged file
            raise blobs.damaged(name, f"not a sparse matrix .npz file ({safe_repr(exc)})") from None
    if value.shape != shape or value.dtype != np.dtype(doc["dtype"]):
        raise StoreError(f"blob {name} holds shape {value.shape} and dtype {value.dtype}, the document says "
                         f"{shape} and {doc['dtype']}")
    wanted = getattr(sp, doc["type"], None)
    if not (isinstance(wanted, type) and issubclass(wanted, (sp.spmatrix, sp.sparray))):
        raise StoreError(f"unknown sparse type {safe_repr(doc['type'])} in document (written by a newer scipy?)")
    return value if type(value) is wanted else wanted(value.asformat(doc["format"]))


def canonical(value: Any) -> Any:
    """A COO copy with no duplicates and no stored zeros, coordinates in row-major order."""
    coo = value.tocoo(copy=True)
    coo.sum_duplicates()  # also sorts the coordinates
    coo.eliminate_zeros()
    return coo


def flat_positions(coo: Any) -> np.ndarray:
    """Row-major flat indices of the stored entries of a canonical COO matrix."""
    coords = coo.coords if hasattr(coo, "coords") else (coo.row, coo.col)
    if not coo.nnz:
        return np.zeros(0, np.int64)
    return np.ravel_multi_index(tuple(np.asarray(c, np.int64) for c in coords), coo.shape)


def digest_bytes(value: Any) -> bytes:
    """What the digest of a sparse value hashes: kind, dtype, shape, positions and values."""
    coo = canonical(value)
    data = np.ascontiguousarray(coo.data)
    if data.dtype.byteorder in "<>":
        data = data.astype(data.dtype.newbyteorder("="))
    head = f"sparse:{kind_label(value)}:{data.dtype.str}:{value.shape};".encode()
    return head + flat_positions(coo).astype("<i8").tobytes() + data.tobytes()


def dense_if_small(value: Any) -> np.ndarray | None:
    """The values as a dense array when there are at most `DENSE_DISPLAY_MAX` of them, else None."""
    size = int(np.prod(value.shape))
    return value.toarray() if size <= DENSE_DISPLAY_MAX else None


def sparse_text(value: Any, width: int, digest: Any) -> str:
    """`csr_matrix([[0., 1.], [2., 0.]], dtype=float64)` for a small one; for a larger one
    shape, dtype, stored entries and their share, and a digest: never densified."""
    from .arrays import dtype_label

    name, label = type(value).__name__, dtype_label(value.dtype)
    dense = dense_if_small(value)
    if dense is not None:
        body = np.array2string(dense, separator=", ", max_line_width=10**9, floatmode="unique")
        text = f"{name}({' '.join(body.split())}, dtype={label})"  # rows on one line: numbers hold no spaces
        if len(text) <= width:
            return text
    size = int(np.prod(value.shape))
    share = f" ({100.0 * value.nnz / size:.3g}%)" if size else ""
    return f"{name}(shape={value.shape}, dtype={label}, nnz={value.nnz}{share}, digest={digest(value)[:8]})"


def sparse_mean(value: Any) -> float:
    """The mean of every element, stored or not, without densifying (nan when empty)."""
    size = int(np.prod(value.shape))
    return float(value.sum()) / size if size else float("nan")
