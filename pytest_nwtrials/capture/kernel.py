"""The capture kernel: an IPython kernel whose whole session is recorded as one noWorkflow trial.

Started ahead of need by `capture.notebook_warm` as ``python -m pytest_nwtrials.capture.kernel
-f CONNECTION_FILE``. The file named by the environment variable ``NWTRIALS_KERNEL_SPEC`` holds
the run's capture spec by the time the driver asks the kernel to start the trial: ``{"notebook",
"argv", "provenance_dir", "blobs_dir", "name", "capture", "ini_tags", "root", "result"}`` (see
`capture.kernel_boot` for how the kernel starts before that).

Each cell is run the way IPython runs it (magics and ``!shell`` are turned into plain Python by
``shell.transform_cell`` first), except that the cell's syntax tree is rewritten by noWorkflow's
AST rewriter as a code block of type ``cell`` (what upstream noWorkflow's own kernel does), so
every operation of the transformed code is recorded. Provenance is stored after each cell; the
trial is finished, and the result file written, when the driver sends an execute request whose
metadata holds ``{"nwtrials": {"finish": true}}``, or at shutdown if it never did.

The driver names the cell it sends in the request metadata: ``{"nwtrials": {"cell": 7,
"may_raise": false}}``; cells are numbered from 1 over all cells of the notebook, markdown
included, the way editors number them.

Inside magics: the statement of ``%time`` / ``%%time`` runs once and is captured like the rest
of the cell; the statement of ``%timeit`` runs many times and is not captured (only the magic
call and its text are), which also keeps the store from growing with every repetition.
"""
from __future__ import annotations

import importlib.metadata
import os
import sys
import traceback
from typing import Any

from ipykernel.ipkernel import IPythonKernel

from . import kernel_boot, lifeline
from .kernel_shell import hook_shell
from .kernel_trial import NotebookCapture

META_KEY = "nwtrials"
# from the installed distribution, not the package root, which capture does not import
try:
    _VERSION = importlib.metadata.version("pytest-nwtrials")
except importlib.metadata.PackageNotFoundError:  # run from a checkout that was not installed
    _VERSION = "unknown"


class CaptureKernel(IPythonKernel):
    """IPython kernel that records the session as one noWorkflow trial (see the module docstring)."""

    implementation = "pytest-nwtrials"
    implementation_version = _VERSION

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.capture: NotebookCapture | None = None  # the notebook comes with the start request

    def _take_notebook(self) -> NotebookCapture:
        """The capture of the notebook the driver has just written into the spec file."""
        if self.capture is None:
            try:
                self.capture = NotebookCapture(self.shell, kernel_boot.take_notebook())
                hook_shell(self.shell, self.capture)
            except BaseException:  # as a kernel that does not start: the driver quotes this traceback
                traceback.print_exc()
                sys.stderr.flush()
                os._exit(1)
        return self.capture

    async def do_execute(self, code, silent, store_history=True, user_expressions=None,
                         allow_stdin=False, *, cell_meta=None, cell_id=None):
        request = (cell_meta or {}).get(META_KEY) or {}
        shell = self.shell
        assert shell is not None  # ipykernel makes the shell before any request
        if request.get("start") or request.get("finish"):
            # the driver starts the trial before the first cell, so that its cost is not the cell's
            taken = self._take_notebook()
            taken.start() if request.get("start") else taken.finish()
            return {"status": "ok", "execution_count": shell.execution_count - 1,
                    "payload": [], "user_expressions": {}}
        capture = self.capture
        if silent or not store_history or capture is None or capture.finished:
            return await super().do_execute(code, silent, store_history, user_expressions, allow_stdin,
                                            cell_meta=cell_meta, cell_id=cell_id)
        exit_before = capture.exit
        cell = None
        try:
            cell = capture.before_cell(code, request.get("cell"), bool(request.get("may_raise")))
        except Exception as exc:  # the cell still runs, uncaptured; the trial is reported broken
            capture.fail_inside(f"preparing cell {request.get('cell')}", exc)
        try:
            reply = await super().do_execute(code, silent, store_history, user_expressions, allow_stdin,
                                             cell_meta=cell_meta, cell_id=cell_id)
        finally:
            if cell is not None:
                try:
                    capture.after_cell(cell, shell.last_execution_result)
                except Exception as exc:
                    capture.fail_inside(f"ending {cell.label}", exc)
        ended = capture.exit
        if ended is not None and ended is not exit_before:  # this cell ended the notebook: tell the driver
            reply = {"status": "ok", "execution_count": reply.get("execution_count"),
                     "payload": [], "user_expressions": {}, META_KEY: {"exit": ended.to_json()}}
        return reply

    async def do_shutdown(self, restart):
        if self.capture is not None and self.capture.started is not None and not self.capture.finished:
            self.capture.finish()  # the driver never asked: the trial ends with the session
        return super().do_shutdown(restart)


def main() -> None:
    from ipykernel.kernelapp import IPKernelApp

    boot = kernel_boot.read_boot()
    # before the kernel starts: it ends with pytest, and so does every process a cell started
    lifeline.guard(boot.get("lifeline"))
    kernel_boot.preload(noworkflow=bool(boot.get("preload")))
    IPKernelApp.launch_instance(kernel_class=CaptureKernel)


if __name__ == "__main__":
    # run from the imported module, so that the kernel's classes and functions are named
    # pytest_nwtrials.capture.kernel.* in provenance, not __main__.*
    from pytest_nwtrials.capture.kernel import main as _main

    _main()
