"""The Python API for browsing trials: list_trials, tag_values, plot, and pruning the store.

The store these tests browse is recorded once per process by real pytest runs (the `nw_project`
fixture of conftest.py, shared with test_cli and test_html_report) and copied for each test.
"""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest


def test_importing_the_package_loads_no_pytest_numpy_pandas_or_matplotlib():
    code = ("import sys, pytest_nwtrials, pytest_nwtrials.api, pytest_nwtrials.cli, pytest_nwtrials.render.html\n"
            "print(sorted(m for m in ('pytest', 'numpy', 'pandas', 'matplotlib') if m in sys.modules))\n"
            # the name `values` stays the subpackage, which the capture recorder imports by it
            "from pytest_nwtrials import values, tag_values, api\n"
            "assert values.__name__ == 'pytest_nwtrials.values' and tag_values is api.values\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_list_trials_has_one_row_per_trial_oldest_first(store):
    from pytest_nwtrials import list_trials

    frame = list_trials(store=store)
    assert list(frame.columns) == ["name", "id", "experiment", "argv", "status", "started", "duration", "tags"]
    assert list(frame["name"]) == [f"trial{n}" for n in range(1, 7)]
    assert list(frame["experiment"]) == ["experiments/prep.py", "experiments/train.py"] * 3
    assert list(frame["status"]) == ["finished"] * 4 + ["failed", "finished"]
    assert str(frame["started"].dtype).startswith("datetime64") and str(frame["started"].dt.tz) == "UTC"
    assert frame["started"].is_monotonic_increasing
    assert frame["duration"].gt(0).all()
    assert frame.loc[1, "tags"] == ["auc", "summary", "model", "epochs", "weights"]
    assert frame.loc[0, "argv"] == []


def test_list_trials_filters_by_experiment_path_or_glob(store, nw_project):
    from pytest_nwtrials import list_trials

    assert list(list_trials("experiments/train.py", store=store)["name"]) == ["trial2", "trial4", "trial6"]
    assert list(list_trials("*/prep.py", store=nw_project)["name"]) == ["trial1", "trial3", "trial5"]
    with pytest.raises(LookupError, match=r"no trials of experiment 'nope\.py'.*: experiments/prep\.py, experiments/t"):
        list_trials("nope.py", store=store)


def test_default_store_is_found_from_the_working_directory(nw_project, monkeypatch):
    from pytest_nwtrials import list_trials

    monkeypatch.chdir(nw_project / "experiments")
    assert len(list_trials()) == 6


def test_missing_and_empty_stores(tmp_path, monkeypatch):
    from pytest_nwtrials import list_trials, plot, tag_values

    monkeypatch.chdir(tmp_path)
    with pytest.raises(LookupError, match="no trial store .* found in .*run pytest on the experiments first"):
        list_trials()
    with pytest.raises(LookupError, match=f"no trial store at {tmp_path / 'nope'}"):
        tag_values("auc", store=tmp_path / "nope")
    (tmp_path / ".nwtrials" / "trials").mkdir(parents=True)
    empty = list_trials(store=tmp_path)
    assert empty.empty and "started" in empty.columns
    with pytest.raises(LookupError, match="tagged 'auc'; tags: none"):
        plot("auc", store=tmp_path)


def test_tag_values_gives_numbers_for_scalars_and_summaries_for_the_rest(store):
    from pytest_nwtrials import tag_values

    auc = tag_values("auc", store=store)
    assert list(auc.columns) == ["name", "id", "experiment", "argv", "started", "status", "value",
                                 "spread_low", "spread_high", "spread_relative"]
    assert auc[["spread_low", "spread_high", "spread_relative"]].isna().all().all()  # run once each
    assert list(auc["value"]) == [0.5, 0.9, 0.5, 0.89, 0.5, 0.88]
    assert auc["value"].dtype.kind == "f"
    assert list(auc["status"])[4] == "failed"
    train = tag_values("auc", "experiments/train.py", store=store)
    assert list(train["name"]) == ["trial2", "trial4", "trial6"]
    weights = tag_values("weights", store=store)
    assert len(weights) == 3 and all(v.startswith("ndarray(shape=(50,), dtype=float64") for v in weights["value"])
    assert list(tag_values("summary", store=store)["value"])[0] == "{'precision': 0.5, 'recall': 0.4}"
    assert list(tag_values("model", store=store)["value"]) == ["'logreg'"] * 3
    assert list(tag_values("rows", store=store)["value"]) == [100, 101, 102]


def test_unknown_tag_names_the_tags_there_are(store):
    from pytest_nwtrials import tag_values

    with pytest.raises(LookupError, match="no trial in .* tagged 'acu'; tags: auc, epochs, model, rows, summary, w"):
        tag_values("acu", store=store)
    with pytest.raises(LookupError, match="tags: auc, rows"):
        tag_values("weights", "experiments/prep.py", store=store)


def test_plot_draws_one_line_per_experiment_in_time_order(store, tmp_path):
    from matplotlib.figure import Figure

    from pytest_nwtrials import plot

    figure = plot("auc", store=store)
    assert isinstance(figure, Figure)
    ax = figure.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"experiments/prep.py", "experiments/train.py"}
    assert list(lines["experiments/train.py"].get_ydata()) == [0.9, 0.89, 0.88]
    xs = list(lines["experiments/train.py"].get_xdata())
    assert xs == sorted(xs)
    assert ax.get_ylabel() == "auc"
    figure.savefig(tmp_path / "auc.png")
    assert (tmp_path / "auc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figure._repr_png_()[:4] == b"\x89PNG"  # how Jupyter shows it


def test_plot_marks_the_baseline_value(store, nw_project):
    from pytest_nwtrials import plot

    ax = plot("auc", "experiments/train.py", store=store, baseline="reference").axes[0]
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert [list(line.get_ydata()) for line in dashed] == [[0.9, 0.9]]
    assert "baseline 'reference'" in dashed[0].get_label()
    moved = nw_project.parent / "elsewhere"
    shutil.move(nw_project / "nw-baselines", moved)
    with pytest.raises(LookupError, match="no baseline 'reference' in .*nw-baselines; baselines: none"):
        plot("auc", store=store, baseline="reference")
    assert plot("auc", store=store, baseline="reference", baselines=moved).axes
    with pytest.raises(LookupError, match="no baseline 'other' in .*; baselines: reference"):
        plot("auc", store=store, baseline="other", baselines=moved)


def test_plot_of_an_array_tag_plots_its_mean(store):
    from pytest_nwtrials import plot

    ax = plot("weights", store=store).axes[0]
    assert ax.get_ylabel() == "weights (mean)"
    assert [round(y, 6) for y in ax.get_lines()[0].get_ydata()] == [0.5, 1.0, 1.5]


@pytest.mark.parametrize(("tag", "kind"), [("model", "str"), ("summary", "dict")])
def test_plot_of_a_non_numeric_tag_says_which_and_why(store, tag, kind):
    from pytest_nwtrials import plot

    with pytest.raises(ValueError, match=f"tag '{tag}' of trial2 is a {kind}, which cannot be plotted"):
        plot(tag, store=store)


def test_plot_into_a_given_axes(store):
    from matplotlib.figure import Figure

    from pytest_nwtrials import plot

    figure = Figure()
    ax = figure.add_subplot()
    assert plot("rows", store=store, ax=ax) is figure
    assert len(ax.get_lines()) == 1


def test_collect_garbage_dry_run_removes_nothing(store):
    from pytest_nwtrials.api import collect_garbage

    before = sorted(p.relative_to(store) for p in store.rglob("*"))
    result = collect_garbage(1, store=store, dry_run=True)
    assert [t.name for t in result.removed] == ["trial1", "trial2", "trial3", "trial4"]
    assert result.record_files == 8 and result.value_files > 0  # the trial record and provenance record of each
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before
    with pytest.raises(ValueError, match="keep must be at least 1"):
        collect_garbage(0, store=store)
