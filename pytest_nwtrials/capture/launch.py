"""Starts the capture runner in a child process and turns what it left into a `RunResult`."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..redaction import Secrets
from . import forkserver, lifeline

BOOT = "from pytest_nwtrials.capture.runner import main; main()"

# signals that mean the process crashed by itself, and how to say so
CRASHES = {
    "SIGSEGV": "a segmentation fault",
    "SIGBUS": "a bus error",
    "SIGILL": "an illegal instruction",
    "SIGFPE": "a floating-point exception",
    "SIGABRT": "an abort",
}
# what faulthandler prints for each frame, most recent call first
_FAULT_FRAME = re.compile(r'^\s+File "(?P<file>.+)", line (?P<line>\d+) in ', re.MULTILINE)


@dataclass(frozen=True)
class RunRequest:
    """One experiment run: what to run, where its provenance and values go, how long it may take."""

    script: Path
    argv: tuple[str, ...]
    provenance_dir: Path
    blobs_dir: Path
    name: str
    timeout: float
    capture: str = "fine"
    ini_tags: tuple[str, ...] = ()
    root: Path | None = None  # the rootdir: modules under it are the experiment's own
    env_redact: tuple[str, ...] = ()  # extra patterns of environment variables kept out of the store
    env: tuple[tuple[str, str], ...] = ()  # set on top of pytest's environment (PYTHONHASHSEED for a repeat)
    fork_slot: int | None = 0  # the warm process that forks it (forkserver.shared); None: a fresh one
    model_files: bool = False  # write models' skops files too: only a run that saves a baseline keeps them
    linkable_blobs: tuple[Path, ...] = ()  # folders of value files a value already there is linked from


@dataclass(frozen=True)
class RunResult:
    """What the child reported, plus what only the parent can see (output, timeout, crash).

    `ended` says how the process ended while the script was running, without returning from it
    (a signal, a crash, ``os._exit``); the script's tags and provenance are then lost. Notes are
    worth telling the user even when the run passes (a tag recorded from two places).
    """

    trial_id: str | None
    exit_code: int | None
    started: str | None
    duration: float
    tags: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    internal_error: str | None = None
    timed_out: bool = False
    stdout: str = ""
    stderr: str = ""
    environment: dict[str, Any] = field(default_factory=dict)
    ended: str | None = None
    notes: tuple[str, ...] = ()
    # noWorkflow itself failed (`capture_fault.noworkflow_fault`): where and what, else None
    capture_fault: dict[str, Any] | None = None

    @property
    def status(self) -> str:
        """finished, failed (the script failed), timeout, or error (capture itself failed)."""
        if self.timed_out:
            return "timeout"
        if self.internal_error:
            return "error"
        return "finished" if self.exit_code == 0 and not self.ended else "failed"


def masked(result: RunResult, secrets: Secrets) -> RunResult:
    """`result` with `secrets` masked in the texts the parent read or built itself: the
    script's output, and the error and notes (masked by the capture process too). Tagged
    values were masked before they were encoded."""
    if not secrets:
        return result
    return replace(result, stdout=secrets.mask_text(result.stdout), stderr=secrets.mask_text(result.stderr),
                   error=secrets.mask_doc(result.error), internal_error=secrets.mask_doc(result.internal_error),
                   ended=secrets.mask_doc(result.ended), notes=tuple(secrets.mask_doc(list(result.notes))),
                   capture_fault=secrets.mask_doc(result.capture_fault))


def kill_group(pid: int | None) -> None:
    """End a capture process and everything it started: it leads its own process group."""
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def capture_spec(request: RunRequest, result_path: Path) -> dict[str, Any]:
    """What a capture process (script runner or notebook kernel) is told to do, as JSON data."""
    return {
        "script": str(request.script),
        "argv": list(request.argv),
        "provenance_dir": str(request.provenance_dir),
        "blobs_dir": str(request.blobs_dir),
        "name": request.name,
        "capture": request.capture,
        "ini_tags": list(request.ini_tags),
        "root": str(request.root or request.script.parent),
        "env_redact": list(request.env_redact),
        "model_files": request.model_files,
        "linkable_blobs": [str(folder) for folder in request.linkable_blobs],
        "result": str(result_path),
        # what the process is doing, rewritten at each stage: read when it dies without a result
        "progress": str(result_path.with_name("progress.json")),
        # the process ends, with what the experiment started, when pytest is gone (see `lifeline`)
        "lifeline": lifeline.share(),
    }


def signal_name(code: int) -> str | None:
    """The name of the signal that ended a process with return code `code` ('SIGKILL'), if any."""
    try:
        return signal.Signals(-code).name if code < 0 else None
    except ValueError:
        return None


def describe_status(code: int) -> str:
    """How a process with return code `code` ended, in words: 'killed by signal 9 (SIGKILL)'."""
    if code >= 0:
        return f"exited with status {code}"
    name = signal_name(code)
    return f"killed by signal {-code} ({name})" if name else f"killed by signal {-code}"


def run_experiment(request: RunRequest) -> RunResult:
    """Run `request.script` under capture in a fresh process and wait for it (or its timeout).

    The process is forked from the warm fork server when one runs (see `capture.forkserver`).

    The output goes to files, not pipes: a background process the script left running keeps
    its copy of the output open, and must not make this wait for it.
    """
    request.provenance_dir.mkdir(parents=True, exist_ok=True)
    request.blobs_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nwtrials-") as tmp:
        spec_path = Path(tmp, "spec.json")
        result_path = Path(tmp, "result.json")
        spec = capture_spec(request, result_path)
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        env = dict(os.environ, **forkserver.CAPTURE_ENV, **dict(request.env))
        with open(Path(tmp, "stdout"), "w+b") as out, open(Path(tmp, "stderr"), "w+b") as err:
            proc = _start(request, spec_path, env, out, err)
            timed_out = False
            clock = time.perf_counter()
            try:
                proc.wait(timeout=request.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
            except BaseException:  # Ctrl-C in pytest: leave no orphan behind
                kill_group(proc.pid)
                proc.wait()
                raise
            kill_group(proc.pid)  # on timeout the capture process; always what the script left running
            proc.wait()
            elapsed = round(time.perf_counter() - clock, 4)
            stdout, stderr = _read_output(out), _read_output(err)
        progress = _read_json(Path(spec["progress"])) or {}
        if timed_out:
            return RunResult(progress.get("trial_id"), None, progress.get("started"), request.timeout,
                             timed_out=True, stdout=stdout, stderr=stderr)
        doc = _read_json(result_path)
        if doc is None:
            return _died(request, proc.returncode, progress, elapsed, stdout, stderr)
    return RunResult(
        trial_id=doc["trial_id"],
        exit_code=doc["exit_code"],
        started=doc["started"],
        duration=doc["duration"],
        tags=doc["tags"],
        error=doc["error"],
        internal_error=doc["internal_error"],
        stdout=stdout,
        stderr=stderr,
        environment=doc.get("environment") or {},
        notes=tuple(doc.get("notes") or ()),
        capture_fault=doc.get("capture_fault") if isinstance(doc.get("capture_fault"), dict) else None,
    )


def _start(request: RunRequest, spec_path: Path, env: dict[str, str], out: Any, err: Any) -> Any:
    """The capture process: forked by the warm fork server when it can, else a new interpreter.

    Runs without capture (``--nw-capture=off``) always get a new interpreter: the fork server has
    noWorkflow imported already, which such a run would not.
    """
    server = forkserver.shared(request.fork_slot) if request.capture != "off" and request.fork_slot is not None else None
    if server is not None:
        try:
            pid = server.spawn(str(spec_path), str(request.script.parent), env, str(out.name), str(err.name))
            return _Forked(server, pid)
        except forkserver.ForkServerError:
            pass  # gone, or unsuitable for this request: a plain process does the same
    return subprocess.Popen(
        [sys.executable, "-c", BOOT, str(spec_path)],
        cwd=request.script.parent,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=err,
        env=env,
        start_new_session=True,
        pass_fds=lifeline.pass_fds(),
    )


class _Forked:
    """A capture process forked by the fork server, with the part of `Popen` used here."""

    def __init__(self, server: forkserver.ForkServer, pid: int) -> None:
        self.server, self.pid = server, pid
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            try:
                self.returncode = self.server.wait(self.pid, timeout)
            except forkserver.ForkServerError:  # the server died: the child's status is lost
                kill_group(self.pid)
                self.returncode = -signal.SIGKILL
        return self.returncode


def _read_output(handle: Any) -> str:
    handle.seek(0)
    return handle.read().decode("utf-8", "replace")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _died(request: RunRequest, code: int, progress: dict[str, Any], elapsed: float, stdout: str,
          stderr: str) -> RunResult:
    """The result of a capture process that ended without writing one.

    While the script runs, that is the script's doing (a crash in native code, ``os._exit``, a
    signal): the trial failed. At any other stage the capture machinery failed.
    """
    how = describe_status(code)
    stage = progress.get("stage")
    trial_id, started = progress.get("trial_id"), progress.get("started")
    if stage != "running":
        when = f"while {stage}" if stage else "before the script started"
        return RunResult(trial_id, code, started, elapsed, stdout=stdout, stderr=stderr,
                         internal_error=f"the capture process {how} {when}, without reporting a result")
    name = signal_name(code)
    if name in CRASHES:
        ended = f"crashed with {CRASHES[name]} ({how})"
    elif code < 0:
        ended = f"was {how}"
    else:
        ended = f"{how} while the script was running (os._exit() or a crash in native code)"
    error = {"type": name or "exit", "message": ended, "traceback": "",
             "location": _crash_location(stderr, request.script)}
    return RunResult(trial_id, code, started, elapsed, stdout=stdout, stderr=stderr, error=error, ended=ended)


def _crash_location(stderr: str, script: Path) -> dict[str, Any] | None:
    """The script's line in the traceback faulthandler printed for a crash, if any."""
    target = script.resolve()
    for match in _FAULT_FRAME.finditer(stderr):
        if Path(match["file"]).resolve() == target:
            return {"file": str(script), "line": int(match["line"])}
    return None
