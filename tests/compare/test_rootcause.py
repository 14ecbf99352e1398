"""The root cause of a slice diff, on hand-built slices with edges: one test per pattern (a
hyperparameter passed to an in-place fit, a seed, a flag that decides a step, swapped steps, a
call that returns another value with the same arguments, a changed data file, a record without
edges, a missing tag), and properties of `rootcause.explain` on arbitrary slices and edges."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_nwtrials.compare.explain import InputChange, ProvenanceRecord, why_lines
from pytest_nwtrials.provenance.reader import Op, Slice
from pytest_nwtrials.compare.missing_tags import missing_tag
from pytest_nwtrials.compare.rootcause import Verdict, explain
from pytest_nwtrials.compare.slices import OpKind, diff_slices
from pytest_nwtrials.render.slices import format_missing_tag, format_slice_diff
from pytest_nwtrials.store.trial_store import StoreError

KINDS = {"d": "data", "m": "mutation", "s": "state", "c": "control"}


def build(tag: str, *specs: tuple, file: str = "train.py", site: tuple[str, int] | None = None) -> Slice:
    """A slice from (line, kind, code, value, "2d 3m" edges) specs, in order."""
    ops, edges = [], []
    for line, kind, code, value, deps in specs:
        ops.append(Op(kind, code, file, line, value))
        edges.append(tuple((int(d[:-1]), KINDS[d[-1]]) for d in deps.split()))
    return Slice(tag, tuple(ops), 1, 0, tuple(edges), site)


def report(old: Slice, new: Slice, inputs=()) -> list[str]:
    return format_slice_diff(diff_slices(old, new), limit=40, inputs=inputs)


def fitted(lr: str, *, mutation: bool = True) -> Slice:
    """LR = <lr>; model = Est(); model.fit(X, y, LR); pred = model.predict(X); auc = score(pred)"""
    digest = {"0.5": "aa", "0.1": "bb"}[lr]
    return build(
        "auc",
        (2, "literal", lr, lr, ""),
        (2, "name", "LR", lr, "0d"),
        (4, "call", "Est()", "Est()", ""),
        (4, "name", "model", "Est()", "2d"),
        (5, "name", "LR", lr, "1d"),
        (5, "call", "model.fit(X, y, LR)", f"Est(digest={digest})", "3d 4d"),
        (6, "call", "model.predict(X)", f"ndarray(digest={digest})", "3d 5m" if mutation else "3d"),
        (7, "call", "score(pred)", {"aa": "0.9", "bb": "0.7"}[digest], "6d"),
    )


def test_a_hyperparameter_of_an_in_place_fit_is_the_root_cause():
    old, new = fitted("0.5"), fitted("0.1")
    explanation = explain(old, new, diff_slices(old, new).changes)
    assert explanation.verdict is Verdict.CAUSE and explanation.change.new.code == "0.1"
    assert explanation.path[0] == 0 and explanation.path[-1] == len(new.ops) - 1
    lines = report(old, new)
    assert lines[:4] == [
        "  root cause: train.py:2  LR = 0.5 -> 0.1",
        "    -> train.py:5  model.fit(X, y, LR)",
        "    -> train.py:6  model.predict(X)  (via mutation)",
        "    -> train.py:7  score(pred)",
    ]


def test_without_the_mutation_edge_the_predict_call_is_not_called_a_cause():
    old, new = (Slice("auc", s.ops[6:], 1, 0, ((), ((0, "data"),)), None) for s in (fitted("0.5"), fitted("0.1")))
    old = Slice("auc", (Op("name", "model", "train.py", 4, "Est()"), *old.ops), 1, 0,
                ((), ((0, "data"),), ((1, "data"),)))
    new = Slice("auc", (Op("name", "model", "train.py", 4, "Est()"), *new.ops), 1, 0,
                ((), ((0, "data"),), ((1, "data"),)))
    lines = report(old, new)
    assert lines[0] == ("  first divergence: train.py:6  `model.predict(X)` returned a different value with the "
                        "same arguments: it reads state the capture does not see")
    assert not any("root cause" in line for line in lines)


def test_a_changed_argument_is_shown_in_the_call_that_takes_it():
    def clipped(hi: str) -> Slice:
        return build("w", (24, "name", "data", "[4, 30]", ""), (24, "literal", hi, hi, ""),
                     (24, "call", f"clip(data, {hi})", f"[4, {hi}]", "0d 1d"), (25, "call", "center(data)", hi, "2d"))
    assert report(clipped("10.0"), clipped("5.0"))[:2] == [
        "  root cause: train.py:24  literal 10.0 -> 5.0 in clip(data, 5.0)", "    -> train.py:25  center(data)"]


def seeded(seed: str, draw: str) -> Slice:
    """SEED = <seed>; np.random.seed(SEED); x = np.random.normal(size=50); tag("m", x.mean())"""
    return build(
        "m",
        (3, "literal", seed, seed, ""),
        (3, "name", "SEED", seed, "0d"),
        (4, "name", "SEED", seed, "1d"),
        (4, "call", "np.random.seed(SEED)", "None", "2d"),
        (5, "literal", "50", "50", ""),
        (5, "call", "np.random.normal(size=50)", f"ndarray(digest={draw})", "4d 3s"),
        (5, "name", "x", f"ndarray(digest={draw})", "5d"),
        (6, "call", "x.mean()", draw, "6d"),
    )


def test_a_seed_reaches_the_draw_through_hidden_state():
    old, new = seeded("0", "11"), seeded("1", "22")
    lines = report(old, new)
    assert lines[:3] == [
        "  root cause: train.py:3  SEED = 0 -> 1",
        "    -> train.py:4  np.random.seed(SEED)",  # unchanged (it returns None), yet the way
        "    -> train.py:5  np.random.normal(size=50)  (via hidden state)",
    ]
    assert lines[3] == "    -> train.py:6  x.mean()"


def test_a_draw_that_changed_with_no_seed_change_is_state_the_capture_does_not_see():
    old, new = seeded("0", "11"), seeded("0", "22")
    lines = report(old, new)
    assert lines[0].startswith("  first divergence: train.py:5  `np.random.normal(size=50)` returned a different "
                               "value with the same arguments")
    assert lines[0].endswith(": it reads state the capture does not see")
    library = InputChange("library", "numpy", "1.26.0", "2.0.0")
    assert report(old, new, [library])[1] == "    changed inputs that may explain it: library numpy"
    truncated = Slice("m", new.ops, 1, 40, new.edges)
    assert report(old, truncated)[1] == "    (the slice leaves out its 40 earliest operations, where the cause may be)"


def flagged(flag: str) -> Slice:
    """normalize = <flag>; if normalize: X = scale(X); model = fit(X)"""
    common = [(2, "literal", flag, flag, ""), (2, "name", "normalize", flag, "0d"), (3, "name", "normalize", flag, "1d")]
    if flag == "True":
        return build("model", *common,
                     (4, "name", "X", "X0", ""),
                     (4, "call", "scale(X)", "X1", "3d 2c"),
                     (4, "name", "X", "X1", "4d 2c"),
                     (5, "name", "X", "X1", "5d 2c"),
                     (5, "call", "fit(X)", "M1", "6d"))
    return build("model", *common, (5, "name", "X", "X0", "2c"), (5, "call", "fit(X)", "M0", "3d"))


def test_a_flag_that_decides_a_step_is_the_root_cause_not_the_step():
    old, new = flagged("True"), flagged("False")
    lines = report(old, new)
    assert lines[0] == "  root cause: train.py:2  normalize = True -> False"
    assert lines[1:3] == ["    -> train.py:3  normalize", "    -> train.py:5  fit(X)  (via control flow)"]
    assert "  - train.py:4 call scale(X) = X1" in lines
    assert not any("True (literal) removed" in line for line in lines)


def test_a_step_removed_by_the_user_is_named_as_the_statement_that_no_longer_runs():
    old = build("y", (1, "name", "x", "1", ""), (2, "name", "x", "1", "0d"), (2, "call", "double(x)", "2", "1d"),
                (3, "call", "f(x)", "5", "0d 2d"))
    new = build("y", (1, "name", "x", "1", ""), (3, "call", "f(x)", "4", "0d"))
    lines = report(old, new)
    assert lines[0] == "  root cause: train.py:2  double(x) (call) no longer runs (it gave 2)"
    assert lines[1:3] == ["    in the baseline it led to the tag through:", "    -> train.py:3  f(x)"]


def pipeline(order: tuple[str, str], file: str) -> Slice:
    lines = {"PCA(n_components=3).fit_transform(X)": 8, "fit_resample(X, y)": 10}
    steps = [(lines[code] if order[0] == "PCA(n_components=3).fit_transform(X)" else 18 - lines[code],
              "call", code, f"v{k}", "0d") for k, code in enumerate(order)]
    return build("auc", (3, "name", "X", "X", ""), *steps, (12, "call", "score(X)", "".join(order)[:9], "1d 2d"),
                 file=file)


def test_swapped_steps_are_named_as_a_reorder_with_their_cells():
    first = ("PCA(n_components=3).fit_transform(X)", "fit_resample(X, y)")
    old, new = pipeline(first, "train.ipynb#cell8"), pipeline(first[::-1], "train.ipynb#cell8")
    lines = report(old, new)
    assert lines[0] == ("  reordered: `PCA(n_components=3).fit_transform(X)` now runs after `fit_resample(X, y)`, "
                        "train.ipynb, cell 8, line 8 -> line 10")
    assert not any("moved from op" in line or "literal) moved" in line for line in lines)
    assert any(line.startswith("  <> moved train.ipynb, cell 8, line 10 call PCA") for line in lines)


def test_a_changed_data_file_named_in_the_slice_is_the_root_cause():
    def read(digest: str) -> Slice:
        return build("rows", (2, "literal", "'data.csv'", "'data.csv'", ""), (2, "name", "path", "'data.csv'", "0d"),
                     (3, "name", "path", "'data.csv'", "1d"), (3, "call", "pd.read_csv(path)", f"DataFrame({digest})", "2d"),
                     (4, "call", "len(df)", digest, "3d"))
    changed = InputChange("input file", "experiments/data.csv", "a" * 40, "b" * 40)
    lines = report(read("1"), read("2"), [changed])
    assert lines[0] == ("  root cause: input file experiments/data.csv changed (sha1 aaaaaaaaaa -> bbbbbbbbbb), "
                        "read at train.py:3  `pd.read_csv(path)`")
    other = InputChange("input file", "experiments/other.csv", "a" * 40, "b" * 40)
    assert report(read("1"), read("2"), [other])[0].startswith("  first divergence: ")


def test_independent_roots_are_each_named_and_a_file_only_explains_what_reads_it():
    def trial(digest: str, draw: str) -> Slice:
        return build("score", (2, "literal", "'data.csv'", "'data.csv'", ""),
                     (2, "call", "pd.read_csv('data.csv')", f"DataFrame({digest})", "0d"),
                     (3, "literal", "3", "3", ""), (3, "call", "np.random.normal(size=3)", draw, "2d"),
                     (4, "add", "df.x.sum() + noise.sum()", digest + draw, "1d 3d"))
    changed = InputChange("input file", "data.csv", "a" * 40, "b" * 40)
    lines = report(trial("1", "7"), trial("2", "8"), [changed])
    assert lines[:4] == [
        "  root cause: input file data.csv changed (sha1 aaaaaaaaaa -> bbbbbbbbbb), read at train.py:2  "
        "`pd.read_csv('data.csv')`",
        "    -> train.py:4  df.x.sum() + noise.sum()",
        "  also: train.py:3  `np.random.normal(size=3)` returned a different value with the same arguments: "
        "it reads state the capture does not see",
        "  ~ train.py:2 call pd.read_csv('data.csv'): DataFrame(1) -> DataFrame(2)",
    ]


def test_without_edges_the_first_divergence_is_not_called_a_cause():
    old, new = fitted("0.5"), fitted("0.1")
    bare_old, bare_new = Slice("auc", old.ops, 1), Slice("auc", new.ops, 1)
    lines = report(bare_old, bare_new)
    assert lines[0] == "  first divergence: train.py:2  LR = 0.5 -> 0.1"
    assert not any("root cause" in line or "predates" in line for line in lines)
    stale = report(bare_old, new)  # a baseline saved before edges were recorded
    assert stale[0] == "  first divergence: train.py:2  LR = 0.5 -> 0.1"
    assert stale[1].startswith("  (the baseline's record predates dependency edges") and "save the baseline again" in stale[1]
    assert report(old, bare_new)[1].startswith("  (this trial's record has no dependency edges")


def test_the_same_root_is_told_once_for_every_tag_it_explains():
    old, new = fitted("0.5"), fitted("0.1")
    lines = why_lines([], [diff_slices(old, new), diff_slices(Slice("pred", old.ops[:7], 1, 0, old.edges[:7]),
                                                              Slice("pred", new.ops[:7], 1, 0, new.edges[:7]))])
    assert lines[0] == "  in the provenance of auc (and pred):"
    assert sum("root cause" in line for line in lines) == 1


def test_a_missing_tag_points_at_the_baseline_site_and_the_condition_that_skipped_it():
    cell = "train.ipynb#cell8"
    old = build("summary", (2, "literal", "True", "True", ""), (2, "name", "verbose", "True", "0d"),
                (3, "name", "verbose", "True", "1d"), (4, "call", "describe(df)", "{...}", "2c"),
                file=cell, site=(cell, 4))
    now = [Op("literal", "False", cell, 2, "False"), Op("name", "verbose", cell, 2, "False"),
           Op("name", "verbose", cell, 3, "False")]
    assert format_missing_tag(missing_tag("summary", old, now)) == [
        "  summary: missing in the new trial (tagged at train.ipynb, cell 8, line 4 in the baseline)",
        "    the tagging ran under `verbose` (train.ipynb, cell 8, line 3), True in the baseline; "
        "it is False in the new trial",
        "    first divergence: train.ipynb, cell 8, line 2  verbose = True -> False",
    ]
    assert format_missing_tag(missing_tag("summary", old, now[:1]))[1].endswith("the new trial did not evaluate it")
    without_edges = Slice("summary", old.ops[:-1], 1)  # the tagged value's op stands for the site
    assert format_missing_tag(missing_tag("summary", without_edges, now)) == [
        "  summary: missing in the new trial (tagged at train.ipynb, cell 8, line 3 in the baseline)"]
    assert format_missing_tag(missing_tag("summary", Slice("summary", (), 1), now)) == []


def test_edges_and_site_round_trip_through_the_record_and_schema_1_is_still_read():
    old = fitted("0.5")
    record = ProvenanceRecord(old.ops, {"auc": Slice("auc", old.ops, 1, 0, old.edges, ("train.py", 7))})
    doc = record.to_json()
    assert doc["schema"] == 2 and doc["slices"]["auc"]["edges"][6] == [3, 0, 5, 1]
    assert ProvenanceRecord.from_json(doc) == record
    doc["schema"] = 1
    del doc["slices"]["auc"]["edges"], doc["slices"]["auc"]["site"]
    assert ProvenanceRecord.from_json(doc).slices["auc"] == Slice("auc", old.ops, 1)


def two_ops(**fields) -> dict:
    table = [["name", "a", "a.py", 1, "1"], ["call", "f(a)", "a.py", 2, "2"]]
    return {"schema": 2, "table": table, "operations": [0, 1],
            "slices": {"auc": {"ops": [0, 1], "events": 1, **fields}}}


@pytest.mark.parametrize("fields", [
    {"edges": [[], [0]]}, {"edges": [[], [1, 0]]}, {"edges": [[0, 0], []]}, {"edges": [[], [0, 4]]},
    {"edges": [[], [-1, 0]]}, {"edges": [[]]}, {"edges": {}}, {"edges": [[], [0.0, 0]]}, {"edges": [[], [True, 0]]},
    {"site": ["a.py"]}, {"site": [1, 2]}, {"site": ["a.py", "2"]}, {"site": "a.py:2"},
], ids=repr)
def test_malformed_edges_and_sites_are_no_provenance_record(fields):
    assert ProvenanceRecord.from_json(two_ops(edges=[[], [0, 3]], site=["a.py", 2])).slices["auc"].edges == \
        ((), ((0, "control"),))
    with pytest.raises(StoreError, match="not a provenance record"):
        ProvenanceRecord.from_json(two_ops(**fields))
    with pytest.raises(StoreError, match="unknown provenance schema 3"):
        ProvenanceRecord.from_json(dict(two_ops(), schema=3))


# ---------------------------------------------------------------------------------------------
# properties

op_strategy = st.builds(Op, kind=st.sampled_from(["name", "literal", "call"]), code=st.sampled_from(["a", "b", "f(a)"]),
                        file=st.sampled_from(["train.py", "nb.ipynb#cell2"]), line=st.integers(1, 5),
                        value=st.sampled_from(["1", "2", "3"]))


@st.composite
def slices(draw, *, wild: bool) -> Slice:
    ops = draw(st.lists(op_strategy, min_size=1, max_size=25))
    kinds = st.sampled_from(["data", "mutation", "state", "control"] + (["other"] if wild else []))
    edges = []
    for position in range(len(ops)):
        index = st.integers(-3, len(ops) + 3) if wild else st.integers(0, max(position - 1, 0))
        deps = draw(st.lists(st.tuples(index, kinds), max_size=4)) if wild or position else []
        edges.append(tuple(deps))
    if wild and draw(st.booleans()):
        edges = edges[: draw(st.integers(0, len(edges)))]
    return Slice("t", tuple(ops), 1, 0, tuple(edges), ("train.py", 3))


@settings(max_examples=400, deadline=None)
@given(slices(wild=False), slices(wild=False))
def test_the_root_is_a_changed_op_and_the_chain_runs_from_it_to_the_tag(old, new):
    changes = diff_slices(old, new).changes
    explanation = explain(old, new, changes)
    if not changes:
        assert explanation is None and format_slice_diff(diff_slices(old, new)) == []
        return
    assert explanation is not None
    if explanation.change is not None:
        assert explanation.change in changes and explanation.change.kind != "moved"
        if explanation.verdict is not Verdict.DIVERGENCE:  # its own recorded inputs did not change
            root = explanation.change
            touched_old = {c.index_old for c in changes} - {None}
            touched_new = {c.index_new for c in changes} - {None}
            assert not {d for d, _ in old.edges[root.index_old]} & touched_old if root.old else True
            assert not {d for d, _ in new.edges[root.index_new]} & touched_new if root.new else True
    if explanation.path:
        walked = old if explanation.chain_in_baseline else new
        start = explanation.change.index_old if explanation.chain_in_baseline else explanation.change.index_new
        assert explanation.path[0] == start and explanation.path[-1] == len(walked.ops) - 1
        for before, after in zip(explanation.path, explanation.path[1:]):
            assert before in {d for d, _kind in walked.edges[after]}
    assert format_slice_diff(diff_slices(old, new))  # a diff always has a headline


@settings(max_examples=400, deadline=None)
@given(slices(wild=True), slices(wild=True), st.data())
def test_arbitrary_edges_never_raise(old, new, data):
    changes = diff_slices(old, new).changes
    format_slice_diff(diff_slices(old, new), inputs=[InputChange("input file", "a", "1", "2")])
    explain(old, new, changes[::-1])  # even changes out of order
    missing_tag("t", old, data.draw(st.lists(op_strategy, max_size=5)))


def test_operation_change_kinds_keep_their_words():
    """The kind of an operation change is printed in slice diffs (`moved`, `added`, ...)."""
    assert {kind.name: kind.value for kind in OpKind} == {
        "CHANGED": "changed", "ADDED": "added", "REMOVED": "removed", "MOVED": "moved"}
    old = build("t", (1, "literal", "3", "3", ""), (2, "call", "f(a)", "1", "0d"), (3, "name", "b", "2", "1d"))
    new = build("t", (1, "literal", "4", "4", ""), (3, "name", "b", "2", ""), (2, "call", "f(a)", "1", "0d"),
                (4, "call", "g()", "5", ""))
    kinds = {change.kind for change in diff_slices(old, new).changes}
    assert kinds and all(type(kind) is OpKind for kind in kinds)
