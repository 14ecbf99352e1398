"""The experiment's code in the baseline and in the new trial, side by side, as HTML.

Lines are aligned with `difflib` (the standard library's); a line whose text changed is marked
``chg`` (``del`` / ``ins`` when it is on one side only), and, from the provenance
(`compare/pictures.py` `code_doc`), the line of a root ``root`` and a line whose operations
changed ``diverge``. Runs of unmarked lines longer than twice `CONTEXT` are folded under a
<details> that opens them. A notebook's cells are shown one by one; cells with nothing marked
are folded together.
"""
from __future__ import annotations

import difflib
import html
import re
from typing import Any

from ..printable import printable

__all__ = ["code_html"]

CONTEXT = 3  # unmarked lines kept around a marked one
_CELL = re.compile(r"^(?P<notebook>.+)#cell(?P<cell>\d+)$")
_MARK_CLASS = {"root": "root", "changed": "diverge"}


def _e(value: Any) -> str:
    return html.escape(printable("" if value is None else value), quote=True)


def _label(name: str) -> str:
    cell = _CELL.match(name)
    return f"{cell['notebook']}, cell {cell['cell']}" if cell else name


def code_html(doc: dict[str, Any] | None) -> str:
    """The "Code" part of an experiment's section; "" when neither trial recorded code."""
    if not isinstance(doc, dict):
        return ""
    files = [f for f in doc.get("files") or [] if isinstance(f, dict)]
    note = f"<p class=\"note\">{_e(doc['note'])}</p>" if doc.get("note") else ""
    if not files:
        return f"<h3>Code</h3>{note}" if note else ""
    parts, same = [], []
    for file in files:
        rows, marked = _rows(file)
        block = (f"<div class=\"code-file\" data-file=\"{_e(file.get('file'))}\">"
                 f"<div class=\"code-row code-head\"><span></span><span>{_e(_label(str(file.get('file'))))}: "
                 f"baseline</span><span></span><span>new trial</span></div>{_folded(rows)}</div>")
        if marked or len(files) == 1:
            parts.append(block)
        else:
            same.append((str(file.get("file")), block))
    if same:
        names = ", ".join(_label(name) for name, _ in same)
        parts.append(f"<details class=\"same-code\"><summary>{len(same)} more with nothing marked: {_e(names)}"
                     f"</summary>{''.join(block for _, block in same)}</details>")
    legend = ("<p class=\"note code-legend\"><span class=\"root\">root</span> <span class=\"diverge\">operations "
              "changed</span> <span class=\"chg\">text changed</span> <span class=\"del\">only in the baseline"
              "</span> <span class=\"ins\">only in the new trial</span></p>")
    return f"<h3>Code</h3>{note}{legend}{''.join(parts)}"


def _rows(file: dict[str, Any]) -> tuple[list[tuple[bool, str]], bool]:
    """The aligned rows of one file, each (marked, html), and whether any is marked."""
    old = str(file.get("old") or "").splitlines() if file.get("old") is not None else []
    new = str(file.get("new") or "").splitlines() if file.get("new") is not None else []
    old_marks = {str(k): str(v) for k, v in (file.get("old_marks") or {}).items()}
    new_marks = {str(k): str(v) for k, v in (file.get("new_marks") or {}).items()}
    rows: list[tuple[bool, str]] = []

    def cell(number: int | None, lines: list[str], marks: dict[str, str], text_class: str) -> tuple[str, bool]:
        if number is None:
            return "<span class=\"ln\"></span><span class=\"src empty\"></span>", False
        classes = [text_class] if text_class else []
        mark = _MARK_CLASS.get(marks.get(str(number + 1), ""))
        if mark:
            classes.append(mark)
        return (f"<span class=\"ln\">{number + 1}</span><span class=\"{' '.join(['src', *classes])}\">"
                f"{_e(lines[number]) or ' '}</span>"), bool(classes)

    one_side = file.get("old") is None or file.get("new") is None  # nothing to align: no line is "only" there
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for k in range(max(i2 - i1, j2 - j1)):
            i = i1 + k if i1 + k < i2 else None
            j = j1 + k if j1 + k < j2 else None
            kind = "" if one_side else {"equal": "", "replace": "chg", "delete": "del", "insert": "ins"}[tag]
            left, marked_left = cell(i, old, old_marks, kind)
            right, marked_right = cell(j, new, new_marks, kind)
            rows.append((marked_left or marked_right, f"<div class=\"code-row\">{left}{right}</div>"))
    if not old and file.get("old") is None:  # a placeholder, not a mark: it does not keep a cell in view
        rows.insert(0, (False, "<div class=\"code-row\"><span class=\"ln\"></span><span class=\"src empty\">"
                              "(not recorded)</span><span class=\"ln\"></span><span class=\"src\"></span></div>"))
    if not new and file.get("new") is None:
        rows.insert(0, (False, "<div class=\"code-row\"><span class=\"ln\"></span><span class=\"src\"></span>"
                              "<span class=\"ln\"></span><span class=\"src empty\">(not recorded)</span></div>"))
    return rows, any(marked for marked, _ in rows)


def _folded(rows: list[tuple[bool, str]]) -> str:
    """The rows, with each run of unmarked ones far from a marked one folded."""
    near = [False] * len(rows)
    for n, (marked, _) in enumerate(rows):
        if marked:
            for m in range(max(0, n - CONTEXT), min(len(rows), n + CONTEXT + 1)):
                near[m] = True
    if not any(marked for marked, _ in rows):
        near = [False] * len(rows)
    parts: list[str] = []
    run: list[str] = []
    for n, (_, row) in enumerate(rows):
        if near[n]:
            parts.append(_fold(run))
            run = []
            parts.append(row)
        else:
            run.append(row)
    parts.append(_fold(run))
    return "".join(parts)


def _fold(run: list[str]) -> str:
    if not run:
        return ""
    if len(run) <= 2:
        return "".join(run)
    return (f"<details class=\"fold\"><summary>... {len(run)} unchanged line{'s' if len(run) != 1 else ''}</summary>"
            f"{''.join(run)}</details>")
