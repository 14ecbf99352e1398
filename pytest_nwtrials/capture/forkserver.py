"""A warm process that forks one capture process per experiment, instead of starting Python anew.

Importing noWorkflow (SQLAlchemy, its commands, IPython's shell for its debugger builtins) and
configuring SQLAlchemy's mappers is most of a small experiment's overhead. The fork server,
started once per pytest process (when a session with experiments starts, or at the first
capture), has done that already and forks a child per request. The child leads its own session (`launch.kill_group(pid)` ends it and whatever it
started), takes the request's working directory, environment and output files and a fresh
interpreter's signal handlers, runs `runner.main` as ``python -c BOOT SPEC`` would, and ends
with ``os._exit``: it never returns into the server loop.

Only what the runner imports before the script starts is preloaded, so the modules an experiment
imports itself are still imported, and reported by `environment.collect`, in the child. Unlike
fresh processes, the children of one server share the hash seed of str and bytes (set iteration
order is the same in each; set PYTHONHASHSEED to pin it across pytest runs) and the variables
read at interpreter start (PYTHON*, LD_*): a request that sets them differently is refused with
`ForkServerError`. `random` is re-seeded in each child by Python itself (`os.register_at_fork`).
So repeated runs of one experiment (``--nw-repeat``) can differ in hash seed as plain ``python``
runs do, the k-th run of each group is forked by server slot k-1, started with
PYTHONHASHSEED=random: every slot has a str hash seed of its own (up to `SEEDED_SLOTS` slots;
later runs start a fresh interpreter).

Protocol: JSON lines on the server's stdin (requests) and stdout (replies): ``{"ready": true}``
once, then per request ``{"pid": N}`` and, when that child has ended, ``{"pid": N, "returncode":
R}`` in `subprocess.Popen` convention (negative: killed by that signal). The server runs one
child at a time, ignores SIGINT and exits when its stdin closes. It inherits pytest's lifeline
(`capture.lifeline`, under the descriptor number the spec names) and passes it on to each child:
when pytest is gone, killed or not, the child ends with what it started, and the server, idle
again, reads the end of its stdin and exits. POSIX only (needs ``os.fork``).
"""
from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any, NoReturn

from . import lifeline

BOOT = "from pytest_nwtrials.capture.forkserver import serve; serve()"
# what the runner imports before the script starts, and nothing more (see the module docstring)
PRELOAD = (
    "pytest_nwtrials.capture.runner",
    "pytest_nwtrials.provenance.serialize",
    "noworkflow.now.cmd.cmd_run",
    "noworkflow.now.collection.metadata",
    "noworkflow.now.persistence.models",
    "IPython.terminal.embed",  # by noWorkflow's debugger builtins, when the trial starts
)
# what every capture process gets on top of pytest's environment (launch.run_experiment)
CAPTURE_ENV = {"PYTHONIOENCODING": "utf-8", "PYTHONUNBUFFERED": "1"}
STARTUP_PREFIXES = ("PYTHON", "LD_")  # variables read once, by the interpreter or the loader
START_TIMEOUT = 60.0  # preloading takes about a second; a loaded machine may need far longer
CHILD_FAILED = 70  # the child could not be set up: the status of a failed capture
# warm processes besides the first, each with its own str hash seed, for repeated runs: each one
# holds noWorkflow preloaded (about 80 MB resident), so runs after the fifth of a group start afresh
SEEDED_SLOTS = 4
SEEDED_ENV = {"PYTHONHASHSEED": "random"}


class ForkServerError(RuntimeError):
    """The fork server cannot run this request, or is gone: start a plain process instead."""


class _NoReply(Exception):
    pass


class ForkServer:
    """Client side: starts the server process and talks to it. Runs one capture at a time."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        self._owner = os.getpid()
        # started in the root folder: sys.path starts with '' (the working directory), which must
        # not let a module of the project's own folder stand in for a preloaded one
        self._proc = subprocess.Popen(
            [sys.executable, "-c", BOOT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, cwd=os.path.abspath(os.sep), env=self.env, start_new_session=True,
            pass_fds=lifeline.pass_fds())  # for its children: each one ends when pytest is gone
        assert self._proc.stdin is not None and self._proc.stdout is not None  # both are pipes
        self._requests: IO[bytes] = self._proc.stdin
        self._replies: IO[bytes] = self._proc.stdout
        self._buffer = b""
        self._ready = False
        self._running: int | None = None  # the child not waited for yet
        self._done: dict[int, int] = {}
        self._lock = threading.Lock()

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._owner == os.getpid() and self._proc.poll() is None

    def spawn(self, spec_path: str, cwd: str, env: dict[str, str], stdout_path: str, stderr_path: str) -> int:
        """Fork a capture process for `spec_path`; return its pid (it leads its own process group).

        The first call waits for the server to finish preloading: on two cores that was faster
        than running the first capture in a plain process meanwhile, which competes for a core.
        """
        if not self._lock.acquire(blocking=False):
            raise ForkServerError("the fork server is busy")
        try:
            if not self.alive:
                raise ForkServerError("the fork server is not running")
            if not self._ready:
                self._ready = bool(self._expect(time.monotonic() + START_TIMEOUT, "ready", hung=True))
            if self._running is not None and self._running not in self._done:
                self._collect(time.monotonic())  # its caller did not wait: it may have ended since
                if self._running not in self._done:
                    raise ForkServerError("the fork server is busy with another capture")
            if _startup_vars(env) != _startup_vars(self.env):  # they would not take effect
                raise ForkServerError("variables read at interpreter start (PYTHON*, LD_*) differ")
            request = {"spec": str(spec_path), "cwd": str(cwd), "env": dict(env),
                       "stdout": str(stdout_path), "stderr": str(stderr_path)}
            try:
                self._requests.write(json.dumps(request).encode() + b"\n")
                self._requests.flush()
            except OSError as exc:
                raise self._broken(f"the fork server is gone ({exc})") from None
            try:
                self._running = self._expect(time.monotonic() + START_TIMEOUT, "pid", hung=True)["pid"]
            except KeyboardInterrupt:  # the child is being forked: it must not outlive this
                with contextlib.suppress(ForkServerError, _NoReply, OSError):
                    self._running = self._expect(time.monotonic() + 5, "pid")["pid"]
                    os.killpg(self._running, signal.SIGKILL)
                raise
            return self._running
        finally:
            self._lock.release()

    def wait(self, pid: int, timeout: float | None = None) -> int:
        """The return code of child `pid` as `Popen.wait` gives it; TimeoutExpired if it runs on.

        ForkServerError if the server died meanwhile: the child may still run, `kill_group` it.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if pid not in self._done and pid != self._running:
                raise ValueError(f"process {pid} was not started by this fork server, or was waited for")
            while pid not in self._done:
                if not self._collect(deadline):
                    raise subprocess.TimeoutExpired(f"capture process {pid}", timeout if timeout is not None else 0.0)
            if pid == self._running:
                self._running = None
            return self._done.pop(pid)

    def close(self, timeout: float = 2.0) -> None:
        """Close the server's stdin so that it exits; kill it if it has not within `timeout`."""
        if self._owner != os.getpid():
            return
        if self._running is not None and self._running not in self._done and self.alive:
            with contextlib.suppress(OSError):  # not reaped by the server yet: still that child's pid
                os.killpg(self._running, signal.SIGKILL)
        try:
            self._proc.communicate(timeout=timeout)  # closes its stdin: the server exits
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.communicate()

    def _collect(self, deadline: float | None) -> bool:
        """Read one exit status into `_done`; False when `deadline` passed first."""
        try:
            reply = self._expect(deadline, "returncode")
        except _NoReply:
            return False
        self._done[reply["pid"]] = reply["returncode"]
        return True

    def _expect(self, deadline: float | None, key: str, hung: bool = False) -> dict[str, Any]:
        """The next reply, which must hold `key`. When `deadline` passes first: _NoReply, or with
        `hung` ForkServerError (a server that does not answer at once is of no use)."""
        fd = self._replies.fileno()
        while b"\n" not in self._buffer:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([fd], [], [], remaining)[0]:
                if hung:
                    raise self._broken(f"the fork server did not answer in time ({key})")
                raise _NoReply
            chunk = os.read(fd, 65536)
            if not chunk:
                raise self._broken("the fork server exited")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        reply = json.loads(line)
        if "error" in reply:
            raise ForkServerError(reply["error"])
        if key not in reply:
            raise self._broken(f"unexpected reply from the fork server: {reply}")
        return reply

    def _broken(self, message: str) -> ForkServerError:
        self._proc.kill()
        self._proc.wait()
        return ForkServerError(message)


def _startup_vars(env: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in env.items() if name.startswith(STARTUP_PREFIXES)}


_shared: dict[int, ForkServer] = {}  # by slot
_shared_lock = threading.Lock()
_given_up: set[int] = set()


def shared(slot: int = 0) -> ForkServer | None:
    """This process's fork server of `slot`, started at the first call; None where none can run.

    Slot 0 forks every run with pytest's environment; slot k (1 to `SEEDED_SLOTS`) was started
    with `SEEDED_ENV` and forks the (k+1)-th run of each group of repeated runs, whose request
    sets the same. None without ``os.fork`` (Windows), for a slot beyond those, when the server
    could not start, or once it died: the caller then starts a plain process, as it would
    without a fork server.
    """
    with _shared_lock:
        if any(server._owner != os.getpid() for server in _shared.values()):  # in a forked copy of this process
            _shared.clear()
            _given_up.clear()
        server = _shared.get(slot)
        if server is not None and server.alive:
            return server
        if server is not None or slot in _given_up or not hasattr(os, "fork") or not 0 <= slot <= SEEDED_SLOTS:
            _given_up.add(slot)
            return None
        try:
            server = _shared[slot] = ForkServer(dict(os.environ, **CAPTURE_ENV, **(SEEDED_ENV if slot else {})))
        except OSError:
            _given_up.add(slot)
            return None
        atexit.unregister(shutdown)
        atexit.register(shutdown)
        return server


def shutdown() -> None:
    """Stop the shared fork servers, if any were started (at pytest_unconfigure and at exit)."""
    with _shared_lock:
        servers = list(_shared.values())
        _shared.clear()
    for server in servers:
        server.close()


# -- the server process -----------------------------------------------------------------------

def serve() -> None:
    """Entry point of the server process: preload, then fork a child per request until EOF."""
    handlers = {sig: signal.getsignal(sig) for sig in signal.valid_signals()}  # a fresh interpreter's
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for pytest, which stops us by EOF
    requests, replies = os.fdopen(os.dup(0), "rb"), os.fdopen(os.dup(1), "wb", buffering=0)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(2, 1)  # a stray print while preloading must not corrupt the replies
    os.close(null)
    for name in PRELOAD:
        with contextlib.suppress(Exception):  # the child imports it again and reports a failure
            importlib.import_module(name)
    with contextlib.suppress(Exception):
        importlib.import_module("sqlalchemy.orm").configure_mappers()  # else at every first query
    try:
        replies.write(b'{"ready": true}\n')
        for line in requests:
            _serve_one(json.loads(line), handlers, requests, replies)
    except BrokenPipeError:  # the client is gone
        pass
    # nothing is left to flush or clean up: exiting at once spares pytest's unconfigure the
    # teardown of every preloaded module, which it would wait for
    os._exit(0)


def _serve_one(request: dict[str, Any], handlers: dict[signal.Signals, Any], requests: Any, replies: Any) -> None:
    started, ready = os.pipe()
    try:
        pid = os.fork()
    except OSError as exc:
        os.close(started)
        os.close(ready)
        replies.write(json.dumps({"error": f"fork failed: {exc}"}).encode() + b"\n")
        return
    if pid == 0:
        try:
            for fd in (started, requests.fileno(), replies.fileno()):  # the server's own pipes
                os.close(fd)
            _child(request, handlers, ready)
        finally:
            os._exit(CHILD_FAILED)
    os.close(ready)
    os.read(started, 1)  # the child has called setsid(): kill_group(pid) reaches it from now on
    os.close(started)
    replies.write(json.dumps({"pid": pid}).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    replies.write(json.dumps({"pid": pid, "returncode": os.waitstatus_to_exitcode(status)}).encode() + b"\n")


def _child(request: dict[str, Any], handlers: dict[signal.Signals, Any], ready: int) -> NoReturn:
    """Become the ``python -c BOOT SPEC`` process that `launch` starts, run it, and exit."""
    code = CHILD_FAILED
    try:
        os.setsid()
        os.write(ready, b"1")
        os.close(ready)
        output = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, request["stdout"], output),
                                (2, request["stderr"], output)):
            opened = os.open(path, flags, 0o666)
            os.dup2(opened, fd)
            os.close(opened)
        for sig, handler in handlers.items():
            if handler is not None and signal.getsignal(sig) != handler:
                signal.signal(sig, handler)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["-c", request["spec"]]
        importlib.invalidate_caches()  # modules written since the server started must be found
        code = _run(request["spec"])
    except BaseException:  # noqa: BLE001 - reported on the child's stderr; never back to the loop
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # exiting anyway
                stream.flush()
        os._exit(code)


def _run(spec_path: str) -> int:
    """`runner.main`, then what the interpreter does at exit: join threads, run atexit handlers."""
    from . import runner

    try:
        runner.main([spec_path])
        code = 0
    except SystemExit as exc:
        code, message = runner.exit_code_of(exc.code)
        if message:
            print(message, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - as the interpreter does: print it, exit with status 1
        import traceback

        traceback.print_exc()
        code = 1
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    return code
