"""Notebooks as experiment items: run in a real capture kernel, gated like scripts."""
from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def notebook(project, name: str, *cells, counts=None, tags=None) -> None:
    nb = new_notebook()
    for index, source in enumerate(cells):
        if source.startswith("# md"):
            nb.cells.append(new_markdown_cell(source[4:]))
            continue
        cell = new_code_cell(source)
        if counts:
            cell.execution_count = counts[index]
        if tags and index in tags:
            cell.metadata["tags"] = tags[index]
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = project.root / "experiments" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_notebook_passes_against_its_baseline_and_names_the_changed_cell(project):
    project.ini(experiments="experiments/*.ipynb")
    cells = ["# md # Training", "from pytest_nwtrials import tag\nimport numpy as np", "LR = 0.5\nSTEPS = 3",
             "w = np.ones(3)\nfor _ in range(STEPS):\n    w = w * (1 - LR)", "tag('w_sum', float(w.sum()))"]
    notebook(project, "train.ipynb", *cells)
    project.run("--nw-save-baseline=ref").assert_outcomes(passed=1)
    project.run("--nw-baseline=ref").assert_outcomes(passed=1)
    cells[2] = "LR = 0.25\nSTEPS = 3"
    notebook(project, "train.ipynb", *cells)
    result = project.run("--nw-baseline=ref")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*w_sum: changed: 0.375 -> 1.265625*",
        "*root cause: train.ipynb, cell 3, line 1  LR = 0.5 -> 0.25*",
    ])
    assert "input file experiments/train.ipynb" not in result.stdout.str()


def test_raising_cell_fails_with_cell_source_and_traceback(project):
    project.ini(experiments="experiments/*.ipynb")
    notebook(project, "bad.ipynb", "x = 1", "# md notes", "def load():\n    return {}['missing']\ny = load()",
             tags=None)
    notebook(project, "allowed.ipynb", "raise ValueError('expected')", "z = 2", tags={0: ["raises-exception"]})
    result = project.run()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*experiments/bad.ipynb raised KeyError: 'missing'*",
        "cell 3:",
        "    def load():",
        "*cell 3, line 2, in load*",
    ])


def test_invalid_notebook_and_missing_kernel_fail_with_a_message(project):
    project.ini(experiments="experiments/*.ipynb")
    notebook(project, "good.ipynb", "x = 1")
    (project.root / "experiments" / "broken.ipynb").write_text("{not json")
    result = project.run()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*broken.ipynb*not valid JSON*"])
    assert "Traceback" not in result.stdout.str()
    missing = project.run("--nw-kernel=no-such-kernel", "experiments/good.ipynb")
    missing.assert_outcomes(failed=1)
    missing.stdout.fnmatch_lines(["*no-such-kernel*"])
    assert "available" in missing.stdout.str()


def test_out_of_order_saved_notebook_is_reported_and_fails_strict(project):
    project.ini(experiments="experiments/*.ipynb")
    notebook(project, "messy.ipynb", "a = 1", "b = 2", "c = a + b", counts=[1, 3, 2])
    result = project.run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*note: experiments/messy.ipynb: saved outputs came from the order 1, 3, 2*"])
    strict = project.run("--nw-ops=strict")
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(["*saved outputs came from the order 1, 3, 2*", "*--nw-ops=strict fails a notebook*"])


def test_notebooks_and_scripts_under_xdist(project):
    notebook(project, "one.ipynb", "from pytest_nwtrials import tag\ntag('x', 1)")
    notebook(project, "two.ipynb", "from pytest_nwtrials import tag\ntag('x', 2)")
    project.experiment("three.py", "from pytest_nwtrials import tag\ntag('x', 3)\n")
    project.ini(experiments="experiments/*.ipynb\n    experiments/*.py")
    project.run("-n", "2", "--nw-save-baseline=ref").assert_outcomes(passed=3)
    project.run("-n", "2", "--nw-baseline=ref").assert_outcomes(passed=3)
    trials = project.trials()
    assert len(trials) == 6 and len({t["name"] for t in trials}) == 6
    assert {t["tags"]["x"]["value"] for t in trials} == {1, 2, 3}


def test_magics_and_now_tag_cell_work_in_an_item(project):
    project.ini(experiments="experiments/*.ipynb")
    notebook(project, "magics.ipynb",
             "%matplotlib inline\nimport matplotlib.pyplot as plt\nimport pandas as pd\nfrom pytest_nwtrials import tag",
             "now_tag_cell('prepare')\nframe = pd.DataFrame({'a': [1, 2, 3]})\nframe",
             "%time total = int(frame['a'].sum())",
             "%timeit -n 2 -r 1 sum(range(10))",
             "echoed = !echo hello\nplt.plot([1, 2, 3])\ntag('total', total)\ntag('echoed', echoed[0])")
    result = project.run()
    result.assert_outcomes(passed=1)
    [trial] = project.trials()
    assert trial["tags"]["total"]["value"] == 6 and trial["tags"]["echoed"]["value"] == "hello"
    assert trial["inputs"]["cell_tags"] == {"prepare": 2}


def test_a_hanging_notebook_is_stopped_at_the_timeout(project):
    project.ini(experiments="experiments/*.ipynb")
    notebook(project, "slow.ipynb", "x = 1", "import time\ntime.sleep(120)")
    result = project.run("--nw-timeout=20")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*experiments/slow.ipynb timed out after 20 s and was stopped*"])
    [trial] = project.trials()
    assert trial["status"] == "timeout"
