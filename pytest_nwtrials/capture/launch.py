"""Starts the capture runner in a child process and turns what it left into a `RunResult`."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BOOT = "from pytest_nwtrials.capture.runner import main; main()"


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


@dataclass(frozen=True)
class RunResult:
    """What the child reported, plus what only the parent can see (output, timeout, crash)."""

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

    @property
    def status(self) -> str:
        """finished, failed (the script failed), timeout, or error (capture itself failed)."""
        if self.timed_out:
            return "timeout"
        if self.internal_error:
            return "error"
        return "finished" if self.exit_code == 0 else "failed"


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
        "result": str(result_path),
    }


def run_experiment(request: RunRequest) -> RunResult:
    """Run `request.script` under capture in a fresh process and wait for it (or its timeout)."""
    request.provenance_dir.mkdir(parents=True, exist_ok=True)
    request.blobs_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nwtrials-") as tmp:
        spec_path = Path(tmp, "spec.json")
        result_path = Path(tmp, "result.json")
        spec = capture_spec(request, result_path)
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        env = dict(os.environ, PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            [sys.executable, "-c", BOOT, str(spec_path)],
            cwd=request.script.parent,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        timed_out = False
        try:
            out, err = proc.communicate(timeout=request.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_group(proc.pid)
            out, err = proc.communicate()
        except BaseException:  # Ctrl-C in pytest: leave no orphan behind
            kill_group(proc.pid)
            proc.wait()
            raise
        kill_group(proc.pid)  # grandchildren the script left running
        stdout = out.decode("utf-8", "replace")
        stderr = err.decode("utf-8", "replace")
        if timed_out:
            return RunResult(None, None, None, request.timeout, timed_out=True, stdout=stdout, stderr=stderr)
        try:
            doc = json.loads(result_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            code = proc.returncode
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            return RunResult(None, code, None, 0.0, stdout=stdout, stderr=stderr,
                             internal_error=f"the capture process {how} before reporting a result")
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
    )
