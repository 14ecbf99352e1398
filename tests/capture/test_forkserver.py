"""The fork server runs captures as a fresh process would, and fails over cleanly.

Real processes throughout: a server per module (its start takes about a second), captures of
tiny scripts, signals sent for real.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_nwtrials.capture import forkserver
from pytest_nwtrials.capture.launch import BOOT, RunRequest, capture_spec, kill_group

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the fork server needs os.fork")

ENV = dict(os.environ, PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")


class Capture:
    """One experiment script in its own folder, with the spec a capture of it is given."""

    def __init__(self, folder: Path, code: str) -> None:
        self.folder = folder
        self.script = folder / "exp" / "experiment.py"
        self.script.parent.mkdir(parents=True)
        self.script.write_text(textwrap.dedent(code), encoding="utf-8")
        request = RunRequest(script=self.script, argv=(), provenance_dir=folder / "prov",
                             blobs_dir=folder / "blobs", name="experiment", timeout=60)
        self.result_path = folder / "result.json"
        self.spec_path = folder / "spec.json"
        self.spec_path.write_text(json.dumps(capture_spec(request, self.result_path)), encoding="utf-8")

    def spawn(self, server: forkserver.ForkServer, env: dict[str, str] = ENV) -> int:
        return server.spawn(str(self.spec_path), str(self.script.parent), env,
                            str(self.folder / "stdout"), str(self.folder / "stderr"))

    def through(self, server: forkserver.ForkServer, env: dict[str, str] = ENV) -> int:
        """Run the capture through `server`; return its return code."""
        return server.wait(self.spawn(server, env), timeout=60)

    def plain(self) -> int:
        """Run the capture in a new interpreter, as `launch` does without a fork server."""
        with open(self.folder / "stdout", "wb") as out, open(self.folder / "stderr", "wb") as err:
            return subprocess.run([sys.executable, "-c", BOOT, str(self.spec_path)], cwd=self.script.parent,
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=ENV,
                                  start_new_session=True, timeout=60).returncode

    def result(self) -> dict:
        return json.loads(self.result_path.read_text(encoding="utf-8"))

    def output(self, name: str = "stdout") -> str:
        return (self.folder / name).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def server():
    server = forkserver.ForkServer(dict(ENV, NW_FORKSERVER_DROPPED="in the server's environment only"))
    yield server
    server.close()


@pytest.fixture
def make(tmp_path: Path):
    count = iter(range(1000))
    return lambda code: Capture(tmp_path / str(next(count)), code)


def gone(pid: int, within: float = 5.0) -> bool:
    """True once `pid` no longer exists or is a zombie nobody has reaped yet."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().rpartition(")")[2].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        except OSError:  # no /proc: ask the kernel instead
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
        time.sleep(0.05)
    return False


SMALL = """
import os, signal, sys
import helper
from pytest_nwtrials import tag
tag("answer", helper.ANSWER)
tag("summary", {"rows": [1, 2, 3], "name": "small"})
# what a fresh interpreter has: the child must not differ
tag("process", {
    "signals": {sig.name: str(signal.getsignal(sig)) for sig in (signal.SIGINT, signal.SIGTERM,
                                                                 signal.SIGPIPE, signal.SIGCHLD)},
    "stdin": sys.stdin.read(), "argv": sys.argv, "path": sys.path, "cwd": os.getcwd(),
    "session leader": os.getsid(0) == os.getpid(), "flags": str(sys.flags),
    "encoding": [sys.stdout.encoding, sys.stdout.write_through, sys.stderr.encoding],
    "modules": sorted(sys.modules),
})
print("hello from the experiment")
sys.exit(3)
"""


def test_same_result_as_a_plain_process(make, server):
    capture = make(SMALL)
    (capture.script.parent / "helper.py").write_text("ANSWER = 42\n")
    assert capture.plain() == 0
    plain, plain_out = capture.result(), capture.output()
    for made in (capture.result_path, capture.folder / "prov"):  # a second trial in a store loads more
        shutil.rmtree(made) if made.is_dir() else made.unlink()
    assert capture.through(server) == 0
    forked, forked_out = capture.result(), capture.output()
    # the same modules were imported when the script started: the server preloads nothing more
    forked["tags"]["process"]["value"]["modules"].remove("pytest_nwtrials.capture.forkserver")
    assert forked["trial_id"] != plain["trial_id"]
    assert forked["exit_code"] == plain["exit_code"] == 3
    assert forked["tags"] == plain["tags"]
    assert forked["tags"]["answer"]["value"] == 42
    assert forked["tags"]["process"]["value"]["signals"]["SIGINT"] == str(signal.default_int_handler)
    assert forked["environment"] == plain["environment"]
    assert forked["environment"]["modules"] == {"helper.py": plain["environment"]["modules"]["helper.py"]}
    assert forked["error"] == plain["error"] is None
    assert forked["internal_error"] == plain["internal_error"] is None
    assert forked_out == plain_out == "hello from the experiment\n"


@pytest.mark.parametrize(("code", "returncode"), [
    ("import os\nos._exit(3)", 3),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", -signal.SIGKILL),
    ("import ctypes\nctypes.string_at(0)", -signal.SIGSEGV),
], ids=["os._exit", "SIGKILL", "segfault"])
def test_return_code_in_popen_convention(make, server, code, returncode):
    capture = make(code)
    assert capture.through(server) == returncode
    assert not capture.result_path.exists()


def test_server_survives_a_crashing_child(make, server):
    assert make("import ctypes\nctypes.string_at(0)").through(server) == -signal.SIGSEGV
    capture = make("from pytest_nwtrials import tag\ntag('after', 1)")
    assert capture.through(server) == 0
    assert capture.result()["tags"]["after"]["value"] == 1


def test_timeout_then_kill_group_ends_child_and_grandchild(make, server):
    capture = make("""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        with open("grandchild.pid", "w") as handle:
            handle.write(str(child.pid))
        time.sleep(60)
    """)
    pid = capture.spawn(server)
    pid_file = capture.script.parent / "grandchild.pid"
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, capture.output("stderr")
        time.sleep(0.05)
    grandchild = int(pid_file.read_text())
    with pytest.raises(subprocess.TimeoutExpired):
        server.wait(pid, timeout=0.2)
    assert os.getpgid(pid) == pid and os.getpgid(grandchild) == pid
    kill_group(pid)
    assert server.wait(pid, timeout=10) == -signal.SIGKILL
    assert gone(pid) and gone(grandchild)


def test_request_env_and_cwd_are_applied(make, server):
    capture = make("""
        import os
        from pytest_nwtrials import tag
        tag("cwd", os.getcwd())
        tag("probe", os.environ.get("NW_FORKSERVER_PROBE"))
        tag("dropped", "NW_FORKSERVER_DROPPED" in os.environ)
    """)
    assert capture.through(server, dict(ENV, NW_FORKSERVER_PROBE="yes")) == 0
    tags = {name: tag["value"] for name, tag in capture.result()["tags"].items()}
    assert tags == {"cwd": str(capture.script.parent), "probe": "yes", "dropped": False}


def test_children_get_their_own_random_state(make, server):
    values = []
    for _ in range(2):
        capture = make("import random\nfrom pytest_nwtrials import tag\ntag('r', random.random())")
        assert capture.through(server) == 0
        values.append(capture.result()["tags"]["r"]["value"])
    assert values[0] != values[1]


def test_startup_variables_must_match(make, server):
    capture = make("x = 1")
    with pytest.raises(forkserver.ForkServerError, match="interpreter start"):
        capture.spawn(server, dict(ENV, PYTHONHASHSEED="123"))


def test_dead_server_makes_wait_and_spawn_fail_over(make):
    server = forkserver.ForkServer(ENV)
    try:
        pid = make("import time\ntime.sleep(60)").spawn(server)
        os.kill(server.pid, signal.SIGKILL)
        with pytest.raises(forkserver.ForkServerError):
            server.wait(pid, timeout=30)
        kill_group(pid)  # the child outlives its server: the caller ends it
        assert gone(pid)
        with pytest.raises(forkserver.ForkServerError):
            make("x = 1").spawn(server)
        assert not server.alive
    finally:
        server.close()


def test_shared_server_is_started_once_and_shut_down():
    server = forkserver.shared()
    assert server is not None and server is forkserver.shared()
    forkserver.shutdown()
    assert not server.alive
