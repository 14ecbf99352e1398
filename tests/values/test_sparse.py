"""scipy.sparse matrices and arrays as tag values: `.npz` files (never pickles), compared by
shape, dtype and values with the array engine, shown like arrays."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nbformat.v4 import new_code_cell, new_notebook

sp = pytest.importorskip("scipy.sparse")

from pytest_nwtrials.api import plottable
from pytest_nwtrials.compare.arrays import array_mismatch
from pytest_nwtrials.compare.sparse import sparse_mismatch
from pytest_nwtrials.errors import StoreError
from pytest_nwtrials.values.codec import BlobStore, decode, encode, summarize, value_digest

FORMATS = ("csr", "csc", "coo", "bsr", "dia", "lil", "dok")
DTYPES = (np.float64, np.float32, np.int64, np.int8, np.bool_, np.complex128)


@st.composite
def sparse_values(draw, shape=None, dtype=None):
    """A sparse matrix or array of any format, dtype and density, zeros stored explicitly at times."""
    rows, cols = shape or (draw(st.integers(0, 7)), draw(st.integers(0, 7)))
    dtype = dtype or draw(st.sampled_from(DTYPES))
    dense = np.zeros((rows, cols), dtype)
    cells = draw(st.lists(st.tuples(st.integers(0, max(rows - 1, 0)), st.integers(0, max(cols - 1, 0)),
                                    st.integers(-3, 3)), max_size=12)) if rows and cols else []
    for i, j, number in cells:
        dense[i, j] = number
    kind = draw(st.sampled_from((sp.csr_matrix, sp.csr_array)))
    value = kind(dense).asformat(draw(st.sampled_from(FORMATS)))
    if draw(st.booleans()) and value.format == "coo" and value.nnz:  # cells may all have been 0
        value = value.copy()
        value.data[0] = 0  # an explicitly stored zero: the same value as none stored
    return value


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=sparse_values())
def test_a_sparse_value_round_trips_exactly_through_an_npz_file(tmp_path, value):
    blobs = BlobStore(tmp_path)
    doc = encode(value, blobs)
    assert doc["__nw__"] == "sparse" and doc["blob"].endswith(".npz") and doc["shape"] == list(value.shape)
    json.dumps(doc, allow_nan=False)
    back = decode(doc, blobs)
    assert type(back) is type(value) and back.format == value.format and back.dtype == value.dtype
    assert np.array_equal(back.toarray(), value.toarray())
    assert encode(value.copy(), blobs)["blob"] == doc["blob"]  # the same bytes whatever the clock says
    assert value_digest(back) == value_digest(value) == value_digest(value.tocsc())  # storage is no value
    assert not list(tmp_path.glob("*.pickle"))


@settings(max_examples=80, deadline=None)
@given(data=st.data(), rtol=st.sampled_from((0.0, 1e-7, 0.5)), atol=st.sampled_from((0.0, 1.0)))
def test_sparse_compare_reports_what_the_dense_array_compare_reports(data, rtol, atol):
    shape = (data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6)))
    dtype = data.draw(st.sampled_from((np.float64, np.int64)))
    old = data.draw(sparse_values(shape, dtype))
    new = data.draw(sparse_values(shape, dtype))
    tolerance = dtype is np.float64
    dense = array_mismatch(*(np.ascontiguousarray(v.toarray()) for v in (old, new)), rtol, atol, tolerance)
    found = sparse_mismatch(old, new, rtol, atol, tolerance)
    if dense is None:
        assert found is None
        return
    assert found is not None and found.lines() == dense.lines()  # examples in row-major order both


def test_shape_dtype_and_values_are_compared_not_the_storage_format():
    from pytest_nwtrials.compare.engine import diff as compare_values

    base = sp.random(30, 20, density=0.1, random_state=1, format="csr")
    changed = base.tolil()
    changed[4, 7] = 5.0
    assert not compare_values(base, base.tocsc(), path="m")
    [change] = compare_values(base, changed.tocsr(), path="m")
    assert str(change.kind) == "changed"
    assert "Number of differences: 1 / 600 (0.167%)" in change.detail and "[4, 7]: 0.0 -> 5.0" in change.detail
    kinds = {str(c.kind) for c in compare_values(base, base.astype(np.float32), path="m")}
    assert kinds == {"dtype changed"}
    kinds = {str(c.kind) for c in compare_values(base, sp.csr_matrix((30, 21)), path="m")}
    assert kinds == {"shape changed"}
    kinds = {str(c.kind) for c in compare_values(base, sp.csr_array(base), path="m")}
    assert kinds == {"type changed"}  # spmatrix and sparray multiply differently


def test_small_ones_show_their_values_large_ones_a_summary_and_plots_take_their_mean():
    assert summarize(sp.csr_matrix(np.eye(2)), 100) == "csr_matrix([[1., 0.], [0., 1.]], dtype=float64)"
    rng = np.random.default_rng(0)
    rows, cols = rng.choice(100_000, 10_000, replace=False), rng.choice(100_000, 10_000, replace=False)
    big = sp.csr_matrix((rng.random(10_000), (rows, cols)), shape=(100_000, 100_000))  # 80 GB if densified
    text = summarize(big, 200)
    assert text.startswith("csr_matrix(shape=(100000, 100000), dtype=float64, nnz=10000 (0.0001%), digest=")
    mean, of_array = plottable("m", big, "trial1")
    assert of_array and mean == pytest.approx(big.data.sum() / 1e10)


def test_an_npz_holding_a_pickle_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    buffer = io.BytesIO()
    np.savez(buffer, data=np.array([Payload()], dtype=object), format=np.array(b"csr"), shape=np.array([1, 1]),
             indices=np.array([0]), indptr=np.array([0, 1]))
    blobs = BlobStore(tmp_path / "values")
    doc = {"__nw__": "sparse", "type": "csr_matrix", "format": "csr", "dtype": "float64", "shape": [1, 1],
           "nnz": 1, "blob": blobs.put_bytes(buffer.getvalue(), "npz")}
    with pytest.raises(StoreError, match=r"not a sparse matrix \.npz file .*Object arrays cannot be loaded"):
        decode(doc, blobs, allow_pickle=True)
    assert not marker.exists()


def test_scipy_is_imported_only_for_a_sparse_value():
    code = ("import sys, tempfile, numpy as np\n"
            "from pytest_nwtrials.values.codec import encode, decode, BlobStore, summarize\n"
            "from pytest_nwtrials.compare.engine import diff\n"
            "b = BlobStore(tempfile.mkdtemp())\n"
            "v = {'a': np.arange(30.0), 'b': [1, 'x'], 'c': object}\n"
            "decode(encode(v, b), b); summarize(v); diff(v, v)\n"
            "print('scipy' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


EXPERIMENT = """
import json
import numpy as np
import scipy.sparse as sp
from pytest_nwtrials import tag

change = float(open("../change.txt").read())
counts = sp.random(40, 30, density=0.05, random_state=3, format="csr")
counts[2, 5] = change
tag("counts", counts)
graph = sp.coo_array(np.array([[0, 2, 0], [1, 0, 0]], dtype=np.int32))
print(json.dumps({"counts": counts.toarray().tolist(), "graph": graph.toarray().tolist()}))
"""


def _notebook(path: Path, source: str) -> None:
    nb = new_notebook()
    nb.cells.append(new_code_cell(source))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_a_sparse_tag_is_saved_as_npz_passes_unchanged_and_fails_changed_with_a_diff(project):
    project.ini("nw_tags = graph\n", experiments="experiments/*.py\n    experiments/*.ipynb")
    (project.root / "change.txt").write_text("0.5")
    script = project.experiment("sparse.py", EXPERIMENT)
    _notebook(project.root / "experiments" / "sparse_nb.ipynb", EXPERIMENT)
    plain = subprocess.run([sys.executable, str(script)], cwd=script.parent, capture_output=True, text=True)
    assert plain.returncode == 0, plain.stderr
    expected = json.loads(plain.stdout)

    project.run("--nw-save-baseline=base").assert_outcomes(passed=2)
    folder = project.root / "nw-baselines" / "base"
    blobs = BlobStore(folder / "values")
    for experiment in ("sparse.py", "sparse_nb.ipynb"):  # re-read from the baseline, as plain Python made them
        entry = json.loads((folder / "experiments" / f"{experiment}.json").read_text())
        tags = {name: decode(doc["value"], blobs) for name, doc in entry["tags"].items()}
        assert type(tags["counts"]).__name__ == "csr_matrix" and type(tags["graph"]).__name__ == "coo_array"
        assert {name: value.toarray().tolist() for name, value in tags.items()} == expected
    assert sorted(p.suffix for p in (folder / "values").iterdir()) == [".npz", ".npz"]

    result = project.run("--nw-baseline=base")
    result.assert_outcomes(passed=2)

    (project.root / "change.txt").write_text("0.75")
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*counts: changed*",
        "*Shape: (40, 30)",
        "*Number of differences: 1 / 1200 (0.0833%)",
        "*[[]2, 5]: 0.5 -> 0.75",
    ])
    assert "Traceback" not in result.stdout.str().split("short test summary info")[0]


def test_repeated_runs_with_different_sparse_values_are_told_apart_by_digest():
    from pytest_nwtrials.compare.spread import measure

    base = sp.csr_matrix(np.eye(3))
    assert measure([{"m": base}, {"m": base.tocoo()}]) == {}
    changed = base.tolil()
    changed[0, 2] = 1.0
    spreads = measure([{"m": base}, {"m": changed.tocsr()}])
    assert list(spreads) == ["m"] and not spreads["m"].numeric
