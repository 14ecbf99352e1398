"""A run of a subset of the experiments on purpose counts as missing only the baseline entries
of experiments it would have collected; the others are said, quietly, to be outside the run."""
from __future__ import annotations

import json

import pytest

EXPERIMENTS = {"a/one.py": "x = 1\n", "a/two.py": "x = 2\n", "b/three.py": "x = 3\n"}


def _summary(result: pytest.RunResult) -> str:
    return result.stdout.str().split("short test summary info")[0]


@pytest.fixture
def saved(project):
    project.ini("nw_tags = x\n", experiments="a/*.py\n    b/*.py")
    for relative, code in EXPERIMENTS.items():
        path = project.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code, encoding="utf-8")
    project.run("--nw-save-baseline=base").assert_outcomes(passed=3)
    return project


@pytest.mark.parametrize("args, passed, outside", [
    (["a/one.py"], 1, "2 baseline entries were outside this run, not compared: a/two.py, b/three.py"),
    (["a"], 2, "1 baseline entry was outside this run, not compared: b/three.py"),
    (["a/one.py::experiment", "b"], 2, "1 baseline entry was outside this run, not compared: a/two.py"),
])
def test_a_subset_given_by_path_reports_no_missing_entry(saved, args, passed, outside):
    result = saved.run("--nw-baseline=base", "--nw-json=report.json", *args)
    result.assert_outcomes(passed=passed)
    text = _summary(result)
    assert f"{passed} matched, 0 changed, 0 new, 0 failed, 0 skipped, 0 missing" in text
    assert outside in text and text.count("outside this run") == 1
    assert "no experiment of this session used" not in text
    report = json.loads((saved.root / "report.json").read_text())
    assert report["summary"]["missing"] == 0 and report["unused_baseline_entries"] == []
    assert len(report["outside_baseline_entries"]) == 3 - passed


def test_deselected_and_testpaths_subsets_are_no_missing_entries_but_a_deleted_experiment_is(saved):
    result = saved.run("--nw-baseline=base", "-k", "one")
    result.assert_outcomes(passed=1, deselected=2)
    text = _summary(result)
    assert "0 missing" in text and "outside this run" not in text  # deselected experiments were collected

    (saved.root / "a" / "two.py").unlink()
    result = saved.run("--nw-baseline=base", "a")  # gone, and under the paths run: missing
    result.assert_outcomes(passed=1)
    text = _summary(result)
    assert "1 matched, 0 changed, 0 new, 0 failed, 0 skipped, 1 missing" in text
    assert "baseline entries no experiment of this session used: a/two.py" in text
    assert "1 baseline entry was outside this run, not compared: b/three.py" in text

    result = saved.run("--nw-baseline=base", "b")  # gone, but outside the paths run
    text = _summary(result)
    assert "0 missing" in text
    assert "2 baseline entries were outside this run, not compared: a/one.py, a/two.py" in text

    saved.ini("nw_tags = x\ntestpaths = b\n", experiments="a/*.py\n    b/*.py")
    result = saved.run("--nw-baseline=base")
    result.assert_outcomes(passed=1)
    text = _summary(result)
    assert "0 missing" in text and "2 baseline entries were outside this run" in text


def test_an_ignored_experiment_is_outside_the_run_and_a_partial_save_keeps_the_others(saved):
    result = saved.run("--nw-baseline=base", "--ignore=a/two.py")
    result.assert_outcomes(passed=2)
    text = _summary(result)
    assert "0 missing" in text
    assert "1 baseline entry was outside this run, not compared: a/two.py" in text

    result = saved.run("--nw-save-baseline=base", "b")
    result.assert_outcomes(passed=1)
    text = _summary(result)
    assert "0 missing" in text
    assert "2 baseline entries were outside this run, kept as they were: a/one.py, a/two.py" in text
    assert (saved.root / "nw-baselines" / "base" / "a" / "two.py.json").is_file()
