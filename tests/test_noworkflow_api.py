"""noWorkflow's notebook API over the store (`pytest_nwtrials.noworkflow`), function by function.

The store is recorded once per module by real pytest runs: a small scikit-learn experiment run
twice with other tags (pca_components 3 -> 5, trees 10 -> 20), and an experiment that calls
`backward_deps` and `store_operations` while it runs, under fine capture and without capture.
"""
from __future__ import annotations

import html
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
nbformat = pytest.importorskip("nbformat")
from nbformat.v4 import new_code_cell, new_notebook  # noqa: E402

FRAUD = """\
from sklearn.datasets import make_classification
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

X, y = make_classification(n_samples=200, n_features=8, random_state=0)
pca_components = now_tag_variable('pca_components', {components})
X_pca = PCA(n_components=pca_components).fit_transform(X)
X_train, X_test, y_train, y_test = train_test_split(X_pca, y, test_size=0.25, random_state=0)
trees = now_tag_variable('trees', {trees})
model = now_tag_variable('model', RandomForestClassifier(n_estimators=trees, random_state=0))
model.fit(X_train, y_train)
roc_metric = now_tag_variable('roc_metric', roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]))
label = now_tag_variable('label', 'forest')

from pytest_nwtrials.noworkflow import backward_deps
try:
    backward_deps('roc_metric')
except LookupError as exc:  # a script's operations are stored when it ends
    live_error = now_tag_variable('live_error', str(exc))
"""

# a notebook: noWorkflow stores a notebook's operations as its cells run, a script's at its end
LIVE = ["""\
import builtins
from pytest_nwtrials.noworkflow import backward_deps, resume_trials, store_operations

total = now_tag_variable('total', sum([1, 2, 3]) * 2)""", """\
try:
    deps = backward_deps('total')
except LookupError as exc:
    deps = {0: ('error', str(exc))}
running = getattr(builtins, '__noworkflow__', None)
store_operations(running.trial_id if running else None, deps)""", """\
listed = now_tag_variable('listed', list(resume_trials()))"""]


def _pytest(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """trial1 fraud (3, 10), trial2 live, trial3 fraud (5, 20), trial4 live without capture."""
    root = tmp_path_factory.mktemp("nwapi")
    (root / "experiments").mkdir()
    (root / "pytest.ini").write_text("[pytest]\nnw_experiments =\n    experiments/*.py\n    experiments/*.ipynb\n")
    fraud, live = root / "experiments" / "fraud.py", root / "experiments" / "live.ipynb"
    fraud.write_text(FRAUD.format(components=3, trees=10))
    nbformat.write(new_notebook(cells=[new_code_cell(source) for source in LIVE]), live)
    _pytest(root)
    fraud.write_text(FRAUD.format(components=5, trees=20))
    _pytest(root, "experiments/fraud.py")
    _pytest(root, "--nw-capture=off", "experiments/live.ipynb")
    return root


@pytest.fixture
def nw():
    from pytest_nwtrials import noworkflow

    return noworkflow


def ids(root: Path) -> list[str]:
    from pytest_nwtrials import list_trials

    return list(list_trials(store=root)["id"])


def test_resume_trials_lists_the_ids_oldest_first(root, nw, monkeypatch):
    monkeypatch.chdir(root / "experiments")  # the store is found at or above the working directory
    listed = nw.resume_trials()
    assert listed == ids(root) and len(listed) == 4 and isinstance(listed, list)
    assert nw.resume_trials("experiments/fraud.py") == [ids(root)[0], ids(root)[2]]
    html = listed._repr_html_()
    assert "trial3" in html and "experiments/live.ipynb" in html and ids(root)[3][-5:] in html


def test_trial_intersection_diff_puts_shared_tags_and_operations_side_by_side(root, nw):
    first, _, third, _ = ids(root)
    frame = nw.trial_intersection_diff(first, third, store=root)
    assert list(frame.columns) == ["key", first[-5:], third[-5:], "source", "changed"]
    rows = {(key, source): (a, b, changed) for key, a, b, source, changed in frame.itertuples(index=False)}
    assert rows[("pca_components", "tag")] == (3, 5, True)
    assert rows[("trees", "tag")] == (10, 20, True)
    assert rows[("label", "tag")] == ("'forest'", "'forest'", False)
    assert rows[("RandomForestClassifier(n_estimators=trees, random_state=0)", "operation")] == (
        "RandomForestClassifier(n_estimators=10, random_state=0)",
        "RandomForestClassifier(n_estimators=20, random_state=0)", True)
    assert rows[("PCA(n_components=pca_components)", "operation")][:2] == ("PCA(n_components=3)", "PCA(n_components=5)")
    assert not {key for key, source in rows if source == "operation"} & {"PCA", "RandomForestClassifier", "0.25"}
    tag_rows = list(frame[frame["source"] == "tag"]["key"])
    assert tag_rows == ["label", "live_error", "model", "pca_components", "roc_metric", "trees"]  # the tags come first


def test_trials_are_named_by_id_name_prefix_or_short_id(root, nw):
    first, _, third, _ = ids(root)
    expected = nw.trial_intersection_diff(first, third, store=root)
    for a, b in (("trial1", "trial3"), (first[:8], third[:8]), (first[-5:], third[-5:])):
        assert nw.trial_intersection_diff(a, b, store=root).equals(expected)


def test_trial_diff_is_the_comparison_engine_shown_whole(root, nw):
    from pytest_nwtrials import load_trial
    from pytest_nwtrials.noworkflow import full_text

    first, _, third, _ = ids(root)
    diff = nw.trial_diff(first, third, store=root)
    assert diff.tags == ("model", "pca_components", "roc_metric", "trees")
    assert repr(diff) == diff.text(outputs=True) and repr(diff).startswith("trial3 differs from trial1")
    assert "in the provenance of pca_components (and roc_metric)" in repr(diff)
    html = diff._repr_html_()
    model = load_trial("trial1", store=root / ".nwtrials").values["model"]
    assert full_text(model) == "RandomForestClassifier(n_estimators=10, random_state=0)"  # the model as itself
    assert full_text(model) in html.replace("&lt;", "<").replace("&gt;", ">")
    old, new = nw.trial_diff(first, third, raw=True, store=root)
    assert old[0][0] == new[0][0] == "live_error"  # key 0: the last operation
    assert ("label", "'forest'") in old.values()
    assert list(old) == sorted(old, reverse=True)
    assert ("pca_components", "3") in old.values() and ("pca_components", "5") in new.values()


def test_var_tag_values_has_noworkflows_columns_and_whole_values(root, nw):
    first, _, third, _ = ids(root)
    frame = nw.var_tag_values("pca_components", store=root)
    assert list(frame.columns)[:4] == ["trial_id", "short_trial_id", "tag", "value"]
    assert frame[["trial_id", "short_trial_id", "tag", "value"]].values.tolist() == [
        [first, first[-5:], "pca_components", 3], [third, third[-5:], "pca_components", 5]]
    models = nw.var_tag_values("model", store=root)
    assert all("RandomForestClassifier" in text and not text.endswith("...") for text in models["value"])
    shown = html.unescape(models._repr_html_())
    assert all(len(text) > 50 and text in shown and text in repr(models) for text in models["value"])  # whole


def test_var_tag_plot_draws_one_bar_per_trial(root, nw):
    from pytest_nwtrials import load_trial

    figure = nw.var_tag_plot("roc_metric", store=root)
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [ids(root)[0][-5:], ids(root)[2][-5:]]
    assert [p.get_height() for p in ax.patches] == [load_trial(n, store=root / ".nwtrials").values["roc_metric"]
                                                    for n in ("trial1", "trial3")]
    assert ax.get_title() == "roc_metric values"
    assert figure._repr_png_().startswith(b"\x89PNG")


def test_backward_deps_is_the_slice_in_noworkflows_shape(root, nw):
    latest = nw.backward_deps("roc_metric", store=root)
    assert list(latest) == list(range(len(latest) - 1, -1, -1))  # iterated from the earliest, 0 the last
    assert all(isinstance(code, str) and isinstance(value, str) for code, value in latest.values())
    assert ("pca_components", "5") in latest.values()  # the latest trial with a slice of it
    assert ("PCA(n_components=pca_components)", "PCA(n_components=5)") in latest.values()
    first = nw.backward_deps("roc_metric", False, "trial1", store=root)
    assert ("pca_components", "3") in first.values()
    assert not [code for code, _ in first.values() if code in ("PCA", "0.25", "make_classification")]
    assert nw.global_backward_deps("roc_metric", trial="trial1", store=root) == first  # tagged once


def test_functions_called_inside_a_running_experiment(root, nw):
    from pytest_nwtrials import load_trial

    captured = load_trial("trial2", store=root / ".nwtrials").values
    # backward_deps read the running notebook's slice from noWorkflow's database, whole, and
    # store_operations kept it with the trial: the same as the slice the store has now
    assert captured["operations"] == nw.backward_deps("total", trial="trial2", store=root)
    assert captured["operations"][0] == ("sum([1, 2, 3]) * 2", "12")
    script = load_trial("trial1", store=root / ".nwtrials").values["live_error"]
    assert "backward_deps('roc_metric')" in script and "a script's when it ends" in script and "trial=" in script
    assert captured["listed"] == ids(root)[:2]  # the stored trial, then the running one
    plain = load_trial("trial4", store=root / ".nwtrials").values
    assert list(plain["operations"]) == [0] and plain["operations"][0][0] == "error"
    assert "without noWorkflow capture (--nw-capture=off)" in plain["operations"][0][1]
    assert "trial=" in plain["operations"][0][1]
    assert plain["listed"] == ids(root)[:3]  # without capture the running trial's id is not known


@pytest.mark.parametrize("call, error, words", [
    (lambda nw, root: nw.trial_diff("trial1", "nope", store=root), LookupError,
     ["no trial 'nope'", "resume_trials()"]),
    (lambda nw, root: nw.trial_intersection_diff(42, "trial1", store=root), TypeError, ["42", "resume_trials()"]),
    (lambda nw, root: nw.var_tag_values("recall", store=root), LookupError, ["'recall'", "pca_components"]),
    (lambda nw, root: nw.var_tag_plot("label", store=root), ValueError, ["'label'", "cannot be plotted"]),
    (lambda nw, root: nw.backward_deps("recall", store=root), LookupError, ["'recall'", "roc_metric"]),
    (lambda nw, root: nw.backward_deps("pca_components", trial="trial2", store=root), LookupError,
     ["trial2", "no provenance slice of 'pca_components'", "total"]),
    (lambda nw, root: nw.global_backward_deps("X", trial="trial1", store=root), LookupError,
     ["trial1 has no provenance slice of 'X'", "not tagged", "nw_keep_database = true"]),
    (lambda nw, root: nw.backward_deps("total", trial="trial4", store=root), LookupError,
     ["trial4 has no provenance", "--nw-capture=off", "run it with --nw-capture=fine"]),
    (lambda nw, root: nw.store_operations("trial1", {}), RuntimeError, ["no experiment is running", "backward_deps"]),
    (lambda nw, root: nw.resume_trials(store=root / "experiments"), LookupError, ["no trial store", "experiments"]),
])
def test_bad_input_gets_a_message_naming_what_and_what_to_do(root, nw, call, error, words):
    with pytest.raises(error) as raised:
        call(nw, root)
    for word in words:
        assert word in str(raised.value), str(raised.value)


def test_no_store_is_named_with_what_to_do(nw, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LookupError, match=r"no trial store \(\.nwtrials\) found in .*run pytest on the experiments"):
        nw.resume_trials()


def test_ops_dict_keeps_noworkflows_shape_for_any_operations():
    from hypothesis import given
    from hypothesis import strategies as st

    from pytest_nwtrials.noworkflow import ops_dict, shown
    from pytest_nwtrials.provenance.reader import Op

    kinds = st.sampled_from(["name", "call", "literal", "attribute", "subscript"])
    texts = st.sampled_from(["x", "f(x)", "3", "<function f>", "PCA(n_components=3)"])
    ops = st.lists(st.builds(Op, kinds, texts, st.just("e.py"), st.integers(1, 9), texts), max_size=30)

    @given(ops)
    def check(operations):
        found = ops_dict(operations)
        assert list(found) == list(range(len(found) - 1, -1, -1))  # from the earliest down to 0, the last
        expected = [(op.code, op.value) for op in operations if shown(op)]
        pairs = list(found.values())
        assert all(a != b for a, b in zip(pairs, pairs[1:]))  # no operation repeated back to back
        assert [p for i, p in enumerate(expected) if i == 0 or expected[i - 1] != p] == pairs

    check()
