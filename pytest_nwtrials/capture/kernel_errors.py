"""A cell's exception as the capture kernel reports it: the traceback points into the notebook
(``File "nb.ipynb", cell 7, line 3``), without capture's frames or noWorkflow's own exceptions."""
from __future__ import annotations

import os
import re
import traceback
from typing import Any

from .kernel_cells import Cell


def describe_cell_error(exc: BaseException, cell: Cell, files: dict[str, Cell], is_capture_frame: Any,
                        notebook: str) -> dict[str, Any]:
    """The cell's exception with its traceback pointing into the notebook, not at temp files.

    `files` maps the names IPython compiled cells under to the cells; frames for which
    `is_capture_frame(filename)` holds (capture's and noWorkflow's) are left out.
    """
    tb_exc = traceback.TracebackException.from_exception(exc)
    chained: traceback.TracebackException | None = tb_exc
    seen = set()
    while chained is not None and id(chained) not in seen:
        seen.add(id(chained))
        frames = list(chained.stack)
        # IPython's own `run_code` frame comes before the cell's
        while frames and frames[0].filename not in files and \
                frames[0].filename.endswith(os.path.join("IPython", "core", "interactiveshell.py")):
            frames.pop(0)
        frames = [f for f in frames if not is_capture_frame(f.filename)]
        chained.stack = traceback.StackSummary.from_list(frames)
        for link in ("__cause__", "__context__"):  # noWorkflow's own control-flow exceptions
            linked = getattr(chained, link)
            if linked is not None and (linked.exc_type.__module__ or "").startswith("noworkflow."):
                setattr(chained, link, None)
        chained = chained.__cause__ or chained.__context__
    if isinstance(exc, SyntaxError):  # the cell did not start: where it went wrong is all there is
        text = "".join(tb_exc.format_exception_only())
    else:
        text = "".join(tb_exc.format())
    location = None
    for frame in reversed(tb_exc.stack):
        owner = files.get(frame.filename)
        if owner is not None:
            location = {"file": notebook, "line": (frame.lineno or 0) + owner.line_offset,
                        "cell": owner.index}
            break
    if isinstance(exc, SyntaxError) and exc.filename in files:
        owner = files[exc.filename]
        location = {"file": notebook, "line": (exc.lineno or 0) + owner.line_offset, "cell": owner.index}
    if location is None:
        location = {"file": notebook, "line": None, "cell": cell.index}
    return {
        "type": type(exc).__name__,
        "message": exc.msg if isinstance(exc, SyntaxError) else str(exc),
        "traceback": point_into_notebook(text, files, notebook),
        "location": location,
        "cell": cell.index,
        "execution_count": cell.execution_count,
        "source": cell.source,
    }

def point_into_notebook(text: str, files: dict[str, Cell], notebook: str) -> str:
    """``File "/tmp/ipykernel_1/123.py", line 3`` -> ``File "nb.ipynb", cell 7, line 3``."""
    name = os.path.basename(notebook)

    def replace(match: re.Match) -> str:
        owner = files.get(match.group(1))
        if owner is None:
            return match.group(0)
        return f'File "{name}", {owner.label}, line {int(match.group(2)) + owner.line_offset}'

    return re.sub(r'File "([^"]+)", line (\d+)', replace, text)
