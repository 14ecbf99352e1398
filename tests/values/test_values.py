"""Encoding tagged values: exact round-trips, readable documents, content-addressed blobs."""

from __future__ import annotations

import copy
import json
import math
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_nwtrials.values.codec import (
    TAG, BlobStore, OpaqueValue, Summary, blob_refs, decode, encode, summarize, value_digest)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------------------------------------
# strategies

def _finite_set_items() -> st.SearchStrategy[Any]:
    # No nan in sets: {nan} == {nan} only holds for the very same float object.
    return st.one_of(st.integers(), st.text(max_size=4), st.floats(allow_nan=False), st.binary(max_size=4))


python_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**64, max_value=2**80),
    st.floats(), st.complex_numbers(), st.text(max_size=8), st.binary(max_size=8),
)

numpy_dtypes = st.one_of(
    hnp.boolean_dtypes(), hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(),
    hnp.floating_dtypes(), hnp.complex_number_dtypes(), hnp.unicode_string_dtypes(max_len=4),
    hnp.datetime64_dtypes(), hnp.timedelta64_dtypes(), st.just(np.dtype(np.longdouble)),
)

numpy_scalars = numpy_dtypes.flatmap(lambda dtype: hnp.arrays(dtype, ()).map(lambda a: a[()]))

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)
numpy_arrays = st.one_of(
    numpy_dtypes.flatmap(lambda dtype: hnp.arrays(dtype, shapes)),
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=2, min_side=5, max_side=9)),
)
object_arrays = hnp.arrays(object, hnp.array_shapes(min_dims=0, max_dims=2, max_side=3),
                           elements=st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=3)))


def nested(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.one_of(st.text(max_size=3), st.sampled_from([TAG, "a"]), st.integers(-3, 3))
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.lists(children, max_size=3).map(tuple),
            st.dictionaries(keys, children, max_size=3),
            st.dictionaries(st.text(max_size=3), children, max_size=3),
            st.frozensets(_finite_set_items(), max_size=3),
            st.sets(_finite_set_items(), max_size=3),
        ),
        max_leaves=8,
    )


@st.composite
def columns(draw: st.DrawFn, rows: int) -> pd.Series:
    kind = draw(st.sampled_from(
        ["float64", "float32", "int64", "bool", "str", "object", "category", "datetime", "tz", "Int64", "uint8",
         "period", "interval"]))
    if kind in ("float64", "float32"):
        return pd.Series(np.array(draw(st.lists(st.floats(width=32 if kind == "float32" else 64),
                                                min_size=rows, max_size=rows)), dtype=kind))
    if kind in ("int64", "uint8"):
        info = np.iinfo(kind)
        values = draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=rows, max_size=rows))
        return pd.Series(np.array(values, dtype=kind))
    if kind == "bool":
        return pd.Series(np.array(draw(st.lists(st.booleans(), min_size=rows, max_size=rows)), dtype=bool))
    if kind in ("str", "object"):
        values = draw(st.lists(st.one_of(st.none(), st.text(max_size=4)), min_size=rows, max_size=rows))
        return pd.Series(values, dtype=kind)
    if kind == "category":
        categories = draw(st.lists(st.text(max_size=2), min_size=1, max_size=4, unique=True))
        values = draw(st.lists(st.sampled_from(categories + [None]), min_size=rows, max_size=rows))
        return pd.Series(pd.Categorical(values, categories=categories, ordered=draw(st.booleans())))
    if kind in ("period", "interval"):
        return pd.Series(draw(period_or_interval_arrays(rows, kind)))
    if kind == "Int64":
        values = draw(st.lists(st.one_of(st.none(), st.integers(-(2**40), 2**40)), min_size=rows, max_size=rows))
        return pd.Series(pd.array(values, dtype="Int64"))
    stamps = draw(st.lists(st.one_of(st.none(), st.integers(0, 2**40)), min_size=rows, max_size=rows))
    series = pd.Series(pd.to_datetime([None if s is None else s * 10**6 for s in stamps]))
    return series.dt.tz_localize("UTC").dt.tz_convert("Europe/Paris") if kind == "tz" else series


@st.composite
def period_or_interval_arrays(draw: st.DrawFn, rows: int, kind: str) -> Any:
    """Periods (with NaT) of a few frequencies, or intervals of ints, floats (with missing ones) or
    timestamps, closed on either side: Parquet holds them as pandas' own Arrow extension types."""
    if kind == "period":
        freq = draw(st.sampled_from(["D", "M", "Q-DEC", "Y-DEC", "h"]))
        ordinals = draw(st.lists(st.one_of(st.none(), st.integers(-(10**5), 10**5)), min_size=rows, max_size=rows))
        return pd.array([pd.NaT if o is None else pd.Period(ordinal=o, freq=freq) for o in ordinals],
                        dtype=pd.PeriodDtype(freq))
    closed = draw(st.sampled_from(["left", "right", "both", "neither"]))
    subtype = draw(st.sampled_from(["int64", "float64", "datetime64[ns]"]))
    starts = draw(st.lists(st.integers(-(10**6), 10**6), min_size=rows, max_size=rows))
    widths = draw(st.lists(st.integers(0, 10**3), min_size=rows, max_size=rows))
    left = np.array(starts, dtype="int64")
    right = left + np.array(widths, dtype="int64")
    if subtype == "datetime64[ns]":
        left, right = left.astype("datetime64[s]").astype(subtype), right.astype("datetime64[s]").astype(subtype)
    elif subtype == "float64":
        left, right = left / 8, right / 8
        missing = np.array(draw(st.lists(st.booleans(), min_size=rows, max_size=rows)), dtype=bool)
        left[missing] = right[missing] = np.nan
    return pd.arrays.IntervalArray.from_arrays(left, right, closed=closed)


@st.composite
def indexes(draw: st.DrawFn, rows: int) -> pd.Index:
    kind = draw(st.sampled_from(["range", "int", "str", "object", "datetime", "multi", "period", "interval"]))
    if kind in ("period", "interval"):
        return pd.Index(draw(period_or_interval_arrays(rows, kind)), name=kind)
    if kind == "range":
        start, step = draw(st.integers(-5, 5)), draw(st.sampled_from([1, 3, -2]))
        return pd.RangeIndex(start, start + rows * step, step, name=draw(st.none() | st.text(max_size=2)))
    if kind == "int":
        return pd.Index(draw(st.lists(st.integers(-9, 9), min_size=rows, max_size=rows)), dtype="int64", name="i")
    if kind in ("str", "object"):
        return pd.Index(draw(st.lists(st.text(max_size=3), min_size=rows, max_size=rows)), dtype=kind)
    if kind == "datetime":
        index = pd.date_range("2020-01-01", periods=rows, freq=draw(st.sampled_from(["D", "h"])), name="when")
        return index if draw(st.booleans()) else pd.DatetimeIndex(index.to_numpy(), name="when")  # no freq
    return pd.MultiIndex.from_arrays([list(range(rows)), draw(st.lists(st.text(max_size=2), min_size=rows,
                                                                       max_size=rows))], names=["n", None])


column_labels = st.one_of(st.text(max_size=3), st.integers(-3, 3))


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(st.integers(0, 5))
    width = draw(st.integers(0, 4))
    data = [draw(columns(rows)) for _ in range(width)]
    frame = pd.concat(data, axis=1) if data else pd.DataFrame(index=pd.RangeIndex(rows))
    if width:
        labels = draw(st.lists(column_labels, min_size=width, max_size=width))
        frame.columns = pd.Index(labels, dtype=object) if draw(st.booleans()) else pd.Index(labels)
    frame.index = draw(indexes(rows))
    return frame


series = frames().filter(lambda f: f.shape[1] > 0).flatmap(
    lambda f: st.one_of(st.none(), column_labels).map(lambda name: f.iloc[:, 0].rename(name)))

# Deferred: the repr of a big combined strategy runs to tens of kilobytes, and Hypothesis warns.
nested_values = st.deferred(lambda: nested(st.one_of(python_scalars, numpy_scalars, numpy_arrays)))
stored_values = st.deferred(lambda: st.one_of(numpy_arrays, object_arrays, frames(), series, nested_values))


# ---------------------------------------------------------------------------------------------
# a careful equality


def assert_same(a: Any, b: Any) -> None:
    """Equal values of the same type: dtypes, shapes, index, nan positions and -0.0 included."""
    assert type(a) is type(b), (type(a), type(b), a, b)
    if isinstance(a, float):
        assert (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b)), (a, b)
    elif isinstance(a, complex):
        assert_same(a.real, b.real)
        assert_same(a.imag, b.imag)
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and np.asarray(a).tobytes() == np.asarray(b).tobytes(), (a, b)
    elif isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape)
        if a.dtype.kind == "O":
            for x, y in zip(a.ravel(), b.ravel()):
                assert_same(x, y)
        else:
            assert a.tobytes() == b.tobytes()
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, dict):
        assert len(a) == len(b)
        for (k, v), (k2, v2) in zip(a.items(), b.items()):
            assert_same(k, k2)
            assert_same(v, v2)
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True, check_index_type=True, check_column_type=True,
                                      check_categorical=True, check_freq=True, check_flags=True)
        assert [type(c) for c in a.columns] == [type(c) for c in b.columns]
        for i in range(a.shape[1]):
            _same_column_bits(a.iloc[:, i], b.iloc[:, i])
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b, check_exact=True, check_index_type=True, check_freq=True,
                                       check_category_order=True)
        assert type(a.name) is type(b.name)
        _same_column_bits(a, b)
    else:
        assert a == b, (a, b)


def _same_column_bits(a: pd.Series, b: pd.Series) -> None:
    if isinstance(a.dtype, np.dtype) and a.dtype.kind in "fc":
        assert a.to_numpy().tobytes() == b.to_numpy().tobytes()  # -0.0 and nan positions
    if a.dtype == object:
        assert list(map(type, a)) == list(map(type, b))  # None stays None, not nan


def roundtrip(value: Any, blobs: BlobStore, **kwargs: Any) -> Any:
    doc = encode(value, blobs)
    json.dumps(doc, allow_nan=False)
    return decode(json.loads(json.dumps(doc)), blobs, **kwargs)


# ---------------------------------------------------------------------------------------------
# properties


@SETTINGS
@given(value=st.one_of(python_scalars, numpy_scalars))
def test_scalars_roundtrip_exactly(tmp_path: Path, value: Any) -> None:
    assert_same(value, roundtrip(value, BlobStore(tmp_path)))


@SETTINGS
@given(value=st.one_of(numpy_arrays, object_arrays))
def test_arrays_roundtrip_exactly(tmp_path: Path, value: np.ndarray) -> None:
    assert_same(value, roundtrip(value, BlobStore(tmp_path)))


@SETTINGS
@given(value=numpy_arrays)
def test_fortran_and_strided_arrays_roundtrip(tmp_path: Path, value: np.ndarray) -> None:
    for variant in (np.asfortranarray(value), value[::-1] if value.ndim else value, value.T):
        assert_same(variant, roundtrip(variant, BlobStore(tmp_path)))


@SETTINGS
@given(value=nested_values)
def test_nested_values_roundtrip_exactly(tmp_path: Path, value: Any) -> None:
    assert_same(value, roundtrip(value, BlobStore(tmp_path)))


@settings(SETTINGS, max_examples=80)
@given(value=st.one_of(frames(), series))
def test_frames_and_series_roundtrip_through_parquet(tmp_path: Path, value: Any) -> None:
    doc = encode(value, BlobStore(tmp_path))
    assert doc[TAG] == ("series" if isinstance(value, pd.Series) else "frame"), doc.get("note")
    assert doc["blob"].endswith(".parquet")
    assert_same(value, roundtrip(value, BlobStore(tmp_path)))


@SETTINGS
@given(value=stored_values)
def test_identical_values_are_stored_once(tmp_path: Path, value: Any) -> None:
    blobs = BlobStore(tempfile.mkdtemp(dir=tmp_path))  # tmp_path is shared by all examples
    first = encode(value, blobs)
    stored = sorted(p.name for p in blobs.root.iterdir()) if blobs.root.exists() else []
    assert encode(copy.deepcopy(value), blobs) == first  # equal, but not the same object
    assert (sorted(p.name for p in blobs.root.iterdir()) if blobs.root.exists() else []) == stored
    assert set(stored) == blob_refs(first, include_pickles=True)


@SETTINGS
@given(value=stored_values)
def test_digest_is_stable_and_content_based(value: Any) -> None:
    assert value_digest(value) == value_digest(copy.deepcopy(value))


# ---------------------------------------------------------------------------------------------
# the document format


def test_plain_data_stays_plain_json(tmp_path: Path) -> None:
    value = {"auc": 0.91, "n": 3, "ok": True, "name": "x", "none": None, "layers": [1, 2.5]}
    assert encode(value, BlobStore(tmp_path)) == value
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("value", "doc"),
    [
        (math.nan, {TAG: "float", "value": "nan"}),
        (-math.inf, {TAG: "float", "value": "-inf"}),
        ((1, "a"), {TAG: "tuple", "items": [1, "a"]}),
        ({1: "a"}, {TAG: "dict", "items": [[1, "a"]]}),
        ({TAG: 1}, {TAG: "dict", "items": [[TAG, 1]]}),
        (b"\x00a", {TAG: "bytes", "base64": "AGE="}),
        (1 + 2j, {TAG: "complex", "real": 1.0, "imag": 2.0}),
        ({8, 1}, {TAG: "set", "items": [1, 8]}),  # sorted, though the set iterates 8 first
        (np.float32(0.5), {TAG: "numpy", "dtype": "float32", "value": 0.5}),
        (np.array([1.0, np.nan]), {TAG: "ndarray", "dtype": "float64", "shape": [2], "data": [1.0, "nan"]}),
        (np.array([[1, None]], dtype=object),
         {TAG: "ndarray", "dtype": "object", "shape": [1, 2], "items": [1, None]}),
    ],
)
def test_tagged_documents_are_readable(tmp_path: Path, value: Any, doc: Any) -> None:
    assert encode(value, BlobStore(tmp_path)) == doc


def test_nan_payloads_and_long_doubles_survive_bit_for_bit(tmp_path: Path) -> None:
    odd_nan = np.array([0x7FF8000000000001, 0xFFF8000000000000], dtype=np.uint64).view(np.float64)
    blobs = BlobStore(tmp_path)
    for scalar in (odd_nan[0], odd_nan[1], np.longdouble(1) / 3):
        doc = encode(scalar, blobs)
        assert "raw" in doc and "value" not in doc  # the readable form would lose bits
        assert_same(scalar, roundtrip(scalar, blobs))
    doc = encode(odd_nan, blobs)
    assert "blob" in doc and "data" not in doc
    assert_same(odd_nan, roundtrip(odd_nan, blobs))
    frame = pd.DataFrame({"x": odd_nan})
    assert_same(frame, roundtrip(frame, blobs))


def test_large_arrays_go_to_npy_blobs(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    big = np.arange(300_000, dtype=np.float64).reshape(1000, 300)  # above the in-memory limit
    doc = encode(big, blobs)
    assert doc == {TAG: "ndarray", "dtype": "float64", "shape": [1000, 300], "blob": doc["blob"]}
    assert doc["blob"].endswith(".npy") and doc["blob"] in blobs
    assert sorted(p.name for p in tmp_path.iterdir()) == [doc["blob"]]  # no temp files left behind
    with blobs.open(doc["blob"]) as f:
        assert f.read(6) == b"\x93NUMPY"
    assert_same(big, decode(doc, blobs))


def test_blob_refs_leave_pickles_out_unless_asked(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    doc = encode({"w": np.zeros(100), "model": Picklable(3), "f": pd.DataFrame({"a": [1]})}, blobs)
    refs = blob_refs(doc)
    assert {name.rsplit(".", 1)[1] for name in refs} == {"npy", "parquet"}
    everything = blob_refs(doc, include_pickles=True)
    assert everything - refs == {doc["model"]["blob"]}
    assert doc["model"]["blob"].endswith(".pickle")


# ---------------------------------------------------------------------------------------------
# frames: the Parquet pitfalls


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({1: [1.0, 2.0], 2: [3, 4]}),
        pd.DataFrame(np.zeros((2, 2)), columns=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["x", "y"])),
        pd.DataFrame({"a": [1, 2]}, index=pd.RangeIndex(5, 7)),
        pd.DataFrame({"a": [1, 2]}, index=pd.Index([0, 1])),
        pd.DataFrame([[1, 2]], columns=["a", "a"]),
        pd.DataFrame({"a": pd.Series(["x", None], dtype=object), "b": ["x", None]}),
        pd.DataFrame({"a": pd.Series(["x", None], dtype="string[python]")}),
        pd.DataFrame({"a": pd.Categorical([2, 1, 2], categories=[2, 1, 3], ordered=True)}),
        pd.DataFrame({"a": pd.date_range("2020", periods=3, tz="Europe/Paris")}),
        pd.DataFrame({"a": np.array(["2020-01-01", "NaT"], dtype="datetime64[s]")}),
        pd.DataFrame({"a": [1, 2]}, index=pd.date_range("2020", periods=2, freq="D", name="day")),
        pd.DataFrame({"a": [1, 2]}, index=pd.Index([0, 1], name=5)),
        pd.DataFrame([[1, 2]], columns=pd.to_datetime(["2020-01-01", "2020-01-02"])),
        pd.DataFrame(),
        pd.DataFrame({"a": [-0.0, np.nan, np.inf]}),
    ],
    ids=["int-labels", "multiindex-columns", "rangeindex", "int64index", "duplicate-labels", "object-vs-str",
         "string-python", "int-categories", "tz-aware", "datetime-seconds", "index-freq", "int-index-name",
         "datetime-labels", "empty", "specials"],
)
def test_frame_pitfalls_roundtrip(tmp_path: Path, frame: pd.DataFrame) -> None:
    doc = encode(frame, BlobStore(tmp_path))
    assert doc[TAG] == "frame", doc.get("note")
    assert_same(frame, roundtrip(frame, BlobStore(tmp_path)))


def test_series_name_none_and_index_roundtrip(tmp_path: Path) -> None:
    for value in (pd.Series([1.0, 2.0]), pd.Series([1, 2], name=0, index=["a", "b"]), pd.Series([], dtype="str")):
        assert_same(value, roundtrip(value, BlobStore(tmp_path)))


PERIODS_AND_INTERVALS = {
    "period-series": pd.Series(pd.period_range("2020-01", periods=3, freq="M")),
    "period-nat": pd.Series([pd.Period("2020-01", "M"), pd.NaT, pd.Period("2021-03", "M")], name="p"),
    "interval-series": pd.Series(pd.interval_range(0, 3)),
    "interval-missing": pd.Series([pd.Interval(0.0, 1.5, closed="both"), np.nan]),
    "interval-timestamps": pd.Series(pd.interval_range(pd.Timestamp("2020-01-01", tz="UTC"), periods=3, freq="D")),
    "frame": pd.DataFrame({"p": pd.period_range("2020-01", periods=3, freq="D"),
                           "i": pd.interval_range(0.0, 3.0, closed="left")}),
    "period-index": pd.Series([1, 2, 3], index=pd.period_range("2020", periods=3, freq="Y", name="year")),
    "interval-index": pd.DataFrame({"n": [1, 2]}, index=pd.interval_range(0, 2, closed="neither")),
    "multiindex": pd.DataFrame({"x": [1, 2]}, index=pd.MultiIndex.from_arrays(
        [pd.period_range("2020-01", periods=2, freq="M"), pd.interval_range(0, 2)])),
    "empty": pd.Series(pd.PeriodIndex([], freq="M")),
}


def test_periods_and_intervals_read_back_in_a_fresh_process(tmp_path: Path) -> None:
    """pandas registers its Arrow period and interval types only once it has converted such a
    column, so the process that wrote a value can read it while a later one could not."""
    blobs = BlobStore(tmp_path / "values")
    docs = {name: encode(value, blobs) for name, value in PERIODS_AND_INTERVALS.items()}
    assert {doc[TAG] for doc in docs.values()} <= {"series", "frame"}, docs
    (tmp_path / "docs.json").write_text(json.dumps(docs))
    (tmp_path / "values.pickle").write_bytes(pickle.dumps(PERIODS_AND_INTERVALS))
    code = """if True:
        import json, pickle, sys
        from pathlib import Path
        from pytest_nwtrials.values.codec import BlobStore, decode
        import pandas as pd
        folder = Path(sys.argv[1])
        expected = pickle.loads((folder / "values.pickle").read_bytes())
        for name, doc in json.loads((folder / "docs.json").read_text()).items():
            back = decode(doc, BlobStore(folder / "values"))
            check = pd.testing.assert_series_equal if isinstance(back, pd.Series) else pd.testing.assert_frame_equal
            check(back, expected[name], check_exact=True, check_index_type=True, check_freq=True)
        print("read", len(expected))
    """
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["read", str(len(PERIODS_AND_INTERVALS))]


@pytest.mark.parametrize(
    "frame",
    [pd.DataFrame({"a": pd.Series([1, "x"], dtype=object)}), pd.DataFrame({"z": [1 + 2j]})],
    ids=["mixed-object-column", "complex-column"],
)
def test_frames_parquet_cannot_hold_become_opaque_with_a_note(tmp_path: Path, frame: pd.DataFrame) -> None:
    blobs = BlobStore(tmp_path)
    doc = encode(frame, blobs)
    assert doc[TAG] == "object" and doc["type"] == f"{pd.DataFrame.__module__}.DataFrame"
    assert doc["note"].startswith("kept as a pickle: Parquet cannot hold this frame exactly")
    assert isinstance(decode(doc, blobs), OpaqueValue)
    assert_same(frame, decode(doc, blobs, allow_pickle=True))


def test_frame_document_keeps_labels_and_dtypes_readable(tmp_path: Path) -> None:
    frame = pd.DataFrame({"price": [1.5], 3: pd.Categorical(["b"], categories=["b", "a"], ordered=True)})
    doc = encode(frame, BlobStore(tmp_path))
    assert doc["shape"] == [1, 2]
    assert doc["columns"] == [
        {"name": "price", "dtype": "float64"},
        {"name": 3, "dtype": "category", "categories": ["b", "a"], "categories_dtype": "str", "ordered": True},
    ]
    assert doc["index"] == {"type": "RangeIndex", "start": 0, "stop": 1, "step": 1, "names": [None]}


# ---------------------------------------------------------------------------------------------
# opaque objects


class Picklable:
    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Picklable) and other.n == self.n


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class Unpicklable(BadRepr):
    def __reduce__(self) -> Any:
        raise TypeError("no pickles either")


def test_opaque_object_keeps_a_pickle_and_a_stable_summary(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    doc = encode(Picklable(3), blobs)
    data = pickle.dumps(Picklable(3), protocol=5)
    assert doc["type"] == f"{__name__}.Picklable"
    assert doc["size"] == len(data) and doc["blob"] == doc["digest"] + ".pickle" and doc["blob"] in blobs
    summary = decode(doc, blobs)
    assert summary == OpaqueValue(doc["type"], None, doc["digest"], "other note")  # type + digest only
    assert summary != OpaqueValue(doc["type"], doc["size"], "0" * 64)
    assert decode(doc, blobs, allow_pickle=True) == Picklable(3)
    assert encode(Picklable(3), blobs) == doc


def test_local_class_instance_is_opaque_without_pickle(tmp_path: Path) -> None:
    class Local:
        pass

    doc = encode(Local(), BlobStore(tmp_path))
    assert doc["digest"] is None and doc["blob"] is None and doc["size"] is None
    assert doc["type"].endswith("Local")
    assert "not picklable" in doc["note"] and "Local object" in doc["note"]
    assert decode(doc, None, allow_pickle=True) == OpaqueValue(doc["type"], None, None)


@pytest.mark.parametrize("value", [lambda: 1, (i for i in range(3)), Unpicklable()],
                         ids=["lambda", "generator", "bad"])
def test_unpicklable_objects_never_raise(tmp_path: Path, value: Any) -> None:
    doc = encode(value, BlobStore(tmp_path))
    json.dumps(doc, allow_nan=False)
    assert doc[TAG] == "object" and doc["digest"] is None
    repr_part = doc["note"].split("repr: ", 1)[1]
    assert len(repr_part) <= 200
    assert summarize(value).startswith("<object ") and "not picklable" in summarize(value)
    assert isinstance(value_digest(value), str)


def test_object_whose_repr_raises(tmp_path: Path) -> None:
    doc = encode(Unpicklable(), BlobStore(tmp_path))
    assert "repr() raised RuntimeError" in doc["note"]
    assert summarize(BadRepr()).startswith(f"<object {__name__}.BadRepr, ")  # picklable: size and digest


def test_self_referencing_list_is_kept_as_a_pickle(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    loop: list[Any] = [1]
    loop.append(loop)
    doc = encode(loop, blobs)
    assert doc[TAG] == "object" and doc["type"] == "list"
    back = decode(doc, blobs, allow_pickle=True)
    assert back[0] == 1 and back[1] is back


def test_object_array_with_unencodable_items_is_opaque(tmp_path: Path) -> None:
    value = np.array([1, Picklable(2)], dtype=object)
    doc = encode(value, BlobStore(tmp_path))
    assert doc[TAG] == "object" and doc["type"] == "numpy.ndarray"
    assert_same(value, decode(doc, BlobStore(tmp_path), allow_pickle=True))


# ---------------------------------------------------------------------------------------------
# the blob store


def test_blob_store_is_content_addressed_and_atomic(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "values")
    name = blobs.put_bytes(b"abc", "npy")
    assert name == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad.npy"
    inode = blobs.path(name).stat().st_ino
    assert blobs.put_bytes(b"abc", "npy") == name and name in blobs
    assert blobs.path(name).stat().st_ino == inode  # an existing blob is not written again
    tmp = blobs.temp_path()
    tmp.write_bytes(b"abc")
    assert blobs.put_file(tmp, "npy") == name and not tmp.exists()
    outside = tmp_path / "elsewhere.bin"
    outside.write_bytes(b"xyz")
    other = blobs.put_file(outside, "parquet")
    assert blobs.path(other).read_bytes() == b"xyz" and not outside.exists()
    assert sorted(os.listdir(blobs.root)) == sorted([name, other])


def test_blob_store_errors_say_what_is_wrong(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    missing = "0" * 64 + ".npy"
    with pytest.raises(ValueError, match=f"blob {missing} is missing from {tmp_path}"):
        blobs.open(missing)
    with pytest.raises(ValueError, match="not a blob name"):
        blobs.path("../etc/passwd")
    with pytest.raises(ValueError, match="unknown blob extension"):
        blobs.put_bytes(b"", "exe")
    assert "../x" not in blobs and missing not in blobs


def test_decode_errors_are_value_errors(tmp_path: Path) -> None:
    doc = encode(np.zeros(50), BlobStore(tmp_path))
    with pytest.raises(ValueError, match="needs a blob store"):
        decode(doc, None)
    with pytest.raises(ValueError, match="is missing from"):
        decode(doc, BlobStore(tmp_path / "empty"))
    with pytest.raises(ValueError, match="unknown value kind 'hologram'"):
        decode({TAG: "hologram"}, None)
    with pytest.raises(ValueError, match="malformed 'tuple'"):
        decode({TAG: "tuple"}, None)


# ---------------------------------------------------------------------------------------------
# summaries


def test_summaries_are_one_line_and_bounded() -> None:
    big = np.zeros((2800, 6))
    assert summarize(big) == f"ndarray(shape=(2800, 6), dtype=float64, digest={value_digest(big)[:8]})"
    assert summarize(np.array([1.5, 2.0], dtype=np.float32)) == "array([1.5, 2. ], dtype=float32)"
    frame = pd.DataFrame({"price": [1.0], "qty": [2]})
    digest = value_digest(frame)[:8]
    assert summarize(frame) == f"DataFrame(shape=(1, 2), columns=['price', 'qty'], digest={digest})"
    wide = pd.DataFrame(np.zeros((1, 50)), columns=[f"column{i}" for i in range(50)])
    assert len(summarize(wide)) <= 80 and summarize(wide).endswith(f", ...], digest={value_digest(wide)[:8]})")
    assert summarize("x" * 100, width=20) == "'xxxxxxxxxxxxxxxx..."
    assert summarize(list(range(1000)), width=30).endswith("...") and len(summarize(list(range(1000)), 30)) == 30
    assert summarize(np.float64(0.25)) == "0.25" and summarize(Summary("as is")) == "as is"
    assert summarize({"w": big}, width=200) == "{'w': " + summarize(big) + "}"
    model = OpaqueValue("sklearn.Model", 1234, "ab" * 32)
    assert summarize(model) == "<object sklearn.Model, 1234 bytes, digest=abababab>"


def test_digests_follow_content_not_representation() -> None:
    assert value_digest(np.arange(3)) != value_digest(np.arange(3).astype(np.int32))
    grid = np.arange(6.0).reshape(2, 3)
    assert value_digest(grid) == value_digest(np.asfortranarray(grid))
    assert value_digest(pd.DataFrame({"a": [1.0]})) != value_digest(pd.DataFrame({"a": [2.0]}))
    assert value_digest({"a": [1, 2]}) == value_digest({"a": [1, 2]}) != value_digest({"a": [1, 3]})


def test_core_modules_do_not_import_pytest() -> None:
    code = ("import sys, pytest_nwtrials.values.codec, pytest_nwtrials.compare.engine, pytest_nwtrials.render.text; "
            "assert 'pytest' not in sys.modules, 'pytest imported'; "
            "assert 'pandas' not in sys.modules, 'pandas imported eagerly'")
    subprocess.run([sys.executable, "-c", code], check=True)
