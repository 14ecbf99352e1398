"""pytest-xdist: workers send their trials to the controller, which alone writes store and baselines."""
from __future__ import annotations

import json
import re

import pytest
from conftest import record_doc

EXPERIMENT = """
import numpy as np
from pytest_nwtrials import tag
tag("value", {value})
tag("weights", np.arange(500) * {value})
"""


def make_experiments(project, values: dict[str, int]) -> None:
    for name, value in values.items():
        project.experiment(name, EXPERIMENT.format(value=value))


def summary_ids(result: pytest.RunResult) -> dict[str, str]:
    """Trial id by experiment, from the session's terminal summary."""
    found = re.findall(r"^trial\d+  (\S+)  \w+  \([\d.]+ s, ([0-9a-f-]{36})\)$", result.stdout.str(), re.M)
    return dict(found)


def stored_ids(project) -> dict[str, list[str]]:
    by_experiment: dict[str, list[str]] = {}
    for trial in project.trials():
        by_experiment.setdefault(trial["experiment"], []).append(trial["id"])
    return by_experiment


VALUES = {"a.py": 1, "b.py": 2, "c.py": 3, "d.py": 4}


def test_save_and_compare_with_two_workers_record_every_trial(project, monkeypatch, tmp_path_factory):
    temp = tmp_path_factory.mktemp("temp")
    monkeypatch.setenv("TMPDIR", str(temp))  # where workers stage their trials
    make_experiments(project, VALUES)
    saved = project.run("-n", "2", "--nw-save-baseline=ref")
    saved.assert_outcomes(passed=4)
    saved.stdout.fnmatch_lines(["4 run, 0 matched*", "saved 4 entries to baseline 'ref' in nw-baselines/ref/"])
    ids = summary_ids(saved)
    assert sorted(ids) == [f"experiments/{name}" for name in sorted(VALUES)]
    trials = project.trials()
    assert [t["name"] for t in trials] == ["trial1", "trial2", "trial3", "trial4"]
    assert {t["experiment"]: t["id"] for t in trials} == ids
    for trial in trials:  # each trial arrived whole: provenance record and value files
        assert record_doc(project.root / ".nwtrials", trial)["slices"]
        blob = trial["tags"]["weights"]["value"]["blob"]
        assert (project.root / ".nwtrials" / "values" / blob).is_file()
    for name, value in VALUES.items():
        entry = project.baseline_entry("ref", f"experiments/{name}")
        assert entry["tags"]["value"]["value"] == value

    make_experiments(project, {"c.py": 30})
    compared = project.run("-n", "2", "--nw-baseline=ref", "--nw-json=report.json")
    compared.assert_outcomes(passed=3, failed=1)
    compared.stdout.fnmatch_lines(["*experiments/c.py: 2 tagged values differ from baseline 'ref'*",
                                   "*value: changed: 3 -> 30*",
                                   "4 run, 3 matched, 1 changed, 0 new, 0 failed, 0 skipped, 0 missing"])
    second = summary_ids(compared)
    assert {e: ids[-1] for e, ids in stored_ids(project).items()} == second
    assert len(project.trials()) == 8
    report = json.loads((project.root / "report.json").read_text())
    changed = [e for e in report["experiments"] if e["verdict"] == "changed"]
    assert [e["experiment"] for e in changed] == ["experiments/c.py"]
    assert {c["path"] for c in changed[0]["changes"]} == {"value", "weights"}
    assert changed[0]["tags"]["value"] == 30
    assert not list(temp.glob("nwtrials-*"))  # the controller removed what the workers staged


REMOTE = """
def pytest_configure(config):
    if hasattr(config, "workerinput"):  # as on another host: the controller's files are out of sight
        config.workerinput["nwtrials_token"] = ["/nonexistent/token", "x"]
"""


def test_workers_in_another_folder_write_nothing_there(project, tmp_path_factory):
    """Workers started elsewhere, on a filesystem of their own as on remote hosts, run their
    copy and send their trials as bytes; only the controller writes."""
    make_experiments(project, VALUES)
    project.pytester.makeconftest(REMOTE)
    project.run("--nw-save-baseline=ref").assert_outcomes(passed=4)
    remote = tmp_path_factory.mktemp("remote")
    result = project.run(
        "--tx", f"2*popen//chdir={remote}", "-d", "-W", "ignore::DeprecationWarning",
        *(f"--rsyncdir={project.root / name}" for name in ("experiments", "nw-baselines", "pytest.ini",
                                                            "conftest.py")),
        "--nw-baseline=ref", "--nw-capture=fine")  # a gate that matches under auto keeps no provenance to send
    result.assert_outcomes(passed=4)
    assert (remote / "experiments" / "a.py").is_file()  # the workers ran in their own copy
    assert not list(remote.rglob(".nwtrials"))
    assert sorted(summary_ids(result).values()) == sorted(ids[-1] for ids in stored_ids(project).values())
    trials = project.trials()
    assert len(trials) == 8
    for trial in trials[4:]:  # sent as bytes: provenance record and value files arrived whole
        assert record_doc(project.root / ".nwtrials", trial)["slices"]
        assert (project.root / ".nwtrials" / "values" / trial["tags"]["weights"]["value"]["blob"]).is_file()


def test_old_trials_are_removed_by_the_controller_under_workers(project):
    project.ini("nw_keep = 1")
    make_experiments(project, {"a.py": 1, "b.py": 2})
    for _ in range(2):
        result = project.run("-n", "2")
        result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["removed 2 old trials from the local store (nw_keep = 1 per experiment)"])
    trials = project.trials()
    assert [t["name"] for t in trials] == ["trial3", "trial4"]
    records = sorted(p.name for p in (project.root / ".nwtrials" / "records").iterdir())
    assert records == sorted({t["record"] for t in trials})
