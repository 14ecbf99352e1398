"""Recursion under capture: the depths plain Python reaches, and a short RecursionError.

noWorkflow (2.1.3) runs each call of a rewritten function through three frames of its own
(``Collector._call``, ``new_function_def``, and the function called from there), so a
recursion uses four frames per level, and more when a C function calls back (``map``,
``functools.lru_cache``). Under Python's default limit of 1000 a recursive function failed
at about 190 levels where plain Python reaches 996: "RecursionError: maximum recursion depth
exceeded", or an IndexError from the collector's bookkeeping, and a message of 1,167 lines.
"""
from __future__ import annotations

import os
import sys
from types import TracebackType
from typing import Any

# frames per level of recursion under capture: 4 for a Python call, 6 to 7 when a C function
# calls back; measured on CPython 3.11 with `inspect.stack()` at the bottom of a recursion
FRAMES_PER_CALL = 8
SHOWN_FRAMES = 50  # IPython shows a RecursionError's first and last 50 frames of the notebook
_RAISED_FROM = "_nwtrials_recursion_limit"  # the limit before it was raised, kept on `sys`


def install(metascript: Any) -> None:
    """Raise the recursion limit to `FRAMES_PER_CALL` times the one Python had.

    With the default of 1000 this is 8000: a recursion of 900 levels runs as under plain
    Python (through ``map`` and in a thread too), and an endless one still ends in
    RecursionError, after about 2,660 levels instead of 996, which the experiment can catch
    and go on capturing. Measured: depth 500 of a recursive factorial 2.0 s and 115 MB; an
    endless recursion through ``map`` in the main thread and in a thread ended in
    RecursionError, not in a crash of the process (the C stack is 8 MB there). A limit the
    experiment sets itself with ``sys.setrecursionlimit`` is used as it is. Raised once per
    process (the notebook kernel and the script runner each install it before any code runs).
    """
    if getattr(sys, _RAISED_FROM, None) is None:
        limit = sys.getrecursionlimit()
        setattr(sys, _RAISED_FROM, limit)
        sys.setrecursionlimit(limit * FRAMES_PER_CALL)
    shell = _running_shell()
    if shell is not None:
        short_notebook_tracebacks(shell)


def plain_recursion_error(exc: BaseException) -> BaseException:
    """`exc` without the RecursionError that noWorkflow's bookkeeping raised while it handled
    the experiment's RecursionError, so that the message reads as Python's own.

    At the limit, the collector's cleanup of the failing call fails again, and the traceback
    showed "During handling of the above exception, another exception occurred" between two
    RecursionErrors. The inner one is dropped from the chain; the experiment's frames,
    collapsed as Python collapses repeated lines ("[Previous line repeated 2657 more times]"),
    and its line remain.
    """
    if isinstance(exc, RecursionError) and isinstance(exc.__context__, RecursionError) and exc.__cause__ is None:
        exc.__context__ = None
        exc.__suppress_context__ = True
    return exc


def _running_shell() -> Any:
    """IPython's shell when this process is the notebook kernel, else None (scripts)."""
    getipython = sys.modules.get("IPython.core.getipython")
    return getipython.get_ipython() if getipython is not None else None


def _capture_dirs() -> tuple[str, ...]:
    """The folders of noWorkflow and of this package (the parent of `capture`, not imported)."""
    import noworkflow

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return tuple(os.path.join(folder, "") for folder in (os.path.dirname(os.path.abspath(noworkflow.__file__)), package))


def without_capture_frames(tb: TracebackType | None, dirs: tuple[str, ...],
                           keep: int = SHOWN_FRAMES) -> TracebackType | None:
    """The traceback `tb` relinked (``tb_next`` is writable) to skip the frames of files under
    `dirs`, and to keep of the others (the experiment's, Python's and IPython's) the first and
    last `keep`."""
    kept = []
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(dirs):
            kept.append(tb)
        tb = tb.tb_next
    if len(kept) > 2 * keep:
        kept = kept[:keep] + kept[-keep:]
    for tb_before, tb_after in zip(kept, kept[1:]):
        tb_before.tb_next = tb_after
    if kept:
        kept[-1].tb_next = None
    return kept[0] if kept else None


def short_notebook_tracebacks(shell: Any) -> None:
    """Have IPython show a RecursionError in a cell without the frames of capture.

    IPython formats every frame of a traceback (with ``stack_data``) before it collapses the
    repeated ones: at the limit above, with noWorkflow's three frames per call between the
    cell's, an endless recursion in a cell had not been shown after 3 minutes and the notebook
    timed out; IPython took 10 s for each of the two times ipykernel formats it with the
    notebook's 2,657 frames alone (4 ms a frame). The traceback IPython formats is relinked to
    the notebook's first and last `SHOWN_FRAMES` frames, which it collapses as usual ("[...
    skipping similar frames: down at line 2 (96 times)]"): 0.4 s. The relinking is in place, so
    the trial's record of the error shows the same frames ("[Previous line repeated 95 more
    times]").
    """
    tb_formatter = shell.InteractiveTB
    original = tb_formatter.structured_traceback
    if getattr(original, "_nwtrials_short", False):
        return
    dirs = _capture_dirs()

    def structured_traceback(etype: Any, evalue: Any, etb: Any = None, *args: Any, **kwargs: Any) -> Any:
        if isinstance(evalue, RecursionError):
            plain_recursion_error(evalue)
            etb = without_capture_frames(etb, dirs)
            evalue.__traceback__ = etb
        return original(etype, evalue, etb, *args, **kwargs)

    structured_traceback._nwtrials_short = True  # type: ignore[attr-defined]
    tb_formatter.structured_traceback = structured_traceback
