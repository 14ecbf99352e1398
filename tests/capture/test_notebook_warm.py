"""Capture kernels started ahead of need: the next notebook's kernel starts while the previous
notebook runs, yet every notebook gets a kernel process of its own, in its own folder, with the
environment pytest has when it runs, and nothing a notebook leaves reaches the next. Real capture
kernels, run through pytest in a subprocess."""
from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

# the seconds since boot at which this kernel process started, and the seconds since boot now
CLOCKS = textwrap.dedent("""\
    import os
    with open('/proc/self/stat') as f:
        kernel_started = int(f.read().rsplit(')', 1)[1].split()[19]) / os.sysconf('SC_CLK_TCK')
    with open('/proc/uptime') as f:
        finished = float(f.read().split()[0])
    tag('kernel_started', kernel_started)
    tag('finished', finished)""")

# what one notebook leaves behind, for the next to look for
LEAVE = textwrap.dedent("""\
    import json, builtins, sys
    left_over = 1
    json.left_over = True
    builtins.left_over = True
    sys.modules['left_over_module'] = json""")
LOOK = textwrap.dedent("""\
    import json, builtins, sys
    found = [name for name, there in [
        ('variable', 'left_over' in globals()), ('module attribute', hasattr(json, 'left_over')),
        ('builtin', hasattr(builtins, 'left_over')), ('module', 'left_over_module' in sys.modules)] if there]
    tag('found', ','.join(found))""")
WHERE = textwrap.dedent("""\
    import os, sys
    tag('cwd', os.getcwd())
    tag('path0', sys.path[0])
    tag('pid', os.getpid())
    tag('noworkflow_loaded', 'noworkflow' in sys.modules)
    tag('mark', os.environ.get('NB_MARK'))""")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def notebook(project, name: str, *cells: str) -> Path:
    nb = new_notebook()
    nb.cells = [new_code_cell("from pytest_nwtrials import tag"), *(new_code_cell(c) for c in cells)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = project.root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def tags_by_notebook(project) -> dict[str, dict]:
    return {Path(t["experiment"]).name: {name: doc.get("value") for name, doc in t["tags"].items()}
            for t in project.trials()}


def test_each_notebook_gets_its_own_kernel_started_while_the_previous_one_ran(project):
    project.ini(experiments="experiments/**/*.ipynb")
    notebook(project, "experiments/a/first.ipynb", LEAVE, WHERE, CLOCKS)
    notebook(project, "experiments/b/second.ipynb", LOOK, WHERE, CLOCKS)
    notebook(project, "experiments/c/third.ipynb", "import os\nos.kill(os.getpid(), 9)")  # its kernel dies
    notebook(project, "experiments/d/fourth.ipynb", LOOK, WHERE, CLOCKS)
    result = project.run()
    result.assert_outcomes(passed=3, failed=1)
    assert "the kernel died while running cell 2" in result.stdout.str()
    tags = tags_by_notebook(project)
    first, second, fourth = tags["first.ipynb"], tags["second.ipynb"], tags["fourth.ipynb"]
    # the second notebook's kernel was running before the first notebook ended: started ahead
    assert second["kernel_started"] < first["finished"]
    # yet it is a process of its own, that saw nothing of the first notebook's
    assert len({first["pid"], second["pid"], fourth["pid"]}) == 3
    assert second["found"] == "" and fourth["found"] == ""
    # each in its notebook's folder, as a kernel launched there, and with noWorkflow loaded for capture
    for name, folder in (("first", "a"), ("second", "b"), ("fourth", "d")):
        expected = str(project.root / "experiments" / folder)
        assert (tags[f"{name}.ipynb"]["cwd"], tags[f"{name}.ipynb"]["path0"]) == (expected, expected), name
        assert tags[f"{name}.ipynb"]["noworkflow_loaded"] is True, name


def test_a_notebook_gets_the_environment_pytest_has_when_it_runs(project):
    """A variable set after the notebook's kernel was started ahead reaches the notebook all the
    same, and each kernel is still started ahead; a notebook with capture off finds no noWorkflow
    loaded."""
    project.ini(experiments="experiments/*.ipynb")
    project.pytester.makeconftest("""
        import os
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if "off" in item.path.stem:
                    item.add_marker(pytest.mark.nw(capture="off"))

        def pytest_runtest_setup(item):
            os.environ["NB_MARK"] = item.path.stem
    """)
    for name in ("a_fine", "b_off", "c_off", "d_fine"):
        notebook(project, f"experiments/{name}.ipynb", WHERE, CLOCKS)
    project.run().assert_outcomes(passed=4)
    tags = tags_by_notebook(project)
    assert {name: (t["mark"], t["noworkflow_loaded"]) for name, t in tags.items()} == {
        "a_fine.ipynb": ("a_fine", True), "b_off.ipynb": ("b_off", False),
        "c_off.ipynb": ("c_off", False), "d_fine.ipynb": ("d_fine", True)}
    order = ["a_fine.ipynb", "b_off.ipynb", "c_off.ipynb", "d_fine.ipynb"]
    for previous, name in zip(order, order[1:]):
        assert tags[name]["kernel_started"] < tags[previous]["finished"], name


# imported by the notebook: plain Python, not captured line by line
KERNELS_HERE = textwrap.dedent("""\
    import os
    from pathlib import Path


    def other_kernels():
        mark = ('NWTRIALS_TEST_RUN=' + os.environ['NWTRIALS_TEST_RUN']).encode()
        found = 0
        for entry in Path('/proc').iterdir():
            try:
                found += (entry.name.isdigit() and int(entry.name) != os.getpid()
                          and b'pytest_nwtrials.capture.kernel' in (entry / 'cmdline').read_bytes()
                          and mark in (entry / 'environ').read_bytes().split(b'\\0'))
            except OSError:
                pass
        return found
""")


def test_a_kernel_started_for_a_notebook_that_never_runs_is_ended_with_its_folder(project, monkeypatch, tmp_path):
    """With -x the first failure ends the session: the kernel already started for the next
    notebook ends too, and no temporary folder of a kernel is left."""
    project.ini(experiments="experiments/*.ipynb")
    (project.root / "experiments").mkdir()
    (project.root / "experiments" / "kernels_here.py").write_text(KERNELS_HERE, encoding="utf-8")
    notebook(project, "experiments/a.ipynb", "from kernels_here import other_kernels\ntag('other_kernels', other_kernels())",
             "raise ValueError('stop here')")
    notebook(project, "experiments/b.ipynb", "x = 1")
    mark = uuid.uuid4().hex
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("NWTRIALS_TEST_RUN", mark)
    monkeypatch.setenv("TMPDIR", str(temp))
    result = project.run("-x")
    result.assert_outcomes(failed=1)
    assert "stop here" in result.stdout.str()
    assert tags_by_notebook(project) == {"a.ipynb": {"other_kernels": 1}}  # b's, waiting
    assert _processes_with("NWTRIALS_TEST_RUN", mark) == []
    assert [p.name for p in temp.iterdir() if p.name.startswith("nwtrials-nb-")] == []


def _processes_with(variable: str, value: str) -> list[int]:
    """The processes whose environment has `variable` = `value` (ours only are readable)."""
    needle = f"{variable}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_waiting_kernel_goes_only_to_a_notebook_it_fits(tmp_path, monkeypatch):
    """The same kind (kernelspec, noWorkflow preloaded or not) and the same variables read while a
    kernel starts; a kernel that does not fit keeps waiting, and a fitting one is started for the
    notebook. Other variables changed since are handed to the kernel."""
    from pytest_nwtrials.capture import notebook_warm
    from pytest_nwtrials.capture.notebook_warm import Kind

    path = tmp_path / "n.ipynb"
    capture, off = Kind.of(None, "fine"), Kind.of(None, "off")
    taken = []
    try:
        notebook_warm.prepare([(capture, path)])
        [waiting] = notebook_warm._waiting
        taken.append(notebook_warm.take(off, path))
        monkeypatch.setenv("JUPYTER_NWTRIALS_TEST", "1")  # read while a kernel starts: Jupyter's
        taken.append(notebook_warm.take(capture, path))
        assert [kernel.kind for kernel in taken] == [off, capture]
        assert waiting not in taken and notebook_warm._waiting == [waiting]
        monkeypatch.delenv("JUPYTER_NWTRIALS_TEST")
        monkeypatch.setenv("NWTRIALS_TEST_SET", "1")  # any other: the kernel takes it on
        taken.append(notebook_warm.take(capture, path))
        assert taken[-1] is waiting and notebook_warm._waiting == []
        assert waiting.environ_changes() == {"set": {"NWTRIALS_TEST_SET": "1"}, "unset": []}
        notebook_warm.prepare([(off, path)])
        [other] = notebook_warm._waiting
        notebook_warm.prepare([])  # wanted by no notebook: ended
        assert notebook_warm._waiting == [] and other.process.wait(timeout=10) is not None
        assert not other.folder.exists()
    finally:
        for kernel in taken:
            kernel.discard()
        notebook_warm.shutdown()
    assert all(kernel.process.poll() is not None and not kernel.folder.exists() for kernel in taken)
