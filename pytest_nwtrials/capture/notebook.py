"""Runs a Jupyter notebook under capture: every cell, top to bottom, in the capture kernel.

The notebook is read here and executed from a copy in memory (the file is never written) by
nbclient, against `capture.kernel` started with the notebook's folder as working directory.
One kernel session is one trial. The result is the same `RunResult` scripts give, extended with
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
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import lifeline
from .launch import RunRequest, RunResult, capture_spec, kill_group

KERNEL_MODULE = "pytest_nwtrials.capture.kernel"
# the same names as in `capture.kernel`, which is not imported here: it imports ipykernel
SPEC_ENV = "NWTRIALS_KERNEL_SPEC"
META_KEY = "nwtrials"
CAPTURE_KERNEL_NAME = "nwtrials-capture"
RAISES_TAG = "raises-exception"
SKIP_TAG = "skip-execution"
STARTUP_TIMEOUT = 60.0  # seconds for the kernel to answer at all, within the notebook's timeout

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class NotebookError(Exception):
    """A notebook that cannot be run as it is: unreadable, not nbformat 4, or its kernel is missing."""


@dataclass(frozen=True)
class NotebookRun:
    """What a notebook run adds to a script's result."""

    path: str
    cells: dict[int, dict[str, Any]] = field(default_factory=dict)  # cell number -> status, count, ...
    cell_tags: dict[str, int | None] = field(default_factory=dict)  # now_tag_cell name -> cell number
    running_cell: int | None = None  # the cell that was running when the run was cut short
    out_of_order: str | None = None  # `out_of_order_message` of the saved notebook


@dataclass(frozen=True)
class NotebookResult(RunResult):
    """A `RunResult` for a notebook (see the module docstring for how cells are numbered)."""

    notebook: NotebookRun | None = None


# -- the saved notebook ---------------------------------------------------------------------------

def read_notebook(path: Path) -> Any:
    """The notebook at `path` as an nbformat node, or a `NotebookError` saying what is wrong."""
    import nbformat

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NotebookError(f"{path}: cannot read the notebook: {exc}") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise NotebookError(
            f"{path} is not valid JSON ({exc}); a notebook is a JSON file: "
            "repair it (a merge conflict?) or save it again from Jupyter") from None
    if not isinstance(doc, dict) or "cells" not in doc and "worksheets" not in doc:
        raise NotebookError(f"{path} is JSON but not a Jupyter notebook (no cells)")
    version = doc.get("nbformat")
    if version != 4:
        raise NotebookError(
            f"{path} is nbformat {version}, not 4: convert it with "
            f"`jupyter nbconvert --to notebook --nbformat 4 --inplace {path}` or save it from a current Jupyter")
    try:
        return nbformat.reads(text, as_version=nbformat.NO_CONVERT)
    except Exception as exc:  # nbformat's own reader refused it
        raise NotebookError(f"{path} is not a readable nbformat 4 notebook: {exc}") from None


def _code_cells(nb: Any) -> list[tuple[int, Any]]:
    return [(number, cell) for number, cell in enumerate(nb.cells, start=1) if cell.cell_type == "code"]


def saved_execution_order(nb: Any) -> list[int]:
    """The execution counts saved with the code cells, in the notebook's order (unrun cells left out)."""
    return [cell.get("execution_count") for _, cell in _code_cells(nb) if cell.get("execution_count") is not None]


def out_of_order_message(nb: Any) -> str | None:
    """Why the saved outputs may not come from running the notebook top to bottom, or None.

    They do when the saved execution counts read 1, 2, ..., n down the notebook. Counts out of
    order mean cells were run in another order; gaps mean a cell ran that is no longer there
    (deleted, or run again further down); both make the saved outputs unreproducible.
    """
    order = saved_execution_order(nb)
    if not order or order == list(range(1, len(order) + 1)):
        return None
    shown = ", ".join(str(count) for count in order)
    if order != sorted(order) or len(set(order)) != len(order):
        why = "not top to bottom"
    else:
        missing = sorted(set(range(1, order[-1] + 1)) - set(order))
        listed = ", ".join(str(m) for m in missing[:5]) + (", ..." if len(missing) > 5 else "")
        why = f"with gaps ({listed} ran but no cell shows it)"
    return (f"saved outputs came from the order {shown}, {why}: restart the kernel, run all cells "
            "and save the notebook so that its outputs are reproducible")


# -- which kernel ------------------------------------------------------------------------------------

def _kernel_spec(kernel: str | None, notebook: Path, spec_path: Path) -> tuple[Any, str, str]:
    """Our kernel's spec, its Python and a name for messages: the capture kernel on this Python,
    or on the interpreter (argv[0]) of the kernelspec named `kernel`, with that spec's environment."""
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel

    python, env, name = sys.executable, {}, "this Python"
    if kernel:
        specs = KernelSpecManager()
        try:
            named = specs.get_kernel_spec(kernel)
        except NoSuchKernel:
            available = ", ".join(sorted(specs.find_kernel_specs())) or "none"
            raise NotebookError(
                f"{notebook}: no Jupyter kernel named {kernel!r} (--nw-kernel / nw_kernel); "
                f"kernels available: {available}. Pick one of them (`jupyter kernelspec list`), "
                f"or install one with `python -m ipykernel install --user --name {kernel}`") from None
        if (named.language or "").lower() != "python" or not named.argv:
            raise NotebookError(
                f"{notebook}: kernel {kernel!r} runs {named.language or 'an unknown language'}; "
                "notebooks are captured by a Python kernel")
        python, env, name = named.argv[0], dict(named.env or {}), f"kernel {kernel!r}"
    env[SPEC_ENV] = str(spec_path)
    env.setdefault("PYTHONIOENCODING", "utf-8")
    # IPython's history would go to one shared sqlite file in the user's home
    argv = [python, "-m", KERNEL_MODULE, "-f", "{connection_file}", "--HistoryManager.hist_file=:memory:"]
    if lifeline.pass_fds():
        # the lifeline ends the kernel's whole group when pytest is gone; ipykernel's own check
        # would end the kernel alone, leaving what the cells started running, and could come first
        argv.append("--IPKernelApp.parent_handle=0")
    return KernelSpec(
        argv=argv,
        display_name=f"pytest-nwtrials capture ({name})",
        language="python",
        env=env,
        interrupt_mode="signal",
    ), python, name


def _classes() -> tuple[type, type, type]:
    """Our kernel client, spec manager and kernel manager (jupyter_client imported on first use)."""
    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import Any as AnyTrait
    from traitlets import Dict

    class CellClient(AsyncKernelClient):
        """Sends with each execute request which notebook cell it is, for the capture kernel."""

        request = Dict()

        def execute(self, code, silent=False, store_history=True, user_expressions=None,
                    allow_stdin=None, stop_on_error=True):
            content = {
                "code": code, "silent": silent, "store_history": store_history,
                "user_expressions": user_expressions or {},
                "allow_stdin": self.allow_stdin if allow_stdin is None else allow_stdin,
                "stop_on_error": stop_on_error,
            }
            msg = self.session.msg("execute_request", content, metadata={META_KEY: dict(self.request)})
            self.shell_channel.send(msg)
            return msg["header"]["msg_id"]

    class OneKernel(KernelSpecManager):
        """A spec manager that knows only the capture kernel's spec."""

        spec = AnyTrait()

        def get_kernel_spec(self, kernel_name, *args, **kwargs):
            return self.spec

    return CellClient, OneKernel, AsyncKernelManager


# -- running ------------------------------------------------------------------------------------

@dataclass
class _Progress:
    """What the driver saw, kept even when the run is cut short."""

    running: int | None = None
    failed: tuple[int, Any] | None = None  # cell number, CellExecutionError
    died: str | None = None
    finished: bool = False
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


async def _drive(client: Any, nb: Any, progress: _Progress, started: list[int], log: Any) -> None:
    from nbclient.exceptions import CellExecutionError, DeadKernelError

    try:
        # the kernel's own output (the cells' comes as messages) goes to the log file
        await client.async_start_new_kernel(stdout=log, stderr=log, pass_fds=lifeline.pass_fds())
        started.append(client.km.provisioner.pid)
        await client.async_start_new_kernel_client()
    except Exception as exc:
        raise _StartError(str(exc) or type(exc).__name__) from exc
    kc = client.kc
    for number, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        kc.request = {"cell": number, "may_raise": RAISES_TAG in tags}
        progress.running = number
        try:
            await client.async_execute_cell(cell, number - 1)
        except CellExecutionError as exc:
            progress.failed = (number, exc)
            break
        except DeadKernelError:
            progress.died = f"the kernel died while running cell {number}"
            return
        finally:
            _collect_streams(cell, progress)
    progress.running = None
    await _finish(client, progress)


async def _finish(client: Any, progress: _Progress) -> None:
    """Ask the kernel to store the trial and write its result; notice if it dies meanwhile."""
    import queue

    kc, km = client.kc, client.km
    for _attempt in range(3):  # a request right after a cell's error can be aborted: send again
        kc.request = {"finish": True}
        msg_id = kc.execute("", silent=True, store_history=False)
        while True:
            try:
                reply = await kc.get_shell_msg(timeout=1)
            except queue.Empty:
                if not await km.is_alive():
                    progress.died = "the kernel died while storing the trial"
                    return
                continue
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                break
        if reply["content"].get("status") != "aborted":
            progress.finished = True
            return


def _collect_streams(cell: Any, progress: _Progress) -> None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            (progress.stderr if output.get("name") == "stderr" else progress.stdout).append(output.get("text", ""))


async def _run(client: Any, nb: Any, progress: _Progress, timeout: float, log: Any) -> tuple[bool, list[int]]:
    """Drive the notebook; on timeout or cancellation kill the kernel's group before anything else."""
    started: list[int] = []
    driving = asyncio.ensure_future(_drive(client, nb, progress, started, log))
    timed_out = False
    try:
        done, _ = await asyncio.wait({driving}, timeout=timeout)
        if not done:
            timed_out = True
            kill_group(started[0] if started else _pid_of(client))
            driving.cancel()
        try:
            await driving
        except BaseException:
            if not timed_out:
                raise
    except BaseException:  # Ctrl-C (asyncio cancels what it runs) or a driver failure
        kill_group(started[0] if started else _pid_of(client))
        raise
    finally:
        await _close(client)
    return timed_out, started


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


def run_notebook(request: RunRequest, kernel: str | None = None) -> NotebookResult:
    """Run the notebook `request.script` under capture, top to bottom, in a fresh kernel.

    `kernel` names a Jupyter kernelspec whose Python runs the capture kernel; None means this
    Python. Raises `NotebookError` for a notebook that is not valid nbformat 4 JSON or a
    missing kernel; everything the notebook itself does is reported in the result.
    """
    from nbclient import NotebookClient

    notebook = Path(request.script).resolve()
    nb = read_notebook(notebook)
    out_of_order = out_of_order_message(nb)
    request.provenance_dir.mkdir(parents=True, exist_ok=True)
    request.blobs_dir.mkdir(parents=True, exist_ok=True)
    clock = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nwtrials-nb-") as tmp:
        spec_path = Path(tmp, "spec.json")
        result_path = Path(tmp, "result.json")
        log_path = Path(tmp, "kernel.log")
        kernel_spec, python, kernel_name = _kernel_spec(kernel, notebook, spec_path)
        spec_path.write_text(json.dumps({**capture_spec(request, result_path), "notebook": str(notebook)}),
                             encoding="utf-8")
        client_class, spec_manager, manager_class = _classes()
        # local sockets in our temporary folder: no TCP ports, nothing written beside the notebook
        km = manager_class(kernel_name=CAPTURE_KERNEL_NAME, transport="ipc", ip=str(Path(tmp, "kernel")),
                           kernel_spec_manager=spec_manager(spec=kernel_spec),
                           client_factory=client_class)
        client = NotebookClient(
            nb, km=km, timeout=None, startup_timeout=min(STARTUP_TIMEOUT, request.timeout),
            allow_errors=False, skip_cells_with_tag=SKIP_TAG, record_timing=False, kernel_name=CAPTURE_KERNEL_NAME,
            resources={"metadata": {"path": str(notebook.parent)}})
        progress = _Progress()
        with open(log_path, "wb") as log:
            try:
                timed_out, started = asyncio.run(_run(client, nb, progress, request.timeout, log))
            except _StartError as exc:
                log.flush()
                raise NotebookError(_start_failure(notebook, kernel_name, python, log_path, exc)) from None
        stderr_log = log_path.read_text(encoding="utf-8", errors="replace")
        for pid in started:
            kill_group(pid)  # whatever the notebook left running
        stdout = "".join(progress.stdout)
        stderr = "".join(progress.stderr) + stderr_log
        info = dict(path=str(notebook), out_of_order=out_of_order, running_cell=progress.running)
        if timed_out:
            return NotebookResult(None, None, None, request.timeout, timed_out=True, stdout=stdout,
                                  stderr=stderr, notebook=NotebookRun(**info))
        try:
            doc = json.loads(result_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            how = progress.died or "the kernel ended without reporting a result"
            error = _error_from_client(notebook, nb, progress)
            return NotebookResult(None, 1 if error else None, None, round(time.perf_counter() - clock, 4),
                                  error=error, internal_error=how, stdout=stdout, stderr=stderr,
                                  notebook=NotebookRun(**info))
    error = doc["error"]
    if error is None and progress.failed is not None:  # the kernel saw no error, the driver did
        error = _error_from_client(notebook, nb, progress)
    cells = {int(k): v for k, v in (doc.get("notebook") or {}).get("cells", {}).items() if k.isdigit()}
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
        notes=tuple(doc.get("notes") or ()),
        capture_fault=doc.get("capture_fault") if isinstance(doc.get("capture_fault"), dict) else None,
        notebook=NotebookRun(cells=cells, cell_tags=(doc.get("notebook") or {}).get("cell_tags", {}), **info),
    )


class _StartError(Exception):
    """The kernel did not come up."""


def _start_failure(notebook: Path, kernel_name: str, python: str, log_path: Path, exc: Exception) -> str:
    output = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    tail = "\n".join(output[-15:])
    hint = ""
    if "No module named" in tail:
        hint = (f"\nThe capture kernel needs pytest-nwtrials, noworkflow and ipykernel installed for {python}.")
    return (f"{notebook}: the capture kernel ({kernel_name}, {python}) did not start: {exc}"
            + (f"\n{tail}" if tail else "") + hint)


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
