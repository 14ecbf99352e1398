"""Notebooks under capture: `run_notebook` against real capture kernels, on small notebooks.

The notebook runs in a kernel process of its own; this test process only drives it, so capture
never patches anything here. Each test builds its notebook with `nbformat.v4` in `tmp_path`.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

# notebook support needs these three; without them there is nothing here to test
for _module in ("nbformat", "nbclient", "ipykernel"):
    pytest.importorskip(_module, reason=f"notebook capture needs {_module} (ipykernel 7, nbclient, nbformat)")

import nbformat  # noqa: E402
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook  # noqa: E402

from pytest_nwtrials.values import codec as values
from pytest_nwtrials.capture.launch import RunRequest, run_experiment
from pytest_nwtrials.capture.notebook import (
    NotebookError, out_of_order_message, read_notebook, run_notebook, saved_execution_order)

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"


def code(source: str, *tags: str, execution_count: int | None = None):
    cell = new_code_cell(source, execution_count=execution_count)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def write_notebook(folder: Path, *cells, name: str = "nb.ipynb") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    nbformat.write(new_notebook(cells=list(cells)), path)
    return path


def request(path: Path, tmp_path: Path, timeout: float = 180) -> RunRequest:
    return RunRequest(path, (), tmp_path / "provenance", tmp_path / "blobs", path.stem, timeout)


def run(path: Path, tmp_path: Path, timeout: float = 180, kernel: str | None = None):
    return run_notebook(request(path, tmp_path, timeout), kernel=kernel)


def db(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "provenance" / ".noworkflow" / "db.sqlite")


def trial_status(tmp_path: Path, trial_id: str) -> str:
    with db(tmp_path) as conn:
        return conn.execute("SELECT status FROM trial WHERE id = ?", (trial_id,)).fetchone()[0]


def tag_value(result, tmp_path: Path, name: str):
    return values.decode(result.tags[name]["value"], values.BlobStore(str(tmp_path / "blobs")))


def alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie waiting to be reaped counts as gone)."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.is_dir() and Path("/proc/self").exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- a passing notebook ---------------------------------------------------------------------------

def test_passing_notebook_records_tags_and_a_finished_trial(tmp_path):
    path = write_notebook(
        tmp_path / "nb",
        new_markdown_cell("# A small experiment"),
        code("import numpy as np\nfrom pytest_nwtrials import tag"),
        code("weights = np.linspace(0.0, 1.0, 7)\nsmall = np.arange(3)"),
        code("tag('n', 7)\ntag('summary', {'mean': float(weights.mean()), 'name': 'lin'})\n"
             "tag('weights', weights)\ntag('small', small)"),
    )
    result = run(path, tmp_path)

    assert result.status == "finished", (result.error, result.internal_error, result.stderr)
    assert result.error is None and result.exit_code == 0
    assert set(result.tags) == {"n", "summary", "weights", "small"}
    assert result.tags["n"]["value"] == 7
    assert tag_value(result, tmp_path, "summary") == {"mean": 0.5, "name": "lin"}
    np.testing.assert_array_equal(tag_value(result, tmp_path, "weights"), np.linspace(0.0, 1.0, 7))
    np.testing.assert_array_equal(tag_value(result, tmp_path, "small"), np.arange(3))
    assert trial_status(tmp_path, result.trial_id) == "finished"
    # cells are numbered over all cells, markdown included
    assert sorted(result.notebook.cells) == [2, 3, 4]
    assert [result.notebook.cells[n]["execution_count"] for n in (2, 3, 4)] == [1, 2, 3]
    assert all(cell["status"] == "ok" for cell in result.notebook.cells.values())


def test_every_cell_is_a_code_block_of_the_trial(tmp_path):
    path = write_notebook(tmp_path / "nb", new_markdown_cell("intro"), code("x = 2"), code("y = x * 21"))
    result = run(path, tmp_path)

    assert result.status == "finished", (result.error, result.internal_error)
    with db(tmp_path) as conn:
        blocks = conn.execute(
            "SELECT name, type FROM code_component WHERE trial_id = ? AND type IN ('notebook', 'cell')"
            " ORDER BY id", (result.trial_id,)).fetchall()
        mult = conn.execute(
            "SELECT e.repr FROM evaluation e JOIN code_component cc"
            " ON cc.trial_id = e.trial_id AND cc.id = e.code_component_id"
            " WHERE e.trial_id = ? AND cc.type = 'mult'", (result.trial_id,)).fetchall()
    assert [kind for _, kind in blocks] == ["notebook", "cell", "cell"]
    assert blocks[1][0].endswith("nb.ipynb#cell2") and blocks[2][0].endswith("nb.ipynb#cell3")
    assert mult == [("42",)]


# -- failures point into the notebook ------------------------------------------------------------

def test_raising_cell_gives_cell_number_source_and_traceback(tmp_path):
    path = write_notebook(
        tmp_path / "nb",
        new_markdown_cell("# Failing"),
        code("def first_item(items):\n    return items[0]"),
        code("print('before')"),
        code("\n\nvalues = []\nhead = first_item(values)\n"),
        code("print('never runs')"),
    )
    result = run(path, tmp_path)

    assert result.status == "failed"
    error = result.error
    assert error["type"] == "IndexError"
    assert error["message"] == "list index out of range"
    assert error["cell"] == 4
    assert error["source"] == "\n\nvalues = []\nhead = first_item(values)\n"
    # the line is counted in the cell as saved, blank lines at its top included
    assert 'File "nb.ipynb", cell 4, line 4, in <module>' in error["traceback"]
    assert 'File "nb.ipynb", cell 2, line 2, in first_item' in error["traceback"]
    assert "noworkflow" not in error["traceback"] and "ipykernel_" not in error["traceback"]
    # the innermost line in the notebook: the function's body, in the cell that defined it
    assert error["location"] == {"file": str(path), "line": 2, "cell": 2}
    assert 5 not in result.notebook.cells  # the run stops at the failing cell
    assert result.notebook.cells[4]["status"] == "error"
    assert "before" in result.stdout and "never runs" not in result.stdout
    assert trial_status(tmp_path, result.trial_id) == "unfinished"


def test_syntax_error_points_at_the_cell_line(tmp_path):
    path = write_notebook(tmp_path / "nb", code("x = 1"), code("y = 2\nz = (1,\n"))
    result = run(path, tmp_path)

    assert result.status == "failed"
    assert result.error["type"] == "SyntaxError"
    assert result.error["cell"] == 2
    assert result.error["location"]["cell"] == 2
    assert 'File "nb.ipynb", cell 2, line' in result.error["traceback"]


def test_raises_exception_tag_allows_an_error_and_skip_execution_skips(tmp_path):
    path = write_notebook(
        tmp_path / "nb",
        code("from pytest_nwtrials import tag"),
        code("raise ValueError('expected here')", "raises-exception"),
        code("open('skipped.txt', 'w').close()\nraise SystemExit('must not run')", "skip-execution"),
        code("tag('after', 'ran')"),
    )
    result = run(path, tmp_path)

    assert result.status == "finished", (result.error, result.internal_error)
    assert result.tags["after"]["value"] == "ran"
    assert result.notebook.cells[2]["status"] == "expected-error"
    assert result.notebook.cells[2]["error"]["type"] == "ValueError"
    assert 3 not in result.notebook.cells
    assert not (path.parent / "skipped.txt").exists()
    assert trial_status(tmp_path, result.trial_id) == "finished"


# -- timeout: the whole notebook, and no process left behind -----------------------------------

def test_timeout_kills_the_kernel_and_what_it_started(tmp_path):
    path = write_notebook(
        tmp_path / "nb",
        code("import os, subprocess, time\nchild = subprocess.Popen(['sleep', '600'])\n"
             "with open('pids.txt', 'w') as out:\n    out.write(f'{os.getpid()} {child.pid}')"),
        code("time.sleep(600)"),
    )
    started = time.monotonic()
    result = run(path, tmp_path, timeout=12)

    assert result.status == "timeout" and result.timed_out
    assert time.monotonic() - started < 60
    assert result.notebook.running_cell == 2
    pids = [int(p) for p in (path.parent / "pids.txt").read_text().split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if alive(pid)]


DRIVER = """
import signal, sys
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)  # a shell may start us with SIGINT ignored
from pytest_nwtrials.capture.launch import RunRequest
from pytest_nwtrials.capture.notebook import run_notebook
path, out = Path(sys.argv[1]), Path(sys.argv[2])
run_notebook(RunRequest(path, (), out / "provenance", out / "blobs", "nb", 600))
"""


def test_ctrl_c_kills_the_kernel_and_what_it_started(tmp_path):
    path = write_notebook(
        tmp_path / "nb",
        code("import os, subprocess, time\nchild = subprocess.Popen(['sleep', '600'])\n"
             "with open('pids.txt', 'w') as out:\n    out.write(f'{os.getpid()} {child.pid}')"),
        code("time.sleep(600)"),
    )
    pid_file = path.parent / "pids.txt"
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(path), str(tmp_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            assert driver.poll() is None, driver.communicate()[0]
            time.sleep(0.1)
        pids = [int(p) for p in pid_file.read_text().split()]
        assert len(pids) == 2
        time.sleep(0.5)  # into the sleeping cell
        driver.send_signal(signal.SIGINT)
        output, _ = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()

    assert "KeyboardInterrupt" in output
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if alive(pid)]


# -- notebooks that cannot run --------------------------------------------------------------------

def test_invalid_json_is_a_notebook_error(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text('{"cells": [', encoding="utf-8")
    with pytest.raises(NotebookError, match=r"broken\.ipynb is not valid JSON"):
        run(path, tmp_path)


def test_nbformat_3_is_a_notebook_error(tmp_path):
    from nbformat import v3

    path = tmp_path / "old.ipynb"
    old = v3.new_notebook(worksheets=[v3.new_worksheet(cells=[v3.new_code_cell(input="x = 1")])])
    path.write_text(v3.writes_json(old), encoding="utf-8")
    with pytest.raises(NotebookError, match=r"old\.ipynb is nbformat 3, not 4: convert it with"):
        run(path, tmp_path)


@pytest.fixture
def kernels(tmp_path, monkeypatch) -> Path:
    """A Jupyter path with one kernelspec, `nwtest`, running this Python with an extra variable."""
    folder = tmp_path / "jupyter" / "kernels" / "nwtest"
    folder.mkdir(parents=True)
    (folder / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "nwtest", "language": "python", "env": {"NWTEST_KERNEL": "from-spec"},
    }), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return folder


def test_missing_kernel_names_it_and_the_available_ones(tmp_path, kernels):
    path = write_notebook(tmp_path / "nb", code("x = 1"))
    with pytest.raises(NotebookError) as info:
        run(path, tmp_path, kernel="no-such-kernel")
    message = str(info.value)
    assert "no Jupyter kernel named 'no-such-kernel'" in message
    assert "kernels available:" in message and "nwtest" in message


def test_kernel_whose_python_lacks_the_capture_kernel_says_so(tmp_path, kernels):
    python = tmp_path / "python-without-plugin"
    python.write_text("#!/bin/sh\necho \"$0: No module named pytest_nwtrials\" >&2\nexit 1\n", encoding="utf-8")
    python.chmod(0o755)
    folder = kernels.parent / "bare"
    folder.mkdir()
    (folder / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "bare", "language": "python"}), encoding="utf-8")
    path = write_notebook(tmp_path / "nb", code("x = 1"))

    with pytest.raises(NotebookError) as info:
        run(path, tmp_path, kernel="bare")
    message = str(info.value)
    assert "the capture kernel (kernel 'bare'" in message and "did not start" in message
    assert "No module named pytest_nwtrials" in message
    assert f"needs pytest-nwtrials, noworkflow and ipykernel installed for {python}" in message


def test_named_kernel_runs_the_capture_kernel_on_its_python(tmp_path, kernels):
    path = write_notebook(
        tmp_path / "nb",
        code("import os, sys\nfrom pytest_nwtrials import tag\n"
             "tag('python', sys.executable)\ntag('env', os.environ.get('NWTEST_KERNEL'))\n"
             "now_tag_cell('probe')"),
    )
    result = run(path, tmp_path, kernel="nwtest")

    assert result.status == "finished", (result.error, result.internal_error, result.stderr)
    assert result.tags["python"]["value"] == sys.executable
    assert result.tags["env"]["value"] == "from-spec"
    assert result.notebook.cell_tags == {"probe": 1}  # the capture kernel ran, not ipykernel's


# -- IPython syntax under capture ----------------------------------------------------------------

def test_magics_shell_plots_and_frames_work_under_capture(tmp_path):
    path = write_notebook(
        tmp_path / "nb",
        code("%matplotlib inline\nimport matplotlib\nimport matplotlib.pyplot as plt\nimport pandas as pd\n"
             "from pytest_nwtrials import tag\ntag('backend', matplotlib.get_backend())"),
        code("def bump(v):\n    return v + 1"),
        code("%time total = bump(41)\ntag('total', total)"),
        code("%timeit -n 3 -r 2 bump(1)"),
        code("%%time\nbumped = [bump(i) for i in range(3)]\ntag('bumped', bumped)"),
        code("args = 'from-the-notebook'\n!echo shell-says-hi {args}"),
        code("fig, ax = plt.subplots()\nax.plot([1, 2, 3], [1, 4, 9])\nplt.show()"),
        code("frame = pd.DataFrame({'a': [1, 2], 'b': [3.0, 4.0]})\nframe"),
        code("tag('rows', len(frame))"),
    )
    result = run(path, tmp_path)

    assert result.status == "finished", (result.error, result.internal_error, result.stderr)
    assert "inline" in result.tags["backend"]["value"]
    assert result.tags["total"]["value"] == 42
    assert tag_value(result, tmp_path, "bumped") == [1, 2, 3]
    assert result.tags["rows"]["value"] == 2
    assert "Wall time" in result.stdout
    assert "loops each" in result.stdout
    # `{name}` expands from the notebook, not from capture's frames (which have an `args`)
    assert "shell-says-hi from-the-notebook" in result.stdout
    assert "Traceback" not in result.stderr
    with db(tmp_path) as conn:
        calls = conn.execute("SELECT count(*) FROM activation WHERE trial_id = ? AND name = 'bump'",
                             (result.trial_id,)).fetchone()[0]
        timed = conn.execute(
            "SELECT count(*) FROM code_component WHERE trial_id = ? AND type = 'cell' AND name LIKE '%:\\%time'"
            " ESCAPE '\\'", (result.trial_id,)).fetchone()[0]
    # %time and %%time statements are captured (1 + 3 calls); %timeit's 6 repetitions are not
    assert calls == 4
    assert timed == 2


# -- the saved notebook -------------------------------------------------------------------------------

def saved(*counts):
    cells = [new_markdown_cell("m")] + [code(f"x{i} = {i}", execution_count=c) for i, c in enumerate(counts)]
    return new_notebook(cells=cells)


def test_saved_execution_order():
    assert saved_execution_order(saved(1, 2, 5, 3, 4)) == [1, 2, 5, 3, 4]
    assert saved_execution_order(saved(None, 1, None, 2)) == [1, 2]
    assert out_of_order_message(saved(1, 2, 3)) is None
    assert out_of_order_message(saved(None, None)) is None
    message = out_of_order_message(saved(1, 2, 5, 3, 4))
    assert message.startswith("saved outputs came from the order 1, 2, 5, 3, 4, not top to bottom")
    assert "run all cells" in message
    assert "with gaps (3 ran but no cell shows it)" in out_of_order_message(saved(1, 2, 4, 5))
    assert "not top to bottom" in out_of_order_message(saved(1, 1, 2))


def test_run_leaves_the_notebook_file_unchanged_and_reports_saved_order(tmp_path):
    nb = new_notebook(cells=[
        code("from pytest_nwtrials import tag\nx = 3", execution_count=2),
        code("y = x + 1\ny", execution_count=1),
        code("tag('y', y)", execution_count=3),
    ])
    nb.cells[1].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "99"}, execution_count=1)]
    path = tmp_path / "nb" / "saved.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns

    result = run(path, tmp_path)

    assert result.status == "finished", (result.error, result.internal_error)
    assert result.tags["y"]["value"] == 4
    assert result.notebook.out_of_order.startswith("saved outputs came from the order 2, 1, 3")
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    assert read_notebook(path).cells[1].outputs[0]["data"]["text/plain"] == "99"


# -- the notebook's own tags ---------------------------------------------------------------------------

def test_now_tag_cell_and_now_tag_variable(tmp_path):
    path = write_notebook(
        tmp_path / "nb",
        new_markdown_cell("# Tags"),
        code("now_tag_cell('prepare')\nraw = [3, 1, 2]"),
        code("ordered = now_tag_variable('ordered', sorted(raw))"),
        code("now_tag_cell('report')\nnow_tag_variable('count', len(ordered))"),
    )
    result = run(path, tmp_path)

    assert result.status == "finished", (result.error, result.internal_error)
    assert result.notebook.cell_tags == {"prepare": 2, "report": 4}
    assert tag_value(result, tmp_path, "ordered") == [1, 2, 3]
    assert result.tags["ordered"]["source"] == "now_tag_variable"
    assert result.tags["count"]["value"] == 3
    with db(tmp_path) as conn:
        stage = {row[0] for row in conn.execute(
            "SELECT tag_name FROM stage_tags WHERE trial_id = ?", (result.trial_id,))}
    assert {"prepare", "report", "[1, 2, 3]", "3"} <= stage


def test_a_bad_tag_name_fails_the_cell_as_it_fails_a_script(tmp_path):
    # the rule of tag() holds for now_tag_variable in a notebook too, with the script's messages
    # (tests/plugin/test_bad_input.py)
    path = write_notebook(
        tmp_path / "nb",
        code("x = 1"),
        code("now_tag_variable(3, x)", "raises-exception"),
        code('now_tag_variable("  ", x)'),
        code("now_tag_variable('never', x)"),
    )
    result = run(path, tmp_path)

    assert result.status == "failed", (result.error, result.internal_error)
    assert result.notebook.cells[2]["status"] == "expected-error"
    assert result.notebook.cells[2]["error"] == {"type": "TypeError",
                                                "message": "tag name must be a string, got int: 3"}
    assert (result.error["type"], result.error["message"], result.error["cell"]) == (
        "ValueError", "tag name must not be empty", 3)
    assert result.tags == {}
    with db(tmp_path) as conn:
        stored = conn.execute("SELECT count(*) FROM stage_tags WHERE trial_id = ?", (result.trial_id,)).fetchone()
    assert stored == (0,)  # refused before noWorkflow stored it


def test_sys_exit_with_a_status_leaves_the_trial_unfinished_as_for_a_script(tmp_path):
    path = write_notebook(tmp_path / "nb", code("x = 1"), code("import sys\nsys.exit(2)"), code("y = 2"))
    result = run(path, tmp_path)

    assert result.exit_code == 2 and result.error is None, (result.error, result.internal_error)
    assert trial_status(tmp_path, result.trial_id) == "unfinished"


# -- where the notebook runs ----------------------------------------------------------------------------

def test_working_directory_is_the_notebooks_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project" / "analysis"
    folder.mkdir(parents=True)
    (folder / "data.txt").write_text("42\n", encoding="utf-8")
    (folder / "units.py").write_text("def double(x):\n    return 2 * x\n", encoding="utf-8")
    path = write_notebook(
        folder,
        code("import os\nfrom units import double\nfrom pytest_nwtrials import tag"),
        code("with open('data.txt') as handle:\n    value = int(handle.read())\n"
             "tag('value', double(value))\ntag('cwd', os.getcwd())\n"
             "open('written.txt', 'w').write('from cell 2')  # not closed: capture keeps it open"),
        code("tag('written', open('written.txt').read())"),
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    result = run(path, tmp_path)

    assert result.status == "finished", (result.error, result.internal_error)
    assert result.tags["value"]["value"] == 84
    assert result.tags["cwd"]["value"] == str(folder)
    assert result.tags["written"]["value"] == "from cell 2"  # flushed when its cell ended
    with db(tmp_path) as conn:
        reads = [row[0] for row in conn.execute(
            "SELECT name FROM file_access WHERE trial_id = ?", (result.trial_id,))]
    assert "data.txt" in reads
    assert not list(elsewhere.iterdir())


# -- the example ------------------------------------------------------------------------------------

def test_fraud_notebook_records_what_the_script_records(tmp_path):
    source = EXAMPLES / "fraud"
    for name in ("train.ipynb", "train.py", "fraudlib.py"):
        shutil.copy(source / name, tmp_path / name)
    saved_nb = read_notebook(tmp_path / "train.ipynb")
    assert out_of_order_message(saved_nb) is None

    notebook = run_notebook(RunRequest(tmp_path / "train.ipynb", (), tmp_path / "prov-nb", tmp_path / "blobs",
                                       "train-nb", 300))
    script = run_experiment(RunRequest(tmp_path / "train.py", (), tmp_path / "prov-py", tmp_path / "blobs",
                                       "train-py", 300))

    assert notebook.status == "finished", (notebook.error, notebook.internal_error, notebook.stderr)
    assert script.status == "finished", (script.error, script.internal_error, script.stderr)
    assert set(notebook.tags) == set(script.tags) == {"auc", "summary", "weights"}
    for name in notebook.tags:
        assert notebook.tags[name]["value"] == script.tags[name]["value"], name
