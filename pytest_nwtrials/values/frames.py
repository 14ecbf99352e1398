"""pandas DataFrames and Series in value documents: a Parquet blob plus a readable header.

Parquet alone loses a lot of what makes a frame itself (non-string and duplicate column names,
object vs `str` columns, categories of integers, index names, the `freq` of an index,
second-resolution datetimes), so the blob holds plainly named columns ("c0", "c1", ... for
data, "i0", ... for index levels), categoricals as their integer codes, and the document
keeps the rest: column labels, dtypes, categories, index layout. Every frame is read back
and checked at encode time; one that does not come back identical (mixed-type object
columns, complex columns, ...) is kept as an opaque object instead, with a note saying why.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..extras import require

require("pyarrow", "frames", "Storing and reading pandas DataFrames and Series")  # said plainly when missing
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import StoreError
from .arrays import dtype_label as numpy_dtype_label
from .blobs import BlobStore
from .types import TAG, DecodeItem, NotPlain, ValueEncoder, as_opaque, safe_repr


def dtype_label(dtype: Any) -> str:
    """A dtype spelling that `dtype_from_label` reads back, telling pandas string dtypes apart."""
    if isinstance(dtype, pd.StringDtype):
        if dtype.na_value is pd.NA:
            return f"string[{dtype.storage}]"
        return "str" if dtype.storage == "pyarrow" else "str[python]"
    if isinstance(dtype, np.dtype):
        return numpy_dtype_label(dtype)
    return str(dtype)


def dtype_from_label(label: str) -> Any:
    if label == "str":
        return pd.StringDtype("pyarrow", na_value=np.nan)
    if label == "str[python]":
        return pd.StringDtype("python", na_value=np.nan)
    return pd.api.types.pandas_dtype(label)


# ---------------------------------------------------------------------------------------------
# encode


def encode_pandas(value: pd.DataFrame | pd.Series, encoder: ValueEncoder, plain: DecodeItem) -> dict[str, Any]:
    """The document of a frame or series, read back and checked (`plain` decodes its labels)."""
    kind = "series" if isinstance(value, pd.Series) else "frame"
    try:
        doc, table = _layout(value, encoder.plain())
        tmp = encoder.blobs.temp_path()
        try:
            pq.write_table(table, str(tmp))
            _check_identical(value, _read(doc, str(tmp), plain))
            doc["blob"] = encoder.blobs.put_file(tmp, "parquet")
        finally:
            tmp.unlink(missing_ok=True)
        return doc
    except NotPlain:
        reason = "labels or categories that are not plain values"
    except Exception as exc:  # pyarrow and the read-back check raise many kinds
        reason = safe_repr(exc)
    return encoder.opaque(value, note=f"kept as a pickle: Parquet cannot hold this {kind} exactly ({reason})")


def _layout(value: pd.DataFrame | pd.Series, plain: ValueEncoder) -> tuple[dict[str, Any], pa.Table]:
    arrays: dict[str, Any] = {}
    if isinstance(value, pd.Series):
        doc: dict[str, Any] = {TAG: "series", "blob": None, "shape": [len(value)],
                               "name": plain.encode(value.name)}
        field, arrays["c0"] = _field(value, plain)
        doc.update(field)
    else:
        doc = {TAG: "frame", "blob": None, "shape": list(value.shape), "columns": []}
        for i, label in enumerate(_labels(value.columns, plain)):
            field, arrays[f"c{i}"] = _field(value.iloc[:, i], plain)
            doc["columns"].append({"name": label, **field})
        doc["column_index"] = _axis_header(value.columns, plain)
        if doc["column_index"]["type"] == "MultiIndex":
            doc["column_index"]["dtypes"] = [dtype_label(level.dtype) for level in value.columns.levels]
        elif doc["column_index"]["type"] != "RangeIndex":
            doc["column_index"]["dtype"] = dtype_label(value.columns.dtype)
    doc["index"] = _axis_header(value.index, plain)
    if doc["index"]["type"] != "RangeIndex":
        doc["index"]["levels"] = []
        for k in range(value.index.nlevels):
            field, arrays[f"i{k}"] = _field(value.index.get_level_values(k), plain)
            doc["index"]["levels"].append(field)
    return doc, pa.table({name: _arrow(values) for name, values in arrays.items()})


def _arrow(values: Any) -> pa.Array:
    if isinstance(values, np.ndarray) and values.dtype.kind != "O":
        return pa.array(values)  # nan stays a float (pandas conversion would turn it into null)
    return pa.array(values, from_pandas=True)


def _field(values: pd.Series | pd.Index, plain: ValueEncoder) -> tuple[dict[str, Any], Any]:
    """The header of one stored column and the array to write for it."""
    dtype = values.dtype
    field: dict[str, Any] = {"dtype": dtype_label(dtype)}
    if isinstance(dtype, pd.CategoricalDtype):
        field["categories"] = _labels(dtype.categories, plain)
        field["categories_dtype"] = dtype_label(dtype.categories.dtype)
        field["ordered"] = bool(dtype.ordered)
        return field, values.array.codes
    return field, values.to_numpy() if isinstance(dtype, np.dtype) else values.array


def _labels(index: pd.Index, plain: ValueEncoder) -> list[Any]:
    dtype = index.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "Mm":
        items = list(index.to_numpy())  # numpy datetimes encode exactly; Timestamps would not
    else:
        items = index.tolist()
    return [plain.encode(item) for item in items]


def _axis_header(index: pd.Index, plain: ValueEncoder) -> dict[str, Any]:
    if type(index) is pd.RangeIndex:
        return {"type": "RangeIndex", "start": index.start, "stop": index.stop, "step": index.step,
                "names": [plain.encode(index.name)]}
    header: dict[str, Any] = {"type": type(index).__name__, "names": [plain.encode(n) for n in index.names]}
    if getattr(index, "freq", None) is not None:
        header["freq"] = index.freqstr
    return header


def _check_identical(value: pd.DataFrame | pd.Series, back: pd.DataFrame | pd.Series) -> None:
    strict = dict(check_exact=True, check_index_type=True, check_names=True, check_freq=True,
                  check_flags=True, check_categorical=True, check_dtype=True)
    if isinstance(value, pd.Series):
        pd.testing.assert_series_equal(back, value, check_series_type=True, check_category_order=True, **strict)
        pairs = [(value, back)]
    else:
        pd.testing.assert_frame_equal(back, value, check_column_type=True, check_frame_type=True, **strict)
        pairs = [(value.iloc[:, i], back.iloc[:, i]) for i in range(value.shape[1])]
    for old, new in pairs:
        # pandas counts None and nan as the same missing value; an object column must keep which.
        if old.dtype == object and list(map(type, old)) != list(map(type, new)):
            raise AssertionError(f"object column {safe_repr(old.name)} comes back with other types")


# ---------------------------------------------------------------------------------------------
# decode


def decode_pandas(doc: dict[str, Any], blobs: BlobStore, plain: DecodeItem) -> pd.DataFrame | pd.Series:
    """The frame or series of a document; `plain` decodes its labels (plain value documents)."""
    name = doc["blob"]
    with blobs.open(name) as f:
        try:
            table = pq.read_table(f)
        except Exception as exc:  # pyarrow raises many kinds for a file that is not Parquet
            raise blobs.damaged(name, f"not a valid Parquet file ({safe_repr(exc)})") from None
    try:
        return _read(doc, table, plain)
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"blob {name} does not hold the {doc[TAG]} its document describes "
                         f"({safe_repr(exc)})") from None


def _read(doc: dict[str, Any], source: Any, plain: DecodeItem) -> pd.DataFrame | pd.Series:
    table = source if isinstance(source, pa.Table) else pq.read_table(source)
    frame = table.to_pandas()
    rows = doc["shape"][0]

    def column(name: str, field: dict[str, Any]) -> Any:
        return _restore(table.column(name), frame[name], field, plain)

    index = _index(doc["index"], column, plain)
    if doc[TAG] == "series":
        values = column("c0", doc)
        return pd.Series(values, index=index, name=plain(doc["name"]), dtype=values.dtype, copy=False)
    data = {i: _series(column(f"c{i}", f)) for i, f in enumerate(doc["columns"])}
    # Build on a RangeIndex, then set the real axes: no alignment on duplicate labels.
    result = pd.DataFrame(data) if data else pd.DataFrame(index=pd.RangeIndex(rows))
    result.index = index
    result.columns = _columns(doc["column_index"], [plain(f["name"]) for f in doc["columns"]], plain)
    return result


def _series(values: Any) -> pd.Series:
    # An explicit dtype: pandas would otherwise turn object arrays of strings into `str`.
    return pd.Series(values, dtype=values.dtype, copy=False)


def _restore(arrow_column: pa.ChunkedArray, series: pd.Series, field: dict[str, Any], plain: DecodeItem) -> Any:
    label = field["dtype"]
    if "categories" in field:
        categories = pd.Index([plain(c) for c in field["categories"]],
                              dtype=dtype_from_label(field["categories_dtype"]))
        dtype = pd.CategoricalDtype(categories, ordered=field["ordered"])
        return pd.Categorical.from_codes(series.to_numpy(), dtype=dtype)
    if label == "object":
        # pandas would read strings back as `str`; object columns keep their Python objects.
        return np.fromiter(arrow_column.to_pylist(), dtype=object, count=len(arrow_column))
    wanted = dtype_from_label(label)
    if isinstance(wanted, (pd.PeriodDtype, pd.IntervalDtype)):
        return wanted.__from_arrow__(_storage(arrow_column))
    if series.dtype != wanted:
        series = series.astype(wanted)
    return series.array if not isinstance(series.dtype, np.dtype) else series.to_numpy()


def _storage(arrow_column: pa.ChunkedArray) -> pa.ChunkedArray:
    """The column without its pandas extension type: ordinals for periods, left/right for intervals.

    pyarrow knows pandas' ``pandas.period`` and ``pandas.interval`` types only once pandas has
    registered them, which it does the first time it converts such a column to Arrow. So the
    same file reads back as the extension type in the process that wrote it and as its bare
    storage in a fresh one; decoding from the storage in both cases makes the read-back check
    at encode time test what a later process will read.
    """
    if isinstance(arrow_column.type, pa.ExtensionType):
        return pa.chunked_array([chunk.storage for chunk in arrow_column.chunks], type=arrow_column.type.storage_type)
    return arrow_column


def _index(header: dict[str, Any], column: Any, plain: DecodeItem) -> pd.Index:
    names = [plain(n) for n in header["names"]]
    if header["type"] == "RangeIndex":
        return pd.RangeIndex(header["start"], header["stop"], header["step"], name=names[0])
    levels = [column(f"i{k}", field) for k, field in enumerate(header["levels"])]
    if header["type"] == "MultiIndex":
        return pd.MultiIndex.from_arrays(levels, names=names)
    if header.get("freq") and header["type"] in ("DatetimeIndex", "TimedeltaIndex"):
        return getattr(pd, header["type"])(levels[0], freq=header["freq"], name=names[0])
    return pd.Index(levels[0], dtype=levels[0].dtype, name=names[0])


def _columns(header: dict[str, Any], labels: list[Any], plain: DecodeItem) -> pd.Index:
    names = [plain(n) for n in header["names"]]
    if header["type"] == "RangeIndex":
        return pd.RangeIndex(header["start"], header["stop"], header["step"], name=names[0])
    if header["type"] == "MultiIndex":
        index = pd.MultiIndex.from_tuples(labels, names=names) if labels else pd.MultiIndex.from_arrays(
            [[] for _ in names], names=names)
        wanted = [dtype_from_label(d) for d in header["dtypes"]]
        if any(level.dtype != w for level, w in zip(index.levels, wanted)):
            index = index.set_levels([level.astype(w) for level, w in zip(index.levels, wanted)])
        return index
    return pd.Index(labels, dtype=dtype_from_label(header["dtype"]), name=names[0])


# ---------------------------------------------------------------------------------------------
# digests and summaries


def digest_pandas(value: pd.DataFrame | pd.Series, digest: Callable[[Any], str]) -> str:
    """sha256 of labels, dtypes and values, independent of how the frame is stored; `digest`
    (`values.value_digest`) hashes the cells of object columns."""
    h = hashlib.sha256(type(value).__name__.encode())
    try:
        _feed_index(h, value.index, digest)
        if isinstance(value, pd.Series):
            h.update(safe_repr(value.name, 10_000).encode())
            _feed_values(h, value, digest)
        else:
            _feed_index(h, value.columns, digest)
            for i in range(value.shape[1]):
                _feed_values(h, value.iloc[:, i], digest)
    except Exception:  # cells pandas cannot hash: the pickle is stable enough for a summary
        return as_opaque(value).digest or h.hexdigest()
    return h.hexdigest()


def _feed_index(h: Any, index: pd.Index, digest: Callable[[Any], str]) -> None:
    h.update(f"{type(index).__name__}{safe_repr(list(index.names), 10_000)}".encode())
    if type(index) is pd.RangeIndex:
        h.update(repr(index).encode())
        return
    for k in range(index.nlevels):
        _feed_values(h, pd.Series(index.get_level_values(k), copy=False), digest)


def _feed_values(h: Any, series: pd.Series, digest: Callable[[Any], str]) -> None:
    h.update(dtype_label(series.dtype).encode())
    if isinstance(series.dtype, np.dtype) and series.dtype.kind != "O":
        h.update(np.ascontiguousarray(series.to_numpy()).reshape(-1).view(np.uint8))
    elif isinstance(series.dtype, np.dtype):
        # Objects by value and type: pandas' own hash goes through str(), so 1 and "1" would agree.
        h.update(digest(series.to_numpy()).encode())
    else:
        hashed = pd.util.hash_pandas_object(series, index=False, categorize=False)
        h.update(hashed.to_numpy().tobytes())


def pandas_text(value: pd.DataFrame | pd.Series, width: int, digest: str) -> str:
    if isinstance(value, pd.Series):
        return (f"Series(name={safe_repr(value.name, 40)}, length={len(value)}, "
                f"dtype={dtype_label(value.dtype)}, digest={digest[:8]})")
    head = f"DataFrame(shape={value.shape}, columns=["
    tail = f"], digest={digest[:8]})"
    budget = max(width - len(head) - len(tail), 8)
    shown = ""
    for i, label in enumerate(value.columns):
        part = (", " if i else "") + safe_repr(label, 40)
        if len(shown) + len(part) > budget:
            shown += ", ..." if shown else "..."
            break
        shown += part
    return head + shown + tail
