"""Steps that run in another order than in the baseline: the moves of a slice diff, each with
a statement it swapped places with (`find_reorders`, part of `rootcause.explain`'s headline).

Also the small readings of an `slices.OpChange` that the root-cause search shares: the op it
is about (`op_of`), where that op is written (`place`), the indexes a diff touches (`touched_indexes`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..provenance.reader import Op
from .slices import OpChange, OpKind

__all__ = ["REORDERS_SHOWN", "Reorder", "TRIVIAL", "find_reorders", "op_of", "place", "touched_indexes"]

REORDERS_SHOWN = 3
TRIVIAL = frozenset({"name", "literal", "attribute", "subscript", "param"})  # parts of a step, not steps


@dataclass(frozen=True)
class Reorder:
    """A step that runs on the other side of another one than in the baseline."""

    step: OpChange  # the moved op (its old and new place)
    code: str  # the statement it is part of, as written (the outermost op of its line)
    other: str | None  # the statement it swapped places with, None when none was found
    after: bool  # True: `step` now runs after `other` (it ran before it in the baseline)


def place(op: Op) -> tuple[str, int]:
    return op.file, op.line


def op_of(change: OpChange) -> Op:
    op = change.new or change.old
    assert op is not None
    return op


def touched_indexes(changes: Sequence[OpChange], *, new: bool) -> set[int]:
    index = (lambda c: c.index_new) if new else (lambda c: c.index_old)
    return {i for c in changes if (i := index(c)) is not None}


def find_reorders(changes: Sequence[OpChange], old_ops: Sequence[Op] | None = None,
                  new_ops: Sequence[Op] | None = None) -> tuple[Reorder, ...]:
    """The moved steps, one per statement, each with a statement it swapped places with.

    Statements that swapped moved to other lines (or cells); ops inside a function they call
    moved too, but at their own line. So the steps are the moved ops whose place changed, when
    there are any, names and literals only when nothing else moved; one per line, shown as the
    outermost op of its line (the longest code: the call, not its argument). Two ops swapped
    when their order differs between the trials: the partner is an op that changed place too
    (moved, or changed in value too) if one did, else the nearest, names and literals last. A pair found from both sides is told
    once. Without the sequences only the changed ops are candidates. Bounded: at most
    `REORDERS_SHOWN * 3` steps, each one pass over the pairs of the alignment.
    """
    moved = [c for c in changes if c.kind is OpKind.MOVED and c.old is not None and c.new is not None]
    relocated = [c for c in moved if c.old is not None and c.new is not None and place(c.old) != place(c.new)]
    pool = relocated or moved
    if any(op_of(c).kind not in TRIVIAL for c in pool):
        pool = [c for c in pool if op_of(c).kind not in TRIVIAL]
    if not pool:
        return ()
    by_place: dict[tuple[str, int], OpChange] = {}
    for c in pool:
        by_place.setdefault(place(op_of(c)), c)
    steps = sorted(by_place.values(), key=lambda c: c.index_new or 0)
    pairs: list[tuple[int, int, Op, bool]] = [(c.index_old, c.index_new, c.new, place(c.old) != place(c.new))
                                              for c in changes if c.old is not None and c.new is not None
                                              and c.index_old is not None and c.index_new is not None]
    kept: tuple[list[int], list[int]] = ([], [])  # the untouched ops, paired by rank
    if old_ops is not None and new_ops is not None:
        touched_old, touched_new = touched_indexes(changes, new=False), touched_indexes(changes, new=True)
        kept = ([i for i in range(len(old_ops)) if i not in touched_old],
                [j for j in range(len(new_ops)) if j not in touched_new])
    found: list[tuple[OpChange, Op | None, bool]] = []
    told: set[frozenset] = set()
    for step in steps[:REORDERS_SHOWN * 3]:
        other, after = _swap(step, pairs, kept, new_ops or ())
        places = frozenset({place(op_of(step)), *((place(other),) if other else ())})
        if places not in told:
            told.add(places)
            found.append((step, other, after))
        if len(found) == REORDERS_SHOWN:
            break
    needed = {place(op) for step, other, _after in found for op in (op_of(step), other) if op is not None}
    written = _statements(new_ops if new_ops is not None else [op_of(c) for c in changes], needed)
    return tuple(Reorder(step, written.get(place(op_of(step)), op_of(step).code),
                         written.get(place(other), other.code) if other else None, after)
                 for step, other, after in found)


TRIVIAL = frozenset({"name", "literal", "attribute", "subscript", "param"})  # parts of a step, not steps


def _statements(ops: Sequence[Op], places: set[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """Each of these lines as its outer expression (the op of longest code), or `NAME = value`
    for a line of names and literals whose last op is a name (an assignment's target is
    evaluated after its value)."""
    lines: dict[tuple[str, int], list[Op]] = {}
    for op in ops:
        if (op.file, op.line) in places:
            lines.setdefault((op.file, op.line), []).append(op)
    written = {}
    for place, found in lines.items():
        outer = max(found, key=lambda op: len(op.code))
        *value, target = found
        if outer.kind in TRIVIAL and value and target.kind == "name":
            written[place] = f"{target.code} = {max(value, key=lambda op: len(op.code)).code}"
        else:
            written[place] = outer.code
    return written


def _swap(step: OpChange, pairs: list[tuple[int, int, Op, bool]], kept: tuple[list[int], list[int]],
          new_ops: Sequence[Op]) -> tuple[Op | None, bool]:
    """An op whose order with `step` differs between the trials, and whether the step now runs
    after it; (None, False) when there is none. `pairs` are the changed ops in both trials
    (old index, new index, op, whether its place changed), `kept` the untouched ops' indexes."""
    i, j = step.index_old, step.index_new
    assert i is not None and j is not None
    best: tuple[tuple[bool, bool, int], Op, bool] | None = None
    for a, b, op, relocated in pairs:
        if (a < i) == (b < j):  # the same order as in the baseline (the step itself too)
            continue
        rank = (not relocated, op.kind in TRIVIAL, abs(b - j))
        if best is None or rank < best[0]:
            best = (rank, op, b < j)
    for a, b in zip(*kept):
        if (a < i) != (b < j) and b < len(new_ops):
            op = new_ops[b]
            rank = (True, op.kind in TRIVIAL, abs(b - j))
            if best is None or rank < best[0]:
                best = (rank, op, b < j)
    return (None, False) if best is None else (best[1], best[2])
