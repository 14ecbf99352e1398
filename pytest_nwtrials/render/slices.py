"""The text of a slice diff in a failure report: the headline, the chain, then the changes.

The headline is what `rootcause.explain` found: the root cause as the statement a person wrote
(`train.py:12  SEED = 0 -> 1`), the steps that now run in another order, or, when the record
cannot tell a cause from a symptom, the first divergence, named as such. Then the chain from
the root to the tagged value, then every change in order; all of it capped.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..compare.missing_tags import MissingTag
from ..compare.rootcause import Explanation, InputLike, Reorder, Verdict, explain
from ..compare.slices import VALUE_KINDS, OpChange, OpKind, SliceDiff
from ..provenance.reader import Op

__all__ = ["Fold", "format_missing_tag", "format_slice_diff", "indented", "where"]

_VALUE_WIDTH = 80
_CODE_WIDTH = 60
CHAIN_SHOWN = 5  # steps of the chain shown; a longer one keeps its first and last ones
FOLDED_MAX = 400  # changes a `Fold` opens at most; the HTML report stays a few hundred KiB
_STATEMENT_SCAN = 64  # changes looked at, either side of a root, for the rest of its statement
_CELL = re.compile(r"^(?P<notebook>.+)#cell(?P<cell>\d+)(?::%time)?$")
_VIA = {"mutation": "  (via mutation)", "state": "  (via hidden state)", "control": "  (via control flow)"}


class Fold(str):
    """A line that stands for the `hidden` lines right after it (``... and 40 more``): a text
    report shows it instead of them, the HTML report shows them when it is opened."""

    hidden: int

    def __new__(cls, text: str, hidden: int) -> Fold:
        line = super().__new__(cls, text)
        line.hidden = hidden
        return line


def indented(prefix: str, line: str) -> str:
    """`line` after `prefix`, still a `Fold` if it was one."""
    return Fold(prefix + line, line.hidden) if isinstance(line, Fold) else prefix + line


def folded(lines: Sequence[str]) -> list[str]:
    """The lines a text report shows: each `Fold` without the lines it stands for."""
    shown: list[str] = []
    skip = 0
    for line in lines:
        if skip:
            skip -= 1
            continue
        shown.append(str(line))
        if isinstance(line, Fold):
            skip = line.hidden
    return shown


def format_slice_diff(diff: SliceDiff, *, limit: int = 15, inputs: Sequence[InputLike] = (),
                      explanation: Explanation | None = None, fold: bool = False) -> list[str]:
    """Lines for a failure report: the headline, the chain, then the changes in order, capped.

    `inputs` are the trial's input changes, which can name the cause of a value that changed
    with the same recorded inputs; `explanation` is `rootcause.explain`'s, when already made.
    A run of operations moved together (a swapped step and everything it ran) is one line.
    With `fold`, what the cap leaves out follows a `Fold` line instead (the HTML report's).
    """
    explanation = explanation or explain(diff.old, diff.new, diff.changes, inputs)
    if explanation is None:
        return []
    lines = headline(explanation, diff.changes, fold=fold)
    hidden = len(lines) - len(folded(lines))  # the cap counts the lines a text report shows
    changes = diff.changes
    shown, capped = 0, None  # capped: the changes shown when the cap was reached
    rest: list[str] = []
    while shown < len(changes) and (len(lines) - hidden <= limit or (fold and len(rest) < FOLDED_MAX)):
        change = changes[shown]
        run = 1
        if change.kind is OpKind.MOVED and change.index_old is not None and change.index_new is not None:
            i, j = change.index_old, change.index_new  # a move has both
            while (shown + run < len(changes) and changes[shown + run].kind is OpKind.MOVED
                   and changes[shown + run].index_old == i + run and changes[shown + run].index_new == j + run):
                run += 1
        text = f"  {_describe(change)}"
        if run > 1:
            text += ", with the operation after it" if run == 2 else f", with the {run - 1} operations after it"
        if len(lines) - hidden > limit and capped is None:
            capped = shown
        (rest if capped is not None else lines).append(text)
        shown += run
    if capped is not None:
        if shown < len(changes):
            rest.append(f"  ... and {len(changes) - shown} more, not listed")
        return [*lines, Fold(f"  ... and {len(changes) - capped} more", len(rest)), *rest]
    if shown < len(changes):
        lines.append(f"  ... and {len(changes) - shown} more")
    return lines


def headline(explanation: Explanation, changes: Sequence[OpChange], *, fold: bool = False) -> list[str]:
    """The root cause (or first divergence) and the chain to the tag, then the reorders; with
    `fold`, the steps of a long chain follow a `Fold` line instead of being left out."""
    lines = []
    change = explanation.change
    if change is not None:
        lines += _root_lines(explanation.verdict, change, explanation.following, explanation.inputs, changes,
                             variation=explanation.variation)
        if explanation.verdict in (Verdict.UNSEEN, Verdict.VARIES) and explanation.dropped:
            lines.append(f"    (the slice leaves out its {explanation.dropped} earliest operations, "
                         "where the cause may be)")
        lines += _chain(explanation, fold=fold)
    for other in explanation.others:
        lines += _root_lines(other.verdict, other.change, other.following, other.inputs, changes, also=True,
                             variation=other.variation)
    lines += [f"  reordered: {_reorder(r)}" for r in explanation.reorders]
    if explanation.stale == "baseline":
        lines.append("  (the baseline's record predates dependency edges, so this is the first divergence, "
                     "maybe a symptom: save the baseline again to name root causes)")
    elif explanation.stale:
        lines.append("  (this trial's record has no dependency edges, so this is the first divergence, maybe a symptom)")
    return lines


def _root_lines(verdict: Verdict, change: OpChange, following: OpChange | None, inputs: Sequence[InputLike],
                changes: Sequence[OpChange], *, also: bool = False, variation: Any = None) -> list[str]:
    """The line of a root (the headline's, or `also` another one) and what may explain it."""
    if verdict is Verdict.VARIES:
        return _varies_lines(change, variation, also=also)
    at = f"{where(_op(change))}  "
    cause, divergence = ("another root cause", "also") if also else ("root cause", "first divergence")
    if verdict is Verdict.CAUSE:
        return [f"  {cause}: {at}{_statement(change, following, changes)}"]
    if verdict is Verdict.INPUT:
        named = "; ".join(_untied(i) for i in inputs)
        return [f"  {cause}: {named}, read at {at}`{_short(_op(change).code, _CODE_WIDTH)}`"]
    if verdict is Verdict.UNSEEN:
        lines = [f"  {divergence}: {at}{_same_inputs(change)}: {_unseen(change)}"]
        if inputs:
            lines.append(f"    changed inputs that may explain it: {', '.join(_input_name(i) for i in inputs)}")
        return lines
    return [f"  {divergence}: {at}{_statement(change, following, changes)}"]


def _varies_lines(change: OpChange, variation: Any, *, also: bool) -> list[str]:
    """A value that varies between identical runs: where (the call that drew, for an object
    changed in place), the first value that differs when that is another op, and the unseeded
    constructs behind it, or that none was seen."""
    root = _op(change)
    head = "also varies" if also else "varies"
    op = variation.op if variation is not None else root
    if op == root:
        lines = [f"  {head} between identical runs: {where(root)}  {_same_inputs(change)}"]
    else:
        lines = [f"  {head} between identical runs: {where(op)}  {_short(op.code, _CODE_WIDTH)}",
                 f"    the first value that differs is `{_short(root.code, _CODE_WIDTH)}` ({where(root)}), with the "
                 f"same {'arguments' if root.kind == 'call' else 'recorded inputs'}"]
    constructs = variation.constructs if variation is not None else ()
    lines += [f"    behind it: {c.what}: {c.seed}" for c in constructs]
    if not constructs:
        lines.append("    behind it: nothing the capture reads shows what varies (a library's own unseeded "
                     "generator, thread scheduling or a GPU kernel can)")
    return lines


def format_missing_tag(missing: MissingTag) -> list[str]:
    """`summary: missing in the new trial (tagged at train.py:9 in the baseline)`, and the test
    that decided whether the tagging ran, with its value in each trial."""
    if missing.site is None and missing.condition is None:
        return []  # the values already say it is missing; nothing to add
    site = f" (tagged at {where_place(*missing.site)} in the baseline)" if missing.site else ""
    lines = [f"  {missing.tag}: missing in the new trial{site}"]
    test = missing.condition
    if test is not None:
        code, old = _short(test.code, _CODE_WIDTH), _short(test.value, _VALUE_WIDTH)
        now = (f"it is {_short(missing.now, _VALUE_WIDTH)} in the new trial" if missing.now is not None
               else "the new trial did not evaluate it")
        lines.append(f"    the tagging ran under `{code}` ({where(test)}), {old} in the baseline; {now}")
    if missing.because is not None:
        lines += ["  " + line for line in format_slice_diff(missing.because)[:1]]  # its headline
    return lines


# ---------------------------------------------------------------------------------------------


def where(op: Op) -> str:
    """``train.py:12``, or for a notebook's operation ``train.ipynb, cell 4, line 3``."""
    return where_place(op.file, op.line)


def where_place(file: str, line: int) -> str:
    cell = _CELL.match(file)
    if cell:
        return f"{cell['notebook']}, cell {cell['cell']}, line {line}"
    return f"{file or '?'}:{line}"


def _op(change: OpChange) -> Op:
    op = change.new or change.old
    assert op is not None
    return op


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _statement(change: OpChange, following: OpChange | None, changes: Sequence[OpChange]) -> str:
    """A root as written: `NAME = old -> new` for an assigned literal, `literal 10.0 -> 5.0 in
    clip(data, 5.0)` for an argument, else the outermost expression of its line that changed
    the same way (the call, not its first argument)."""
    op = _op(change)
    if change.kind in (OpKind.ADDED, OpKind.REMOVED) and op.kind in VALUE_KINDS:
        display = _nearby(change, changes, lambda c, o: c.kind is OpKind.CHANGED and o.kind in VALUE_KINDS
                          and len(o.code) > len(op.code))
        if display is not None:  # an item added to a list written in the code: the list changed
            change, op = display, _op(display)
    if change.kind is OpKind.CHANGED and op.kind in VALUE_KINDS:
        target = _nearby(change, changes,
                         lambda c, o: c.kind is OpKind.CHANGED and o.kind == "name" and o.value == op.value)
        if target is not None:  # `NAME = <value>`: the name given that value on its line names the setting
            return f"{_short(_op(target).code, _CODE_WIDTH)} = {_values(change)}"
    if change.kind is OpKind.CHANGED:
        text = _describe_first(change, following)
        outer = _outer(change, changes, same_kind=False)
        if op.kind == "literal" and text.startswith("literal ") and outer is not op:
            text += f" in {_short(outer.code, _CODE_WIDTH)}"
        return text
    outer = _outer(change, changes, same_kind=True)
    value = _short(outer.value, _VALUE_WIDTH)
    if change.kind is OpKind.ADDED:
        return f"{_short(outer.code, _CODE_WIDTH)} ({outer.kind}) now runs: {value}"
    return f"{_short(outer.code, _CODE_WIDTH)} ({outer.kind}) no longer runs (it gave {value})"


def _nearby(change: OpChange, changes: Sequence[OpChange], wanted) -> OpChange | None:
    """The nearest change on the same line as `change` (on the side it ran on) that `wanted`
    (change, op) accepts, within the statement's reach."""
    op = _op(change)
    at = next((n for n, c in enumerate(changes) if c is change), 0)
    near = sorted(range(max(0, at - _STATEMENT_SCAN), min(len(changes), at + _STATEMENT_SCAN)), key=lambda n: abs(n - at))
    for n in near:
        other = changes[n]
        candidate = other.new if change.new is not None else other.old
        if other is not change and candidate is not None and (candidate.file, candidate.line) == (op.file, op.line) \
                and wanted(other, candidate):
            return other
    return None


def _outer(change: OpChange, changes: Sequence[OpChange], *, same_kind: bool) -> Op:
    """The op of longest code among the changes near `change` on its line (in the new trial
    when it ran there), of the same kind of change with `same_kind`."""
    op = _op(change)
    outer = op
    at = next((n for n, c in enumerate(changes) if c is change), 0)
    for other in changes[max(0, at - _STATEMENT_SCAN): at + _STATEMENT_SCAN]:
        candidate = other.new if change.new is not None else other.old  # the side the root is on
        if candidate is not None and (other.kind == change.kind or not same_kind) \
                and (candidate.file, candidate.line) == (op.file, op.line) and len(candidate.code) > len(outer.code):
            outer = candidate
    return outer


def _same_inputs(change: OpChange) -> str:
    op = _op(change)
    code = _short(op.code, _CODE_WIDTH)
    if op.kind == "call":
        return f"`{code}` returned a different value with the same arguments"
    return f"`{code}` ({op.kind}) has a different value with the same recorded inputs"


def _unseen(change: OpChange) -> str:
    if _op(change).kind == "call":
        return "it reads state the capture does not see"
    return "something the capture does not see changed it"


def _untied(change: InputLike) -> str:
    """The input change as the inputs list says it, without the tags it is tied to there: the
    headline is already in one tag's provenance."""
    return change.describe(tied=False)


def _input_name(change: InputLike) -> str:
    return f"{change.what} {change.name}".strip()


def _chain(explanation: Explanation, *, fold: bool = False) -> list[str]:
    """The path from the root to the tagged value: its calls, and both ends of the edges that
    are not plain data (`if normalize:` and what it decided), one line per statement, the
    longest code of each; capped, keeping both ends."""
    steps: list[tuple[Op, str]] = []
    chain = explanation.chain
    root = chain[0][0] if chain else None
    for n, (op, via) in enumerate(chain[1:], 1):
        last = n == len(chain) - 1
        if op.kind != "call" and via == "data" and not last and chain[n + 1][1] == "data":
            continue  # a name or an attribute on the way; the source of another edge is kept
        if root and (op.file, op.line) == (root.file, root.line) and not last:
            continue  # the rest of the root's own statement
        if steps and (steps[-1][0].file, steps[-1][0].line) == (op.file, op.line):
            previous, previous_via = steps[-1]
            longer = op if len(op.code) > len(previous.code) else previous
            steps[-1] = (longer, previous_via if previous_via != "data" else via)
            continue
        steps.append((op, via))
    if not steps:
        return []
    lines = [f"    -> {where(op)}  {_short(op.code, _CODE_WIDTH)}{_VIA.get(via, '')}" for op, via in steps]
    if len(lines) > CHAIN_SHOWN:
        middle = lines[CHAIN_SHOWN - 2:-1]
        more = f"    -> ... {len(middle)} more steps"
        lines = [*lines[:CHAIN_SHOWN - 2], *([Fold(more, len(middle)), *middle] if fold else [more]), lines[-1]]
    if explanation.chain_in_baseline:
        lines.insert(0, "    in the baseline it led to the tag through:")
    return lines


def _reorder(reorder: Reorder) -> str:
    step = reorder.step
    assert step.old is not None and step.new is not None
    code = f"`{_short(reorder.code, _CODE_WIDTH)}`"
    places = _places(step.old, step.new)
    if reorder.other is None:
        return f"{code} moved, {places}"
    other = f"`{_short(reorder.other, _CODE_WIDTH)}`"
    return f"{code} now runs {'after' if reorder.after else 'before'} {other}, {places}"


def _places(old: Op, new: Op) -> str:
    """`train.py, line 24 -> line 25`, `train.ipynb, cell 8 -> cell 10`, or both places in full."""
    cell_old, cell_new = _CELL.match(old.file), _CELL.match(new.file)
    if cell_old and cell_new and cell_old["notebook"] == cell_new["notebook"] and old.file != new.file:
        lines = "" if old.line == new.line else f", line {old.line} -> line {new.line}"
        return f"{cell_new['notebook']}, cell {cell_old['cell']} -> cell {cell_new['cell']}{lines}"
    if old.file != new.file:
        return f"{where(old)} -> {where(new)}"
    if old.line == new.line:
        return where(new)
    if cell_old and cell_new:
        return f"{cell_old['notebook']}, cell {cell_old['cell']}, line {old.line} -> line {new.line}"
    return f"{new.file or '?'}, line {old.line} -> line {new.line}"


def _what(old: Op | None, new: Op | None) -> str:
    op = new or old
    assert op is not None
    if op.kind == "literal":
        return "literal"
    if old and new and old.code != new.code:
        return f"{op.kind} {_short(old.code, _CODE_WIDTH)} -> {_short(new.code, _CODE_WIDTH)}"
    return f"{op.kind} {_short(op.code, _CODE_WIDTH)}"


def _values(change: OpChange) -> str:
    old = _short(change.old.value, _VALUE_WIDTH) if change.old else ""
    new = _short(change.new.value, _VALUE_WIDTH) if change.new else ""
    if change.kind is OpKind.REMOVED:
        return old
    if change.kind is OpKind.ADDED or old == new:
        return new
    return f"{old} -> {new}"


def _describe_first(change: OpChange, following: OpChange | None) -> str:
    op = _op(change)
    code = _short(op.code, _CODE_WIDTH)
    if change.kind is OpKind.CHANGED and op.kind in VALUE_KINDS:
        # `NAME = <literal>`: the assignment just after it on the same line names the setting
        target = following.new if following and following.kind is OpKind.CHANGED else None
        if target and target.kind == "name" and (target.file, target.line) == (op.file, op.line):
            return f"{_short(target.code, _CODE_WIDTH)} = {_values(change)}"
        return f"{'literal' if op.kind == 'literal' else op.kind} {_values(change)}"
    if change.kind is OpKind.CHANGED:
        return f"{code} ({op.kind}): {_values(change)}"
    if change.kind is OpKind.MOVED:
        assert change.old is not None and change.new is not None
        return f"{code} ({op.kind}) moved, {_places(change.old, change.new)}: {_values(change)}"
    return f"{code} ({op.kind}) {change.kind}: {_values(change)}"


def _describe(change: OpChange) -> str:
    what = _what(change.old, change.new)
    if change.kind is OpKind.CHANGED:
        return f"~ {where(_op(change))} {what}: {_values(change)}"
    if change.kind is OpKind.ADDED:
        return f"+ {where(_op(change))} {what} = {_values(change)}"
    if change.kind is OpKind.REMOVED:
        return f"- {where(_op(change))} {what} = {_values(change)}"
    assert change.old is not None and change.new is not None
    was = ("at another point of the run" if (change.old.file, change.old.line) == (change.new.file, change.new.line)
           else f"was {where(change.old)}")
    return f"<> moved {where(change.new)} {what} ({was}) = {_values(change)}"
