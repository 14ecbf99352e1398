"""numpy scalars and arrays in value documents (the format is described in values/codec.py).

Scalars and small arrays stay readable in the document; every readable form is checked by
decoding it back at encode time, and bit-for-bit mismatches (nan payloads, long doubles) fall
back to raw bytes or a `.npy` blob, so a round-trip is always exact.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
from typing import Any, Callable

import numpy as np

from ..errors import StoreError
from .blobs import BlobStore
from .types import TAG, NotPlain, ValueEncoder, float_word, safe_repr

INLINE_MAX = 16  # arrays up to this many elements are written into the document itself
_SPILL_BYTES = 1 << 20  # above this np.save streams to a temp file instead of memory
_READABLE_KINDS = "biufcUMm"
_NAT = np.iinfo(np.int64).min
_FLOAT_WORDS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_NPY_MAGIC = b"\x93NUMPY"


def dtype_label(dtype: np.dtype) -> str:
    """A dtype spelling that `np.dtype()` reads back to the same dtype where one exists."""
    if dtype.fields is not None:
        return str(dtype.descr)
    try:
        if np.dtype(dtype.name) == dtype:
            return dtype.name
    except TypeError:
        pass
    return dtype.str


def _readable(dtype: np.dtype) -> bool:
    # Long doubles have no exact JSON spelling; they travel as raw bytes or .npy.
    if dtype.kind == "f" and dtype.itemsize > 8 or dtype.kind == "c" and dtype.itemsize > 16:
        return False
    return dtype.kind in _READABLE_KINDS


def _json_float(x: float) -> float | str:
    return x if math.isfinite(x) else float_word(x)


def _element_json(x: Any) -> Any:
    kind = x.dtype.kind
    if kind == "b":
        return bool(x)
    if kind in "iu":
        return int(x)
    if kind == "f":
        return _json_float(float(x))
    if kind == "c":
        return [_json_float(float(x.real)), _json_float(float(x.imag))]
    if kind == "U":
        return str(x)
    if kind == "M":
        return str(np.datetime_as_string(x))
    return "NaT" if np.isnat(x) else int(x.astype(np.int64))  # timedelta64


def _from_json(data: list[Any], dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    kind = dtype.kind
    if kind == "f":
        data = [_FLOAT_WORDS[v] if isinstance(v, str) else v for v in data]
    elif kind == "c":
        data = [complex(*(_FLOAT_WORDS[p] if isinstance(p, str) else p for p in v)) for v in data]
    elif kind == "m":
        ints = np.array([_NAT if v == "NaT" else v for v in data], dtype=np.int64)
        return ints.view(dtype).reshape(shape)
    return np.array(data, dtype=dtype).reshape(shape)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def encode_scalar(x: np.generic) -> dict[str, Any] | None:
    """The document of a numpy scalar, or None when it has no pickle-free form (object/void)."""
    dtype = x.dtype
    if dtype.kind in "OV":
        return None
    doc: dict[str, Any] = {TAG: "numpy", "dtype": dtype_label(dtype)}
    original = np.asarray(x)
    if _readable(dtype):
        value = _element_json(x)
        if _same_bits(_from_json([value], dtype, ()), original):
            doc["value"] = value
            return doc
    doc["raw"] = base64.b64encode(original.tobytes()).decode("ascii")
    return doc


def decode_scalar(doc: dict[str, Any]) -> np.generic:
    dtype = np.dtype(doc["dtype"])
    if "raw" in doc:
        return np.frombuffer(base64.b64decode(doc["raw"]), dtype=dtype)[0]
    scalar: np.generic = _from_json([doc["value"]], dtype, (1,))[0]
    return scalar


def encode_array(arr: np.ndarray, encoder: ValueEncoder) -> dict[str, Any]:
    dtype = arr.dtype
    if dtype.hasobject:
        if dtype.kind != "O":
            return encoder.opaque(arr, note="structured array with object fields")
        # Object arrays of plain data (strings, None, mixed numbers) stay pickle-free.
        plain = encoder.plain()
        try:
            items = [plain.encode(x) for x in arr.ravel()]
        except NotPlain:
            return encoder.opaque(arr)
        return {TAG: "ndarray", "dtype": "object", "shape": list(arr.shape), "items": items}
    doc: dict[str, Any] = {TAG: "ndarray", "dtype": dtype_label(dtype), "shape": list(arr.shape)}
    if arr.size <= INLINE_MAX and _readable(dtype):
        data = [_element_json(x) for x in arr.ravel()]
        if _same_bits(_from_json(data, dtype, arr.shape), arr):
            doc["data"] = data
            return doc
    doc["blob"] = _save(arr, encoder.blobs)
    return doc


def _save(arr: np.ndarray, blobs: BlobStore) -> str:
    if arr.nbytes <= _SPILL_BYTES:
        buffer = io.BytesIO()
        np.save(buffer, arr, allow_pickle=False)
        return blobs.put_bytes(buffer.getvalue(), "npy")
    # Big arrays are named first, from the bytes np.save would write, without writing them: a
    # value the store or the baseline already holds is linked (a gate that matches writes
    # nothing); another goes straight to disk, with no second in-memory copy of the data.
    named = _HashingWriter()
    np.save(named, arr, allow_pickle=False)
    name = f"{named.digest.hexdigest()}.npy"
    if blobs.adopt(name, named.size):
        return name
    tmp = blobs.temp_path()
    try:
        with open(tmp, "wb") as f:
            np.save(f, arr, allow_pickle=False)
        return blobs.put_file(tmp, "npy", digest=name[:-len(".npy")])
    finally:
        tmp.unlink(missing_ok=True)


class _HashingWriter:
    """A binary sink that hashes (sha256) and counts what np.save writes to it, in chunks of
    16 MB, and keeps none of it."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: Any) -> int:
        self.digest.update(data)
        written = memoryview(data).nbytes
        self.size += written
        return written


def decode_array(doc: dict[str, Any], blobs: BlobStore | None, decode_item: Callable[[Any], Any]) -> np.ndarray:
    shape = tuple(doc["shape"])
    if "items" in doc:
        flat = np.empty(len(doc["items"]), dtype=object)
        for i, item in enumerate(doc["items"]):
            flat[i] = decode_item(item)  # element-wise: a list element must stay one object
        return flat.reshape(shape)
    if "data" in doc:
        return _from_json(doc["data"], np.dtype(doc["dtype"]), shape)
    if blobs is None:
        raise StoreError(f"decoding {doc['blob']} needs a blob store, and none was given")
    with blobs.open(doc["blob"]) as f:
        if f.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
            raise blobs.damaged(doc["blob"], "not a .npy file (it does not start with the .npy signature)")
        f.seek(0)
        try:
            arr = np.lib.format.read_array(f, allow_pickle=False)
        except Exception as exc:  # numpy raises many kinds for a damaged header or short data
            raise blobs.damaged(doc["blob"], f"not a valid .npy file ({safe_repr(exc)})") from None
    if arr.shape != shape:
        raise StoreError(f"blob {doc['blob']} holds shape {arr.shape}, the document says {shape}")
    return arr


def scalar_text(x: np.generic) -> str:
    if isinstance(x, np.str_):
        return repr(str(x))
    if isinstance(x, np.bytes_):
        return repr(bytes(x))
    if isinstance(x, np.datetime64):
        return f"numpy.datetime64({str(x)!r})"
    return str(x)


def array_text(arr: np.ndarray, width: int, digest: Callable[[Any], str]) -> str:
    label = dtype_label(arr.dtype)
    if arr.size <= 20:
        body = np.array2string(arr, separator=", ", max_line_width=10**9, floatmode="unique")
        text = f"array({body}, dtype={label})"
        if len(text) <= width and "\n" not in text:
            return text
    return f"ndarray(shape={arr.shape}, dtype={label}, digest={digest(arr)[:8]})"
