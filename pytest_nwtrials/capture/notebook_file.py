"""The saved notebook: read and checked before it runs, and what its saved execution counts say."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .notebook_kernel import NotebookError


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
