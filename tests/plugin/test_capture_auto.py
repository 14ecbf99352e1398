"""``--nw-capture=auto``, the default: a gate runs without capture and reruns under fine capture
only when a value differs or the run fails; saving, strict and first runs capture in full."""
from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest
from conftest import record_file
from nbformat.v4 import new_code_cell, new_notebook

BEFORE = """
from pytest_nwtrials import tag
rate = 3
total = rate * 2
tag("total", total)
"""
AFTER = BEFORE.replace("rate = 3", "rate = 4")
# says in runs.log whether each run was under capture (noWorkflow's collector is loaded; a run
# without capture is a fresh interpreter that never imports it)
LOGGED = """
import sys
with open("../runs.log", "a") as log:
    log.write("captured\\n" if "noworkflow.now.collection" in sys.modules else "plain\\n")
"""

# its value flips between runs: each run reads and advances a counter in the project folder
FLIPS = """
from pathlib import Path
from pytest_nwtrials import tag
counter = Path(__file__).parent.parent / "counter.txt"
count = int(counter.read_text()) if counter.exists() else 0
counter.write_text(str(count + 1))
tag("parity", count % {period})
"""


def nwtrials(project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_nwtrials.cli", *args], cwd=project.root,
                          capture_output=True, text=True, timeout=120)


def failure_report(result) -> str:
    """The item's failure section, cut before pytest's short summary (which repeats it under CI)."""
    text = result.stdout.str()
    return text.split("short test summary info")[0].split("= FAILURES =")[1]


def why(result, trial_name: str) -> str:
    """The "Why it changed" section of the failure report, with the new trial's name left out."""
    section = failure_report(result).split("Why it changed:")[1].split("To accept")[0]
    return section.replace(trial_name, "NEW")


def records(project) -> list:
    return sorted((project.root / ".nwtrials" / "records").glob("*.json.gz"))


def test_changed_value_is_rerun_under_fine_capture_and_explained_as_under_fine(project):
    project.experiment("calc.py", BEFORE)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    project.experiment("calc.py", AFTER + LOGGED)
    auto = project.run("--nw-baseline=base", "--nw-capture=auto")
    auto.assert_outcomes(failed=1)
    assert (project.root / "runs.log").read_text().split() == ["plain", "captured"]
    fine = project.run("--nw-baseline=base", "--nw-capture=fine")
    fine.assert_outcomes(failed=1)
    saved, explained, under_fine = project.trials()  # the run without capture is not kept
    assert explained["capture"] == "fine" and explained["record"]
    assert explained["tags"]["total"]["value"] == 8
    assert "root cause: calc.py:3" in why(auto, explained["name"])
    assert why(auto, explained["name"]) == why(fine, under_fine["name"])
    assert "run without capture" not in failure_report(auto)  # both runs agreed: nothing to say


def test_matching_run_records_a_trial_without_provenance_and_show_and_diff_say_so(project):
    project.experiment("calc.py", BEFORE)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    kept = records(project)
    result = project.run("--nw-baseline=base", "-rA")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*trial2 has no provenance: it ran without capture under --nw-capture=auto*",
                                 "*trial2  experiments/calc.py  matched*"])
    saved, matched = project.trials()
    assert saved["capture"] == "fine" and saved["record"]
    assert matched["capture"] == "auto" and "record" not in matched and matched["provenance"] == ""
    assert matched["tags"]["total"]["value"] == 6 and records(project) == kept
    shown = nwtrials(project, "show", "trial2")
    assert shown.returncode == 0, shown.stderr
    assert "trial2 has no provenance: it ran without capture under --nw-capture=auto" in shown.stdout
    diff = nwtrials(project, "diff", "trial1", "trial2")
    assert diff.returncode == 0, diff.stderr
    assert "trial2 matches trial1" in diff.stdout and "trial2 has no provenance" in diff.stdout

    from pytest_nwtrials import noworkflow as nw

    store = project.root / ".nwtrials"
    api_diff = nw.trial_diff("trial1", "trial2", store=store)
    assert api_diff.empty and any("trial2 has no provenance" in note for note in api_diff.notes)
    assert "trial2 has no provenance" in api_diff._repr_html_()
    with pytest.raises(LookupError, match="trial2 has no provenance: it ran without capture"):
        nw.backward_deps("total", trial="trial2", store=store)


def test_saving_a_baseline_a_first_run_and_latest_capture_in_full(project):
    project.ini("nw_capture = auto")
    project.experiment("calc.py", BEFORE + LOGGED)
    project.run("-rA").assert_outcomes(passed=1)  # no baseline: a later gate may explain against it
    project.run("--nw-save-baseline=base", "-rA").assert_outcomes(passed=1)
    latest = project.run("--nw-baseline=latest", "-rA")  # this trial is the next run's baseline
    latest.assert_outcomes(passed=1)
    latest.stdout.fnmatch_lines(["*captured in full under --nw-capture=auto: --nw-baseline=latest makes*"])
    first, saved, gated = project.trials()
    assert first["capture"] == saved["capture"] == gated["capture"] == "fine"
    assert {p.name for p in records(project)} == {t["record"] for t in (first, saved, gated)}
    entry = project.baseline_entry("base", "experiments/calc.py")
    assert entry["trial"] == saved["name"]
    assert (project.root / "runs.log").read_text().split() == ["captured"] * 3  # no plain run first


def test_strict_operations_need_full_capture_and_say_so(project):
    project.experiment("calc.py", BEFORE)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    result = project.run("--nw-baseline=base", "--nw-ops=strict", "-rA")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*captured in full under --nw-capture=auto: --nw-ops=strict compares "
                                 "operation sequences, which only full capture records*"])
    assert project.trials()[-1]["capture"] == "fine" and project.trials()[-1]["record"]


def test_fine_coarse_and_off_keep_their_meaning_on_a_gate(project):
    project.ini("nw_capture = auto")  # the command line wins over it
    project.experiment("calc.py", BEFORE)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    for mode in ("fine", "coarse", "off", "auto"):
        project.run("--nw-baseline=base", f"--nw-capture={mode}").assert_outcomes(passed=1)
    modes = [(t["capture"], "record" in t) for t in project.trials()[1:]]
    assert modes == [("fine", True), ("coarse", True), ("off", False), ("auto", False)]


def test_runs_that_disagree_are_reported_as_variation_not_as_a_cause(project):
    project.experiment("flips.py", FLIPS.format(period=2))
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)  # count 0: parity 0
    result = project.run("--nw-baseline=base")  # count 1 without capture, 2 under fine: it matches
    result.assert_outcomes(failed=1)
    report = failure_report(result)
    assert "its run without capture differed from baseline 'base'" in report
    assert "its rerun under fine capture (trial2) matched it" in report
    assert "parity: changed: 0 -> 1" in report
    assert "evidence that the experiment varies from run to run" in report
    assert "not the cause" in report and "--nw-repeat=3" in report
    assert [t["capture"] for t in project.trials()] == ["fine", "fine"]


def test_runs_that_both_differ_differently_add_the_evidence_to_the_explanation(project):
    project.experiment("flips.py", FLIPS.format(period=3))
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)  # count 0: parity 0
    result = project.run("--nw-baseline=base")  # count 1 (parity 1), then 2 under fine (parity 2)
    result.assert_outcomes(failed=1)
    report = failure_report(result)
    assert "parity: changed: 0 -> 2" in report  # the explained trial is the run under capture
    assert "The run without capture and its rerun under fine capture (trial2) gave different values:" in report
    assert "parity: changed: 1 -> 2" in report


def test_a_failing_run_is_rerun_under_fine_capture(project):
    project.experiment("calc.py", BEFORE)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    project.experiment("calc.py", BEFORE + LOGGED + "raise ValueError('bad input')\n")
    result = project.run("--nw-baseline=base", "--nw-capture=auto")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ValueError: bad input*"])
    failed = project.trials()[-1]
    assert len(project.trials()) == 2 and failed["capture"] == "fine" and failed["record"]
    assert failed["error"]["type"] == "ValueError"
    assert (project.root / "runs.log").read_text().split() == ["plain", "captured"]


def notebook(project, *cells: str) -> None:
    nb = new_notebook(cells=[new_code_cell(source) for source in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, project.root / "experiments" / "calc.ipynb")


def test_notebooks_under_auto(project):
    project.ini(experiments="experiments/*.ipynb")
    (project.root / "experiments").mkdir()
    notebook(project, "from pytest_nwtrials import tag\nrate = 3", "tag('total', rate * 2)")
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    project.run("--nw-baseline=base").assert_outcomes(passed=1)
    notebook(project, "from pytest_nwtrials import tag\nrate = 4", "tag('total', rate * 2)")
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*total: changed: 6 -> 8*", "*root cause: calc.ipynb, cell 1*"])
    saved, matched, changed = project.trials()
    assert (matched["capture"], matched.get("record")) == ("auto", None)
    assert changed["capture"] == "fine" and changed["record"]


def test_auto_under_xdist_sends_the_trials_it_keeps(project):
    project.experiment("same.py", BEFORE)
    project.experiment("moved.py", BEFORE)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=2)
    project.experiment("moved.py", AFTER)
    result = project.run("--nw-baseline=base", "--nw-capture=auto", "-n", "2")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*root cause: moved.py:3*"])
    gated = {t["experiment"]: t for t in project.trials()[2:]}
    assert len(project.trials()) == 4  # the run without capture of moved.py is not kept
    same, moved = gated["experiments/same.py"], gated["experiments/moved.py"]
    assert (same["capture"], same.get("record")) == ("auto", None)
    assert moved["capture"] == "fine" and record_file(project.root / ".nwtrials", moved).is_file()


def test_an_experiment_that_uses_noworkflow_itself_is_captured_in_full_from_the_start(project):
    # as the noWorkflow tutorial's notebooks do: without capture `__noworkflow__` does not exist
    uses = BEFORE + LOGGED + 'tag("trial_id_known", bool(__noworkflow__.trial_id))\n'
    project.experiment("calc.py", uses)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    (project.root / "runs.log").unlink()
    result = project.run("--nw-baseline=base", "--nw-capture=auto", "-rA")
    result.assert_outcomes(passed=1)
    assert (project.root / "runs.log").read_text().split() == ["captured"]  # once, and captured
    result.stdout.fnmatch_lines(["*captured in full under --nw-capture=auto: calc.py uses noWorkflow itself "
                                 "(`__noworkflow__` or an import of noworkflow), which exists only under capture"])
    assert record_file(project.root / ".nwtrials", project.trials()[-1]).is_file()
