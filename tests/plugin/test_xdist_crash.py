"""A crashed pytest-xdist worker takes none of the trials it had finished with it.

Each test runs a project whose items run on one worker in a known order, then a test kills that
worker. Whatever the JUnit XML reports as passed must have its trial in the local store, with
its value files, and (when saving) its entry in the baseline; the saved baseline then gates a
clean run under two workers.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import record_file

from pytest_nwtrials.store.baselines import entry_path

EXPERIMENT = """
import numpy as np
from pytest_nwtrials import tag
tag("value", {value})
tag("weights", np.arange(300) * {value})
"""

SWEEP = """
import sys
from pytest_nwtrials import tag
lr = float(sys.argv[sys.argv.index("--lr") + 1])
tag("auc", round(0.95 - lr, 6))
"""

# tests that record their trial id as a JUnit property, as experiment items do (nw_trial_id)
FIXTURE_TESTS = """
import pytest

@pytest.fixture
def warm(nw_trial):  # a trial recorded in the setup phase
    return nw_trial.run("sweep/train.py", "--lr", "0.1")

def test_setup_trial(warm, nw_trial, record_property):
    record_property("nw_trial_id", warm.id)
    assert warm.values["auc"] == 0.85
    nw_trial.assert_matches(warm, baseline="gate")  # its verdict follows it from setup to call

def test_call_trial(nw_trial, record_property):
    trial = nw_trial.run("sweep/train.py", "--lr", "0.2")
    record_property("nw_trial_id", trial.id)
    nw_trial.assert_matches(trial, baseline="gate")
"""

CRASH = """
import os, signal

def test_crash():
    {how}
"""

# the crashed worker's replacement finds no staging folder but its own
AFTER = """
import glob, os, tempfile

def test_after_crash():
    staged = glob.glob(os.path.join(tempfile.gettempdir(), "**", "nwtrials-worker-*"), recursive=True)
    assert len(staged) == 1, staged
"""

# one worker runs every item, in collection order (--dist loadgroup would, but pytest-xdist 3.8
# cannot add the group to a node id under pytest 9)
ONE_WORKER = """
from xdist.scheduler import LoadScopeScheduling

class OneScope(LoadScopeScheduling):
    def _split_scope(self, nodeid):
        return "all"

def pytest_xdist_make_scheduler(config, log):
    return OneScope(config, log)
"""


# workers that cannot see the controller's files, as on another host, send their files as bytes
OWN_FILESYSTEM = """
def pytest_configure(config):
    if hasattr(config, "workerinput"):
        config.workerinput["nwtrials_token"] = ["/nonexistent/token", "x"]
"""


def make_project(project, crash: str, one_worker: bool = False) -> None:
    """In collection order: experiments/a.py, b.py; the fixture tests; the crash; a test that
    looks for staging folders; zlater/c.py, d.py."""
    project.ini(experiments="experiments/*.py\n    zlater/*.py")
    for folder, values in (("experiments", {"a.py": 1, "b.py": 2}), ("zlater", {"c.py": 3, "d.py": 4})):
        for name, value in values.items():
            path = project.root / folder / name
            path.parent.mkdir(exist_ok=True)
            path.write_text(EXPERIMENT.format(value=value))
    (project.root / "sweep").mkdir()
    (project.root / "sweep" / "train.py").write_text(SWEEP)
    project.pytester.makepyfile(test_a_fixture=FIXTURE_TESTS, test_b_crash=CRASH.format(how=crash), test_c_after=AFTER)
    if one_worker:
        project.pytester.makeconftest(ONE_WORKER)


def passed_trial_ids(junit: Path) -> dict[str, str | None]:
    """The trial id (property nw_trial_id) of every test case the JUnit XML reports as passed."""
    passed = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        if any(child.tag in ("failure", "error", "skipped") for child in case):
            continue
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        passed[f"{case.get('classname')}::{case.get('name')}"] = properties.get("nw_trial_id")
    return passed


def assert_passed_items_kept(project, junit: Path, baseline: str) -> list[str]:
    """Every passed item's trial is in the store, whole, and is the entry of `baseline`; returns
    the passed items that ran a trial."""
    passed = {case: trial for case, trial in passed_trial_ids(junit).items() if trial}
    stored = {trial["id"]: trial for trial in project.trials()}
    store = project.root / ".nwtrials"
    for case, trial_id in passed.items():
        assert trial_id in stored, f"{case} passed but its trial {trial_id} is not in the store"
        trial = stored[trial_id]
        assert record_file(store, trial).is_file()
        for doc in trial["tags"].values():
            if isinstance(doc["value"], dict) and "blob" in doc["value"]:
                assert (store / "values" / doc["value"]["blob"]).is_file()
        entry = project.root / "nw-baselines" / baseline / entry_path(trial["experiment"], tuple(trial["argv"]))
        assert entry.is_file(), f"{case} passed but its entry is not in baseline {baseline!r}"
        assert json.loads(entry.read_text())["trial_id"] == trial_id
    return sorted(passed)


def test_a_crashed_worker_keeps_the_trials_and_entries_of_its_passed_items(project, monkeypatch, tmp_path_factory):
    temp = tmp_path_factory.mktemp("temp")
    monkeypatch.setenv("TMPDIR", str(temp))  # where workers stage their trials
    make_project(project, "os._exit(1)")
    junit = project.root / "junit.xml"
    saved = project.run("-n", "1", "--nw-save-baseline=gate", f"--junitxml={junit}")
    # experiments and fixture tests before the crash, and after it on the worker that replaced it
    assert assert_passed_items_kept(project, junit, "gate") == [
        "experiments.a::experiment", "experiments.b::experiment", "test_a_fixture::test_call_trial",
        "test_a_fixture::test_setup_trial", "zlater.c::experiment", "zlater.d::experiment"]
    saved.stdout.fnmatch_lines(["*worker 'gw0' crashed while running 'test_b_crash.py::test_crash'*",
                                "saved 6 entries to baseline 'gate' in nw-baselines/gate/"])
    saved.assert_outcomes(passed=7, failed=1)  # with the test that finds one staging folder after the crash
    # each once, numbered in the order the worker and then its replacement recorded them
    assert [(t["experiment"], t["argv"]) for t in project.trials()] == [
        ("experiments/a.py", []), ("experiments/b.py", []), ("sweep/train.py", ["--lr", "0.1"]),
        ("sweep/train.py", ["--lr", "0.2"]), ("zlater/c.py", []), ("zlater/d.py", [])]
    assert not list(temp.glob("nwtrials-*"))  # the crashed worker's staging folder went too

    gate = project.run("-n", "2", "--nw-baseline=gate", "--deselect", "test_b_crash.py::test_crash",
                       "--deselect", "test_c_after.py::test_after_crash")
    gate.assert_outcomes(passed=6)
    gate.stdout.fnmatch_lines(["6 run, 6 matched, 0 changed, 0 new, 0 failed, 0 skipped, 0 missing"])
    # a crash while gating: every experiment counts as run and every entry as used
    crashed = project.run("-n", "1", "--nw-baseline=gate")
    crashed.stdout.fnmatch_lines(["6 run, 6 matched, 0 changed, 0 new, 0 failed, 0 skipped, 0 missing"])
    crashed.assert_outcomes(passed=7, failed=1)


def test_a_sigkilled_worker_not_replaced_keeps_its_trials(project, monkeypatch, tmp_path_factory):
    """Under -n 2 with --max-worker-restart=0 the session stops at the crash; what passed is kept."""
    monkeypatch.setenv("TMPDIR", str(tmp_path_factory.mktemp("temp")))
    make_project(project, "os.kill(os.getpid(), signal.SIGKILL)", one_worker=True)
    junit = project.root / "junit.xml"
    saved = project.run("-n", "2", "--max-worker-restart=0",
                        "--nw-save-baseline=gate", f"--junitxml={junit}")
    saved.stdout.fnmatch_lines(["*worker gw* crashed and worker restarting disabled*"])
    # everything before the crash ran on the killed worker, in collection order
    assert assert_passed_items_kept(project, junit, "gate") == [
        "experiments.a::experiment", "experiments.b::experiment",
        "test_a_fixture::test_call_trial", "test_a_fixture::test_setup_trial"]

    gate = project.run("-n", "2", "--nw-baseline=gate", "experiments", "test_a_fixture.py")
    gate.assert_outcomes(passed=4)
    gate.stdout.fnmatch_lines(["4 run, 4 matched, 0 changed, 0 new, 0 failed, 0 skipped, 0 missing"])


def test_a_crashed_worker_sending_bytes_keeps_its_trials(project):
    make_project(project, "os._exit(1)")
    project.pytester.makeconftest(OWN_FILESYSTEM)
    junit = project.root / "junit.xml"
    project.run("-n", "1", "--nw-save-baseline=gate", f"--junitxml={junit}", "--deselect",
                "test_c_after.py::test_after_crash").assert_outcomes(passed=6, failed=1)
    assert len(assert_passed_items_kept(project, junit, "gate")) == 6


@pytest.mark.parametrize("workers", [(), ("-n", "1")], ids=["no workers", "one worker"])
def test_no_item_passes_whose_trial_cannot_be_recorded(project, workers):
    """With or without workers: the store's trials folder is taken by a file, so no trial fits."""
    project.experiment("a.py", EXPERIMENT.format(value=1))
    (project.root / ".nwtrials").mkdir()
    (project.root / ".nwtrials" / "trials").write_text("not a folder")
    result = project.run(*workers, "--nw-save-baseline=gate")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*experiments/a.py* ran, but its trial could not be written to *"])
    assert not (project.root / "nw-baselines" / "gate" / entry_path("experiments/a.py", ())).exists()
