"""What a notebook run may do, and how a run cut short is told: time limits, the notebook's language,
error outputs, and the cells an ``exit()`` or a timeout left unrun.

Three time limits apply, each with its own message:

- the kernel's start (`STARTUP_TIMEOUT`, as nbclient's ``startup_timeout``): the kernel must
  answer and the trial must be created within it; it is not part of ``--nw-timeout``;
- the whole notebook (``--nw-timeout``), counted from the moment the first cell starts;
- one cell: ini ``nw_cell_timeout``, or the notebook's metadata ``execution.timeout`` (the
  per-cell limit nbmake and nbclient read), which takes precedence for that notebook.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# seconds for the kernel to start and the trial to be created; nbclient's default too. Far more
# than the second it takes: reaching it means the kernel is broken, not slow.
STARTUP_TIMEOUT = 60.0
RAISES_TAG = "raises-exception"
FIRST_LINE = 80  # characters of a cell's first line quoted in a message


@dataclass(frozen=True)
class Limits:
    """The time limits of one notebook run, in seconds (None: no limit of its own)."""

    total: float  # --nw-timeout / ini nw_timeout, from the first cell on
    cell: float | None = None
    cell_source: str = ""  # where the cell limit comes from, for the message
    start: float = STARTUP_TIMEOUT


def limits_for(nb: Any, total: float, cell_timeout: float | None) -> Limits:
    """The limits of notebook `nb`: its metadata ``execution.timeout`` wins over ini ``nw_cell_timeout``.

    nbmake and nbclient read ``execution.timeout`` as seconds per cell, where -1 or null means
    none; a value that is no number of seconds is ignored, as nbmake would fail on it later.
    """
    execution = (nb.metadata.get("execution") or {}) if hasattr(nb, "metadata") else {}
    raw = execution.get("timeout") if isinstance(execution, dict) else None
    if "timeout" in (execution if isinstance(execution, dict) else {}):
        if isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw) and raw > 0:
            return Limits(total, float(raw), "the notebook's metadata execution.timeout")
        if raw is None or raw == -1:
            return Limits(total)  # the notebook asks for no cell limit
    if cell_timeout is not None:
        return Limits(total, cell_timeout, "ini nw_cell_timeout")
    return Limits(total)


def cell_text(nb: Any, number: int) -> str:
    """``cell 3 (`time.sleep(5)`)``: the cell's number and its source, or its first line when long."""
    source = str(nb.cells[number - 1].get("source", "")).strip()
    lines = source.splitlines()
    shown = lines[0] if lines else ""
    if len(shown) > FIRST_LINE:
        shown = shown[:FIRST_LINE - 3] + "..."
    more = ", ..." if len(lines) > 1 else ""
    return f"cell {number} (`{shown}`{more})" if shown else f"cell {number}"


def not_run_text(nb: Any, after: int | None) -> str:
    """Which code cells after cell `after` were not run: "cells 4-6 were not run", or that none were left."""
    if after is None:
        return "the cells after it were not run"
    left = [n for n, cell in enumerate(nb.cells, start=1) if n > after and cell.cell_type == "code"]
    if not left:
        return "it was the last code cell"
    if len(left) == 1:
        return f"cell {left[0]} was not run"
    return f"cells {left[0]}-{left[-1]} were not run"


def timeout_text(nb: Any, limits: Limits, cell: int | None, whole: bool) -> str:
    """What stopped the run: the whole notebook's limit or one cell's, naming the cell running then;
    the first line is the headline, the source of the cell follows."""
    running = f" while {cell_text(nb, cell)} was running" if cell is not None else ""
    if whole:
        head = (f"timed out after {limits.total:g} s and was stopped{running}, with the processes it "
                f"started (counted from the first cell)")
        hint = "If it needs longer, raise --nw-timeout or ini nw_timeout."
    else:
        label = cell_text(nb, cell) if cell is not None else "a cell"
        head = (f"was stopped: {label} ran longer than {limits.cell:g} s, the limit of one cell "
                f"({limits.cell_source})")
        hint = f"If it needs longer, raise {limits.cell_source}."
    return "\n".join([head, *_source_block(nb, cell), hint])


def _source_block(nb: Any, cell: int | None, lines: int = 10) -> list[str]:
    """The source of `cell` indented, as failing cells are shown, cut after `lines` lines."""
    if cell is None:
        return []
    source = str(nb.cells[cell - 1].get("source", "")).rstrip().splitlines()
    shown = ["    " + line for line in source[:lines]]
    if len(source) > lines:
        shown.append(f"    ... ({len(source) - lines} more lines)")
    return ["", f"cell {cell}:", *shown, ""]


def error_output(cell: Any) -> dict[str, Any] | None:
    """The first error output of a cell that did not raise: a display whose rendering failed.

    IPython shows such a failure as an error output but reports the cell as run; nbmake fails
    it anyway, and so do we, unless the cell is tagged ``raises-exception``.
    """
    if RAISES_TAG in cell.metadata.get("tags", []):
        return None
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output
    return None


def other_language(nb_path: Path) -> str | None:
    """Why the notebook at `nb_path` is not run: its kernel runs another language than Python, or None.

    The language is the kernelspec's ``language``, else ``language_info.name``; a notebook that
    names neither, or cannot be read (reported when it runs), is taken for Python.
    """
    try:
        doc = json.loads(Path(nb_path).read_text(encoding="utf-8"))
        metadata = doc.get("metadata") or {}
    except (OSError, ValueError, AttributeError):
        return None
    spec = metadata.get("kernelspec")
    spec = spec if isinstance(spec, dict) else {}
    info = metadata.get("language_info")
    info = info if isinstance(info, dict) else {}
    language = str(spec.get("language") or info.get("name") or "python")
    if language.strip().lower() in ("python", "python3", "ipython", "ipython3"):
        return None
    kernel = spec.get("name")
    named = f"{language} ({kernel})" if kernel else language
    return (f"this notebook's kernel is {named}: notebooks are run and captured by a Python kernel "
            f"(ini nw_other_kernels = skip or fail chooses what happens to the others)")
