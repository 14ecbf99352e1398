"""Provenance records kept compact: compressed, named by their content and shared by reruns,
holding what global_backward_deps needs; stores written before them still read."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import record_doc
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_nwtrials.provenance.reader import Op, Slice
from pytest_nwtrials.store.records import ProvenanceRecord, decode, encode

# tags loss twice: its slice of all taggings holds the first epoch, its last slice does not
TRAIN = """\
import numpy as np
from pytest_nwtrials import tag

rate = 0.5
weights = np.linspace(0.0, 1.0, 8) * rate
for epoch in range(2):
    loss = float(weights.sum()) / (epoch + 1)
    tag("loss", loss)
tag("weights", weights)
"""
BEFORE = Path(__file__).parent.parent / "data" / "store_before_records"  # written by the plugin before compressed records


def nwtrials(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest_nwtrials.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def in_subprocess(root: Path, code: str) -> dict:
    """What `code` (which sets `result` to a JSON document) computes over the store at `root`,
    run in a fresh process: noWorkflow's API module patches nothing here, but stays out of pytest's."""
    script = f"import json\nfrom pytest_nwtrials import noworkflow as nw\n{code}\nprint(json.dumps(result))\n"
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


DEPS = """
result = {"last": list(nw.backward_deps("loss", trial="TRIAL").values()),
          "all": list(nw.global_backward_deps("loss", trial="TRIAL").values())}
"""


def test_a_rerun_shares_its_record_and_no_database_is_kept(project):
    project.experiment("train.py", TRAIN)
    for _ in range(2):
        project.run("--nw-capture=fine").assert_outcomes(passed=1)
    store = project.root / ".nwtrials"
    first, second = project.trials()
    assert first["record"] == second["record"] and first["record"].endswith(".json.gz")
    assert [p.name for p in (store / "records").iterdir()] == [first["record"]]  # one copy for both
    assert first["provenance"] == second["provenance"] == "" and not (store / "provenance").exists()
    doc = record_doc(store, second)
    assert doc["slices"]["loss"]["events"] == 2 and "loss" in doc["unions"] and "weights" not in doc["unions"]
    shown = nwtrials("show", "trial2", cwd=project.root)
    assert f"  provenance: records/{first['record']}" in shown.stdout


def test_global_backward_deps_reads_every_tagging_from_the_record(project):
    project.ini("nw_keep_database = true")
    project.experiment("train.py", TRAIN)
    project.run("--nw-capture=fine").assert_outcomes(passed=1)
    [trial] = project.trials()
    store = project.root / ".nwtrials"
    assert trial["record"] and (store / trial["provenance"]).is_file()
    # what noWorkflow's database gives for every tagging, read from the database itself
    from_database = in_subprocess(project.root, f"""
from pytest_nwtrials.provenance.reader import read_slices
from pytest_nwtrials.store.archive import opened
from pathlib import Path
with opened(Path(".nwtrials"), "{trial['provenance']}") as db:
    ops = read_slices(db, "{trial['id']}", ["loss"], union=True)["loss"].ops
result = list(nw.ops_dict(ops).values())
""")
    shutil.rmtree(store / "provenance")  # the record alone answers
    deps = in_subprocess(project.root, DEPS.replace("TRIAL", "trial1"))
    assert deps["all"] == from_database
    assert len(deps["all"]) > len(deps["last"]) and ["epoch", "0"] in deps["all"] and ["epoch", "0"] not in deps["last"]


def before_records(project) -> Path:
    """The project of the store in tests/data, written before records were compressed; its store."""
    project.experiment("train.py", TRAIN)
    store = project.root / ".nwtrials"
    shutil.copytree(BEFORE, store, ignore=shutil.ignore_patterns("README.md"))
    return store


def files_of(store: Path) -> dict[str, bytes]:
    return {p.relative_to(store).as_posix(): p.read_bytes() for p in store.rglob("*") if p.is_file()}


def test_a_store_written_before_compressed_records_still_reads(project):
    store = before_records(project)
    written = files_of(store)
    first, second = project.trials()
    assert "record" not in second and second["provenance"]  # as the plugin wrote them then
    shown = nwtrials("show", "trial2", cwd=project.root)
    assert shown.returncode == 0 and f"  provenance: {second['provenance']}" in shown.stdout
    deps = in_subprocess(project.root, DEPS.replace("TRIAL", "trial2"))
    assert ["epoch", "0"] in deps["all"] and ["epoch", "0"] not in deps["last"]  # from its database
    diff = nwtrials("diff", "trial1", "trial2", "--ops", cwd=project.root)
    assert diff.returncode == 0 and "trial2 matches trial1" in diff.stdout

    project.experiment("train.py", TRAIN.replace("rate = 0.5", "rate = 0.6"))
    result = project.run("--nw-baseline=trial2", "--nw-capture=fine")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Why it changed:*", "*root cause: train.py:4  rate = 0.5 -> 0.6*"])  # from trial2's record
    assert {k: v for k, v in files_of(store).items() if k in written} == written  # nothing rewritten
    third = project.trials()[-1]
    assert third["record"] and third["provenance"] == ""

    done = nwtrials("gc", "--keep", "1", cwd=project.root)
    assert done.returncode == 0, done.stderr
    left = sorted(files_of(store))
    assert not [name for name in left if name.startswith(("provenance/", f"records/{first['id']}",
                                                           f"records/{second['id']}"))]
    assert f"records/{third['record']}" in left


# -- the compressed record, as a pure function ------------------------------------------------

texts = st.text(max_size=12)
ops = st.lists(st.builds(Op, st.sampled_from(["name", "call", "literal"]), texts, st.just("e.py"),
                         st.integers(0, 99), texts), min_size=1, max_size=12)


@st.composite
def records(draw) -> ProvenanceRecord:
    sequence = tuple(draw(ops))

    def slices(tags):
        found = {}
        for tag in tags:
            picked = tuple(sorted(draw(st.sets(st.integers(0, len(sequence) - 1)))))
            edges = tuple(tuple((j, "data") for j in range(i) if draw(st.booleans())) for i in range(len(picked)))
            found[tag] = Slice(tag, tuple(sequence[i] for i in picked), draw(st.integers(1, 5)),
                               draw(st.integers(0, 3)), draw(st.one_of(st.none(), st.just(edges))),
                               draw(st.one_of(st.none(), st.tuples(texts, st.integers(0, 99)))))
        return found

    tags = draw(st.lists(st.sampled_from(["auc", "loss", "w"]), unique=True))
    sources = draw(st.dictionaries(st.sampled_from(["e.py", "train.ipynb#cell2"]) | st.text(max_size=8),
                                   st.text(max_size=40), max_size=3))
    return ProvenanceRecord(sequence, slices(tags), slices(draw(st.lists(st.sampled_from(tags), unique=True))
                                                           if tags else []), sources)


@settings(max_examples=200, deadline=None)
@given(records())
def test_a_compressed_record_reads_back_as_written_and_its_bytes_depend_on_it_alone(record):
    data = encode(record.to_json())
    assert ProvenanceRecord.from_json(decode(data)) == record
    assert encode(json.loads(json.dumps(record.to_json()))) == data  # same document, same name
    assert data[:2] == b"\x1f\x8b" and gzip.decompress(data).startswith(b"{")


def test_a_record_without_sources_reads_as_one_with_none_and_a_damaged_one_is_refused_naming_its_file(tmp_path):
    from pytest_nwtrials.errors import StoreError
    from pytest_nwtrials.store.records import load_record

    record = ProvenanceRecord((Op("literal", "0.1", "e.py", 2, "0.1"),), {}, sources={"e.py": "x = 1\nrate = 0.1\n"})
    doc = record.to_json()
    assert doc["schema"] == 2 and doc["sources"] == {"e.py": "x = 1\nrate = 0.1\n"}  # no new schema
    assert "sources" not in ProvenanceRecord(record.operations, {}).to_json()  # as records written before it
    assert ProvenanceRecord.from_json({k: v for k, v in doc.items() if k != "sources"}).sources == {}
    path = tmp_path / ("cd" * 32 + ".json.gz")
    for damage, said in [(["e.py"], "'sources' is not an object of file names to code (list)"),
                         ({"e.py": 3}, "'sources' of 'e.py' is not text (int)"),
                         ({"e.py": None}, "'sources' of 'e.py' is not text (NoneType)")]:
        path.write_bytes(encode({**doc, "sources": damage}))
        with pytest.raises(StoreError) as raised:
            load_record(path, "delete it")
        assert str(raised.value) == f"{path}: not a provenance record (TypeError: {said}); delete it"


def test_a_damaged_compressed_record_names_its_file_and_what_to_do(project):
    project.experiment("train.py", TRAIN)
    project.run("--nw-capture=fine").assert_outcomes(passed=1)
    [trial] = project.trials()
    path = project.root / ".nwtrials" / "records" / trial["record"]
    path.write_bytes(path.read_bytes()[:40])
    shown = in_subprocess(project.root, """
try:
    nw.backward_deps("loss", trial="trial1")
    result = ""
except Exception as exc:
    result = f"{type(exc).__name__}: {exc}"
""")
    assert shown.startswith(f"StoreError: {path}: cannot be read as a compressed provenance record")
    assert "delete it: trial1 keeps its values, without its operations" in shown
    assert os.path.getsize(path) == 40  # reported, never rewritten behind the user's back


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """The bytes of a compressed record cut short, with a byte changed, of another document
    (compressed), or not compressed at all."""
    how = draw(st.sampled_from(["truncate", "flip", "document", "plain"]))
    if how == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    if how == "flip":
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
    if how == "document":
        doc = draw(st.recursive(st.none() | st.integers() | st.text(max_size=6),
                                lambda children: st.lists(children, max_size=3)
                                | st.dictionaries(st.sampled_from(["schema", "table", "operations", "slices",
                                                                   "unions", "ops", "events", "sources"]), children, max_size=4),
                                max_leaves=12))
        return gzip.compress(json.dumps(doc).encode())
    return draw(st.binary(max_size=200))


@settings(max_examples=150, deadline=None)
@given(records(), st.data())
def test_a_damaged_compressed_record_reads_back_or_raises_naming_its_file(tmp_path_factory, record, data):
    from pytest_nwtrials.errors import StoreError
    from pytest_nwtrials.store.records import load_record

    path = tmp_path_factory.mktemp("records") / ("ab" * 32 + ".json.gz")
    path.write_bytes(data.draw(damaged(encode(record.to_json()))))
    try:
        loaded = load_record(path, "delete it")
    except StoreError as exc:
        assert str(exc).startswith(f"{path}: ") and str(exc).endswith("; delete it")
    else:
        assert isinstance(loaded, ProvenanceRecord)


def test_without_the_database_the_store_holds_no_copy_of_the_environment(project, monkeypatch):
    monkeypatch.setenv("HARMLESS_SETTING", "plain-7d3e1f")  # not a secret: noWorkflow's database would keep it
    project.experiment("train.py", TRAIN)
    project.run("--nw-capture=fine").assert_outcomes(passed=1)
    stored = b"".join(gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes()
                      for p in (project.root / ".nwtrials").rglob("*") if p.is_file())
    assert b'"loss"' in stored and b"plain-7d3e1f" not in stored
