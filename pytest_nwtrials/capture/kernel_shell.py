"""How the capture kernel hooks into IPython's shell: cells parsed by noWorkflow, magics that look
up "the caller's frame" past capture's frames, ``%time`` captured once and ``%timeit`` not at all,
and ``exit()`` / ``quit()`` ending the notebook without ending the kernel (see `NotebookCapture.ask_exit`).
"""
from __future__ import annotations

import inspect
import sys
from contextlib import contextmanager
from typing import Any

from .kernel_cells import wrap_magic

# names the rewritten cell code keeps in the user namespace (see noWorkflow's transformer_stmt)
REWRITER_GLOBALS = ("__now_activation__", "__now_result__")


def hook_shell(shell: Any, capture: Any) -> None:
    """Install `capture` (a `kernel_trial.NotebookCapture`) into `shell`, an IPython ZMQInteractiveShell."""
    compiler = shell.compile
    original_parse = compiler.ast_parse
    compiler.ast_parse = lambda source, filename="<unknown>", symbol="exec": \
        capture.ast_parse(original_parse, source, filename, symbol)

    # Under capture the cell calls magics through noWorkflow's collector, so "the caller's
    # frame" IPython looks up for `local_ns` and `{var}` expansion is the collector's: skip it.
    def user_frame(frame):
        while frame is not None and capture.is_capture_frame(frame.f_code.co_filename):
            frame = frame.f_back
        return frame

    def get_local_scope(stack_depth):
        frame = user_frame(sys._getframe(stack_depth + 1))
        return frame.f_locals if frame is not None else shell.user_ns

    default_formatter = inspect.signature(shell.var_expand).parameters["formatter"].default

    def var_expand(cmd, depth=0, formatter=default_formatter):
        ns = shell.user_ns.copy()
        try:
            frame = user_frame(sys._getframe(depth + 1))
        except ValueError:
            frame = None
        if frame is not None:
            ns.update(frame.f_locals)
        try:
            return formatter.vformat(cmd, args=[], kwargs=ns)
        except Exception:
            return cmd

    shell.get_local_scope = get_local_scope
    shell.var_expand = var_expand

    @contextmanager
    def timed_once():
        # the statement becomes part of the cell's provenance; the rewritten code it runs
        # reassigns the rewriter's globals, which the rest of the cell still needs
        saved = {name: shell.user_ns.get(name) for name in REWRITER_GLOBALS}
        capture.arm_nested()
        try:
            yield
        finally:
            capture._parse_next = None
            shell.user_ns.update(saved)

    @contextmanager
    def timed_repeatedly():
        # run below an inactive activation: functions of the notebook called by the timed
        # statement are not recorded once per repetition
        if not capture.active:
            yield
            return
        collector = capture.metascript.execution.collector
        saved = collector.last_activation
        collector.dry_activation(saved)
        try:
            yield
        finally:
            collector.last_activation = saved

    wrap_magic(shell, "time", timed_once)
    wrap_magic(shell, "timeit", timed_repeatedly)
    # exit() and quit() would stop the kernel's loop before the trial is stored
    shell.ask_exit = capture.ask_exit
    # IPython shows a failed rich display (a _repr_html_ or a figure that raises) as an error
    # output of a cell that ran: capture keeps the exception to fail the cell with its traceback
    original_showtraceback = shell.showtraceback

    def showtraceback(exc_tuple=None, *args, **kwargs):
        capture.shown_error((exc_tuple or sys.exc_info())[1])
        return original_showtraceback(exc_tuple, *args, **kwargs)

    shell.showtraceback = showtraceback
