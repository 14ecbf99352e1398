"""Differences between two sequences of operations: the *why* of a changed tagged value.

Operations are compared by `Op.key()` (kind, code, value): line numbers and file names are
not part of it, so a comment or a blank line that shifts the code is no change, and an
operation whose line moved is only shown at its new line when it differs for another reason.

The alignment works on an operation's *structure*, its kind and code without the value, so
that an operation whose value changed stays paired with itself. It is linear on the common
cases and bounded on the others:
1. common prefix and suffix (by structure) are matched first: mostly two trials agree;
2. the middle is split at anchors, operations whose full key occurs exactly once on each
   side (a loop counter's value, a statement run once), kept in order (patience diff), then
   at operations whose structure is unique on both sides;
3. what is left between anchors is aligned exactly with Myers' O(ND) algorithm, up to
   `MAX_EDITS` edits per region; a region beyond that is paired by position.
Then a matched pair whose value differs is *changed*, and so is a literal replaced by a
literal at the same place (`LR = 0.5` -> `LR = 0.1`: its code is its value). The rest is
*removed* or *added*, except that a removed and an added operation with the same structure
are one operation that now runs elsewhere: *moved* (its value may differ too); two swapped
steps show as moved operations.

Each change has a position in the new trial's order: its new index, or for a removed
operation the index of the next operation both trials share; a moved one takes the earlier
of its two places. `SliceDiff.changes` is sorted by it, so the first change is the first
divergence. Which change is the root cause is `rootcause`'s question; the text of a diff is
in `render/slices.py`.
"""
from __future__ import annotations

import enum
from bisect import bisect_left
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Callable, Sequence

from ..provenance.reader import Op, Slice, normalize_code

__all__ = ["MAX_EDITS", "VALUE_KINDS", "OpChange", "OpKind", "SliceDiff", "diff_operations", "diff_slices"]

MAX_EDITS = 1_000
# kinds of operations whose code is a value written in the experiment: a literal, a display
VALUE_KINDS = frozenset({"literal", "list", "tuple", "set", "dict"})


class OpKind(enum.StrEnum):
    """What happened to an operation between two slices; the value is the word reports use."""

    CHANGED = "changed"
    ADDED = "added"
    REMOVED = "removed"
    MOVED = "moved"


CHANGE_KINDS = tuple(OpKind)


@dataclass(frozen=True)
class OpChange:
    kind: OpKind
    old: Op | None
    new: Op | None
    index_old: int | None
    index_new: int | None


@dataclass(frozen=True)
class SliceDiff:
    tag: str
    changes: tuple[OpChange, ...]
    # the two slices, whose edges tell a root cause from its symptoms; None for a diff of
    # operation sequences, which have no edges
    old: Slice | None = None
    new: Slice | None = None

    @property
    def first_divergence(self) -> OpChange | None:
        """The earliest change in the new trial's order (any kind, a move included)."""
        return self.changes[0] if self.changes else None

    def is_empty(self) -> bool:
        return not self.changes


def diff_slices(old: Slice, new: Slice) -> SliceDiff:
    return SliceDiff(new.tag, diff_operations(old.ops, new.ops), old, new)


def diff_operations(old: Sequence[Op], new: Sequence[Op]) -> tuple[OpChange, ...]:
    """The changes that turn `old` into `new`, ordered by their position in `new`."""
    encoder = _Encoder()
    keys_old, shape_old = encoder.encode(old)
    keys_new, shape_new = encoder.encode(new)
    matches = _align(shape_old, shape_new, keys_old, keys_new)

    placed: list[tuple[tuple[int, int, int, int], OpChange]] = []  # (order, change)
    removed: list[tuple[int, int]] = []  # (old index, position in new)
    added: list[int] = []
    i = j = 0
    for mi, mj in matches + [(len(old), len(new))]:
        # between two matches: old[i:mi] gave way to new[j:mj]
        literals = set()
        for k in range(min(mi - i, mj - j)):  # a literal in place of a literal: its value changed
            if old[i + k].kind == "literal" and new[j + k].kind == "literal":
                change = OpChange(OpKind.CHANGED, old[i + k], new[j + k], i + k, j + k)
                placed.append(((j + k, 1, i + k, j + k), change))
                literals.add(k)
        removed.extend((i + k, mj) for k in range(mi - i) if k not in literals)
        added.extend(j + k for k in range(mj - j) if k not in literals)
        if mi < len(old) and keys_old[mi] != keys_new[mj]:
            placed.append(((mj, 1, mi, mj), OpChange(OpKind.CHANGED, old[mi], new[mj], mi, mj)))
        i, j = mi + 1, mj + 1

    moves = _pair_moves(removed, added, _move_keys(old, keys_old, shape_old), _move_keys(new, keys_new, shape_new))
    moved_old = {i for i, _position in moves.values()}
    rewritten = _pair_rewritten(old, new, [i for i, _p in removed if i not in moved_old],
                                [j for j in added if j not in moves])
    removed_at = dict(removed)
    for i, j in rewritten:  # like a move, at the earlier of its two places
        placed.append(((min(j, removed_at[i]), 0, i, j), OpChange(OpKind.CHANGED, old[i], new[j], i, j)))
    taken_old, taken_new = {i for i, _j in rewritten} | moved_old, {j for _i, j in rewritten} | set(moves)
    for j, (i, position) in moves.items():
        placed.append(((min(j, position), 0, i, j), OpChange(OpKind.MOVED, old[i], new[j], i, j)))
    for i, position in removed:
        if i not in taken_old:
            placed.append(((position, 0, i, -1), OpChange(OpKind.REMOVED, old[i], None, i, None)))
    for j in added:
        if j not in taken_new:
            placed.append(((j, 1, -1, j), OpChange(OpKind.ADDED, None, new[j], None, j)))
    placed.sort(key=lambda item: item[0])
    return tuple(change for _order, change in placed)


def _pair_rewritten(old: Sequence[Op], new: Sequence[Op], removed: list[int], added: list[int]) -> list[tuple[int, int]]:
    """Removed and added values written in the code (`True` -> `False`, `[1, 2]` -> `[1, 2, 3]`)
    at the same line, of the same kind, paired in order: one value a person rewrote, not a step
    that went and another that came."""
    waiting: dict[tuple[str, int, str], deque[int]] = defaultdict(deque)
    for i in removed:
        if old[i].kind in VALUE_KINDS:
            waiting[(old[i].file, old[i].line, old[i].kind)].append(i)
    pairs = []
    for j in added:
        queue = waiting.get((new[j].file, new[j].line, new[j].kind)) if new[j].kind in VALUE_KINDS else None
        if queue:
            pairs.append((queue.popleft(), j))
    return pairs


def _move_keys(ops: Sequence[Op], keys: list[int], shape: list[int]) -> Callable[[int, int], object]:
    """What a removed and an added operation must share to pair, pass by pass: the same value
    at the same place, the same structure at the same place, the same value, the structure."""

    def key(index: int, pass_: int) -> object:
        if pass_ == 0:
            return keys[index], ops[index].file, ops[index].line
        if pass_ == 1:
            return shape[index], ops[index].file, ops[index].line
        return keys[index] if pass_ == 2 else shape[index]

    return key


def _pair_moves(removed: list[tuple[int, int]], added: list[int], old_key: Callable[[int, int], object],
                new_key: Callable[[int, int], object]) -> dict[int, tuple[int, int]]:
    """Added index -> (removed index, its position in new), for operations that ran elsewhere."""
    moves: dict[int, tuple[int, int]] = {}
    taken: set[int] = set()
    for pass_ in range(4):
        if len(moves) == len(added) or len(taken) == len(removed):
            break
        candidates: dict[object, deque[tuple[int, int]]] = defaultdict(deque)
        for entry in removed:
            if entry[0] not in taken:
                candidates[old_key(entry[0], pass_)].append(entry)
        for j in added:
            if j not in moves:
                queue = candidates.get(new_key(j, pass_))
                if queue:
                    entry = queue.popleft()
                    taken.add(entry[0])
                    moves[j] = entry
    return moves


# ---------------------------------------------------------------------------------------------
# alignment


class _Encoder:
    """Small ints for structures (kind, normalised code) and full keys, shared by both sides.

    Equal ints mean equal structure, or equal `Op.key()`; the code is normalised once per
    distinct (kind, code), not once per operation.
    """

    def __init__(self) -> None:
        self.raw: dict[tuple[str, str], int] = {}
        self.shapes: dict[tuple[str, str], int] = {}
        self.full: dict[tuple[int, str], int] = {}

    def encode(self, ops: Sequence[Op]) -> tuple[list[int], list[int]]:
        raw, full = self.raw, self.full
        keys, shape = [], []
        for op in ops:
            code_id = raw.get((op.kind, op.code))
            if code_id is None:
                normal = (op.kind, normalize_code(op.code))
                code_id = raw[(op.kind, op.code)] = self.shapes.setdefault(normal, len(self.shapes))
            keys.append(full.setdefault((code_id, op.value), len(full)))
            shape.append(code_id)
        return keys, shape


def _align(a: list[int], b: list[int], ka: list[int], kb: list[int]) -> list[tuple[int, int]]:
    """Matched index pairs (by structure `a`/`b`), increasing on both sides."""
    matches: list[tuple[int, int]] = []
    work = [(0, len(a), 0, len(b))]
    while work:
        alo, ahi, blo, bhi = work.pop()
        while alo < ahi and blo < bhi and a[alo] == b[blo]:
            matches.append((alo, blo))
            alo, blo = alo + 1, blo + 1
        while alo < ahi and blo < bhi and a[ahi - 1] == b[bhi - 1]:
            ahi, bhi = ahi - 1, bhi - 1
            matches.append((ahi, bhi))
        if alo == ahi or blo == bhi:
            continue
        anchors = _anchors(ka, kb, alo, ahi, blo, bhi) or _anchors(a, b, alo, ahi, blo, bhi)
        if anchors:
            previous = (alo, blo)
            for i, j in anchors:
                matches.append((i, j))
                work.append((previous[0], i, previous[1], j))
                previous = (i + 1, j + 1)
            work.append((previous[0], ahi, previous[1], bhi))
            continue
        found = _myers(a, b, alo, ahi, blo, bhi, MAX_EDITS)
        if found is None:  # too different to align exactly: pair what lines up by position
            found = [(alo + k, blo + k) for k in range(min(ahi - alo, bhi - blo)) if a[alo + k] == b[blo + k]]
        matches.extend(found)
    matches.sort()
    return matches


def _anchors(a: list[int], b: list[int], alo: int, ahi: int, blo: int, bhi: int) -> list[tuple[int, int]]:
    """Pairs of elements unique on both sides, longest increasing run of them (patience)."""
    count_a: dict[int, int] = defaultdict(int)
    for i in range(alo, ahi):
        count_a[a[i]] += 1
    count_b: dict[int, int] = defaultdict(int)
    where_b: dict[int, int] = {}
    for j in range(blo, bhi):
        if count_a.get(b[j]) == 1:
            count_b[b[j]] += 1
            where_b[b[j]] = j
    pairs = [(i, where_b[a[i]]) for i in range(alo, ahi) if count_a[a[i]] == 1 and count_b.get(a[i]) == 1]
    if not pairs:
        return []
    # longest increasing subsequence of the new positions, in old order
    tails: list[int] = []
    tail_index: list[int] = []
    back = [-1] * len(pairs)
    for n, (_i, j) in enumerate(pairs):
        at = bisect_left(tails, j)
        if at == len(tails):
            tails.append(j)
            tail_index.append(n)
        else:
            tails[at] = j
            tail_index[at] = n
        back[n] = tail_index[at - 1] if at else -1
    run = []
    n = tail_index[-1]
    while n >= 0:
        run.append(pairs[n])
        n = back[n]
    run.reverse()
    return run


def _myers(a: list[int], b: list[int], alo: int, ahi: int, blo: int, bhi: int,
           max_edits: int) -> list[tuple[int, int]] | None:
    """Exact longest common subsequence of two ranges, or None past `max_edits` edits."""
    n, m = ahi - alo, bhi - blo
    limit = min(max_edits, n + m)
    offset = limit + 1
    v = [0] * (2 * limit + 3)
    trace = []
    for d in range(limit + 1):
        trace.append(v[offset - d - 1: offset + d + 2])
        for k in range(-d, d + 1, 2):
            if k == -d or (k != d and v[offset + k - 1] < v[offset + k + 1]):
                x = v[offset + k + 1]
            else:
                x = v[offset + k - 1] + 1
            y = x - k
            while x < n and y < m and a[alo + x] == b[blo + y]:
                x, y = x + 1, y + 1
            v[offset + k] = x
            if x >= n and y >= m:
                return _backtrack(trace, n, m, alo, blo)
    return None


def _backtrack(trace: list[list[int]], x: int, y: int, alo: int, blo: int) -> list[tuple[int, int]]:
    pairs = []
    for d in range(len(trace) - 1, -1, -1):
        v = trace[d]  # the furthest points before step d, diagonals -d-1 .. d+1
        k = x - y

        def at(diagonal: int) -> int:
            return v[diagonal + d + 1]

        previous_k = k + 1 if k == -d or (k != d and at(k - 1) < at(k + 1)) else k - 1
        previous_x = at(previous_k)
        previous_y = previous_x - previous_k
        while x > previous_x and y > previous_y and x > 0 and y > 0:
            x, y = x - 1, y - 1
            pairs.append((alo + x, blo + y))
        x, y = previous_x, previous_y
    pairs.reverse()
    return pairs
