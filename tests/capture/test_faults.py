"""Faults while an experiment runs: each gives a verdict that names the cause, the other
experiments of the session still run, and the store is left with whole records only."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

OK = "from pytest_nwtrials import tag\ntag('rows', 10)\n"


def assert_store_consistent(root: Path) -> dict[str, dict]:
    """Every file in .nwtrials/trials is a whole trial record whose value files exist, and no
    temporary file is left anywhere in the store. Returns the records by experiment."""
    store = root / ".nwtrials"
    records = {}
    for path in sorted((store / "trials").iterdir()):
        assert re.fullmatch(r"trial[0-9]+\.json", path.name), f"stray file in the store: {path}"
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["schema"] == 1 and doc["name"] == path.stem and len(doc["id"]) == 36
        assert doc["status"] in ("finished", "failed", "timeout", "error")
        for tag in doc["tags"].values():
            assert {"value", "count", "source"} <= set(tag)
            for blob in re.findall(r'"blob": "([0-9a-f]{64}\.[a-z]+)"', json.dumps(tag["value"])):
                assert (store / "values" / blob).is_file(), f"{path.name} names a missing value file {blob}"
        records[doc["experiment"]] = doc
    leftovers = [p for p in store.rglob("*")
                 if p.name.endswith((".tmp", ".part")) or (p.name.startswith(".") and p.name != ".gitignore")]
    assert not leftovers, f"temporary files left in the store: {leftovers}"
    return records


def gone(pid: int, within: float = 10.0) -> bool:
    """Whether process `pid` has ended (a zombie waiting for its parent counts as ended)."""
    deadline = time.monotonic() + within
    while True:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def test_every_way_of_exiting_is_named_by_its_status(project):
    project.experiment("bare.py", "import sys\nfrom pytest_nwtrials import tag\ntag('x', 1)\nsys.exit()\n")
    project.experiment("message.py", "import sys\nsys.exit('some message')\n")
    project.experiment("three.py", "import sys\nsys.exit(3)\n")
    project.experiment("hard.py", "import os\nfrom pytest_nwtrials import tag\ntag('x', 1)\nos._exit(3)\n")
    project.experiment("ok.py", OK)
    result = project.run("-v")
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines([
        "*experiments/bare.py::experiment PASSED*",
        "*experiments/hard.py exited with status 3 while the script was running "
        "(os._exit() or a crash in native code) (trial2, noWorkflow trial *)",
        "Its tags and provenance were not recorded: the process ended before the script returned.",
        "*experiments/message.py exited with status 1 (trial3, noWorkflow trial *)",
        "stderr:",
        "some message",
        "*experiments/three.py exited with status 3 (trial5, noWorkflow trial *)",
    ])
    assert "Traceback" not in result.stdout.str()
    records = assert_store_consistent(project.root)
    assert records["experiments/bare.py"]["status"] == "finished"
    assert records["experiments/bare.py"]["tags"]["x"]["value"] == 1
    hard = records["experiments/hard.py"]
    assert (hard["status"], hard["exit_code"], hard["tags"]) == ("failed", 3, {})
    assert hard["error"]["type"] == "exit"
    assert [records[f"experiments/{name}.py"]["exit_code"] for name in ("message", "three", "ok")] == [1, 3, 0]


def test_a_crash_and_a_kill_name_the_signal(project):
    project.experiment("crash.py", """
        import ctypes
        from pytest_nwtrials import tag
        tag("before", 1)
        ctypes.string_at(0)
    """)
    project.experiment("killed.py", """
        import os, signal
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    project.experiment("ok.py", OK)
    result = project.run()
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "*experiments/crash.py crashed with a segmentation fault (killed by signal 11 (SIGSEGV)) at line 5 "
        "(trial1, noWorkflow trial *)",
        "Its tags and provenance were not recorded: the process ended before the script returned.",
        "Fatal Python error: Segmentation fault",
        "*experiments/killed.py was killed by signal 9 (SIGKILL) (trial2, noWorkflow trial *)",
        "SIGKILL comes from another process or from the system, often when memory runs out.",
        "trial1  experiments/crash.py  failed  *",
        "trial2  experiments/killed.py  failed  *",
        "trial3  experiments/ok.py  recorded  *",
    ])
    records = assert_store_consistent(project.root)
    crash = records["experiments/crash.py"]
    assert (crash["status"], crash["exit_code"], crash["error"]["type"]) == ("failed", -11, "SIGSEGV")
    assert crash["error"]["location"]["line"] == 5
    killed = records["experiments/killed.py"]
    assert (killed["status"], killed["exit_code"], killed["error"]["type"]) == ("failed", -9, "SIGKILL")
    assert records["experiments/ok.py"]["tags"]["rows"]["value"] == 10


def test_a_script_done_while_its_background_process_runs_is_not_waited_for(project):
    project.experiment("spawns.py", """
        import subprocess
        from pytest_nwtrials import tag
        child = subprocess.Popen(["sleep", "120"])
        with open("child.pid", "w") as handle:
            handle.write(str(child.pid))
        tag("done", True)
    """)
    result = project.run("--nw-timeout=60")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["trial1  experiments/spawns.py  recorded  *"])
    [trial] = project.trials()
    assert trial["duration"] < 60 and trial["tags"]["done"]["value"] is True
    assert gone(int((project.root / "experiments" / "child.pid").read_text()))


def test_ctrl_c_stops_pytest_the_experiment_and_what_it_started(project):
    project.experiment("a_quick.py", OK)
    project.experiment("b_sleeps.py", """
        import os, subprocess, time
        child = subprocess.Popen(["sleep", "120"])
        with open("pids.tmp", "w") as handle:
            handle.write(f"{os.getpid()} {child.pid}")
        os.replace("pids.tmp", "pids.txt")
        time.sleep(120)
    """)
    pid_file = project.root / "experiments" / "pids.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    with open(project.root / "pytest.out", "wb") as out:
        pytest_proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"],
                                       cwd=project.root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not pid_file.exists():
            assert pytest_proc.poll() is None, (project.root / "pytest.out").read_text()
            assert time.monotonic() < deadline, "the experiment did not start"
            time.sleep(0.1)
        experiment_pid, grandchild_pid = map(int, pid_file.read_text().split())
        os.kill(pytest_proc.pid, signal.SIGINT)
        code = pytest_proc.wait(timeout=60)
    finally:
        if pytest_proc.poll() is None:
            os.killpg(pytest_proc.pid, signal.SIGKILL)
            pytest_proc.wait()
    output = (project.root / "pytest.out").read_text()
    assert code == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output
    assert gone(experiment_pid) and gone(grandchild_pid)
    records = assert_store_consistent(project.root)
    assert list(records) == ["experiments/a_quick.py"]


def test_a_value_that_cannot_be_written_fails_the_experiment_only(project):
    project.experiment("full.py", """
        import resource, signal
        import numpy as np
        from pytest_nwtrials import tag
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death, like a full disk
        limits = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, limits[1]))
        try:
            tag("weights", np.arange(1 << 20, dtype=np.float64))
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, limits)
    """)
    project.experiment("ok.py", OK)
    result = project.run()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*experiments/full.py raised OSError: *could not write the value of tag 'weights' to "
        "*/.nwtrials/tmp/*/values (*); free space on that disk, or raise the limit on file size, "
        "and run the experiment again (trial1, *",
        "Traceback (most recent call last):",
        '  File "*experiments/full.py", line 9, in <module>',
        '    tag("weights", np.arange(1 << 20, dtype=np.float64))',
        "OSError: *could not write the value of tag 'weights' to */.nwtrials/tmp/*/values (*",
    ])
    failure = result.stdout.str().split("Traceback")[1].split("short test summary")[0]
    assert "pytest_nwtrials" not in failure and "values_numpy" not in failure
    records = assert_store_consistent(project.root)
    assert records["experiments/full.py"]["tags"] == {}
    assert list((project.root / ".nwtrials" / "values").iterdir()) == []


TRIAL_WRITE_FAILS = """
import os, resource, signal
import pytest

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
LIMITS = resource.getrlimit(resource.RLIMIT_FSIZE)
os.environ["PYTEST_PROCESS"] = str(os.getpid())  # experiments may be forked from a helper process


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    try:
        return (yield)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, LIMITS)  # the next experiment has room again
"""


def test_a_trial_that_cannot_be_written_fails_its_item_and_leaves_no_partial_file(project):
    project.pytester.makeconftest(TRIAL_WRITE_FAILS)
    # the experiment leaves pytest (its parent) no room to write, as a full disk would
    project.experiment("full.py", """
        import os, resource
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.prlimit(int(os.environ["PYTEST_PROCESS"]), resource.RLIMIT_FSIZE, (64, hard))
    """)
    project.experiment("ok.py", OK)
    result = project.run()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*experiments/full.py ran, but its trial could not be written to */.nwtrials/trials: File too large.",
        "Nothing was recorded. Free space on that disk or make the folder writable*",
    ])
    assert "Traceback" not in result.stdout.str()
    records = assert_store_consistent(project.root)
    assert list(records) == ["experiments/ok.py"]
