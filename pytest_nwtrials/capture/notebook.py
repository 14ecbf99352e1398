"""Runs a Jupyter notebook under capture: every cell, top to bottom, in the capture kernel.

The notebook is read here and executed from a copy in memory (the file is never written) by
nbclient, against `capture.kernel`, which works in the notebook's folder. The kernel was usually
started ahead of need (`capture.notebook_warm`); it serves this notebook alone. One kernel
session is one trial. The result is the same `RunResult` scripts give, extended with
what only a notebook has (`NotebookResult.notebook`).

Cells are numbered from 1 over *all* cells of the notebook, markdown included, the way editors
show them ("cell 7"): cell N is ``nb.cells[N - 1]``. A failing cell's error is the script's
error document plus ``"cell"`` (that number), ``"execution_count"`` and ``"source"``; its
``location`` is ``{"file": <notebook>, "line": <line in the cell>, "cell": <the cell holding
that line>}``, which differs from ``"cell"`` when the failing line is in a function an earlier
cell defined.
"""
from __future__ import annotations

import asyncio
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .kernel_cells import OUTPUT_FAILED
from .launch import RunRequest, RunResult, capture_spec, kill_group
from .notebook_file import out_of_order_message, read_notebook, saved_execution_order
from ..files import write_json_atomic
from .notebook_kernel import META_KEY, NotebookError, classes, start_failure
from .notebook_limits import (
    RAISES_TAG, Limits, cell_text, error_output, limits_for, not_run_text, timeout_text)
from .notebook_warm import Kind, take

# re-exported: the notebook's reader and its error belong to running it
__all__ = ["NotebookError", "NotebookResult", "NotebookRun", "out_of_order_message", "read_notebook",
           "run_notebook", "saved_execution_order"]
CAPTURE_KERNEL_NAME = "nwtrials-capture"
SKIP_TAG = "skip-execution"

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class NotebookRun:
    """What a notebook run adds to a script's result."""

    path: str
    cells: dict[int, dict[str, Any]] = field(default_factory=dict)  # cell number -> status, count, ...
    cell_tags: dict[str, int | None] = field(default_factory=dict)  # now_tag_cell name -> cell number
    running_cell: int | None = None  # the cell that was running when the run was cut short
    out_of_order: str | None = None  # `out_of_order_message` of the saved notebook
    stopped: str | None = None  # why the run ended before the last cell: a time limit, exit()


@dataclass(frozen=True)
class NotebookResult(RunResult):
    """A `RunResult` for a notebook (see the module docstring for how cells are numbered)."""

    notebook: NotebookRun | None = None


# -- running ------------------------------------------------------------------------------------

@dataclass
class _Progress:
    """What the driver saw, kept even when the run is cut short."""

    running: int | None = None
    running_since: float | None = None  # time.monotonic() when the running cell started
    first_cell_at: float | None = None  # when the first cell started: --nw-timeout counts from there
    failed: tuple[int, Any] | None = None  # cell number, CellExecutionError
    exited: dict[str, Any] | None = None  # the kernel's account of exit() / sys.exit() in a cell
    died: str | None = None
    finished: bool = False
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


async def _start(client: Any, started: list[int]) -> None:
    """Connect to the kernel and have it create the trial: all within the start limit, none of it a cell's time."""
    try:
        await client.async_start_new_kernel()  # the kernel is running: this connects to it
        started.append(client.km.provisioner.pid)
        await client.async_start_new_kernel_client()
    except Exception as exc:
        raise _StartError(str(exc) or type(exc).__name__) from exc
    if not await _request(client, {"start": True}):
        raise _StartError("the kernel ended while creating the trial")


def _on_executed(progress: _Progress) -> Any:
    """nbclient's `on_cell_executed` hook: notes an exit, and makes an error output fail the cell
    (as nbmake does: nbclient then raises unless the cell is tagged raises-exception)."""

    async def hook(cell: Any, cell_index: int, execute_reply: dict[str, Any]) -> None:
        content = execute_reply["content"]
        exited = (content.get(META_KEY) or {}).get("exit")
        if exited is not None:
            progress.exited = exited
            return
        output = error_output(cell) if content.get("status") == "ok" else None
        if output is not None:
            content.update(status="error", ename=output.get("ename", "Error"), evalue=output.get("evalue", ""),
                           traceback=[OUTPUT_FAILED, *output.get("traceback", [])])

    return hook


async def _drive(client: Any, nb: Any, progress: _Progress, started: list[int]) -> None:
    from nbclient.exceptions import CellExecutionError, DeadKernelError

    await _start(client, started)
    client.on_cell_executed = _on_executed(progress)
    kc = client.kc
    for number, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        kc.request = {"cell": number, "may_raise": RAISES_TAG in tags}
        progress.running, progress.running_since = number, time.monotonic()
        if progress.first_cell_at is None:
            progress.first_cell_at = progress.running_since
        try:
            await client.async_execute_cell(cell, number - 1)
        except CellExecutionError as exc:
            progress.failed = (number, exc)
            break
        except DeadKernelError:
            progress.died = f"the kernel died while running {cell_text(nb, number)}"
            return
        finally:
            _collect_streams(cell, progress)
        if progress.exited is not None:  # exit() or sys.exit(): the remaining cells are not run
            break
    progress.running = None
    if await _request(client, {"finish": True}):
        progress.finished = True
    else:
        progress.died = "the kernel died while storing the trial"


async def _request(client: Any, request: dict[str, Any]) -> bool:
    """Send the kernel one of our requests (start or finish the trial); False if it died meanwhile."""
    import queue

    kc, km = client.kc, client.km
    for _attempt in range(3):  # a request right after a cell's error can be aborted: send again
        kc.request = request
        msg_id = kc.execute("", silent=True, store_history=False)
        while True:
            try:
                reply = await kc.get_shell_msg(timeout=1)
            except queue.Empty:
                if not await km.is_alive():
                    return False
                continue
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                break
        if reply["content"].get("status") != "aborted":
            return True
    return True


def _collect_streams(cell: Any, progress: _Progress) -> None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            (progress.stderr if output.get("name") == "stderr" else progress.stdout).append(output.get("text", ""))


def _deadline(progress: _Progress, limits: Limits, began: float) -> tuple[float, str]:
    """The next moment the run must be stopped, and which limit that is: start, total or cell."""
    if progress.first_cell_at is None:
        return began + limits.start, "start"
    deadline, which = progress.first_cell_at + limits.total, "total"
    if limits.cell is not None and progress.running is not None and progress.running_since is not None:
        cell_deadline = progress.running_since + limits.cell
        if cell_deadline < deadline:
            deadline, which = cell_deadline, "cell"
    return deadline, which


async def _run(client: Any, nb: Any, progress: _Progress, limits: Limits) -> tuple[str | None, list[int]]:
    """Drive the notebook; when a limit is reached or on cancellation kill the kernel's group first.

    Returns which limit stopped the run (start, total, cell, or None) and the kernel's pid.
    """
    started: list[int] = []
    driving = asyncio.ensure_future(_drive(client, nb, progress, started))
    stopped = None
    began = time.monotonic()
    try:
        while stopped is None:
            deadline, which = _deadline(progress, limits, began)
            left = deadline - time.monotonic()
            if left <= 0:
                stopped = which
                kill_group(started[0] if started else _pid_of(client))
                driving.cancel()
                break
            # the deadline moves when a cell starts: look again at least every quarter second
            done, _ = await asyncio.wait({driving}, timeout=min(left, 0.25))
            if done:
                break
        try:
            await driving
        except BaseException:
            if stopped is None:
                raise
    except BaseException:  # Ctrl-C (asyncio cancels what it runs) or a driver failure
        kill_group(started[0] if started else _pid_of(client))
        raise
    finally:
        await _close(client)
    return stopped, started


def _pid_of(client: Any) -> int | None:
    provisioner = getattr(getattr(client, "km", None), "provisioner", None)
    return getattr(provisioner, "pid", None)


async def _close(client: Any) -> None:
    """Stop the channels and the kernel; the kernel has already written its result."""
    km = client.km
    try:
        if client.kc is not None:
            client.kc.stop_channels()
        if km is not None and km.has_kernel:
            await km.shutdown_kernel(now=True)
    except Exception:  # already dead or killed: the group kill below is what counts
        pass
    finally:
        if km is not None:
            await km.cleanup_resources()


def run_notebook(request: RunRequest, kernel: str | None = None, cell_timeout: float | None = None) -> NotebookResult:
    """Run the notebook `request.script` under capture, top to bottom, in a kernel of its own.

    `kernel` names a Jupyter kernelspec whose Python runs the capture kernel; None means this
    Python. `request.timeout` limits the run from its first cell on; `cell_timeout` (ini
    ``nw_cell_timeout``) each cell, unless the notebook's metadata sets ``execution.timeout``.
    Raises `NotebookError` for a notebook that is not valid nbformat 4 JSON, a missing kernel or
    one that does not start; everything the notebook itself does is reported in the result.
    """
    from nbclient import NotebookClient

    notebook = Path(request.script).resolve()
    nb = read_notebook(notebook)
    out_of_order = out_of_order_message(nb)
    limits = limits_for(nb, request.timeout, cell_timeout)
    request.provenance_dir.mkdir(parents=True, exist_ok=True)
    request.blobs_dir.mkdir(parents=True, exist_ok=True)
    clock = time.perf_counter()
    with take(Kind.of(kernel, request.capture), notebook) as warm:
        result_path, log_path = warm.result_path, warm.log_path
        # read by the kernel when the driver asks it to start the trial
        write_json_atomic(warm.spec_path, {**capture_spec(request, result_path), "notebook": str(notebook),
                                           "environ": warm.environ_changes()})
        client_class, spec_manager, manager_class = classes()
        km = manager_class(kernel_name=CAPTURE_KERNEL_NAME, kernel_spec_manager=spec_manager(spec=warm.spec),
                           client_factory=client_class)
        km.provisioner = warm.provisioner(km)
        client = NotebookClient(
            nb, km=km, timeout=None, startup_timeout=math.ceil(limits.start),  # an int for nbclient
            allow_errors=False, skip_cells_with_tag=SKIP_TAG, record_timing=False, kernel_name=CAPTURE_KERNEL_NAME,
            resources={"metadata": {"path": str(notebook.parent)}})
        progress = _Progress()
        try:
            stopped, started = asyncio.run(_run(client, nb, progress, limits))
        except _StartError as exc:
            raise NotebookError(start_failure(notebook, warm.name, warm.python, log_path, exc)) from None
        if stopped == "start":
            raise NotebookError(start_failure(notebook, warm.name, warm.python, log_path, TimeoutError(
                f"it did not answer within {limits.start:g} s")))
        stderr_log = log_path.read_text(encoding="utf-8", errors="replace")
        for pid in started:
            kill_group(pid)  # whatever the notebook left running
        stdout = "".join(progress.stdout)
        stderr = "".join(progress.stderr) + stderr_log
        info: dict[str, Any] = dict(path=str(notebook), out_of_order=out_of_order, running_cell=progress.running)
        if stopped is not None:
            # how long it ran: a cell limit may stop it long before --nw-timeout
            ran = round(time.perf_counter() - clock, 4)
            return NotebookResult(None, None, None, ran, timed_out=True, stdout=stdout,
                                  stderr=stderr, notebook=NotebookRun(
                                      stopped=timeout_text(nb, limits, progress.running, stopped == "total"),
                                      **info))
        try:
            doc = json.loads(result_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            how = progress.died or "the kernel ended without reporting a result"
            error = _error_from_client(notebook, nb, progress)
            return NotebookResult(None, 1 if error else None, None, round(time.perf_counter() - clock, 4),
                                  error=error, internal_error=how, stdout=stdout, stderr=stderr,
                                  notebook=NotebookRun(**info))
    return _result(doc, notebook, nb, progress, stdout, stderr, info)


def _result(doc: dict[str, Any], notebook: Path, nb: Any, progress: _Progress, stdout: str, stderr: str,
            info: dict[str, Any]) -> NotebookResult:
    """The `NotebookResult` of a run whose kernel wrote its result document `doc`."""
    error = doc["error"]
    if error is None and progress.failed is not None:  # the kernel saw no error, the driver did
        error = _error_from_client(notebook, nb, progress)
    notebook_doc = doc.get("notebook") or {}
    cells = {int(k): v for k, v in notebook_doc.get("cells", {}).items() if k.isdigit()}
    notes = tuple(doc.get("notes") or ())
    stopped = None
    exited = notebook_doc.get("exit")
    if exited is not None and error is None:
        stopped = f"the notebook called {exited['how']} in cell {exited['cell']}; {not_run_text(nb, exited['cell'])}"
        notes += (stopped,)
    return NotebookResult(
        trial_id=doc["trial_id"],
        exit_code=1 if error else doc["exit_code"],
        started=doc["started"],
        duration=doc["duration"],
        tags=doc["tags"],
        error=error,
        internal_error=doc["internal_error"],
        stdout=stdout,
        stderr=stderr,
        environment=doc.get("environment") or {},
        notes=notes,
        capture_fault=doc.get("capture_fault") if isinstance(doc.get("capture_fault"), dict) else None,
        notebook=NotebookRun(cells=cells, cell_tags=notebook_doc.get("cell_tags", {}), stopped=stopped, **info),
    )


class _StartError(Exception):
    """The kernel did not come up."""


def _error_from_client(notebook: Path, nb: Any, progress: _Progress) -> dict[str, Any] | None:
    """The failing cell as nbclient reported it, when the kernel could not report it itself."""
    if progress.failed is None:
        return None
    number, exc = progress.failed
    cell = nb.cells[number - 1]
    text = _ANSI.sub("", str(getattr(exc, "traceback", "") or exc))
    return {
        "type": getattr(exc, "ename", "Error"),
        "message": getattr(exc, "evalue", str(exc)),
        "traceback": text,
        "location": {"file": str(notebook), "line": None, "cell": number},
        "cell": number,
        "execution_count": cell.get("execution_count"),
        "source": cell.source,
    }
