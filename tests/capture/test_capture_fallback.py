"""The safety net: fine capture failing inside noWorkflow reruns the experiment with coarse capture.

noWorkflow is made to fail in a real way: the experiment itself replaces a method of
noWorkflow's collector that only fine capture calls (`Collector._operation`, run after each
binary operation) by another of its methods (`_dict`), which then fails inside noWorkflow's own
frame with "'DependencyAware' object has no attribute 'items'" (the fault noWorkflow 2.1.3
shows for a lambda inside a list literal). Coarse capture never calls it, and plain Python has
no collector to patch. Each experiment appends a line to a file per run, so the number of runs
is checked, not guessed.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

INJECT = """
import sys
collector = sys.modules.get("noworkflow.now.collection.prov_execution.collector")
if collector is not None:  # under capture: break what fine capture alone calls
    collector.Collector.{method} = {replacement}
"""

FAULTY = """
with open("../runs-{name}.txt", "a") as runs:
    runs.write("run\\n")
{inject}
total = 1 + 2
scaled = total * 10  # coarse capture rewrites operations only inside a call's arguments
from pytest_nwtrials import tag
tag("total", scaled)
print("RESULT", scaled)
"""

NOTE = ("fine capture failed in noWorkflow at {file}:{line} (AttributeError: 'DependencyAware' object has "
        "no attribute 'items'); recorded with coarse capture")


def fine_only_fault(name: str) -> str:
    return FAULTY.format(name=name, inject=INJECT.format(method="_operation", replacement="collector.Collector._dict"))


def runs(project, name: str) -> int:
    path = project.root / f"runs-{name}.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


def summary_part(result) -> str:
    """The output before pytest's short summary, which repeats failure messages under CI=true."""
    return result.stdout.str().split("short test summary info")[0]


def plain_result(script) -> int:
    done = subprocess.run([sys.executable, script.name], cwd=script.parent, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split("RESULT ")[1])


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_a_fault_inside_noworkflow_is_recorded_with_coarse_capture_and_said(project, xdist):
    script = project.experiment("train.py", fine_only_fault("train"))
    line = fine_only_fault("train").splitlines().index("total = 1 + 2") + 1
    note = NOTE.format(file="train.py", line=line)

    result = project.run("--nw-save-baseline=base", "--nw-json=report.json", "--nw-report=report.html",
                         "-rA", *xdist)
    result.assert_outcomes(passed=1)
    assert runs(project, "train") == 2  # fine, then coarse: no more
    assert f"note: experiments/train.py: {note}" in summary_part(result)
    assert note in result.stdout.str().split("PASSES")[1]  # the item's own report (-rA)

    trial = project.trials()[-1]
    assert (trial["capture"], trial["fallback"], trial["status"]) == ("coarse", note, "finished")
    assert trial["tags"]["total"]["value"] == plain_result(script) == 30
    report = json.loads((project.root / "report.json").read_text())
    assert report["experiments"][0]["notes"] == [f"experiments/train.py: {note}"]
    html = (project.root / "report.html").read_text()
    assert note.replace("'", "&#x27;") in html

    shown = subprocess.run([sys.executable, "-m", "pytest_nwtrials.cli", "show", trial["name"]],
                           cwd=project.root, capture_output=True, text=True)
    assert "capture:    coarse" in shown.stdout and f"fallback:   {note}" in shown.stdout, shown.stderr

    # the gate under fine capture: the coarse trial is compared with the baseline saved from a coarse trial
    gated = project.run("--nw-baseline=base", "--nw-capture=fine", *xdist)
    gated.assert_outcomes(passed=1)
    assert "1 matched" in summary_part(gated)
    assert runs(project, "train") == 5  # and one more: the plain python run above
    # under auto, the default, a gate that matches runs once, without capture: nothing to fall back from
    gated = project.run("--nw-baseline=base", *xdist)
    gated.assert_outcomes(passed=1)
    assert "1 matched" in summary_part(gated) and "recorded with coarse capture" not in summary_part(gated)
    assert runs(project, "train") == 6


def test_a_notebook_cell_failing_inside_noworkflow_is_recorded_with_coarse_capture(project):
    nbformat = pytest.importorskip("nbformat")
    from nbformat.v4 import new_code_cell, new_notebook

    first, second = fine_only_fault("nb").split("total = 1 + 2")
    notebook = new_notebook(cells=[new_code_cell(first.strip()), new_code_cell("total = 1 + 2" + second)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (project.root / "experiments").mkdir()
    nbformat.write(notebook, project.root / "experiments" / "train.ipynb")
    project.ini(experiments="experiments/*.ipynb")

    result = project.run()
    result.assert_outcomes(passed=1)
    note = ("fine capture failed in noWorkflow at train.ipynb, cell 2, line 1 (AttributeError: "
            "'DependencyAware' object has no attribute 'items'); recorded with coarse capture")
    assert f"note: experiments/train.ipynb: {note}" in summary_part(result)
    trial = project.trials()[-1]
    assert (trial["capture"], trial["fallback"], trial["tags"]["total"]["value"]) == ("coarse", note, 30)
    assert runs(project, "nb") == 2


OWN_ERRORS = {
    # raised in the experiment's frame
    "raises": "def check():\n    raise ValueError('bad input')\ncheck()\n",
    # raised by operations noWorkflow performs on the experiment's behalf, in its own frames
    "subscript": "d = {}\nd['missing']\n",
    "call": "int('x')\n",
    "attribute": "class A:\n    pass\nA().missing\n",
    "open": "open('no-such-file.csv')\n",
    "loop": "for x in 5:\n    pass\n",
}


def test_the_experiments_own_exceptions_are_never_rerun(project):
    for name, code in OWN_ERRORS.items():
        project.experiment(f"{name}.py", f"with open('../runs-{name}.txt', 'a') as runs:\n    runs.write('run\\n')\n{code}")
    result = project.run()
    result.assert_outcomes(failed=len(OWN_ERRORS))
    assert {name: runs(project, name) for name in OWN_ERRORS} == dict.fromkeys(OWN_ERRORS, 1)
    assert "capture failed in noWorkflow" not in result.stdout.str()
    assert {t["capture"] for t in project.trials()} == {"fine"}
    assert not any("fallback" in t for t in project.trials())


def test_a_fault_of_noworkflow_under_coarse_capture_too_reports_the_first_and_stops(project):
    # fine and coarse capture both call `eval_dep` (for each evaluation and each call)
    code = FAULTY.format(name="both", inject=INJECT.format(method="eval_dep", replacement="None"))
    project.experiment("both.py", code)
    line = code.splitlines().index("total = 1 + 2") + 1

    result = project.run()
    result.assert_outcomes(failed=1)
    assert runs(project, "both") == 2
    failure = summary_part(result)
    assert f"fine capture failed in noWorkflow at both.py:{line} (TypeError" in failure
    assert "the rerun with coarse capture failed in noWorkflow too" in failure
    trial = project.trials()[-1]
    assert (trial["capture"], trial["status"]) == ("fine", "failed")
    assert "the fine-capture run is recorded" in trial["fallback"]
