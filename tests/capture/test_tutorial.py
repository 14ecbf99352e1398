"""noWorkflow's fraud-detection use case end to end, with its own notebooks (unchanged copies).

Part 1 runs as an experiment and is saved as the baseline; part 4 (undersampling and PCA
swapped, XGBoost in place of a random forest) then runs in its place and fails the gate; part 3,
the comparison notebook, runs in a Jupyter kernel against the store with its import line
changed to `pytest_nwtrials.noworkflow`. See tests/data/tutorial/README.md for where the
notebooks come from. Everything runs once per test module (about a minute); the tests read what
the runs left.
"""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("imblearn")
pytest.importorskip("xgboost")
nbformat = pytest.importorskip("nbformat")
from nbclient import NotebookClient  # noqa: E402

TUTORIAL = Path(__file__).parent.parent / "data" / "tutorial"
EXPERIMENT = "experiments/now_usecase_part_1.ipynb"
NOWORKFLOW_IMPORT = ("from noworkflow.now.tagging.var_tagging import backward_deps, \\\n"
                     "    global_backward_deps, store_operations, resume_trials, trial_diff, \\\n"
                     "    trial_intersection_diff, var_tag_plot, var_tag_values")
STORE_IMPORT = NOWORKFLOW_IMPORT.replace("noworkflow.now.tagging.var_tagging", "pytest_nwtrials.noworkflow")


def _pytest(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)


def comparison_notebook() -> nbformat.NotebookNode:
    """noWorkflow's part 3 with its import line changed to read the store.

    The first cell also imports lightgbm and catboost, which no cell uses and the test extra
    does not install: those two lines are dropped.
    """
    notebook = nbformat.read(TUTORIAL / "now_usecase_part_3.ipynb", as_version=4)
    first = notebook.cells[1].source
    assert NOWORKFLOW_IMPORT in first, first
    kept = [line for line in first.replace(NOWORKFLOW_IMPORT, STORE_IMPORT).splitlines()
            if line not in ("import lightgbm as lgb", "import catboost as cat")]
    notebook.cells[1].source = "\n".join(kept)
    notebook.cells.append(nbformat.v4.new_code_cell(FACTS))
    return notebook


# appended after the notebook's cells: what its calls returned, read from IPython's Out by the
# execution count of each cell (found by its source), as JSON
FACTS = """
import json
def _out(source):
    return Out[next(n for n, text in enumerate(In) if text.strip() == source)]
_plot = lambda fig: {"labels": [t.get_text() for t in fig.axes[0].get_xticklabels()],
                     "heights": [p.get_height() for p in fig.axes[0].patches], "title": fig.axes[0].get_title()}
_diff = _out("trial_diff(list_id[0], list_id[-1])")
print(json.dumps({
    "list_id": list(list_id), "list_type": type(list_id).__mro__[1].__name__,
    "intersection": _out("trial_intersection_diff(list_id[0], list_id[-1])").to_dict("split"),
    "diff": {"tags": list(_diff.tags), "text": repr(_diff), "html": _diff._repr_html_()},
    "roc_plot": _plot(_out("var_tag_plot('roc_metric')")), "f1_plot": _plot(_out("var_tag_plot('f1_metric')")),
    "roc_values": _out("var_tag_values('roc_metric')")[["trial_id", "short_trial_id", "tag", "value"]].to_dict("list"),
    "model_values": _out("var_tag_values('model')")[["trial_id", "tag", "value"]].to_dict("list"),
}, default=str))
"""


def outputs(cell: nbformat.NotebookNode) -> dict[str, str]:
    """A cell's result by MIME type (the last output that has it), and its printed text."""
    found: dict[str, str] = {}
    for output in cell.outputs:
        found.update(output.get("data", {}))
        if output.output_type == "stream":
            found["stream"] = found.get("stream", "") + output.text
        if output.output_type == "error":
            raise AssertionError("\n".join(output.traceback))
    return found


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The runs: part 1 saved as baseline, part 4 gated against it (plain and -v), the trial
    records, and part 3 executed in a kernel in the experiments folder."""
    root = tmp_path_factory.mktemp("tutorial")
    experiments = root / "experiments"
    experiments.mkdir()
    for part in (1, 4):
        shutil.copy(TUTORIAL / f"now_usecase_part_{part}.ipynb", experiments)
    subprocess.run([sys.executable, str(TUTORIAL / "make_creditcard.py"), str(experiments)], check=True,
                   capture_output=True)
    (root / "pytest.ini").write_text(f"[pytest]\nnw_experiments = {EXPERIMENT}\n")
    saved = _pytest(root, "--nw-save-baseline=tutorial")
    shutil.copy(experiments / "now_usecase_part_4.ipynb", experiments / "now_usecase_part_1.ipynb")
    plain, verbose = _pytest(root, "--nw-baseline=tutorial"), _pytest(root, "--nw-baseline=tutorial", "-v")
    trials = [json.loads(path.read_text()) for path in sorted((root / ".nwtrials" / "trials").glob("trial*.json"))]
    comparison = comparison_notebook()
    NotebookClient(comparison, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(experiments)}}).execute()
    facts = json.loads(outputs(comparison.cells[-1])["stream"])
    return {"saved": saved, "plain": plain, "verbose": verbose, "trials": trials, "comparison": comparison,
            "facts": facts}


def why(report: str) -> str:
    return report.split("Why it changed:")[1].split("To accept the new values")[0]


def test_part_1_runs_unchanged_as_an_experiment_and_passes(tutorial):
    saved = tutorial["saved"]
    assert saved.returncode == 0, saved.stdout + saved.stderr
    assert "1 passed" in saved.stdout
    first = tutorial["trials"][0]
    assert first["status"] == "finished"
    assert {name: doc["value"] for name, doc in first["tags"].items() if name in ("pca_components", "random_seed",
                                                                                  "test_dim")} == \
        {"pca_components": 3, "random_seed": 42, "test_dim": 0.2}
    assert {"model", "roc_metric", "f1_metric"} <= set(first["tags"])
    # noWorkflow's own backward_deps, store_operations and resume_trials ran inside the item
    written = {path for path, seen in first["inputs"]["files"].items() if seen["written"]}
    assert {"experiments/ops.dat", "experiments/ops.dir"} <= written


def test_files_the_notebook_wrote_are_not_reported_as_inputs(tutorial):
    plain, verbose = tutorial["plain"], tutorial["verbose"]
    assert plain.returncode == verbose.returncode == 1, plain.stdout + plain.stderr
    report = why(plain.stdout)
    assert "f1_metric" in report and "roc_metric" in report and "model" in report
    assert "input file" not in report  # the data set did not change; the shelve is an output
    assert "b'" not in plain.stdout  # dbm.dumb opens bytes paths: they are named as paths
    assert "input file" not in why(verbose.stdout)
    assert "wrote a different experiments/ops.dat (sha1 " in why(verbose.stdout)


def test_swapped_pca_and_undersampling_are_named_as_a_reorder(tutorial):
    report = why(tutorial["plain"].stdout)
    assert not re.search(r"moved from op (\d+) to op \1\b", report)
    assert not re.search(r"\bop (\d+) -> \1\)", report)
    section = report.split("in the provenance of f1_metric")[1]
    headline = section.strip().splitlines()[1].strip()  # after "(and roc_metric):"
    assert headline.startswith("reordered: `PCA(n_components=pca_components)` now runs after "
                               "`rus.fit_resample(X, y)`"), headline
    assert headline.endswith("cell 8 -> cell 10"), headline



def cell_of(notebook: nbformat.NotebookNode, source: str) -> dict[str, str]:
    return outputs(next(cell for cell in notebook.cells if cell.source.strip() == source))


def test_comparison_notebook_lists_the_stored_trials(tutorial):
    facts, trials = tutorial["facts"], tutorial["trials"]
    assert facts["list_id"] == [t["id"] for t in trials]  # oldest first: part 1, then part 4 twice
    assert facts["list_type"] == "list"
    assert "trial1" in cell_of(tutorial["comparison"], "list_id = resume_trials()\nlist_id")["text/html"]


def test_comparison_notebook_shows_shared_tags_and_operations_side_by_side(tutorial):
    first, last = tutorial["trials"][0], tutorial["trials"][-1]
    table = tutorial["facts"]["intersection"]
    assert table["columns"] == ["key", first["id"][-5:], last["id"][-5:], "source", "changed"]
    rows = {(row[0], row[3]): row for row in table["data"]}
    for name in ("pca_components", "random_seed", "test_dim"):
        assert rows[(name, "tag")][1:3] == [first["tags"][name]["value"]] * 2 and not rows[(name, "tag")][4]
    for name in ("roc_metric", "f1_metric"):
        assert rows[(name, "tag")][1:3] == [first["tags"][name]["value"], last["tags"][name]["value"]]
        assert rows[(name, "tag")][4]
    model = rows[("model", "tag")]
    assert "RandomForestClassifier" in model[1] and "XGBClassifier" in model[2] and model[4]
    assert rows[("PCA(n_components=pca_components)", "operation")][1:3] == ["PCA(n_components=3)"] * 2
    assert rows[("random_seed", "operation")][1:3] == ["42", "42"]
    assert ("rus.fit_resample(X_pca, y)", "operation") not in rows  # part 1 only: not shared
    assert not [key for key, source in rows if source == "operation" and key in ("pd", "PCA", "pd.read_csv")]
    assert "<table" in cell_of(tutorial["comparison"], "trial_intersection_diff(list_id[0], list_id[-1])")["text/html"]


def test_comparison_notebook_shows_what_differs(tutorial):
    diff = tutorial["facts"]["diff"]
    assert diff["tags"] == ["f1_metric", "model", "roc_metric"]
    assert diff["text"].startswith("trial3 differs from trial1")
    assert "reordered: `PCA(n_components=pca_components)` now runs after `rus.fit_resample(X, y)`" in diff["text"]
    shown = cell_of(tutorial["comparison"], "trial_diff(list_id[0], list_id[-1])")
    assert shown["text/html"] == diff["html"] and "Why it changed" in shown["text/html"]
    assert shown["text/plain"] == diff["text"]  # whole, not a dataclass repr


def test_comparison_notebook_plots_and_tables_a_tag_across_trials(tutorial):
    facts, trials = tutorial["facts"], tutorial["trials"]
    for name in ("roc_metric", "f1_metric"):
        plot = facts[f"{name.split('_')[0]}_plot"]
        assert plot["title"] == f"{name} values"
        assert plot["labels"] == [t["id"][-5:] for t in trials]
        assert plot["heights"] == [t["tags"][name]["value"] for t in trials]
        assert "image/png" in cell_of(tutorial["comparison"], f"var_tag_plot('{name}')")
    assert facts["roc_values"] == {"trial_id": [t["id"] for t in trials], "short_trial_id": [t["id"][-5:] for t in trials],
                                   "tag": ["roc_metric"] * 3, "value": [t["tags"]["roc_metric"]["value"] for t in trials]}
    models = facts["model_values"]["value"]
    assert "RandomForestClassifier" in models[0] and all("XGBClassifier" in m for m in models[1:]), models
    shown = html.unescape(cell_of(tutorial["comparison"], "var_tag_values('model')")["text/html"])
    assert all(model in shown for model in models)  # whole, not cut at pandas' 50 characters
