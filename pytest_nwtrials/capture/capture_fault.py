"""Telling a failure of noWorkflow itself from the experiment's own, for the coarse-capture fallback.

Fine capture rewrites every expression of the experiment into calls into noWorkflow's
collector, so a construct noWorkflow does not follow fails inside its frames while the same
code runs under plain Python and under coarse capture (which rewrites calls only). Such a
failure is a fault of capture, not of the experiment: the plugin then reruns the experiment
with coarse capture (see `session.TrialSession.run`). The experiment's own exceptions (raised
in its frames or in the libraries it calls, even when they unwind through noWorkflow's
wrappers) are never taken for one.
"""
from __future__ import annotations

import os
import sysconfig
import traceback
from typing import Any, Callable

_STDLIB = tuple(os.path.realpath(sysconfig.get_paths()[key]) + os.sep for key in ("stdlib", "platstdlib"))


def _noworkflow_dir() -> str:
    import noworkflow

    return os.path.dirname(os.path.realpath(noworkflow.__file__)) + os.sep


def _stdlib_frame(filename: str) -> bool:
    real = os.path.realpath(filename)
    return real.startswith(_STDLIB) and "site-packages" not in real


# noWorkflow's lines that perform an operation of the experiment on its behalf (calls, item and
# attribute access, iteration, opening a file, its file proxy): an exception raised there is the
# experiment's (``int("x")``, ``d["missing"]``, ``open("missing.csv")``), not noWorkflow's. Read
# from noWorkflow 2.1.3's collector.
_FORWARDING = ("future.func(", "vcontainer[", "getattr(vcontainer", "setattr(vcontainer", "iter(value)",
               "next(it_)", "enumerate(value)", "self._f.", "iter(self._f)", "next(self._f)", "old_open(")


def _forwarding(line: str | None) -> bool:
    return any(part in (line or "") for part in _FORWARDING)


def script_line(script: str) -> Callable[[str, int], str | None]:
    """Names a frame of `script` as ``train.py:12``; other frames not at all."""
    target = os.path.realpath(script)
    name = os.path.basename(script)
    return lambda filename, line: f"{name}:{line}" if os.path.realpath(filename) == target else None


def noworkflow_fault(exc: BaseException, script: str | Callable[[str, int], str | None],
                     stage: str = "running") -> dict[str, Any] | None:
    """Where and what, when `exc` was raised inside noWorkflow's code; None when it was not.

    The innermost frame decides, the standard library's frames aside (noWorkflow's rewriter
    fails inside `ast`'s visitor): a frame of noWorkflow's package means noWorkflow failed,
    unless its line performs the experiment's own operation (`_FORWARDING`). The
    location is the innermost line of `script` on the way, as ``train.py:12`` (`script` may be
    a function naming the experiment's frames instead: a notebook's cells), or the `stage`
    the capture was in when no line of the script was running (storing the trial).
    """
    if isinstance(exc, RecursionError):
        # the experiment's own recursion, wherever the limit was met: capture raises the limit
        # for its own frames (`repair_recursion`), so this depth fails under plain Python too
        return None
    frames = traceback.extract_tb(exc.__traceback__)
    decisive = next((frame for frame in reversed(frames) if not _stdlib_frame(frame.filename)), None)
    if decisive is None or not os.path.realpath(decisive.filename).startswith(_noworkflow_dir()) \
            or _forwarding(decisive.line):
        return None
    locate = script_line(script) if isinstance(script, str) else script
    where = next((found for frame in reversed(frames) if (found := locate(frame.filename, frame.lineno or 0))), None)
    if where is None:  # no line of the script ran into it: noWorkflow failed rewriting it, or storing the trial
        where = "before the script's first line" if stage == "running" else f"while {stage}"
    full = "".join(traceback.format_exception(exc))  # noWorkflow's frames included: for a bug report
    return {"where": where, "type": type(exc).__name__, "message": str(exc), "traceback": full[-4000:]}


def fault_text(capture: str, fault: dict[str, Any]) -> str:
    """'fine capture failed in noWorkflow at train.py:12 (AttributeError: ...)'."""
    where = str(fault.get("where") or "?")
    at = where if where.startswith(("while ", "before ")) else f"at {where}"
    return f"{capture} capture failed in noWorkflow {at} ({fault.get('type')}: {fault.get('message')})"


def fallback_note(fault: dict[str, Any], mode: str = "coarse") -> str:
    """What a trial recorded after a fallback says, in the summary, reports and the record."""
    return f"{fault_text('fine', fault)}; recorded with {mode} capture"
