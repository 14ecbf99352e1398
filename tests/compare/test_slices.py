"""Diffing operation sequences: properties of `diff_operations`, the report lines, and the
three cases the report exists for, on real captures: a changed hyperparameter, two swapped
preprocessing steps, and a refactor that changes nothing.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_nwtrials.compare import slices
from pytest_nwtrials.provenance.reader import Op, Slice, normalize_code, read_operations, read_slices
from pytest_nwtrials.compare.slices import CHANGE_KINDS, SliceDiff, diff_operations, diff_slices
from pytest_nwtrials.render.slices import format_slice_diff

# ---------------------------------------------------------------------------------------------
# properties

ops = st.builds(
    Op,
    kind=st.sampled_from(["name", "literal", "call"]),
    code=st.sampled_from(["a", "b", "f(a)", "x * y", "x*y"]),
    file=st.just("train.py"),
    line=st.integers(1, 9),
    value=st.sampled_from(["1", "2", "3"]),
)
sequences = st.lists(ops, max_size=40)


def check_consistent(old: list[Op], new: list[Op], changes: tuple) -> None:
    """Every index is touched at most once, and the untouched operations are the same, in order.

    So the diff applied to `old` (drop the touched old operations, put each touched new one at
    its index) gives exactly `new`.
    """
    touched_old, touched_new = [], []
    for change in changes:
        assert change.kind in CHANGE_KINDS
        if change.old is not None:
            assert old[change.index_old] is change.old
            touched_old.append(change.index_old)
        else:
            assert change.kind == "added" and change.index_old is None
        if change.new is not None:
            assert new[change.index_new] is change.new
            touched_new.append(change.index_new)
        else:
            assert change.kind == "removed" and change.index_new is None
        if change.kind == "changed":
            assert change.old.key() != change.new.key() and change.old.kind == change.new.kind
        if change.kind == "moved":
            assert change.old.key()[:2] == change.new.key()[:2]
    assert len(set(touched_old)) == len(touched_old) and len(set(touched_new)) == len(touched_new)
    kept_old = [op.key() for i, op in enumerate(old) if i not in set(touched_old)]
    kept_new = [op.key() for j, op in enumerate(new) if j not in set(touched_new)]
    assert kept_old == kept_new


@settings(max_examples=300, deadline=None)
@given(sequences)
def test_a_sequence_has_no_diff_with_itself(seq):
    assert diff_operations(seq, seq) == ()
    moved_lines = [Op(op.kind, op.code, "other.py", op.line + 3, op.value) for op in seq]
    assert diff_operations(seq, moved_lines) == ()  # where the code is, is no part of the key


@settings(max_examples=500, deadline=None)
@given(sequences, sequences)
def test_the_diff_explains_every_difference_and_nothing_else(old, new):
    check_consistent(old, new, diff_operations(old, new))


@settings(max_examples=200, deadline=None)
@given(sequences, sequences)
def test_the_diff_stays_consistent_when_exact_alignment_gives_up(old, new):
    saved = slices.MAX_EDITS
    slices.MAX_EDITS = 1  # every region that needs more than one edit falls back to positions
    try:
        check_consistent(old, new, diff_operations(old, new))
    finally:
        slices.MAX_EDITS = saved


@settings(max_examples=500, deadline=None)
@given(sequences, st.data())
def test_first_divergence_is_the_first_index_where_keys_differ(old, data):
    new = [data.draw(ops) if data.draw(st.integers(0, 4)) == 0 else op for op in old]
    diff = SliceDiff("t", diff_operations(old, new))
    differing = [i for i, (a, b) in enumerate(zip(old, new)) if a.key() != b.key()]
    if not differing:
        assert diff.is_empty() and diff.first_divergence is None
    else:
        first = diff.first_divergence
        assert differing[0] in (first.index_old, first.index_new)
        assert not diff.is_empty()


def test_code_is_compared_by_its_syntax():
    assert normalize_code("x*y") == normalize_code("( x *  y )") == "x * y"
    assert normalize_code('"auc"') == normalize_code("'auc'")
    assert normalize_code("for") == "for"  # not an expression: spaces squeezed only


# ---------------------------------------------------------------------------------------------
# kinds of change


def seq(*specs: tuple) -> list[Op]:
    return [Op(kind, code, "train.py", line, value) for line, (kind, code, value) in enumerate(specs, 1)]


def test_a_new_value_of_the_same_operation_is_changed():
    old = seq(("literal", "0.5", "0.5"), ("name", "LR", "0.5"), ("name", "w", "1.0"))
    new = seq(("literal", "0.1", "0.1"), ("name", "LR", "0.1"), ("name", "w", "1.0"))
    changes = diff_operations(old, new)
    assert [(c.kind, c.index_old, c.index_new) for c in changes] == [("changed", 0, 0), ("changed", 1, 1)]


def test_added_and_removed_operations_keep_their_place():
    old = seq(("name", "a", "1"), ("name", "b", "2"), ("name", "c", "3"))
    new = seq(("name", "a", "1"), ("name", "c", "3"), ("call", "g(c)", "4"))
    changes = diff_operations(old, new)
    assert [(c.kind, c.index_old, c.index_new) for c in changes] == [("removed", 1, None), ("added", None, 2)]


def test_a_swap_is_a_move():
    a, b, c = ("call", "clip(X)", "1"), ("call", "center(X)", "2"), ("name", "X", "3")
    changes = diff_operations(seq(a, b, c), seq(b, a, c))
    assert [(c.kind, c.old.code, c.index_old, c.index_new) for c in changes] == [("moved", "clip(X)", 0, 1)]


def test_report_lines_name_the_first_divergence_then_the_changes_in_order():
    def setting(value: str) -> list[Op]:  # LEARNING_RATE = <value>, both on line 1
        return [Op("literal", value, "train.py", 1, value), Op("name", "LEARNING_RATE", "train.py", 1, value)]

    old = setting("0.5") + [Op("name", "a", "train.py", 3, "1"), Op("name", "b", "train.py", 4, "2")]
    new = setting("0.1") + [Op("name", "b", "train.py", 3, "2"), Op("call", "f(b)", "train.py", 4, "7")]
    lines = format_slice_diff(SliceDiff("auc", diff_operations(old, new)))
    assert lines == [
        "  first divergence: train.py:1  LEARNING_RATE = 0.5 -> 0.1",
        "  ~ train.py:1 literal: 0.5 -> 0.1",
        "  ~ train.py:1 name LEARNING_RATE: 0.5 -> 0.1",
        "  - train.py:3 name a = 1",
        "  + train.py:4 call f(b) = 7",
    ]


def test_report_lines_are_capped_and_shortened():
    old = seq(*[("name", f"v{i}", "x" * 200) for i in range(40)])
    new = seq(*[("name", f"v{i}", "y" * 200) for i in range(40)])
    lines = format_slice_diff(SliceDiff("t", diff_operations(old, new)), limit=5)
    assert len(lines) == 1 + 5 + 1 and lines[-1] == "  ... and 35 more"
    assert lines[0].startswith("  first divergence: train.py:1  v0 (name): xxx")
    assert all(len(line) < 220 for line in lines)
    assert format_slice_diff(SliceDiff("t", ())) == []


def test_moves_and_removals_read_in_order():
    a, b, c = ("call", "clip(X)", "1"), ("call", "center(X)", "2"), ("name", "X", "3")
    old, new = Slice("t", tuple(seq(a, b, c)), 1), Slice("t", tuple(seq(b, a)), 1)
    assert format_slice_diff(diff_slices(old, new)) == [
        "  reordered: `clip(X)` now runs after `center(X)`, train.py, line 1 -> line 2",
        "  <> moved train.py:2 call clip(X) (was train.py:1) = 1",
        "  - train.py:3 name X = 3",
    ]
    # a diff of bare sequences knows no partner for the step, and no op indexes are shown
    lines = format_slice_diff(SliceDiff("t", diff_operations(old.ops, new.ops)))
    assert lines[0] == "  reordered: `clip(X)` moved, train.py, line 1 -> line 2"
    assert not any(" op " in line for line in lines)


# ---------------------------------------------------------------------------------------------
# real captures

RUN_WITH_SERIALIZE = (
    "import noworkflow.now.collection.metadata as metadata\n"
    "from pytest_nwtrials.provenance.reader import serialize\n"
    "metadata.get_serializer = lambda args: serialize\n"
    "from pytest_nwtrials.capture.runner import main\n"
    "main()\n"
)


def capture(folder: Path, code: str) -> tuple[Path, str]:
    """Run `code` as train.py under noWorkflow in a child process: (database, trial id)."""
    folder.mkdir(parents=True)
    (folder / "train.py").write_text(textwrap.dedent(code), encoding="utf-8")
    spec = {"script": str(folder / "train.py"), "argv": [], "name": "train.py",
            "provenance_dir": str(folder / ".prov"), "blobs_dir": str(folder / ".blobs"),
            "result": str(folder / "result.json")}
    (folder / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, "-c", RUN_WITH_SERIALIZE, str(folder / "spec.json")],
                          cwd=folder, capture_output=True, text=True, timeout=300)
    result = json.loads((folder / "result.json").read_text())
    assert result["exit_code"] == 0 and not result["internal_error"], proc.stderr
    return folder / ".prov" / ".noworkflow" / "db.sqlite", result["trial_id"]


EXPERIMENT = """
    from pytest_nwtrials import tag

    SEED = 3
    LEARNING_RATE = 0.5
    EPOCHS = 30

    raw = [4.0, 1.0, 30.0, 2.0, SEED * 1.0]


    def clip(xs, hi):
        out = []
        for x in xs:
            out.append(min(x, hi))
        return out


    def center(xs):
        m = sum(xs) / len(xs)
        return [x - m for x in xs]


    data = raw
    data = clip(data, 10.0)
    data = center(data)
    w = 0.0
    for epoch in range(EPOCHS):
        grad = w - data[epoch % len(data)]
        w = w - LEARNING_RATE * grad
    tag("w", w)
    tag("seed", SEED)
"""


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> tuple[Path, str]:
    return capture(tmp_path_factory.mktemp("slices") / "baseline", EXPERIMENT)


def slices_of(trial: tuple[Path, str]) -> dict[str, Slice]:
    return read_slices(*trial)


def test_a_changed_hyperparameter_is_the_first_divergence_at_its_line(baseline, tmp_path):
    changed = capture(tmp_path / "changed", EXPERIMENT.replace("LEARNING_RATE = 0.5", "LEARNING_RATE = 0.1"))
    old, new = slices_of(baseline), slices_of(changed)
    diff = diff_slices(old["w"], new["w"])
    first = diff.first_divergence
    assert (first.kind, first.new.file, first.new.line, first.old.value, first.new.value) == (
        "changed", "train.py", 5, "0.5", "0.1")
    lines = format_slice_diff(diff)
    # a root cause when the slices have edges, else (named as such) the first divergence
    assert lines[0] in ("  first divergence: train.py:5  LEARNING_RATE = 0.5 -> 0.1",
                        "  root cause: train.py:5  LEARNING_RATE = 0.5 -> 0.1")
    assert "  ~ train.py:5 literal: 0.5 -> 0.1" in lines
    assert lines[-1].startswith("  ... and ")
    assert {c.kind for c in diff.changes} == {"changed"}  # same operations, other values
    assert diff_slices(old["seed"], new["seed"]).is_empty()


def test_swapped_preprocessing_steps_are_reported_as_moved(baseline, tmp_path):
    swapped = EXPERIMENT.replace(
        "data = clip(data, 10.0)\n    data = center(data)", "data = center(data)\n    data = clip(data, 10.0)")
    assert swapped != EXPERIMENT
    new = slices_of(capture(tmp_path / "swapped", swapped))
    diff = diff_slices(slices_of(baseline)["w"], new["w"])
    moved = [c for c in diff.changes if c.kind == "moved"]
    assert {c.new.code for c in moved} & {"clip(data, 10.0)", "center(data)"}
    step = next(c for c in moved if c.new.code in ("clip(data, 10.0)", "center(data)"))
    assert step.old.line != step.new.line
    lines = format_slice_diff(diff, limit=100)
    assert any(line.startswith("  <> moved train.py:") for line in lines)
    # the statements that swapped, not the ops of the functions they call, which ran elsewhere too
    assert lines[0] == "  reordered: `clip(data, 10.0)` now runs after `center(data)`, train.py, line 24 -> line 25"
    assert not any(line.startswith("  reordered:") for line in lines[1:])


REFACTORED = EXPERIMENT.replace(
    "raw = [4.0, 1.0, 30.0, 2.0, SEED * 1.0]",
    "# the raw readings, one outlier\n\n    raw = [4.0, 1.0, 30.0,\n           2.0, SEED*1.0]  # last one seeded",
).replace(
    "        grad = w - data[epoch % len(data)]",
    "        # gradient of the squared error\n\n        grad = (w\n                - data[epoch%len(data)])",
).replace('tag("seed", SEED)', "tag('seed', SEED)")


def test_a_refactor_that_keeps_every_value_and_operation_has_no_diff(baseline, tmp_path):
    """Comments, blank lines, line breaks, spacing and quotes: lines move, nothing else does."""
    refactored = capture(tmp_path / "refactored", REFACTORED)
    old, new = slices_of(baseline), slices_of(refactored)
    assert set(old) == set(new) == {"w", "seed"}
    assert [op.line for op in old["w"].ops] != [op.line for op in new["w"].ops]
    for name in old:
        assert diff_slices(old[name], new[name]).is_empty(), format_slice_diff(diff_slices(old[name], new[name]))
    assert diff_operations(read_operations(*baseline), read_operations(*refactored)) == ()
