"""Constructs of the run around the experiment's code, under capture, in scripts and notebooks:
temporary folders, multiprocessing's spawn and forkserver start methods, threads that end after
the last line, ``now_tag_variable``'s value under ``--nw-capture=off``, and the library list.

Each construct is one experiment that tags ``result`` and prints it as ``RESULT <json>``; the
same code is run with plain ``python`` (scripts) or a plain Jupyter kernel through nbclient
(notebooks), and the tagged value must equal what that run printed.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from nbformat.v4 import new_code_cell, new_notebook  # noqa: E402

CELL = "# --- cell ---\n"  # where a construct's code is split into notebook cells

TEMPFILE = f"""
import json, os, tempfile
from pytest_nwtrials import tag
with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "a.txt")
    with open(path, "w") as handle:
        handle.write("hello")
    with open(path) as handle:
        text = handle.read()
{CELL}made = tempfile.mkdtemp()
other = os.path.join(made, "b.txt")
with open(other, "w") as handle:
    handle.write("gone")
os.remove(other)
os.rmdir(made)
result = {{"text": text, "left": [os.path.exists(folder), os.path.exists(made)]}}
tag("result", result)
print("RESULT", json.dumps(result))
"""

# as real code does: the pool under the main guard, its function at module level
SPAWN = """
import json, multiprocessing
from pytest_nwtrials import tag

def f(x):
    return x * x

if __name__ == "__main__":
    squares = multiprocessing.get_context("spawn").Pool(2).map(f, range(4))
    with multiprocessing.get_context("forkserver").Pool(2) as pool:
        cubes = pool.map(f, range(3))
    result = {"spawn": squares, "forkserver": cubes}
    tag("result", result)
    print("RESULT", json.dumps(result))
"""

# in a notebook, as under Jupyter: a spawned child finds functions of an importable module only
SPAWN_NOTEBOOK = f"""
import json, multiprocessing
from pytest_nwtrials import tag
from squares import f
{CELL}with multiprocessing.get_context("spawn").Pool(2) as pool:
    result = {{"spawn": pool.map(f, range(4))}}
tag("result", result)
print("RESULT", json.dumps(result))
"""

THREAD = f"""
import json, threading, time
from pytest_nwtrials import tag

def late():
    time.sleep(0.5)
    result = {{"late": sum(range(10))}}
    tag("result", result)
    print("RESULT", json.dumps(result), flush=True)
{CELL}threading.Thread(target=late).start()
"""

CONSTRUCTS = {"tempfile": TEMPFILE, "spawn": SPAWN, "thread": THREAD}


def write_notebook(path: Path, code: str) -> Path:
    cells = [new_code_cell(textwrap.dedent(part).strip("\n")) for part in code.split(CELL)]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


def printed_result(text: str) -> object:
    lines = [line for line in text.splitlines() if line.startswith("RESULT ")]
    assert lines, f"no RESULT line in:\n{text}"
    return json.loads(lines[-1][len("RESULT "):])


def plain_python(script: Path) -> object:
    done = subprocess.run([sys.executable, script.name], cwd=script.parent, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return printed_result(done.stdout)


def plain_jupyter(notebook: Path) -> object:
    """What the notebook prints under a plain python3 kernel (as nbmake runs it)."""
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(notebook.parent)}}).execute()
    # a thread's output after its cell ended goes to the next cell that runs, or nowhere: the
    # notebook prints its result from the last cell too, when the thread has set it
    text = "".join(out.get("text", "") for cell in nb.cells for out in cell.get("outputs", []))
    return printed_result(text)


def tagged(project, experiment: str) -> object:
    trials = [t for t in project.trials() if t["experiment"] == experiment]
    assert trials, f"no trial of {experiment}"
    doc = trials[-1]["tags"].get("result")
    assert doc is not None, f"{experiment}: 'result' was not tagged ({trials[-1]['status']})"
    return doc["value"]


def test_each_construct_gives_the_plain_python_result_in_a_script_and_a_notebook(project):
    """One session runs every construct as a script and as a notebook under fine capture."""
    folder = project.root / "experiments"
    for name, code in CONSTRUCTS.items():
        project.experiment(f"c_{name}.py", code)
        notebook_code = SPAWN_NOTEBOOK if name == "spawn" else code
        if name == "thread":  # plain Jupyter shows a late thread's output only while a cell runs
            notebook_code += CELL + "time.sleep(1)\n"
        write_notebook(folder / f"c_{name}.ipynb", notebook_code)
    (folder / "squares.py").write_text("def f(x):\n    return x * x\n", encoding="utf-8")
    project.ini(experiments="experiments/c_*.py\n    experiments/c_*.ipynb")

    result = project.run("-p", "no:randomly")
    result.assert_outcomes(passed=2 * len(CONSTRUCTS))
    mismatches = {}
    for name in CONSTRUCTS:
        script, notebook = folder / f"c_{name}.py", folder / f"c_{name}.ipynb"
        for path, expected in ((script, plain_python(script)), (notebook, plain_jupyter(notebook))):
            got = tagged(project, f"experiments/{path.name}")
            if got != expected:
                mismatches[path.name] = (got, expected)
    assert mismatches == {}


@pytest.mark.parametrize("kind", ["script", "notebook"])
def test_a_tag_from_a_thread_still_running_after_the_last_line_is_kept(project, kind):
    """The thread tags after the last line (the last cell) has run: the trial waits for it, as
    the interpreter waits for it before it exits."""
    script = project.experiment("late.py", THREAD)
    expected = plain_python(script)
    if kind == "notebook":
        script.unlink()
        write_notebook(project.root / "experiments" / "late.ipynb", THREAD)
        project.ini(experiments="experiments/*.ipynb")
    project.run().assert_outcomes(passed=1)
    assert tagged(project, f"experiments/late.{'py' if kind == 'script' else 'ipynb'}") == expected == {"late": 45}


NOW_TAG = f"""
x = now_tag_variable("x", 5)
{CELL}y = now_tag_variable("y", [x, x * 2])
"""


@pytest.mark.parametrize("kind", ["script", "notebook"])
def test_now_tag_variable_returns_its_value_under_capture_off_as_under_capture(project, kind):
    folder = project.root / "experiments"
    folder.mkdir(exist_ok=True)
    if kind == "script":
        project.experiment("tagging.py", NOW_TAG)
    else:
        write_notebook(folder / "tagging.ipynb", NOW_TAG)
    project.ini(experiments="experiments/*.py\n    experiments/*.ipynb")
    values = {}
    for capture in ("fine", "off"):
        project.run(f"--nw-capture={capture}").assert_outcomes(passed=1)
        values[capture] = {name: doc["value"] for name, doc in project.trials()[-1]["tags"].items()}
    assert values["off"] == values["fine"] == {"x": 5, "y": [5, 10]}


PLUGIN_DEPENDENCIES = {"pytest", "pluggy", "iniconfig", "psutil", "pyarrow", "cloudpickle", "pandas"}

LIBRARIES = {
    # imports json and numpy only: numpy, nothing of what capture or recording loads
    "numeric.py": "import json\nimport numpy\nfrom pytest_nwtrials import tag\n"
                  "tag('frame_free', numpy.arange(3))\ntag('doc', json.dumps({'a': 1}))\n",
    # imports json only: recording the tag loads numpy, which is not the experiment's
    "plain.py": "import json\nfrom pytest_nwtrials import tag\ntag('doc', json.loads('{\"a\": [1, 2]}'))\n",
    # imports numpy after a tag loaded it for recording: still the experiment's
    "late_import.py": "from pytest_nwtrials import tag\ntag('n', 3)\nimport numpy\ntag('m', int(numpy.int64(4)))\n",
    # imports pyarrow itself: listed
    "arrow.py": "import pyarrow\nfrom pytest_nwtrials import tag\ntag('n', pyarrow.array([1, 2]).to_pylist())\n",
}
# experiment -> (listed, not listed)
EXPECTED_LIBRARIES = {
    "numeric": ({"numpy"}, PLUGIN_DEPENDENCIES),
    "plain": (set(), PLUGIN_DEPENDENCIES | {"numpy"}),
    "late_import": ({"numpy"}, PLUGIN_DEPENDENCIES),
    # pyarrow loads pandas and cloudpickle itself, as it does under plain Python
    "arrow": ({"pyarrow"}, {"pytest", "pluggy", "iniconfig", "psutil"}),
}


@pytest.mark.parametrize("kind", ["script", "notebook"])
def test_the_library_list_holds_what_the_experiment_imported(project, kind):
    pytest.importorskip("pyarrow")
    folder = project.root / "experiments"
    folder.mkdir(exist_ok=True)
    for name, code in LIBRARIES.items():
        if kind == "script":
            project.experiment(name, code)
        else:
            write_notebook(folder / name.replace(".py", ".ipynb"), code)
    project.ini(experiments="experiments/*.py\n    experiments/*.ipynb")
    project.run().assert_outcomes(passed=len(LIBRARIES))
    listed = {Path(t["experiment"]).stem: set(t["inputs"]["libraries"]) for t in project.trials()}
    wrong = {stem: listed[stem] for stem, (present, absent) in EXPECTED_LIBRARIES.items()
             if not present <= listed[stem] or listed[stem] & absent}
    assert wrong == {}


EXIT_HANDLERS = """
import atexit, json
from pytest_nwtrials import tag

ran = []
def first():
    ran.append("first")
def last(extra):
    ran.append(extra)
    result = {"ran": ran}
    tag("result", result)
    print("RESULT", json.dumps(result), flush=True)
def dropped():
    ran.append("dropped")
def broken():
    raise ValueError("a handler that fails")

atexit.register(last, "last")
atexit.register(first)
atexit.register(dropped)
atexit.unregister(dropped)
atexit.register(broken)
"""


@pytest.mark.parametrize("capture", ["fine", "coarse", "off"])
def test_the_scripts_atexit_handlers_run_when_it_ends_as_under_plain_python(project, capture):
    """Handlers run last registered first, a failing one reported and the next still run, an
    unregistered one not at all; a tag they set is kept."""
    script = project.experiment("goodbye.py", EXIT_HANDLERS)
    expected = plain_python(script)
    result = project.run(f"--nw-capture={capture}", "-rA")
    result.assert_outcomes(passed=1)
    assert tagged(project, "experiments/goodbye.py") == expected == {"ran": ["first", "last"]}
    assert "Exception ignored in atexit callback" in result.stdout.str()
    assert "ValueError: a handler that fails" in result.stdout.str()
