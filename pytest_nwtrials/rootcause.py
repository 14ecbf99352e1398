"""The root cause of a changed tagged value, found in the alignment of its two slices.

`slices.diff_operations` pairs the operations of the baseline's slice with the new trial's.
With each slice's edges (`provenance.Slice.edges`: an op's direct dependencies, by data,
mutation, hidden state or control) a change is either a *symptom*, an op that differs because
something it depends on differs, or a *root*: its own recorded inputs are the same (a changed
literal, a step added or removed while what decided it stayed, a call given the same arguments).
The earliest root is the headline; the chain is the shortest path along edges from it through
changed operations to the tagged value's op (the last op of the slice). Later roots on other
lines are independent reasons (a changed file and an unseeded draw): a few are named too.

A root that is not a literal nor a step that came or went is not called a cause: its value
changed with the same recorded inputs, so something the capture does not see decided it (a
data file, a library, a global generator nobody seeded in the script), unless a changed input
file is on record whose path is in the value of that op or of one it depends on
(`pd.read_csv(path)`): that file is the cause.

Without edges (a record from before they were kept) nothing tells a cause from a symptom: the
first divergence is reported as such. Everything is linear in the size of the slices, and
arbitrary edges (out of range, cyclic) are tolerated, never trusted.
"""
from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .provenance import Op, Slice, normalize_code
from .slices import VALUE_KINDS, OpChange

__all__ = ["Explanation", "Reorder", "Root", "Verdict", "ancestors", "dependencies", "explain", "find_reorders"]

REORDERS_SHOWN = 3
OTHER_ROOTS = 2  # independent roots named after the headline's


class Verdict(enum.Enum):
    """What the headline of an explanation can say about its change."""

    CAUSE = "cause"  # a change whose own recorded inputs did not change
    INPUT = "input"  # a changed input file, named in the slice, behind an op given the same inputs
    UNSEEN = "unseen"  # an op whose recorded inputs did not change, yet its value did
    DIVERGENCE = "divergence"  # no edges: the first divergence, cause or symptom
    VARIES = "varies"  # UNSEEN, and code, inputs and libraries are the same: it varies between runs


class InputLike(Protocol):
    """An `explain.InputChange`: what changed ("input file", "library", ...) and its name."""

    what: str
    name: str

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Reorder:
    """A step that runs on the other side of another one than in the baseline."""

    step: OpChange  # the moved op (its old and new place)
    code: str  # the statement it is part of, as written (the outermost op of its line)
    other: str | None  # the statement it swapped places with, None when none was found
    after: bool  # True: `step` now runs after `other` (it ran before it in the baseline)


@dataclass(frozen=True)
class Explanation:
    """The headline of a slice diff: its root (or first divergence), the chain, the reorders."""

    verdict: Verdict
    change: OpChange | None  # the root change; None when only reorders explain the diff
    following: OpChange | None  # the change after it, when it names it (`NAME = <literal>`)
    chain: tuple[tuple[Op, str], ...]  # (op, edge kind that reached it), root first, tag op last
    path: tuple[int, ...]  # the chain's indexes into the slice it was walked in
    chain_in_baseline: bool  # the chain was walked in the baseline's slice (a removed step)
    reorders: tuple[Reorder, ...]
    inputs: tuple[Any, ...]  # for INPUT, the input named; for UNSEEN, changed inputs that may explain it
    stale: str  # "baseline" or "trial": the side whose slice has no edges while the other has; else ""
    dropped: int = 0  # earliest ops the new slice left out (where an unseen cause may be)
    others: tuple[Root, ...] = ()  # later roots on other lines, at most OTHER_ROOTS
    variation: Any = None  # for VARIES, the `variation.Variation`: where it varies, and why


@dataclass(frozen=True)
class Root:
    """A change whose own recorded inputs did not change, besides the headline's."""

    verdict: Verdict
    inputs: tuple[Any, ...]  # as `Explanation.inputs`
    change: OpChange
    following: OpChange | None
    variation: Any = None  # as `Explanation.variation`


def explain(old: Slice | None, new: Slice | None, changes: Sequence[OpChange],
            inputs: Sequence[InputLike] = ()) -> Explanation | None:
    """The explanation of `changes` (the diff of `old` into `new`); None when nothing changed."""
    if not changes:
        return None
    reorders = find_reorders(changes, old.ops if old else None, new.ops if new else None)
    first_move = next((n for n, c in enumerate(changes) if c.kind == "moved"), len(changes))
    usable = old is not None and new is not None and _valid(old) and _valid(new)
    if not usable:
        stale = ""
        if old is not None and new is not None and (old.edges is None) != (new.edges is None):
            stale = "baseline" if old.edges is None else "trial"
        first = changes[0] if first_move else None
        return Explanation(Verdict.DIVERGENCE, first, _following(changes, 0) if first else None,
                           (), (), False, reorders, (), stale)
    assert old is not None and new is not None
    touched = _touched(changes, new=False), _touched(changes, new=True)
    roots = _roots(old, new, changes, first_move if reorders else len(changes), touched)
    root = next(roots, None)
    if root is None:
        if reorders:
            return Explanation(Verdict.CAUSE, None, None, (), (), False, reorders, (), "")
        return Explanation(Verdict.DIVERGENCE, changes[0], _following(changes, 0), (), (), False, reorders, (), "")
    change = changes[root]
    verdict, named = _verdict(change, old, new, inputs)
    in_baseline = change.index_new is None
    walked, start = (old, change.index_old) if in_baseline else (new, change.index_new)
    assert start is not None
    path = _chain(walked, start, len(walked.ops) - 1, touched[0] if in_baseline else touched[1])
    chain = tuple((walked.ops[j], kind) for j, kind in path)
    others: list[Root] = []
    places = {_place(_op(change))}
    for n in roots:  # independent roots elsewhere (an unseeded draw besides a changed file)
        if _place(_op(changes[n])) not in places:
            places.add(_place(_op(changes[n])))
            others.append(Root(*_verdict(changes[n], old, new, inputs), changes[n], _following(changes, n)))
            if len(others) == OTHER_ROOTS:
                break
    return Explanation(verdict, change, _following(changes, root), chain, tuple(j for j, _ in path),
                       in_baseline, reorders, named, "", max(old.dropped, new.dropped), tuple(others))


# ---------------------------------------------------------------------------------------------
# the root


def _valid(s: Slice) -> bool:
    return s.edges is not None and len(s.edges) == len(s.ops)


def _touched(changes: Sequence[OpChange], *, new: bool) -> set[int]:
    index = (lambda c: c.index_new) if new else (lambda c: c.index_old)
    return {i for c in changes if (i := index(c)) is not None}


def _partners(changes: Sequence[OpChange], n_old: int, n_new: int,
              touched: tuple[set[int], set[int]] | None = None) -> list[int]:
    """Old index -> new index of the same op (-1 for a removed one).

    The ops no change touches are the same on both sides, in the same order (what
    `diff_operations` guarantees), so they pair by rank; the changes pair themselves.
    """
    partner = [-1] * n_old
    touched_old, touched_new = touched or (_touched(changes, new=False), _touched(changes, new=True))
    kept_new = (j for j in range(n_new) if j not in touched_new)
    for i in range(n_old):
        if i not in touched_old:
            partner[i] = next(kept_new, -1)
    for c in changes:
        if c.index_old is not None and c.index_new is not None and 0 <= c.index_old < n_old:
            partner[c.index_old] = c.index_new
    return partner


def dependencies(s: Slice, index: int | None) -> tuple[tuple[int, str], ...]:
    """The edges of op `index` of a slice that lead to another of its ops; () for no such op."""
    if index is None or s.edges is None or not 0 <= index < len(s.edges):
        return ()
    return tuple((d, k) for d, k in s.edges[index] if isinstance(d, int) and 0 <= d < len(s.ops) and d != index)


def _roots(old: Slice, new: Slice, changes: Sequence[OpChange], before: int,
           touched: tuple[set[int], set[int]]) -> Iterator[int]:
    """Indexes into `changes` (before `before`), in order, of those whose recorded inputs did
    not change; `touched` are the old and new indexes of the changed ops."""
    downstream = _downstream(old, touched[0]), _downstream(new, touched[1])
    partner: list[int] | None = None
    for n, change in enumerate(changes[:before]):
        if change.kind == "moved":
            continue
        i, j = change.index_old, change.index_new
        if (i is not None and 0 <= i < len(downstream[0]) and downstream[0][i]) or \
                (j is not None and 0 <= j < len(downstream[1]) and downstream[1][j]):
            continue
        if change.old is not None and change.new is not None:
            if partner is None:
                partner = _partners(changes, len(old.ops), len(new.ops), touched)
            if {(partner[d], k) for d, k in dependencies(old, i)} != set(dependencies(new, j)):
                continue  # it depends on another op than it did: that op's place is the story
        yield n


def _downstream(s: Slice, changed: set[int]) -> list[bool]:
    """Per op, whether a changed op is among the ops it depends on, directly or through ops
    whose recorded value stayed the same: `model.fit(X, y, lr)` returns the same `<Est object>`
    whatever `lr` is, yet the later `model.predict(X)` depends on `lr` through it."""
    edges = s.edges or ()
    reached = [False] * len(s.ops)
    for k in range(min(len(edges), len(s.ops))):
        reached[k] = any(type(d) is int and 0 <= d < k and (d in changed or reached[d]) for d, _kind in edges[k])
    return reached


def _verdict(change: OpChange, old: Slice, new: Slice, inputs: Sequence[InputLike]) -> tuple[Verdict, tuple]:
    op = _op(change)
    if change.kind != "changed" or op.kind in VALUE_KINDS or _rewritten(change):
        return Verdict.CAUSE, ()  # a step that came or went, a value or code a person wrote
    files = [i for i in inputs if i.what == "input file" and _reads(new, change.index_new, i.name)]
    if files:
        return Verdict.INPUT, tuple(files)
    # a file the op does not read explains nothing; a library, a module, the arguments might
    return Verdict.UNSEEN, tuple(i for i in inputs if i.what not in ("input file", "output file"))


def _rewritten(change: OpChange) -> bool:
    """Whether the op's code itself differs (`f(x)` -> `g(x)` on its line): an edit, not a value
    that changed on its own."""
    return change.old is not None and change.new is not None and \
        normalize_code(change.old.code) != normalize_code(change.new.code)


def _reads(s: Slice, index: int | None, path: str) -> bool:
    """Whether the op or one it depends on holds the file's path in its value (the end of it
    will do: a path relative to the experiment's folder names `data.csv` of
    `experiments/data.csv`): `open(path)`, `pd.read_csv(path)`, the file object of a loop."""
    if index is None or not 0 <= index < len(s.ops):
        return False
    parts = path.split("/")
    tails = ["/".join(parts[k:]) for k in range(len(parts))]
    return any(tail in s.ops[at].value for at in ancestors(s, index) for tail in tails)


def ancestors(s: Slice, index: int) -> Iterator[int]:
    """Op `index` of the slice, then every op it depends on in it, each once (depth first: a
    caller looking for one stops early)."""
    seen, stack = {index}, [index]
    while stack:
        at = stack.pop()
        yield at
        for d, _kind in dependencies(s, at):
            if d not in seen:
                seen.add(d)
                stack.append(d)


def _following(changes: Sequence[OpChange], n: int) -> OpChange | None:
    return changes[n + 1] if n + 1 < len(changes) else None


# ---------------------------------------------------------------------------------------------
# the chain


def _chain(s: Slice, start: int, goal: int, changed: set[int]) -> list[tuple[int, str]]:
    """The shortest path along edges from op `start` to op `goal`, through changed ops when
    there is such a path, else through any, as (index, kind of the edge that reached it); []
    when the goal is not reached.

    Walked backwards from the goal along each op's own dependencies, which are the edges as
    stored: no reverse index to build.
    """
    if not 0 <= start < len(s.ops) or not 0 <= goal < len(s.ops) or s.edges is None:
        return []
    for allowed in (changed, None):
        feeds = _walk_back(s.edges, len(s.ops), start, goal, allowed)
        if feeds is not None:
            path, at, kind = [], start, "data"
            while at != -1:
                path.append((at, kind))
                at, kind = feeds[at]
            return path
    return []


def _walk_back(edges: Sequence[Sequence[tuple[int, str]]], count: int, start: int, goal: int,
               allowed: set[int] | None) -> dict[int, tuple[int, str]] | None:
    """Breadth first from `goal` to `start` over dependencies: op -> (the op it feeds on the
    way to the goal, kind of that edge); None when `start` is not reached."""
    feeds: dict[int, tuple[int, str]] = {goal: (-1, "data")}
    queue = deque([goal])
    while queue:
        at = queue.popleft()
        if at == start:
            return feeds
        if at >= len(edges):
            continue
        for dep in edges[at]:
            d, kind = dep
            if type(d) is int and 0 <= d < count and d not in feeds and \
                    (allowed is None or d in allowed or d == start):
                feeds[d] = (at, kind)
                queue.append(d)
    return None


# ---------------------------------------------------------------------------------------------
# reorders


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
    moved = [c for c in changes if c.kind == "moved" and c.old is not None and c.new is not None]
    relocated = [c for c in moved if _place(c.old) != _place(c.new)]  # type: ignore[arg-type]
    pool = relocated or moved
    if any(_op(c).kind not in _TRIVIAL for c in pool):
        pool = [c for c in pool if _op(c).kind not in _TRIVIAL]
    if not pool:
        return ()
    by_place: dict[tuple[str, int], OpChange] = {}
    for c in pool:
        by_place.setdefault(_place(_op(c)), c)
    steps = sorted(by_place.values(), key=lambda c: c.index_new or 0)
    pairs: list[tuple[int, int, Op, bool]] = [(c.index_old, c.index_new, c.new, _place(c.old) != _place(c.new))
                                              for c in changes if c.old is not None and c.new is not None
                                              and c.index_old is not None and c.index_new is not None]
    kept: tuple[list[int], list[int]] = ([], [])  # the untouched ops, paired by rank
    if old_ops is not None and new_ops is not None:
        touched_old, touched_new = _touched(changes, new=False), _touched(changes, new=True)
        kept = ([i for i in range(len(old_ops)) if i not in touched_old],
                [j for j in range(len(new_ops)) if j not in touched_new])
    found: list[tuple[OpChange, Op | None, bool]] = []
    told: set[frozenset] = set()
    for step in steps[:REORDERS_SHOWN * 3]:
        other, after = _swap(step, pairs, kept, new_ops or ())
        places = frozenset({_place(_op(step)), *((_place(other),) if other else ())})
        if places not in told:
            told.add(places)
            found.append((step, other, after))
        if len(found) == REORDERS_SHOWN:
            break
    needed = {_place(op) for step, other, _after in found for op in (_op(step), other) if op is not None}
    written = _statements(new_ops if new_ops is not None else [_op(c) for c in changes], needed)
    return tuple(Reorder(step, written.get(_place(_op(step)), _op(step).code),
                         written.get(_place(other), other.code) if other else None, after)
                 for step, other, after in found)


_TRIVIAL = frozenset({"name", "literal", "attribute", "subscript", "param"})  # parts of a step, not steps


def _place(op: Op) -> tuple[str, int]:
    return op.file, op.line


def _op(change: OpChange) -> Op:
    op = change.new or change.old
    assert op is not None
    return op


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
        if outer.kind in _TRIVIAL and value and target.kind == "name":
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
        rank = (not relocated, op.kind in _TRIVIAL, abs(b - j))
        if best is None or rank < best[0]:
            best = (rank, op, b < j)
    for a, b in zip(*kept):
        if (a < i) != (b < j) and b < len(new_ops):
            op = new_ops[b]
            rank = (True, op.kind in _TRIVIAL, abs(b - j))
            if best is None or rank < best[0]:
                best = (rank, op, b < j)
    return (None, False) if best is None else (best[1], best[2])
