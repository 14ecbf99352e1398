"""Reading trials out of noWorkflow's database: slices of tagged values, operations, files.

Every trial here is a real noWorkflow capture of a small script, run by the capture runner in
a child process (capture patches builtins process-wide, so never in this process), with
`provenance.serialize` installed as noWorkflow's serializer as the plugin does.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_nwtrials.provenance.reader import (
    FileAccess, Op, ProvenanceError, read_file_accesses, read_operations, read_slices, serialize)

# the runner, with our serializer in place of noWorkflow's repr (as the plugin installs it)
# the runner installs provenance.serialize as noWorkflow's serializer
RUN_WITH_SERIALIZE = "from pytest_nwtrials.capture.runner import main\nmain()\n"
# a database written with noWorkflow's default serializer (plain repr), as `now run` writes it
RUN_PLAIN = (
    "import pytest_nwtrials.provenance.serialize as serialize_module\n"
    "serialize_module.serialize = repr\n"
    "from pytest_nwtrials.capture.runner import main\n"
    "main()\n"
)


@dataclass
class Trial:
    root: Path
    db: Path
    id: str


def capture(folder: Path, code: str, *, name: str = "train.py", serializer: bool = True) -> Trial:
    """Run `code` as an experiment under noWorkflow in a child process; the finished trial."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / name
    script.write_text(textwrap.dedent(code), encoding="utf-8")
    spec = {
        "script": str(script), "argv": [], "name": name,
        "provenance_dir": str(folder / ".prov"), "blobs_dir": str(folder / ".blobs"),
        "result": str(folder / "result.json"),
    }
    (folder / "spec.json").write_text(json.dumps(spec))
    program = RUN_WITH_SERIALIZE if serializer else RUN_PLAIN
    proc = subprocess.run([sys.executable, "-c", program, str(folder / "spec.json")], cwd=folder,
                          capture_output=True, text=True, timeout=300)
    result = json.loads((folder / "result.json").read_text())
    assert result["exit_code"] == 0 and not result["internal_error"], proc.stderr
    return Trial(folder, folder / ".prov" / ".noworkflow" / "db.sqlite", result["trial_id"])


def codes(ops) -> list[str]:
    return [op.code for op in ops]


def is_subsequence(wanted: list, seq: list) -> bool:
    it = iter(seq)
    return all(any(item == x for x in it) for item in wanted)


# ---------------------------------------------------------------------------------------------
# slices

SMALL = """
    from pytest_nwtrials import tag

    LR = 0.5
    UNRELATED = 3
    data = [1, 2, 3]
    other = UNRELATED * 2


    def scale(xs, f):
        acc = 0
        for x in xs:
            acc = acc + x * f
        return acc


    total = scale(data, LR) + 1
    tag("total", total)
    tag("other", other)
    for k in range(3):
        v = k * 10
        tag("v", v)
"""


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Trial:
    return capture(tmp_path_factory.mktemp("small"), SMALL)


def test_slice_holds_what_the_value_depends_on_in_execution_order(small):
    total = read_slices(small.db, small.id)["total"]
    assert total.events == 1 and total.dropped == 0
    assert is_subsequence(["0.5", "LR", "data", "scale", "xs", "f", "acc", "x * f", "acc + x * f",
                           "scale(data, LR)", "scale(data, LR) + 1", "total"], codes(total.ops))
    # functions of the experiment appear as their operations, once per loop iteration
    assert [op.value for op in total.ops if op.code == "x * f"] == ["0.5", "1.0", "1.5"]
    assert {op.file for op in total.ops} == {"train.py"}
    assert [op.line for op in total.ops if op.code == "LR"][0] == 4
    # not what it does not depend on, nor the tag call itself
    assert "UNRELATED" not in codes(total.ops) and "other" not in codes(total.ops)
    assert not any("tag" in op.code or op.value == "'total'" for op in total.ops)
    assert not any(op.kind in ("type", "global", "script") for op in total.ops)


def test_slice_of_an_unrelated_value_is_small(small):
    other = read_slices(small.db, small.id, ["other"])
    assert list(other) == ["other"]
    assert codes(other["other"].ops) == ["3", "UNRELATED", "UNRELATED", "2", "UNRELATED * 2", "other", "other"]


def test_last_event_by_default_union_of_all_events_on_request(small):
    last = read_slices(small.db, small.id, ["v"])["v"]
    union = read_slices(small.db, small.id, ["v"], union=True)["v"]
    assert last.events == union.events == 3
    assert [op.value for op in last.ops if op.code == "v"] == ["20", "20"]
    assert [op.value for op in union.ops if op.code == "v"] == ["0", "0", "10", "10", "20", "20"]
    assert is_subsequence(list(last.ops), list(union.ops))


def test_names_not_tagged_fall_back_to_a_module_variable_or_are_left_out(small):
    slices = read_slices(small.db, small.id, ["other", "UNRELATED", "missing"])
    assert list(slices) == ["other", "UNRELATED"]
    assert codes(slices["UNRELATED"].ops) == ["3", "UNRELATED"]
    assert slices["UNRELATED"].events == 1


def test_limit_keeps_the_latest_operations_and_says_how_many_were_dropped(small):
    full = read_slices(small.db, small.id, ["total"])["total"]
    cut = read_slices(small.db, small.id, ["total"], limit=5)["total"]
    assert cut.ops == full.ops[-5:]
    assert cut.dropped == len(full.ops) - 5


TAG_FORMS = """
    import pytest_nwtrials as nw
    from pytest_nwtrials import tag

    data = [3, 1, 2]
    data[0] = 5
    data.sort()
    losses = []
    acc = 0
    for i in range(3):
        acc += data[i]
        losses.append(acc)


    def report(name, value):
        tag(name, value)


    scale = 2
    nw.tag("losses", losses)
    tag("scaled", value=acc * scale, rtol=0.1)
    tag(name="kw", value=scale)
    report("inner", scale + 1)
    now_tag_variable("builtin", acc)
"""


@pytest.fixture(scope="module")
def tag_forms(tmp_path_factory) -> Trial:
    return capture(tmp_path_factory.mktemp("forms"), TAG_FORMS)


def test_every_form_of_tagging_is_found(tag_forms):
    trial = tag_forms
    slices = read_slices(trial.db, trial.id)
    assert set(slices) == {"losses", "scaled", "kw", "inner", "builtin"}
    assert codes(slices["kw"].ops) == ["2", "scale", "scale"]
    scaled = slices["scaled"]
    assert codes(scaled.ops)[-3:] == ["acc", "scale", "acc * scale"]
    assert "0.1" not in codes(scaled.ops)  # the tolerance is no dependency
    assert codes(slices["inner"].ops)[-3:] == ["scale + 1", "value", "value"]
    assert slices["builtin"].ops[-1].code == "acc"


def test_in_place_changes_of_a_container_are_in_its_slice(tag_forms):
    trial = tag_forms
    losses = read_slices(trial.db, trial.id, ["losses"])["losses"]
    ops = codes(losses.ops)
    # appends in the loop, the item assignment and the sort that shaped `data`
    assert ops.count("losses.append(acc)") == 3
    assert "data[0]" in ops and "data.sort()" in ops
    assert [op.value for op in losses.ops if op.code == "data[i]"] == ["1", "2", "5"]
    assert losses.ops[-1].value == "[1, 3, 8]"


LOOP = """
    from pytest_nwtrials import tag

    N_FEATURES = 3
    LEARNING_RATE = 0.1
    EPOCHS = 200

    n_features = N_FEATURES + 1
    w = 0.0
    for epoch in range(EPOCHS):
        grad = w - 1.0
        w = w - LEARNING_RATE * grad
    tag("w", w)
    tag("n_features", n_features)
"""


def test_a_training_loop_is_in_the_slice_it_feeds_and_nowhere_else(tmp_path):
    trial = capture(tmp_path, LOOP)
    slices = read_slices(trial.db, trial.id)
    w = slices["w"]
    loop_lines = {10, 11, 12}
    assert sum(1 for op in w.ops if op.code == "w - LEARNING_RATE * grad") == 200
    assert sum(1 for op in w.ops if op.code == "grad" and op.kind == "name") == 400  # write, read
    # EPOCHS decided how often the body ran: `range(EPOCHS)` is the control of every operation
    # of the body; the loop variable `epoch`, which the body does not read, is not in the slice
    assert {op.line for op in w.ops} == {5, 6, 9, 10, 11, 12, 13}
    assert "epoch" not in codes(w.ops)
    loop = codes(w.ops).index("range(EPOCHS)")
    assert all((loop, "control") in edges for op, edges in zip(w.ops, w.edges) if op.line in (11, 12))
    assert "N_FEATURES" not in codes(w.ops)
    n_features = slices["n_features"]
    assert not any(op.line in loop_lines for op in n_features.ops)
    assert codes(n_features.ops) == ["3", "N_FEATURES", "N_FEATURES", "1", "N_FEATURES + 1", "n_features", "n_features"]


# ---------------------------------------------------------------------------------------------
# operations and values


def test_operations_are_the_whole_sequence_in_order(small):
    ops = read_operations(small.db, small.id)
    assert all(isinstance(op, Op) for op in ops)
    assert ops[0] == Op("literal", "0.5", "train.py", 4, "0.5")
    assert is_subsequence(["LR", "UNRELATED", "data", "scale", "total", 'tag("total", total)',
                           'tag("other", other)', "k", 'tag("v", v)'], codes(ops))
    assert not any(op.kind in ("type", "global", "script") for op in ops)
    assert not any(" at 0x" in op.value for op in ops)


def test_trials_recorded_with_the_default_serializer_compare_without_addresses(tmp_path):
    trial = capture(tmp_path, SMALL, serializer=False)
    ops = read_operations(trial.db, trial.id)
    functions = [op.value for op in ops if op.code == "scale"]
    assert functions and all(value == "<function scale>" for value in functions)
    assert not any(re.search(r"0x[0-9a-f]{6,}", op.value) for op in ops)


ARRAYS = """
    import numpy as np
    import pandas as pd
    from pytest_nwtrials import tag

    X = np.arange(2800 * 6, dtype=np.float64).reshape(2800, 6)
    frame = pd.DataFrame(X[:, :2], columns=["a", "b"])
    mean = float(X.mean() + frame["a"].sum())
    tag("mean", mean)
"""


def test_arrays_and_frames_in_a_slice_are_summarised_with_a_digest(tmp_path):
    np = pytest.importorskip("numpy")
    trial = capture(tmp_path, ARRAYS)
    ops = read_slices(trial.db, trial.id)["mean"].ops
    X = next(op for op in ops if op.code == "X" and op.kind == "name")
    digest = hashlib.sha256(np.arange(2800 * 6, dtype=np.float64).reshape(2800, 6).tobytes()).hexdigest()[:12]
    assert X.value == f"ndarray(shape=(2800, 6), dtype=float64, digest={digest})"
    frame = next(op for op in ops if op.code == "frame")
    assert re.fullmatch(r"DataFrame\(shape=\(2800, 2\), digest=[0-9a-f]{12}\)", frame.value)
    assert not any("\n" in op.value or "..." in op.value for op in ops)


# ---------------------------------------------------------------------------------------------
# file accesses

FILES = """
    import os
    from pathlib import Path
    import numpy as np
    from pytest_nwtrials import tag

    OUTSIDE = {outside!r}
    with open("data/in.csv") as handle:
        rows = handle.read()
    extra = open(OUTSIDE).read()
    os.makedirs("out", exist_ok=True)
    Path("out/notes.txt").write_text("hello")
    np.save("out/a.npy", np.arange(3.0))
    os.cpu_count()
    tag("big", np.arange(100_000.0))
"""


def test_file_accesses_are_the_data_files_with_their_hashes(tmp_path):
    outside = tmp_path / "elsewhere" / "lookup.txt"
    outside.parent.mkdir()
    outside.write_text("x\n")
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    (root / "data" / "in.csv").write_text("a,b\n1,2\n")
    trial = capture(root, FILES.format(outside=str(outside)))
    accesses = read_file_accesses(trial.db, trial.id, root)

    def sha1(path: Path) -> str:
        return hashlib.sha1(path.read_bytes()).hexdigest()

    assert accesses == [
        FileAccess("data/in.csv", "r", sha1(root / "data" / "in.csv"), sha1(root / "data" / "in.csv")),
        FileAccess(outside.as_posix(), "r", sha1(outside), sha1(outside)),
        FileAccess("out/notes.txt", "w", None, sha1(root / "out" / "notes.txt")),
        FileAccess("out/a.npy", "wb", None, sha1(root / "out" / "a.npy")),
    ]
    # the value store written by tag() is under the root too, and left out
    assert any((root / ".blobs").iterdir())


def test_files_outside_the_root_that_the_script_does_not_name_are_left_out(tmp_path):
    outside = tmp_path / "elsewhere" / "lookup.txt"
    outside.parent.mkdir()
    outside.write_text("x\n")
    root = tmp_path / "project"
    code = f"""
        import os
        name = os.path.join({str(outside.parent)!r}, "lookup" + ".txt")
        text = open(name).read()
        import json
        with open(os.path.join(json.__file__.rsplit(os.sep, 1)[0], "__init__.py")) as handle:
            handle.read()
    """
    trial = capture(root, code)
    paths = [access.path for access in read_file_accesses(trial.db, trial.id, root)]
    assert paths == [outside.as_posix()]  # named by a computed value; the stdlib file is not data


# ---------------------------------------------------------------------------------------------
# errors and purity


def test_a_missing_database_or_trial_is_a_provenance_error(tmp_path, small):
    with pytest.raises(ProvenanceError, match="no noWorkflow database"):
        read_slices(tmp_path / "db.sqlite", "x")
    with pytest.raises(ProvenanceError, match="trial nope is not in"):
        read_operations(small.db, "nope")
    (tmp_path / "junk.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(ProvenanceError, match="not a noWorkflow database"):
        read_file_accesses(tmp_path / "junk.sqlite", "x", tmp_path)


def test_the_database_is_opened_read_only(small):
    before = small.db.stat().st_mtime_ns
    read_slices(small.db, small.id, union=True)
    read_operations(small.db, small.id)
    assert small.db.stat().st_mtime_ns == before
    assert not Path(str(small.db) + "-journal").exists()


def test_the_provenance_core_imports_no_pytest_numpy_pandas_or_noworkflow():
    code = (
        "import sys\n"
        "import pytest_nwtrials.provenance.reader, pytest_nwtrials.compare.slices\n"
        "from pytest_nwtrials.provenance.reader import serialize\n"
        "serialize([1, {2: 'x'}, object()])\n"
        "heavy = [m for m in ('pytest', 'numpy', 'pandas', 'noworkflow', 'sqlalchemy') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# serialize


class BadRepr:
    def __repr__(self):
        raise RuntimeError("no repr")


class Plain:
    pass


class Point:
    def __init__(self, x):
        self.x = x

    def __repr__(self):
        return f"Point({self.x})"


def test_serialize_small_plain_data_is_its_repr():
    for value in (None, True, 3, -2.5, 1 + 2j, "abc", [1, "a", None], (1,), (), {"k": [1, 2.0]}, b"xy"):
        assert serialize(value) == repr(value)


def test_serialize_replaces_addresses_and_unstable_orders():
    assert serialize(Plain()) == f"<{__name__}.Plain object>"
    assert serialize(serialize) == "<function pytest_nwtrials.provenance.serialize.serialize>"
    assert serialize(len) == "<built-in function len>"
    assert serialize(os) == "<module os>"
    assert serialize([].append) == "<built-in function list.append>"
    assert serialize(Point(2)) == "Point(2)"
    assert serialize(BadRepr()) == f"<{__name__}.BadRepr>"
    assert serialize({"b", "a", "c"}) == "{'a', 'b', 'c'}"
    assert serialize(frozenset()) == "frozenset()"


def test_serialize_sets_do_not_depend_on_the_hash_seed():
    code = "from pytest_nwtrials.provenance.reader import serialize; print(serialize(set('abcdefghij')), serialize(set(map(str, range(50)))))"
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1


def test_serialize_summarises_large_values_with_a_digest():
    assert re.fullmatch(r"list\(len=100000, digest=[0-9a-f]{12}\)", serialize(list(range(100_000))))
    assert serialize(list(range(100_000))) != serialize(list(range(1, 100_001)))
    assert re.fullmatch(r"str\(len=1000, digest=[0-9a-f]{12}\)", serialize("x" * 1000))
    assert re.fullmatch(r"int\(bits=\d+, digest=[0-9a-f]{12}\)", serialize(10 ** 5000))
    nested = serialize([[[[[[1]]]]]])
    assert nested == "[[[[list(len=1)]]]]"


def test_serialize_arrays_and_frames():
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    X = np.linspace(0, 1, 2800 * 6).reshape(2800, 6)
    digest = hashlib.sha256(X.tobytes()).hexdigest()[:12]
    assert serialize(X) == f"ndarray(shape=(2800, 6), dtype=float64, digest={digest})"
    assert serialize(X.T) != serialize(X)
    assert serialize(np.float64(0.5)) == repr(np.float64(0.5))
    huge = np.zeros(3_000_000)
    text = serialize(huge)
    huge[1] = 1.0  # off the sample, still caught by the sum
    assert text.startswith("ndarray(shape=(3000000,), dtype=float64, digest=") and serialize(huge) != text
    assert re.fullmatch(r"ndarray\(shape=\(3,\), dtype=object, digest=[0-9a-f]{12}\)",
                        serialize(np.array([1, "a", Plain()], dtype=object)))
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert re.fullmatch(r"DataFrame\(shape=\(2, 2\), digest=[0-9a-f]{12}\)", serialize(frame))
    assert serialize(frame) == serialize(frame.copy())
    assert serialize(frame) != serialize(frame.assign(b=["x", "z"]))
    assert serialize(frame) != serialize(frame.rename(columns={"b": "c"}))
    assert serialize(frame["a"]).startswith("Series(shape=(2,), digest=")
    assert serialize(pd.DataFrame({"l": [[1], [2]]})).startswith("DataFrame(shape=(2, 1), digest=")


def test_serialize_does_not_import_numpy_or_pandas():
    code = ("import sys\nfrom pytest_nwtrials.provenance.reader import serialize\n"
            "[serialize(v) for v in (1, [1.0], object(), {'a': b'x' * 100})]\n"
            "print('numpy' in sys.modules, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


class Hostile:
    """An object whose every hook misbehaves."""

    def __repr__(self):
        raise SystemError("repr")

    def __len__(self):
        raise ValueError("len")

    def __getattr__(self, name):
        raise KeyError(name)


leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.complex_numbers(),
    st.text(max_size=300), st.binary(max_size=100), st.builds(Hostile), st.builds(BadRepr),
    st.builds(Plain), st.just(float("inf")),
)
values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=30), st.tuples(children, children),
        st.dictionaries(st.text(max_size=5), children, max_size=10),
        st.frozensets(st.integers() | st.text(max_size=5), max_size=10),
    ),
    max_leaves=60,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_serialize_never_raises_and_is_deterministic(value):
    text = serialize(value)
    assert isinstance(text, str)
    assert text == serialize(value)
    assert not re.search(r" at 0x[0-9a-f]+", text)
