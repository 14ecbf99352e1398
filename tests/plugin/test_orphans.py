"""After SIGKILL of pytest no process it started survives: the fork server, the experiment and
what it started, the notebook kernel and what a cell started all notice that pytest is gone.

Real processes throughout: pytest runs as a plain child of the test, is killed with SIGKILL while
an experiment sleeps, and every process it had started by then is watched until it ends.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from pytest_nwtrials.provenance.reader import read_file_accesses, read_operations

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX process groups and pipes")

# writes its pid, its parent's and a grandchild's (then the experiment sleeps until it is killed)
SLEEPER = """
import json, os, subprocess, time
child = subprocess.Popen(["sleep", "300"])
with open("pids.tmp", "w") as handle:
    handle.write(json.dumps({"pid": os.getpid(), "parent": os.getppid(), "child": child.pid}))
os.replace("pids.tmp", "pids.json")
"""
SURVIVAL = 10.0  # seconds the processes get to notice that pytest is gone


def process_table() -> dict[int, tuple[int, str]]:
    """Every live process: pid -> (parent pid, command line), zombies left out (`ps`: Linux and macOS alike)."""
    out = subprocess.run(["ps", "-A", "-ww", "-o", "pid=", "-o", "ppid=", "-o", "stat=", "-o", "args="],
                         capture_output=True, text=True, check=True).stdout
    table = {}
    for line in out.splitlines():
        pid, ppid, state, args = (line.split(None, 3) + [""])[:4]
        if not state.startswith("Z"):
            table[int(pid)] = (int(ppid), args)
    return table


def descendants(pid: int) -> set[int]:
    """The live processes below `pid` in the process tree."""
    children: dict[int, list[int]] = {}
    for child, (parent, _) in process_table().items():
        children.setdefault(parent, []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def survivors(pids: set[int], within: float = SURVIVAL) -> set[int]:
    """Those of `pids` still running after `within` seconds (zombies count as ended)."""
    deadline = time.monotonic() + within
    while True:
        alive = pids & set(process_table())
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def describe(pids: set[int]) -> str:
    table = process_table()
    return "\n".join(f"{pid} (parent {table[pid][0]}): {table[pid][1]}" for pid in sorted(pids) if pid in table)


class Parent:
    """A process that starts capture processes (pytest, say), to be killed with SIGKILL."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.cwd = cwd
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        with open(cwd / "parent.out", "wb") as out:
            self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.started: set[int] = set()  # every process it had started, once known

    def output(self) -> str:
        return (self.cwd / "parent.out").read_text(errors="replace")

    def wait_for(self, path: Path, timeout: float = 180) -> dict:
        """The JSON document an experiment writes to `path` once it runs."""
        deadline = time.monotonic() + timeout
        while not path.exists():
            assert self.proc.poll() is None, self.output()
            assert time.monotonic() < deadline, f"the experiment did not start\n{self.output()}"
            time.sleep(0.1)
        return json.loads(path.read_text())

    def kill(self, *known: int, within: float = SURVIVAL) -> set[int]:
        """SIGKILL this process; of those it had started, the ones still running `within` seconds
        later. `known` are processes it must have started (they are checked to be below it)."""
        self.started = descendants(self.proc.pid)
        assert set(known) <= self.started, f"not started by {self.proc.pid}: {set(known) - self.started}"
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        return survivors(self.started, within)

    def clean_up(self) -> None:
        """Whatever happened in the test, leave no process behind: kill their groups."""
        if self.proc.poll() is None:
            self.started |= descendants(self.proc.pid)
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        own_group = os.getpgrp()
        for pid in survivors(self.started, within=0):
            with contextlib.suppress(ProcessLookupError):
                group = os.getpgid(pid)
                if group != own_group:
                    os.killpg(group, signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def parents():
    """Starts `Parent` processes; kills them and what they started at the end of the test."""
    started: list[Parent] = []

    def start(argv: list[str], cwd: Path) -> Parent:
        started.append(Parent(argv, cwd))
        return started[-1]

    yield start
    for parent in started:
        parent.clean_up()


@pytest.fixture
def killed(project, parents):
    """Starts pytest on the project."""
    return lambda *args: parents([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], project.root)


def fork_server_of(pytest_pid: int) -> int:
    """The pid of the fork server among pytest's children."""
    table = process_table()
    servers = [pid for pid, (parent, args) in table.items()
               if parent == pytest_pid and "capture.forkserver import serve" in args]
    assert len(servers) == 1, f"no fork server among pytest's children:\n{describe(descendants(pytest_pid))}"
    return servers[0]


STILL_RUNNING = "still running after pytest was killed:\n{}"


@pytest.mark.parametrize("capture", ["fine", "off"], ids=["fork server", "plain process"])
def test_a_killed_pytest_leaves_no_experiment_running(project, killed, capture):
    project.experiment("sleeps.py", SLEEPER + "time.sleep(300)\n")
    run = killed(f"--nw-capture={capture}")
    pids = run.wait_for(project.root / "experiments" / "pids.json")
    if capture == "fine":  # forked by the fork server
        server = fork_server_of(run.proc.pid)
        assert pids["parent"] == server
        alive = run.kill(server, pids["pid"], pids["child"])
    else:  # started by pytest itself
        assert pids["parent"] == run.proc.pid
        alive = run.kill(pids["pid"], pids["child"])
    assert not alive, STILL_RUNNING.format(describe(alive))


def test_a_killed_pytest_leaves_no_idle_fork_server(project, killed):
    project.experiment("quick.py", "x = 1\n")
    project.pytester.makepyfile(test_waits="""
        import json, os, time

        def test_waits():
            with open("pids.tmp", "w") as handle:
                handle.write(json.dumps({"pid": os.getpid()}))
            os.replace("pids.tmp", "pids.json")
            time.sleep(300)
    """)
    run = killed("test_waits.py", "experiments/quick.py")
    run.wait_for(project.root / "pids.json")
    alive = run.kill(fork_server_of(run.proc.pid))
    assert not alive, STILL_RUNNING.format(describe(alive))


def test_a_killed_pytest_leaves_no_notebook_kernel_running(project, killed):
    project.ini(experiments="experiments/*.ipynb")
    nb = new_notebook()
    nb.cells = [new_code_cell(SLEEPER), new_code_cell("time.sleep(300)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = project.root / "experiments" / "sleeps.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(nb), encoding="utf-8")
    run = killed()
    pids = run.wait_for(project.root / "experiments" / "pids.json")
    assert pids["parent"] == run.proc.pid  # the kernel, started by pytest through jupyter_client
    alive = run.kill(pids["pid"], pids["child"])
    assert not alive, STILL_RUNNING.format(describe(alive))


# runs each script of FOLDER/exp as the plugin does (fork server and all), then stays until killed;
# with "off", no lifeline is passed on: the capture as it would be without one
PARENT = """
import dataclasses, json, sys, time
from pathlib import Path
from pytest_nwtrials.capture import launch, lifeline

folder, mode = Path(sys.argv[1]), sys.argv[2]
if mode == "off":
    lifeline.share = lambda: None
for script in sorted((folder / "exp").glob("[ab]_*.py")):
    request = launch.RunRequest(script=script, argv=(), provenance_dir=folder / "prov",
                                blobs_dir=folder / "blobs", name=script.stem, timeout=300)
    result = launch.run_experiment(request)
    (folder / f"{script.stem}.json").write_text(json.dumps(dataclasses.asdict(result)))
time.sleep(300)
"""
VISIBLE = """
import probe
from pytest_nwtrials import tag
data = [3, 1, 2]
total = sum(sorted(data))
with open("total.txt", "w") as handle:
    handle.write(str(total))
tag("total", total)
tag("threads", probe.threads())
tag("modules", probe.modules())
print("total", total)
"""
# in a module of its own: the script's operations hold what it returns, not the whole of sys.modules
PROBE = """
import sys, threading

def threads():
    return threading.active_count()

def modules():
    return sorted(sys.modules)
"""


def test_the_lifeline_changes_nothing_an_experiment_records(tmp_path, parents):
    """A capture that watches for pytest's end records the same trial as one that does not, and
    the watching is real: the process that started it is killed, and the capture ends with it."""
    results = {}
    for mode in ("on", "off"):
        folder = tmp_path / mode
        (folder / "exp").mkdir(parents=True)
        (folder / "exp" / "a_visible.py").write_text(VISIBLE)
        (folder / "exp" / "probe.py").write_text(PROBE)
        if mode == "on":  # then a capture that runs until its parent is killed
            (folder / "exp" / "b_sleeps.py").write_text(SLEEPER + "time.sleep(300)\n")
        parent = parents([sys.executable, "-c", PARENT, str(folder), mode], folder)
        if mode == "on":
            pids = parent.wait_for(folder / "exp" / "pids.json")
            alive = parent.kill(pids["pid"], pids["child"])
            assert not alive, f"still running after their parent was killed:\n{describe(alive)}"
        results[mode] = parent.wait_for(folder / "a_visible.json")
        assert results[mode]["exit_code"] == 0 and not results[mode]["internal_error"], results[mode]["stderr"]
    on, off = results["on"], results["off"]
    assert on["tags"] == off["tags"] and on["tags"]["threads"]["value"] == 1
    assert (on["stdout"], on["stderr"]) == (off["stdout"], off["stderr"]) == ("total 6\n", "")
    assert on["environment"] == off["environment"]

    def provenance(mode: str, result: dict) -> tuple:
        db = tmp_path / mode / "prov" / ".noworkflow" / "db.sqlite"
        return (read_operations(db, result["trial_id"]),
                read_file_accesses(db, result["trial_id"], tmp_path / mode))

    assert provenance("on", on) == provenance("off", off)


# holds a lifeline and starts, in its own process group, a process that watches it and a bystander
HOLDER = """
import json, os, subprocess, sys, time
from pytest_nwtrials.capture import lifeline
watch = "import json, sys, time; from pytest_nwtrials.capture import lifeline; " \\
        "assert lifeline.guard(json.loads(sys.argv[1])); time.sleep(300)"
watcher = subprocess.Popen([sys.executable, "-c", watch, json.dumps(lifeline.share())], pass_fds=lifeline.pass_fds())
bystander = subprocess.Popen(["sleep", "300"])
with open("pids.tmp", "w") as handle:
    handle.write(json.dumps({"watcher": watcher.pid, "bystander": bystander.pid}))
os.replace("pids.tmp", "pids.json")
time.sleep(300)
"""


def test_a_watcher_in_the_group_of_pytest_ends_alone(tmp_path, parents):
    """A capture process that does not lead a group of its own kills only itself: the group is
    pytest's, which may hold other programs (`pytest | tee log` in a shell)."""
    holder = parents([sys.executable, "-c", HOLDER], tmp_path)
    pids = holder.wait_for(tmp_path / "pids.json")
    time.sleep(1)  # the watcher has started watching, or failed its assertion
    assert pids["watcher"] in process_table(), holder.output()
    holder.kill(pids["watcher"], pids["bystander"], within=0)
    alive = survivors({pids["watcher"]})
    assert not alive, f"still running after its parent was killed:\n{describe(alive)}"
    assert pids["bystander"] in process_table()


def test_a_descriptor_that_is_not_the_lifeline_is_not_watched(tmp_path):
    """Run by hand, or without the descriptor passed, a capture process is not killed because the
    number its spec names is another file, or none, in that process."""
    code = """
import os, time
from pytest_nwtrials.capture import lifeline
fd = os.open(os.devnull, os.O_RDONLY)  # reads end-of-file at once, as a lifeline whose holder is gone
info = os.fstat(fd)
print(lifeline.guard({"fd": fd, "id": [info.st_dev, info.st_ino], "group": -1}),
      lifeline.guard({"fd": 1000, "id": [info.st_dev, info.st_ino], "group": -1}), flush=True)
time.sleep(1)
print("still running")
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "False False\nstill running\n"), done.stderr
