"""Notebook items that behave as users of nbmake expect: capture off, time limits that name the
cell, error outputs, exit(), notebooks in other languages, and failures of capture itself shown
with their traceback. Real capture kernels, run through pytest in a subprocess; several
notebooks share one run, and each assertion names its notebook.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook


def notebook(project, name: str, *cells: str, tags: dict[int, list[str]] | None = None,
             metadata: dict | None = None) -> None:
    nb = new_notebook()
    for index, source in enumerate(cells):
        cell = new_code_cell(source)
        if tags and index in tags:
            cell.metadata["tags"] = tags[index]
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.update(metadata or {})
    path = project.root / "experiments" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def report_of(result: pytest.RunResult, experiment: str) -> str:
    """The failure report of one item (up to the next one, or the end of the failures)."""
    text = result.stdout.str().split("short test summary info")[0]
    start = text.index(f"experiment experiments/{experiment} _")
    end = text.find("\n_____", start + 1)
    return text[start:end if end != -1 else len(text)]


def trial_of(project, experiment: str) -> dict:
    [trial] = [t for t in project.trials() if t["experiment"] == f"experiments/{experiment}"]
    return trial


@pytest.fixture
def kernels(tmp_path, monkeypatch):
    """Two Jupyter kernels on this Python: `slowstart` takes 2 s more to start, `broken` cannot
    import ipykernel. The pytest subprocess inherits JUPYTER_PATH."""
    root = tmp_path / "jupyter-env"
    slow, broken = root / "slow-site", root / "broken-site"
    (slow).mkdir(parents=True)
    (slow / "sitecustomize.py").write_text("import time\ntime.sleep(2)\n", encoding="utf-8")
    (broken / "ipykernel").mkdir(parents=True)
    (broken / "ipykernel" / "__init__.py").write_text("raise ImportError('ipykernel is broken here')\n",
                                                      encoding="utf-8")
    for name, site in (("slowstart", slow), ("broken", broken)):
        folder = root / "jupyter" / "kernels" / name
        folder.mkdir(parents=True)
        (folder / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": name, "language": "python", "env": {"PYTHONPATH": str(site)},
        }), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(root / "jupyter"))


def test_time_limits_count_from_the_first_cell_and_name_the_cell(project, kernels):
    # the kernel takes 2 s more to start, more than --nw-timeout: only the cells' time counts
    project.ini("nw_cell_timeout = 0.4\n", experiments="experiments/*.ipynb")
    notebook(project, "percell.ipynb", "x = 1", "import time\ntime.sleep(30)", "y = 2")
    # passes only if the kernel's start is not counted, and the notebook's own per-cell limit wins
    # over the ini's (0.4 s) for that notebook
    notebook(project, "own_limit.ipynb", "import time\ntime.sleep(0.8)", metadata={"execution": {"timeout": 20}})
    notebook(project, "whole.ipynb", "x = 1", "import time\ntime.sleep(30)", metadata={"execution": {"timeout": -1}})
    result = project.run("--nw-kernel=slowstart", "--nw-timeout=1.6")
    result.assert_outcomes(passed=1, failed=2)
    assert {t["experiment"]: t["status"] for t in project.trials()} == {
        "experiments/own_limit.ipynb": "finished",
        "experiments/percell.ipynb": "timeout", "experiments/whole.ipynb": "timeout"}
    percell = report_of(result, "percell.ipynb")
    assert ("percell.ipynb was stopped: cell 2 (`import time`, ...) ran longer than 0.4 s, the limit of one "
            "cell (ini nw_cell_timeout)") in percell
    assert "    time.sleep(30)" in percell and "raise ini nw_cell_timeout" in percell
    whole = report_of(result, "whole.ipynb")
    assert ("whole.ipynb timed out after 1.6 s and was stopped while cell 2 (`import time`, ...) was running, "
            "with the processes it started (counted from the first cell)") in whole
    assert "raise --nw-timeout or ini nw_timeout" in whole


def test_bad_cell_timeout_is_a_usage_error(project):
    project.ini("nw_cell_timeout = soon\n", experiments="experiments/*.ipynb")
    result = project.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini nw_cell_timeout='soon' is not a number of seconds*"])
    project.ini("nw_other_kernels = maybe\n", experiments="experiments/*.ipynb")
    result = project.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini nw_other_kernels='maybe' is not one of skip, fail*"])


EXIT_CODE = """\
from pytest_nwtrials import tag
tag('before', 1)
---
import sys
sys.exit({code})
---
tag('after', 2)
"""


def test_error_outputs_exit_and_other_languages(project):
    project.ini(experiments="experiments/*.ipynb\n    experiments/*.py")
    bad_display = "class Bad:\n    def _repr_html_(self):\n        raise ValueError('no html')\ndisplay(Bad())"
    notebook(project, "display.ipynb", bad_display, "z = 1")
    notebook(project, "display_allowed.ipynb", bad_display, "from pytest_nwtrials import tag\ntag('z', 1)",
             tags={0: ["raises-exception"]})
    for code in (0, 3):
        cells = EXIT_CODE.format(code=code).split("---\n")
        notebook(project, f"exit{code}.ipynb", *cells)
        project.experiment(f"exit{code}.py", "".join(cells))  # the same code as a script
    notebook(project, "quits.ipynb", "from pytest_nwtrials import tag\ntag('before', 1)",
             "exit()\ntag('rest_of_cell', 1)", "tag('after', 2)")
    r_metadata = {"kernelspec": {"name": "ir", "display_name": "R", "language": "R"}, "language_info": {"name": "R"}}
    notebook(project, "analysis_r.ipynb", "x <- c(1, 2)\nprint(mean(x))", metadata=r_metadata)
    result = project.run("-rs")
    result.assert_outcomes(passed=4, failed=3, skipped=1)
    out = result.stdout.str()

    # a display whose rendering raises fails its cell, unless the cell is tagged raises-exception
    display = report_of(result, "display.ipynb")
    assert "display.ipynb raised ValueError: no html" in display
    assert "The cell ran, but one of its outputs failed to show" in display
    assert 'File "display.ipynb", cell 1, line 3, in _repr_html_' in display
    assert "IPython" not in display.split("Captured")[0]
    assert trial_of(project, "display_allowed.ipynb")["tags"]["z"]["value"] == 1

    # exit() and sys.exit() end the notebook; the status decides, as for the same script
    for name in ("exit0.ipynb", "exit0.py", "quits.ipynb"):
        trial = trial_of(project, name)
        assert trial["status"] == "finished" and trial["exit_code"] == 0, name
        assert set(trial["tags"]) == ({"before", "rest_of_cell"} if name == "quits.ipynb" else {"before"}), name
    assert "experiments/exit0.ipynb: the notebook called sys.exit(0) in cell 2; cell 3 was not run" in out
    assert "experiments/quits.ipynb: the notebook called exit() in cell 2; cell 3 was not run" in out
    for name in ("exit3.ipynb", "exit3.py"):
        assert trial_of(project, name)["exit_code"] == 3, name
        assert f"experiments/{name} exited with status 3" in report_of(result, name), name
    assert "The notebook called sys.exit(3) in cell 2; cell 3 was not run." in report_of(result, "exit3.ipynb")

    # a notebook in another language is skipped (the default) with the reason, or failed
    assert "this notebook's kernel is R (ir)" in out.split("short test summary info")[1]
    assert "NameError" not in out
    project.ini("nw_other_kernels = fail\n", experiments="experiments/*.ipynb")
    failed = project.run("experiments/analysis_r.ipynb")
    failed.assert_outcomes(failed=1)
    assert "experiments/analysis_r.ipynb: this notebook's kernel is R (ir)" in report_of(failed, "analysis_r.ipynb")


PLAIN = """\
import sys
from pytest_nwtrials import tag
x = 3
now_tag_variable('x', x)
now_tag_cell('prepare')
---
total = x + 4
tag('y', total)
tag('noworkflow_loaded', 'noworkflow' in sys.modules)
"""


def test_capture_off_runs_a_notebook_without_noworkflow(project):
    project.ini("nw_tags = total\n", experiments="experiments/*.ipynb\n    experiments/*.py")
    cells = PLAIN.split("---\n")
    # in a notebook, now_tag_variable returns the value, as noWorkflow's does
    notebook(project, "plain.ipynb", *cells, "tag('returned', now_tag_variable('w', 5))")
    script = project.experiment("plain.py", "now_tag_cell = lambda name: None\n" + "".join(cells))
    result = project.run("--nw-capture=off")
    result.assert_outcomes(passed=2)
    notebook_trial, script_trial = trial_of(project, "plain.ipynb"), trial_of(project, "plain.py")
    values = {name: doc["value"] for name, doc in notebook_trial["tags"].items()}
    assert values == {"x": 3, "y": 7, "total": 7, "noworkflow_loaded": False, "w": 5, "returned": 5}
    assert {name: doc["value"] for name, doc in script_trial["tags"].items()} == {
        name: value for name, value in values.items() if name not in ("w", "returned")}
    assert notebook_trial["status"] == "finished" and notebook_trial["inputs"]["cell_tags"] == {"prepare": 1}
    # the values plain Python gives for the same code
    plain = subprocess.run([sys.executable, "-c", "import builtins\nbuiltins.now_tag_variable = lambda n, v: v\n"
                            + script.read_text() + "\nprint(x, total)"],
                           capture_output=True, text=True, cwd=project.root, check=True)
    assert plain.stdout.split() == ["3", "7"]


BREAK_STORE = """\
from noworkflow.now.collection.prov_execution.collector import Collector
def refuse(self, *args, **kwargs):
    raise RuntimeError('database refused')
Collector.store = refuse
"""


def test_failures_of_capture_show_their_traceback(project, kernels):
    project.ini(experiments="experiments/*.ipynb")
    notebook(project, "breaks_capture.ipynb", BREAK_STORE, "z = 1")
    result = project.run("experiments/breaks_capture.ipynb")
    result.assert_outcomes(failed=1)
    report = report_of(result, "breaks_capture.ipynb").split("Captured")[0]
    assert "noWorkflow failed while storing cell 1: RuntimeError: database refused" in report
    assert "Traceback (most recent call last):" in report and "in after_cell" in report
    assert 'File "breaks_capture.ipynb", cell 1, line 3, in refuse' in report
    assert "ipykernel" not in report and "asyncio" not in report  # cut to capture's frames

    notebook(project, "fine.ipynb", "x = 1")
    broken = project.run("--nw-kernel=broken", "experiments/fine.ipynb")
    broken.assert_outcomes(failed=1)
    report = report_of(broken, "fine.ipynb").split("Captured")[0]
    assert "did not start" in report and "Traceback (most recent call last):" in report
    assert "ImportError: ipykernel is broken here" in report
    assert textwrap.dedent("""\
        Traceback (most recent call last):
          ...
          File \"""").strip() in report and "pytest_nwtrials/capture/kernel.py" in report


# -- the pure rules behind the items ----------------------------------------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pytest_nwtrials.capture.notebook_limits import limits_for, not_run_text, other_language


@given(raw=st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
       ini=st.one_of(st.none(), st.floats(min_value=0.1, max_value=1e6)))
def test_a_cell_limit_is_a_positive_number_of_seconds_or_none(raw, ini):
    nb = new_notebook(metadata={"execution": {"timeout": raw}})
    limits = limits_for(nb, 600.0, ini)
    assert limits.cell is None or (limits.cell > 0 and limits.cell != float("inf"))
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and 0 < raw < float("inf"):
        assert (limits.cell, limits.cell_source) == (float(raw), "the notebook's metadata execution.timeout")
    elif raw is None or raw == -1:
        assert limits.cell is None  # the notebook asks for no cell limit, as in nbclient
    else:
        assert limits.cell == ini
    assert limits_for(new_notebook(), 600.0, ini).cell == ini


def test_cells_left_unrun_and_languages():
    nb = new_notebook(cells=[new_code_cell("a"), new_code_cell("exit()"), nbformat.v4.new_markdown_cell("m"),
                             new_code_cell("b"), new_code_cell("c")])
    assert not_run_text(nb, 2) == "cells 4-5 were not run"
    assert not_run_text(nb, 4) == "cell 5 was not run"
    assert not_run_text(nb, 5) == "it was the last code cell"


@pytest.mark.parametrize("metadata, language", [
    ({"kernelspec": {"name": "python3", "display_name": "Py", "language": "python"}}, None),
    ({"language_info": {"name": "python"}}, None),
    ({}, None),
    ({"kernelspec": {"name": "ir", "display_name": "R", "language": "R"}}, "R (ir)"),
    ({"language_info": {"name": "julia"}}, "julia"),
])
def test_other_language_reads_the_kernelspec_then_the_language_info(tmp_path, metadata, language):
    path = tmp_path / "nb.ipynb"
    nbformat.write(new_notebook(metadata=metadata), path)
    why = other_language(path)
    assert (why is None) if language is None else f"this notebook's kernel is {language}:" in why
