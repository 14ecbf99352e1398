"""Every reader of the local store and of baselines, fed damaged files: it loads or raises StoreError.

The valid files that get damaged are written by the plugin's own writers (`TrialStore.add`,
`BaselineStore.save`, `ProvenanceRecord.to_json`, `values.encode`) in a project built once per
module; each example works on a fresh copy of it. A reader may accept a damaged file when what is
left still makes sense; what it must never do is let a KeyError, TypeError, RecursionError or any
other exception of its own escape, or raise a StoreError that does not name the file.
"""
from __future__ import annotations

import copy
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pytest_nwtrials.store.baselines import BaselineStore
from pytest_nwtrials.store.references import ReferenceError_, resolve
from pytest_nwtrials.compare.explain import ProvenanceRecord, input_changes, why_lines
from pytest_nwtrials.provenance.reader import Op, Slice
from pytest_nwtrials.store.archive import archive_name
from pytest_nwtrials.store.trial_store import StoreError, Trial, TrialStore
from pytest_nwtrials.files import read_json
from pytest_nwtrials.values.codec import BlobStore, OpaqueValue, decode, encode
from pytest_nwtrials.values.blobs import BlobError

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TRAIN, PREP = "experiments/train.py", "experiments/prep.py"
TRIAL_ID = "5d0c7a8e-3f6b-4a51-9c2e-1b7f0e4d2a61"
INPUTS = {"python": "3.11.7", "libraries": {"numpy": "2.0"}, "modules": {"helpers.py": "a" * 40},
          "files": {"data.csv": {"read": "b" * 40, "written": None}}}

# -- the project: two trials, their records and values, and a baseline saved from them --------


def _tags(blobs: BlobStore) -> dict[str, Any]:
    values = {
        "auc": 0.91,
        "summary": {"precision": 0.5, "recall": 0.4, "name": "logreg", "ok": True, "none": None},
        "weights": np.linspace(0.0, 1.0, 50),  # a .npy blob
        "small": np.arange(4, dtype=np.int32),  # inline
        "table": pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]}),  # a .parquet blob
        "shape": (3, {1, 2}, frozenset(), complex(1, -2), float("nan"), b"\x00\xff", 10 ** 4000),
        "model": OpaqueValue("sklearn.Model", 10, "ab" * 32),
        "scalar": np.float32(1.5),
    }
    return {name: {"value": encode(value, blobs), "count": 1, "source": "tag"} for name, value in values.items()}


def _record() -> ProvenanceRecord:
    ops = tuple(Op("call", f"f({i})", "experiments/train.py", i + 1, repr(i)) for i in range(4))
    slices = {"auc": Slice("auc", ops[1:3], 2, 0, ((), ((0, "mutation"), (0, "control"))), ("experiments/train.py", 3)),
              "weights": Slice("weights", ops[:1], 1, 3)}
    return ProvenanceRecord(ops + ops[:2], slices)


def build(root: Path) -> Path:
    store = TrialStore(root / ".nwtrials")
    store.ensure()
    train = store.add(Trial("", TRIAL_ID, TRAIN, (), "finished", 0, "2024-05-01T10:00:00+00:00", 1.5,
                            _tags(BlobStore(store.values_dir)), None, "3.11.7", INPUTS, archive_name(TRIAL_ID)))
    prep = store.add(Trial("", "0f1e2d3c-aaaa-bbbb-cccc-000000000002", PREP, ("--fast",), "failed", 3,
                           None, 0.2, {"rows": {"value": 10}}, {"type": "SystemExit", "message": "3"}))
    (store.records_dir).mkdir()
    (store.record_path(train)).write_text(json.dumps(_record().to_json()))  # as stores before compressed records
    baselines = BaselineStore(root / "nw-baselines")
    baselines.save("reference", train, store)
    baselines.save("reference", prep, store)
    return root


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("readers") / "project")


@contextmanager
def fresh(template: Path) -> Iterator[Path]:
    """A copy of the project for one example (Hypothesis runs many per test, tmp_path is per test)."""
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(shutil.copytree(template, Path(tmp) / "project"))


def files(root: Path) -> dict[str, Path]:
    """The files examples damage, by role."""
    store = root / ".nwtrials"
    entry = root / "nw-baselines" / "reference" / f"{TRAIN}.json"
    return {
        "trial": store / "trials" / "trial1.json",
        "record": store / "records" / f"{TRIAL_ID}.json",
        "entry": entry,
        "entry record": entry.with_name("train.py.provenance.json"),
    }


def blob_files(folder: Path, ext: str) -> list[Path]:
    return sorted(folder.glob(f"*.{ext}"))


# -- damaged documents and bytes ----------------------------------------------------------------

scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
           | st.sampled_from(["__nw__", "ndarray", "frame", "object", "float", "nan", "value", "blob", "1", ""]))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["__nw__", "value", "items", "blob", "dtype", "shape", "data", "schema"])
                      | st.text(max_size=6), children, max_size=4),
    max_leaves=24,
)


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> Any:
    """`doc` with one to three changes: a key or item dropped, or a value replaced by another type.

    Each change picks a depth first, so that the fields of a record are changed as often as
    the fields of its tags and the depths of its value documents.
    """
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        parent, key, node = None, None, doc
        for _ in range(draw(st.integers(1, 4))):
            if not isinstance(node, (dict, list)) or not node:
                break
            parent, key = node, draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
            node = node[key]
        if parent is None:
            break
        if draw(st.booleans()):
            del parent[key]
        else:
            parent[key] = draw(json_values)
    return doc


@st.composite
def damaged_text(draw: st.DrawFn, text: str) -> bytes:
    """The file's text cut short, with a byte changed, or replaced by a mutated document."""
    data = text.encode()
    how = draw(st.sampled_from(["truncate", "flip", "mutate", "mutate", "mutate"]))
    if how == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    if how == "flip":
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
    return json.dumps(draw(mutated(json.loads(text)))).encode()


def any_damage(text: str) -> st.SearchStrategy[bytes]:
    return (damaged_text(text) | st.binary(max_size=200)
            | json_values.map(lambda doc: json.dumps(doc).encode()))


DEEP = b"[" * 100_000
NUMBERS = (b'{"schema": 1, "columns": [], "table": [["call", "f()", "a.py", Infinity, "1"]], '
           b'"operations": [0], "slices": {}}')


def outcome(call, *args, **kwargs) -> Any:
    """`call(...)`, or the StoreError it raised; anything else fails the test."""
    try:
        return call(*args, **kwargs)
    except StoreError as exc:
        assert str(exc).strip()
        return exc


def damage(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def damage_drawn(path: Path, data: Any, explicit: bytes) -> None:
    """Damage `path` as Hypothesis draws it, or with `explicit` in the example without data."""
    damage(path, explicit if data is None else data.draw(any_damage(path.read_text())))


# -- the local store --------------------------------------------------------------------------


@SETTINGS
@given(data=st.binary(max_size=300) | json_values.map(lambda d: json.dumps(d).encode()))
@example(data=DEEP)
@example(data=b'{"a": NaN, "b": -Infinity}')
@example(data="\ufeff{}".encode("utf-16"))
def test_read_json_loads_or_raises_naming_the_file(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "file.json"
        damage(path, data)
        result = outcome(read_json, path)
        if isinstance(result, StoreError):
            assert str(path) in str(result)


@SETTINGS
@given(st.data())
def test_trial_record_and_its_values_load_or_raise(template, data):
    with fresh(template) as root:
        path = files(root)["trial"]
        valid = json.loads(path.read_text())
        doc = data.draw(mutated(valid) | mutated(valid) | json_values)
        trial = outcome(Trial.from_json, doc, str(path), root / ".nwtrials" / "values")
        if isinstance(trial, StoreError):
            assert str(path) in str(trial)
            return
        compare_inputs(trial)
        values = outcome(lambda: trial.values)
        if isinstance(values, StoreError):
            assert str(root) in str(values)
        outcome(trial.record)
        trial.to_json()


def compare_inputs(loaded: Trial | Any) -> None:
    """What a comparison does with the inputs and arguments of a loaded trial or entry."""
    why_lines(input_changes(loaded.inputs, loaded.argv, INPUTS, ()), [])
    why_lines(input_changes(INPUTS, ("--fast",), loaded.inputs, loaded.argv), [])


@SETTINGS
@given(st.data())
@example(data=None)
def test_store_lists_every_readable_trial_and_warns_about_the_damaged_one(template, data):
    with fresh(template) as root:
        path = files(root)["trial"]
        damage_drawn(path, data, DEEP)
        store = TrialStore(root / ".nwtrials")
        trials = store.trials()
        assert "trial2" in [t.name for t in trials]  # the other record is unaffected
        if len(trials) == 1:
            assert len(store.warnings) == 1 and str(path) in store.warnings[0]
            assert "delete the file" in store.warnings[0]
        else:
            assert not store.warnings
        for ref in ("trial1", "trial2", TRIAL_ID[:6], "zzzz", ""):
            store.find(ref)
        store.latest(TRAIN, (), before=10)
        store.latest(PREP, ("--fast",), before=10)
        for reference in ("reference", "latest", "trial2", TRIAL_ID, "nothing"):
            outcome_or_reference_error(resolve, reference, store, BaselineStore(root / "nw-baselines"))


def outcome_or_reference_error(call, *args) -> Any:
    try:
        return outcome(call, *args)
    except ReferenceError_ as exc:
        return exc


@SETTINGS
@given(st.data())
@example(data=None)
def test_provenance_record_loads_or_raises_naming_the_file(template, data):
    with fresh(template) as root:
        path = files(root)["record"]
        damage_drawn(path, data, NUMBERS)
        trial = TrialStore(root / ".nwtrials").find("trial1")[0]
        record = outcome(trial.record)
        if isinstance(record, StoreError):
            assert str(path) in str(record) and "delete it" in str(record)
        else:
            assert record is None or isinstance(record, ProvenanceRecord)
            try:
                trial.slice("auc")
            except KeyError as exc:  # what slice() raises for a tag the record has no slice of
                assert "no provenance slice for tag 'auc'" in str(exc)


SHARED_FIELDS = [
    ("tags", []), ("tags", {"auc": 0.9}), ("tags", {"auc": {"count": 1}}), ("argv", "--fast"), ("argv", [1]),
    ("inputs", []), ("inputs", {"files": []}), ("inputs", {"files": {"data.csv": "b" * 40}}),
    ("inputs", {"files": {"data.csv": {"read": 1}}}), ("inputs", {"files": {"data.csv": {"tags": "auc"}}}),
    ("inputs", {"libraries": ["numpy"]}),
    ("inputs", {"modules": "helpers.py"}), ("inputs", {"cell_tags": None}), ("inputs", {"python": 3.11}),
]
TRIAL_FIELDS = [
    ("id", "../../etc/passwd"), ("id", 5), ("name", None), ("experiment", ["train.py"]), ("status", 0),
    ("exit_code", "0"), ("exit_code", 1.5), ("started", 5), ("duration", "1.5"), ("duration", True),
    ("error", "boom"), ("python", None), ("provenance", {}),
]


@pytest.mark.parametrize(("key", "value"), SHARED_FIELDS + TRIAL_FIELDS, ids=repr)
def test_a_trial_record_with_a_field_of_the_wrong_shape_raises_store_error(template, key, value):
    with fresh(template) as root:
        path = files(root)["trial"]
        path.write_text(json.dumps(dict(json.loads(path.read_text()), **{key: value})))
        with pytest.raises(StoreError, match=f"{path}: not a valid trial record .*{key}"):
            Trial.from_json(read_json(path), str(path))
        store = TrialStore(root / ".nwtrials")
        assert [t.name for t in store.trials()] == ["trial2"] and str(path) in store.warnings[0]


@pytest.mark.parametrize(("key", "value"), SHARED_FIELDS + [
    ("experiment", "experiments/other.py"), ("trial", 1), ("trial_id", None), ("argv", ["--fast"])], ids=repr)
def test_a_baseline_entry_with_a_field_of_the_wrong_shape_raises_store_error(template, key, value):
    with fresh(template) as root:
        path = files(root)["entry"]
        path.write_text(json.dumps(dict(json.loads(path.read_text()), **{key: value})))
        with pytest.raises(StoreError, match=f"{path}: not a valid baseline entry .*--nw-save-baseline=reference"):
            BaselineStore(root / "nw-baselines").entry("reference", TRAIN, ())


@pytest.mark.parametrize("doc", [
    [], "record", {"schema": 1}, {"schema": 1, "table": {}, "operations": [], "slices": {}},
    {"schema": 1, "table": [], "operations": [], "slices": []},
    {"schema": 1, "table": [["call", "f()", "a.py", 1]], "operations": [0], "slices": {}},
    {"schema": 1, "table": [["call", "f()", "a.py", 1.5, "1"]], "operations": [0], "slices": {}},
    {"schema": 1, "table": [["call", "f()", "a.py", 1, 2]], "operations": [0], "slices": {}},
    {"schema": 1, "table": [["call", "f()", "a.py", 1, "1"]], "operations": [-1], "slices": {}},
    {"schema": 1, "table": [["call", "f()", "a.py", 1, "1"]], "operations": [True], "slices": {}},
    {"schema": 1, "table": [], "operations": [], "slices": {"auc": []}},
    {"schema": 1, "table": [], "operations": [], "slices": {"auc": {"ops": [], "events": "2"}}},
    {"schema": 2, "table": [["call", "f()", "a.py", 1, "1"]], "operations": [0],
     "slices": {"auc": {"ops": [0, 0], "events": 1, "edges": [[], [1, 0]]}}},  # an edge to itself
    {"schema": 2, "table": [["call", "f()", "a.py", 1, "1"]], "operations": [0],
     "slices": {"auc": {"ops": [0, 0], "events": 1, "edges": [[], [0, 7]]}}},  # no such kind
    {"schema": 2, "table": [["call", "f()", "a.py", 1, "1"]], "operations": [0],
     "slices": {"auc": {"ops": [0], "events": 1, "edges": [[], []]}}},  # more lists than ops
    {"schema": 2, "table": [], "operations": [], "slices": {"auc": {"ops": [], "events": 1, "site": ["a.py"]}}},
    {"schema": 3, "table": [], "operations": [], "slices": {}},
], ids=repr)
def test_documents_that_are_no_provenance_records_raise_store_error(doc):
    with pytest.raises(StoreError, match="not a provenance record"):
        ProvenanceRecord.from_json(doc)


@SETTINGS
@given(st.data())
def test_value_documents_of_a_trial_decode_or_raise(template, data):
    with fresh(template) as root:
        path = files(root)["trial"]
        doc = json.loads(path.read_text())
        name = data.draw(st.sampled_from(sorted(doc["tags"])))
        if data.draw(st.booleans()):
            doc["tags"][name]["value"] = data.draw(mutated({"v": doc["tags"][name]["value"]})).get("v")
        else:
            doc["tags"][name]["value"] = data.draw(json_values)
        trial = Trial.from_json(doc, str(path), root / ".nwtrials" / "values")
        values = outcome(lambda: trial.values)
        if isinstance(values, StoreError):
            assert str(root) in str(values)


@SETTINGS
@given(ext=st.sampled_from(["npy", "parquet"]), data=st.data())
def test_damaged_value_files_are_named_with_what_to_do(template, ext, data):
    with fresh(template) as root:
        for folder, remedy in ((root / ".nwtrials" / "values", "run the experiment"),
                               (root / "nw-baselines" / "reference" / "values", "--nw-save-baseline=reference")):
            [blob] = blob_files(folder, ext)
            original = blob.read_bytes()
            garbage = data.draw(st.binary(max_size=300) | st.integers(0, len(original) - 1).map(lambda n: original[:n]))
            damage(blob, garbage)
            if folder.parent.name == ".nwtrials":
                values = outcome(lambda: TrialStore(folder.parent).find("trial1")[0].values)
            else:
                entry = BaselineStore(root / "nw-baselines").entry("reference", TRAIN, ())
                values = outcome(entry.values)
            assert isinstance(values, BlobError), values
            assert str(blob) in str(values) and "delete it" in str(values) and remedy in str(values)
            assert blob.read_bytes() == garbage  # reading never repairs or rewrites


def test_damaged_value_files_of_every_kind_raise_blob_errors(template):
    with fresh(template) as root:
        folder = root / ".nwtrials" / "values"
        [blob] = blob_files(folder, "npy")
        original = blob.read_bytes()
        cases = [b"", b"PK\x03\x04" + original, original[:10], original[:-8],
                 original.replace(b"(50,)", b"(9999999999999,)"), original.replace(b"<f8", b"|O ")]
        for garbage in cases:
            damage(blob, garbage)
            trial = TrialStore(folder.parent).find("trial1")[0]
            with pytest.raises(BlobError, match="the file is damaged: delete it"):
                trial.values  # noqa: B018
        damage(blob, original)
        # a pickle is loaded only on request, and a damaged one says so
        [pickle_blob] = blob_files(folder, "pickle")
        damage(pickle_blob, b"\x80\x05garbage")
        trial = TrialStore(folder.parent).find("trial1")[0]
        assert isinstance(trial.values["model"], OpaqueValue)
        with pytest.raises(BlobError, match=f"{pickle_blob}: cannot load the pickled"):
            decode(trial.tags["model"]["value"], BlobStore(folder), allow_pickle=True)


def test_decoding_deeply_nested_documents_raises_store_error():
    doc: Any = 0
    for _ in range(50_000):
        doc = [doc]
    with pytest.raises(StoreError, match="nested too deeply"):
        decode(doc, None)
    doc = 0
    for _ in range(5_000):
        doc = {"__nw__": "tuple", "items": [doc]}
    with pytest.raises(StoreError):
        decode(doc, None)


# -- baselines ----------------------------------------------------------------------------------


@SETTINGS
@given(st.data())
@example(data=None)
def test_baseline_entry_and_its_values_load_or_raise_naming_the_file(template, data):
    with fresh(template) as root:
        path = files(root)["entry"]
        damage_drawn(path, data, DEEP)
        baselines = BaselineStore(root / "nw-baselines")
        entry = outcome(baselines.entry, "reference", TRAIN, ())
        if isinstance(entry, StoreError):
            assert str(path) in str(entry) and "--nw-save-baseline=reference" in str(entry)
        elif entry is not None:
            compare_inputs(entry)
            values = outcome(entry.values)
            if isinstance(values, StoreError):
                assert str(root) in str(values)
            outcome(entry.provenance)
        # the other entry is unaffected; the damaged one is listed as an entry, or reported
        assert baselines.entry("reference", PREP, ("--fast",)) is not None
        problems = baselines.problems("reference")
        assert all(problem.startswith(str(root)) for problem in problems)
        assert path in baselines.entry_files("reference") or any(p.startswith(f"{path}: ") for p in problems)
        store = TrialStore(root / ".nwtrials")
        outcome_or_reference_error(resolve, "reference", store, baselines)


@SETTINGS
@given(st.data())
@example(data=None)
def test_baseline_provenance_record_loads_or_raises_naming_the_file(template, data):
    with fresh(template) as root:
        path = files(root)["entry record"]
        damage_drawn(path, data, NUMBERS)
        entry = BaselineStore(root / "nw-baselines").entry("reference", TRAIN, ())
        record = outcome(entry.provenance)
        if isinstance(record, StoreError):
            assert str(path) in str(record) and "--nw-save-baseline=reference" in str(record)


@SETTINGS
@given(names=st.lists(st.text(st.sampled_from("abc.-_/ ") | st.characters(codec="utf-8", exclude_characters="\x00/"),
                               min_size=1, max_size=12), min_size=1, max_size=4),
       content=st.binary(max_size=64))
def test_unexpected_files_in_a_baseline_folder_never_break_its_readers(template, names, content):
    with fresh(template) as root:
        folder = root / "nw-baselines" / "reference"
        for name in names:
            path = folder / name
            if any(part in ("", ".", "..") for part in Path(name).parts) or path.exists():
                continue
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
            except OSError:
                continue  # a name the filesystem refuses (too long, or a file where a folder is wanted)
        baselines = BaselineStore(root / "nw-baselines")
        for problem in baselines.problems("reference"):
            assert problem.startswith(str(folder))
        for experiment, argv in ((TRAIN, ()), (PREP, ("--fast",)), ("experiments/other.py", ())):
            outcome(baselines.entry, "reference", experiment, argv)
        outcome_or_reference_error(resolve, "reference", TrialStore(root / ".nwtrials"), baselines)


def test_a_record_keeps_its_slices_edges_and_sites_through_json():
    record = _record()
    again = ProvenanceRecord.from_json(json.loads(json.dumps(record.to_json())))
    assert again == record
    assert again.slices["auc"].edges == ((), ((0, "mutation"), (0, "control")))
    assert again.slices["auc"].site == ("experiments/train.py", 3)
    assert again.slices["weights"].edges is None
