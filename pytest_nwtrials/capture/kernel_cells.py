"""What the capture kernel keeps about each cell, and the parts of a session that need no noWorkflow.

`capture.kernel` runs the cells; this module holds what it records about them (`Cell`), how a
cell or the notebook ends the session early (``exit()``, ``quit()``, ``sys.exit()``), the
builtins a notebook gets under ``--nw-capture=off``, and how a failure of the kernel's own code
is reported: with its traceback, cut to the frames of capture.
"""
from __future__ import annotations

import builtins
import importlib.util
import json
import os
import time
import traceback
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from . import recorder as _recorder
from .capture_setup import exit_code_of


OUTPUT_FAILED = ("The cell ran, but one of its outputs failed to show (tag the cell raises-exception "
                 "if that is expected):")


@dataclass
class Cell:
    """One executed cell, as the kernel saw it."""

    index: int | None  # 1-based over all cells of the notebook; None when the driver did not say
    execution_count: int
    source: str
    may_raise: bool = False
    filename: str | None = None  # the name IPython compiled it under
    line_offset: int = 0  # leading blank lines IPython dropped before compiling
    started: float = field(default_factory=time.perf_counter)
    duration: float = 0.0
    status: str = "running"  # ok, error, expected-error, exit
    error: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"cell {self.index}" if self.index is not None else f"In [{self.execution_count}]"

    @property
    def key(self) -> str:
        """How results and provenance name the cell: its number, or its execution count."""
        return str(self.index) if self.index is not None else f"In[{self.execution_count}]"

    def to_json(self) -> dict[str, Any]:
        doc = {"execution_count": self.execution_count, "status": self.status,
               "duration": round(self.duration, 4)}
        if self.error is not None:
            doc["error"] = {"type": self.error["type"], "message": self.error["message"]}
        return doc


@dataclass(frozen=True)
class Exit:
    """The notebook ended the session in a cell: how (``exit()``, ``sys.exit(2)``) and with which status."""

    cell: int | None
    how: str
    exit_code: int
    message: str | None = None  # ``sys.exit("text")`` prints the text, as Python does

    def to_json(self) -> dict[str, Any]:
        return {"cell": self.cell, "how": self.how, "exit_code": self.exit_code}


def exit_of_system_exit(exc: SystemExit, cell: Cell) -> Exit:
    """The `Exit` of ``sys.exit(code)`` (or ``raise SystemExit``) in `cell`: the status a script would get."""
    code, message = exit_code_of(exc.code)
    shown = "" if exc.code is None else repr(exc.code)
    return Exit(cell.index, f"sys.exit({shown})", code, message)


def leading_blank_lines(source: str) -> int:
    """How many lines IPython's `leading_empty_lines` cleanup removes from the top of a cell."""
    lines = source.splitlines()
    for number, line in enumerate(lines):
        if line and not line.isspace():
            return number
    return 0


def code_of_notebook(path: str) -> str:
    """The code cells' sources: what the notebook's code hash (noWorkflow's version tag) covers."""
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
        cells = code_cells(doc)
    except (OSError, ValueError, AttributeError):
        return ""
    return "\n\n".join(source for _, source in cells)


def code_cells(doc: Any) -> list[tuple[int, str]]:
    """A notebook document's code cells: each one's number (1-based over all cells, as `Cell.index`)
    and source. AttributeError or TypeError when the document is not a notebook's."""
    cells = [(number, cell.get("source", "")) for number, cell in enumerate(doc.get("cells", []), start=1)
             if cell.get("cell_type") == "code"]
    return [(number, s if isinstance(s, str) else "".join(s)) for number, s in cells]


def flush_written_files(collector: Any) -> None:
    """Flush files the cell wrote without closing them, so that the next cells can read them.

    noWorkflow keeps every file opened for writing referenced until the trial ends, so
    ``open(p, "w").write(text)`` is not flushed when the file object is dropped, as it is
    without capture; within one cell that difference remains.
    """
    for handle in list(getattr(collector, "open_write_files", {}).values()):
        try:
            if not handle.closed:
                handle.flush()
        except (OSError, ValueError):
            pass


def package_dir(name: str) -> str | None:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec else []
    return os.path.join(locations[0], "") if locations else None


def wrap_magic(shell: Any, name: str, around: Any) -> None:
    """Replace the line/cell magic `name` by one that runs the original inside `around`."""
    original = shell.find_magic(name)
    if original is None:
        return

    @wraps(original)
    def magic(line="", cell=None, local_ns=None):
        with around():
            if cell is None:
                return original(line, local_ns=local_ns)
            return original(line, cell, local_ns=local_ns)

    shell.register_magic_function(magic, "line_cell", name)


def install_plain_builtins(recorder: _recorder.Recorder, cell_tags: dict[str, int | None], current: Any) -> None:
    """noWorkflow's ``now_tag_variable`` and ``now_tag_cell`` for a notebook run without noWorkflow.

    ``now_tag_variable`` is the script runner's (`recorder.provide_plain_tag_variable`);
    ``now_tag_cell(name)`` records which cell named itself. `current` returns the running `Cell`
    (or None).
    """

    def now_tag_cell(tag: Any) -> None:
        cell = current()
        cell_tags[str(tag)] = cell.index if cell is not None else None

    _recorder.provide_plain_tag_variable(builtins, recorder)
    setattr(builtins, "now_tag_cell", now_tag_cell)  # a builtin of noWorkflow's, not typeshed's


def internal_failure(doing: str, exc: BaseException, own_dirs: tuple[str, ...]) -> str:
    """``noWorkflow failed while <doing>: Type: message`` and the traceback from capture's first frame.

    The frames of ipykernel and asyncio that called into capture say nothing about the fault;
    from the first frame in one of `own_dirs` (this plugin, noWorkflow) on, everything is kept,
    the notebook's own frames included, since a cell may have set the failure up.
    """
    tb_exc = traceback.TracebackException.from_exception(exc)
    frames = list(tb_exc.stack)
    first = next((i for i, frame in enumerate(frames) if frame.filename.startswith(own_dirs)), 0)
    tb_exc.stack = traceback.StackSummary.from_list(frames[first:])
    text = "".join(tb_exc.format()).rstrip()
    return f"noWorkflow failed while {doing}: {type(exc).__name__}: {exc}\n{text}"
