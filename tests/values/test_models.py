"""Models kept as the run left them, compared by class, hyperparameters and fitted state, and
kept in baselines as skops files that load without running code."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_nwtrials.compare.engine import Kind, diff
from pytest_nwtrials.render.text import difference_window, format_change, format_changes
from pytest_nwtrials.compare.engine import Change
from pytest_nwtrials.values.codec import OpaqueValue

sklearn = pytest.importorskip("sklearn")
skops_io = pytest.importorskip("skops.io")

DATA = """
import numpy as np
rng = np.random.default_rng({seed})
X = rng.normal(size=(80, 4))
y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
"""

TAGGED_BEFORE_FIT = DATA.format(seed=0) + """
from pytest_nwtrials import tag
from sklearn.ensemble import RandomForestClassifier
weights = tag("weights", np.zeros(3))
weights[:] = 7.0  # changed in place after tagging: the tag keeps the zeros
model = tag("model", RandomForestClassifier(n_estimators=5, random_state=0))
model.fit(X, y)
"""


def model_experiment(model: str, seed: int = 0) -> str:
    return DATA.format(seed=seed) + f"""
from pytest_nwtrials import tag
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
model = tag("model", {model})
model.fit(X, y)
"""


def run_python(project, code: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-c", code], cwd=project.root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def report_of(result) -> str:
    """The failure report, without the short summary that repeats it under CI=true."""
    return result.stdout.str().split("short test summary info")[0]


# -- kept as the run left it ------------------------------------------------------------------


def test_a_model_tagged_before_fit_loads_fitted_and_predicts(project):
    project.experiment("fit.py", TAGGED_BEFORE_FIT)
    project.run().assert_outcomes(passed=1)
    tags = project.trials()[0]["tags"]
    assert tags["model"]["state"] == "end of run" and "state" not in tags["weights"]
    done = run_python(project, DATA.format(seed=0) + """
from pytest_nwtrials import load_trial
values = load_trial("trial1", allow_pickle=True).values
print(values["weights"].tolist())
print((values["model"].predict(X) == y).mean() > 0.8)
""")
    assert done.stdout.split("\n")[:2] == ["[0.0, 0.0, 0.0]", "True"]
    shown = subprocess.run([sys.executable, "-m", "pytest_nwtrials.cli", "show", "trial1"], cwd=project.root,
                           capture_output=True, text=True, timeout=120)
    assert "state at the end of the run" in next(line for line in shown.stdout.splitlines() if "model" in line)
    assert "state at the end of the run" not in next(line for line in shown.stdout.splitlines() if "weights" in line)
    # shown as the estimator with its parameters, in `nwtrials show` and in tag_values
    assert "RandomForestClassifier(n_estimators=5, random_state=0)" in shown.stdout
    listed = run_python(project, "from pytest_nwtrials import tag_values\nprint(tag_values('model')['value'][0])")
    assert listed.stdout.strip() == "RandomForestClassifier(n_estimators=5, random_state=0)"
    # a run that saves no baseline pays for no skops model file
    assert not list((project.root / ".nwtrials").rglob("*.skops")) and "file" not in tags["model"]["value"]["model"]


def test_a_notebook_keeps_a_model_fitted_in_a_later_cell(project):
    from test_notebook_items import notebook

    project.ini(experiments="experiments/*.ipynb")
    notebook(project, "fit.ipynb", DATA.format(seed=0),
             "from pytest_nwtrials import tag\nfrom sklearn.linear_model import LogisticRegression\n"
             "model = tag('model', LogisticRegression())", "model.fit(X, y)")
    project.run().assert_outcomes(passed=1)
    done = run_python(project, DATA.format(seed=0) + """
from pytest_nwtrials import load_trial
print(load_trial("trial1", allow_pickle=True).values["model"].coef_.shape)
""")
    assert done.stdout.strip() == "(1, 4)"


# -- compared by what they are ----------------------------------------------------------------


def test_a_hyperparameter_change_is_named(project):
    result = project.gate("fit.py", model_experiment("RandomForestClassifier(random_state=0)"),
                          model_experiment("RandomForestClassifier(random_state=0, max_depth=2)"))
    report = report_of(result)
    assert "(model: state at the end of the run, not when tagged)" in report
    # one line for the hyperparameter, one for the 100 trees (not a block per tree)
    lines = [line for line in report.splitlines() if line.startswith("  model")]
    assert lines[0] == "  model: max_depth: None -> 2", report
    assert lines[1].startswith("  model['estimators_']: changed (list of 100 "), report
    assert "DecisionTreeClassifier): " in lines[1] and "fitted attribute" in report, report
    assert len(lines) == 2, report


def test_a_model_class_change_is_named_with_both_estimators(project):
    result = project.gate("fit.py", model_experiment("RandomForestClassifier(random_state=0)"),
                          model_experiment("GradientBoostingClassifier(n_estimators=5, random_state=0)"))
    result.stdout.fnmatch_lines([
        "  model: RandomForestClassifier(random_state=0) -> GradientBoostingClassifier(...)",
        "    baseline: RandomForestClassifier(random_state=0)",
        "    new: GradientBoostingClassifier(n_estimators=5, random_state=0)",
        "    baseline class: sklearn.ensemble._forest.RandomForestClassifier",
        "    new class: sklearn.ensemble._gb.GradientBoostingClassifier",
    ])


def test_a_fitted_state_change_is_named_as_a_fitted_attribute(project):
    result = project.gate("fit.py", model_experiment("LogisticRegression()", seed=0),
                          model_experiment("LogisticRegression()", seed=1))
    report = report_of(result)
    assert "model['coef_']: changed" in report and "fitted attribute (set by fit)" in report
    assert "Max absolute error" in report  # the array engine's summary
    assert "model['C']" not in report and "hyperparameter" not in report


def test_a_refit_within_the_tag_tolerance_passes(project):
    before = model_experiment("LogisticRegression()")
    project.experiment("fit.py", before)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    project.experiment("fit.py", before.replace("model.fit(X, y)", "model.fit(X * (1 + 1e-6), y)"))
    project.run("--nw-baseline=base", "--nw-rtol=1e-3").assert_outcomes(passed=1)
    project.run("--nw-baseline=base", "--nw-rtol=0").assert_outcomes(failed=1)


# -- safe model files in baselines ------------------------------------------------------------


def test_a_model_in_a_baseline_loads_without_allow_pickle(project):
    project.experiment("fit.py", model_experiment("LogisticRegression(C=0.5)"))
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    folder = project.root / "nw-baselines" / "base"
    assert list(folder.rglob("*.skops")) and not list(folder.rglob("*.pickle"))
    model = project.baseline_entry("base", "experiments/fit.py")["tags"]["model"]["value"]["model"]
    assert model["class"] == "sklearn.linear_model._logistic.LogisticRegression" and model["params"]["C"] == 0.5
    done = run_python(project, DATA.format(seed=0) + """
from pytest_nwtrials import load_baseline, load_trial
model = load_baseline("base", "experiments/fit.py")["model"]
print(type(model).__name__, model.C, (model.predict(X) == y).mean() > 0.8)
print(type(load_trial("trial1").values["model"]).__name__)
""")
    assert done.stdout.split("\n")[:2] == ["LogisticRegression 0.5 True", "LogisticRegression"]
    without = run_python(project, """
import sys, warnings
sys.modules["skops"] = sys.modules["skops.io"] = None  # as when the models extra is not installed
from pytest_nwtrials import load_baseline
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    print(type(load_baseline("base", "experiments/fit.py")["model"]).__name__, caught[0].message)
try:
    load_baseline("base", "experiments/fit.py", trusted=[])
except ImportError as exc:
    print(exc)
""")
    summary, message = without.stdout.split("\n")[:2]
    assert summary.startswith("ModelValue") and "pytest-nwtrials[models]" in summary
    assert "needs skops: pip install 'pytest-nwtrials[models]'" in message


def test_a_model_with_types_skops_does_not_trust_needs_them_named(project):
    project.experiment("fit.py", model_experiment("RandomForestClassifier(n_estimators=3, random_state=0)"))
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    done = run_python(project, DATA.format(seed=0) + """
import warnings
from pytest_nwtrials import load_baseline
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    summary = load_baseline("base", "experiments/fit.py")["model"]
print(type(summary).__name__, summary.text)
print(caught[0].message)
model = load_baseline("base", "experiments/fit.py", trusted=["sklearn.tree._tree.Tree"])["model"]
print(type(model).__name__, (model.predict(X) == y).mean() > 0.8)
""")
    lines = done.stdout.split("\n")
    assert lines[0] == "ModelValue RandomForestClassifier(n_estimators=3, random_state=0)"
    assert "sklearn.tree._tree.Tree" in lines[1] and "trusted=['sklearn.tree._tree.Tree']" in lines[1]
    assert lines[2] == "RandomForestClassifier True"


CRAFTED = """
import io, json, sys, zipfile
sys.path.insert(0, "lib")
import skops.io as sio
from sklearn.linear_model import LogisticRegression

# a real skops file whose schema then names a custom class and os.system in place of the model's
data = sio.dumps(LogisticRegression())
with zipfile.ZipFile(io.BytesIO(data)) as old:
    files = {name: old.read(name) for name in old.namelist()}
schema = json.loads(files["schema.json"])
schema["__module__"], schema["__class__"] = "boom", "Boom"
schema["content"]["content"]["C"] = {"__class__": "system", "__module__": "os", "__loader__": "TypeNode",
                                     "__id__": 999, "is_self_safe": False}
files["schema.json"] = json.dumps(schema).encode()
out = io.BytesIO()
with zipfile.ZipFile(out, "w") as new:
    for name, content in files.items():
        new.writestr(name, content)
sys.stdout.buffer.write(out.getvalue())
"""


def test_a_crafted_model_file_runs_no_code_and_is_refused_naming_its_types(project):
    import hashlib

    project.experiment("fit.py", model_experiment("LogisticRegression()"))
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    lib = project.root / "lib"
    lib.mkdir()
    (lib / "boom.py").write_text("open('BOOM', 'w').close()\nclass Boom:\n    pass\n")
    crafted = subprocess.run([sys.executable, "-c", CRAFTED], cwd=project.root, capture_output=True, timeout=120)
    assert crafted.returncode == 0, crafted.stderr
    folder = project.root / "nw-baselines" / "base"
    name = hashlib.sha256(crafted.stdout).hexdigest() + ".skops"
    (folder / "values" / name).write_bytes(crafted.stdout)
    entry_path = folder / "experiments" / "fit.py.json"
    entry = json.loads(entry_path.read_text())
    entry["tags"]["model"]["value"]["model"]["file"] = name
    entry_path.write_text(json.dumps(entry))

    done = subprocess.run([sys.executable, "-c", """
import sys, warnings
sys.path.insert(0, "lib")
from pytest_nwtrials import load_baseline
from pytest_nwtrials.values.models import UntrustedModelError
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    print(type(load_baseline("base", "experiments/fit.py")["model"]).__name__)
try:
    load_baseline("base", "experiments/fit.py", trusted=[])
except UntrustedModelError as exc:
    print(exc)
"""], cwd=project.root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary, message = done.stdout.split("\n")[:2]
    assert summary == "ModelValue"
    assert "boom.Boom" in message and "os.system" in message and "trusted=" in message
    assert not (project.root / "BOOM").exists()
    assert "boom" not in sys.modules


# -- pure functions ---------------------------------------------------------------------------

TREE_PARAMS = st.fixed_dictionaries({
    "max_depth": st.one_of(st.none(), st.integers(1, 20)),
    "min_samples_split": st.integers(2, 10),
    "criterion": st.sampled_from(["gini", "entropy", "log_loss"]),
    "ccp_alpha": st.floats(0, 1),
})


@settings(max_examples=60, deadline=None)
@given(TREE_PARAMS, TREE_PARAMS)
def test_the_hyperparameter_diff_names_exactly_the_parameters_that_differ(old, new):
    from sklearn.tree import DecisionTreeClassifier

    changes = diff(DecisionTreeClassifier(**old), DecisionTreeClassifier(**new), path="model")
    expected = {f"model['{k}']" for k in old if old[k] != new[k]}
    assert {c.path for c in changes} == expected
    assert all(c.kind is Kind.HYPERPARAMETER and c.detail == "hyperparameter" for c in changes)
    shown = format_changes(changes)
    assert {line for line in shown if not line.startswith("    ")} == {
        f"  model: {k}: {old[k]!r} -> {new[k]!r}" for k in old if old[k] != new[k]}


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=300), st.text(min_size=1, max_size=300), st.integers(12, 80))
def test_a_difference_window_never_shows_two_equal_texts(old, new, width):
    shown = difference_window(old, new, width)
    assert (shown[0] == shown[1]) == (old == new)
    assert all(len(text) <= width for text in shown)


@given(st.text(alphabet="abcdef0123456789", min_size=64, max_size=64),
       st.text(alphabet="abcdef0123456789", min_size=64, max_size=64))
def test_a_changed_line_never_shows_two_identical_texts(first, second):
    old = OpaqueValue("sklearn.svm._classes.SVC", 3700, first)
    new = OpaqueValue("sklearn.svm._classes.SVC", 3700, second)
    for width in (40, 60, 100):
        line = format_change(Change("clf", Kind.CHANGED, old, new), width=width)[0]
        if first[:8] != second[:8]:
            left, _, right = line.partition(" -> ")
            assert left.rpartition(": ")[2] != right, line
        if width >= 60:  # room for the whole type name: it is never cut
            assert "sklearn.svm._clas" not in line or "sklearn.svm._classes.SVC" in line, line


def test_an_opaque_object_keeps_its_whole_type_name_in_a_narrow_summary():
    from pytest_nwtrials.values.codec import summarize

    value = OpaqueValue("sklearn.ensemble._forest.RandomForestClassifier", 649, "ab" * 32)
    assert summarize(value, 60) == "<sklearn.ensemble._forest.RandomForestClassifier abababab>"
    assert summarize(value, 36) == "<RandomForestClassifier abababab>"


def test_a_model_summary_records_params_and_fitted_arrays(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from pytest_nwtrials.values.codec import BlobStore, decode, encode

    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=2.0)).fit(X, y)
    blobs = BlobStore(tmp_path)
    doc = json.loads(json.dumps(encode(pipeline, blobs)))
    value = decode(doc, blobs)
    assert value.text.startswith("Pipeline(steps=[('standardscaler', StandardScaler()),")
    step = value.params["steps"][1][1]
    assert step.params["C"] == 2.0 and step.fitted["coef_"].shape == (1, 3)
    assert diff(value, pipeline) == []  # a stored model and the live one agree
    pipeline[-1].set_params(C=3.0)
    assert [c.path for c in diff(value, pipeline, path="model")] == ["model['steps'][1][1]['C']"]


def test_a_secret_in_a_model_parameter_reaches_no_stored_file(tmp_path):
    from sklearn.feature_extraction.text import CountVectorizer

    from pytest_nwtrials.redaction import Secrets
    from pytest_nwtrials.values.codec import BlobStore, decode, encode

    token = "tok-1234567890abcdef"
    secrets = Secrets.from_environment({"MY_API_TOKEN": token})
    blobs = BlobStore(tmp_path / "values")
    hits: set[str] = set()
    doc = encode(CountVectorizer(stop_words=[token, "the"]), blobs, secrets, hits, model_files=True)
    assert hits and token not in json.dumps(doc)
    assert not any(token.encode() in path.read_bytes() for path in tmp_path.rglob("*") if path.is_file())
    assert doc["blob"] is None and "file" not in doc["model"]  # neither the pickle nor a model file
    assert decode(doc, blobs).params["stop_words"][1] == "the"


def test_a_forest_is_summarised_with_its_trees_as_one_entry_and_no_model_file_unless_asked(tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    from pytest_nwtrials.values.codec import BlobStore, decode, encode

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), rng.integers(0, 2, 60)
    forest = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
    doc = encode(forest, BlobStore(tmp_path / "gate"))
    trees = doc["model"]["fitted"]["estimators_"]
    assert trees["type"] == "list of 100 sklearn.tree._classes.DecisionTreeClassifier" and trees["blob"] is None
    assert "file" not in doc["model"] and not list((tmp_path / "gate").glob("*.skops"))
    assert len(list((tmp_path / "gate").glob("*.pickle"))) == 1  # the forest's own, no pickle per tree
    assert diff(decode(doc, BlobStore(tmp_path / "gate")), forest) == []  # stored and live agree
    saved = encode(forest, BlobStore(tmp_path / "saved"), model_files=True)
    assert saved["model"]["file"].endswith(".skops") and (tmp_path / "saved" / saved["model"]["file"]).is_file()


def test_a_long_model_shows_whole_in_tag_values_and_as_its_class_in_a_narrow_column(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from pytest_nwtrials.api import table_cell
    from pytest_nwtrials.values.codec import BlobStore, decode, encode, summarize

    pipeline = make_pipeline(StandardScaler(with_mean=False), LogisticRegression(C=2.0, max_iter=500))
    blobs = BlobStore(tmp_path)
    stored = decode(encode(pipeline, blobs), blobs)
    text = "Pipeline(steps=[('standardscaler', StandardScaler(with_mean=False)), " \
           "('logisticregression', LogisticRegression(C=2.0, max_iter=500))])"
    assert table_cell(stored) == text  # what noWorkflow's saved output shows, whole
    assert summarize(stored, 60) == "Pipeline(...)"  # never cut inside a parameter
