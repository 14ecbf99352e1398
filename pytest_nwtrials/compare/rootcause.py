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
arbitrary edges (out of range, cyclic) are tolerated, never trusted. Steps that only changed
their order are found by compare/reorders.py.
"""
from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..provenance.reader import Op, Slice, normalize_code
from .reorders import Reorder, find_reorders, op_of, place, touched_indexes
from .slices import VALUE_KINDS, OpChange, OpKind

__all__ = ["Explanation", "Reorder", "Root", "Verdict", "ancestors", "dependencies", "explain", "find_reorders"]

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

    @property
    def what(self) -> str: ...

    @property
    def name(self) -> str: ...

    def describe(self, *, tied: bool = True) -> str: ...


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
    first_move = next((n for n, c in enumerate(changes) if c.kind is OpKind.MOVED), len(changes))
    usable = old is not None and new is not None and _valid(old) and _valid(new)
    if not usable:
        stale = ""
        if old is not None and new is not None and (old.edges is None) != (new.edges is None):
            stale = "baseline" if old.edges is None else "trial"
        first = changes[0] if first_move else None
        return Explanation(Verdict.DIVERGENCE, first, _following(changes, 0) if first else None,
                           (), (), False, reorders, (), stale)
    assert old is not None and new is not None
    touched = touched_indexes(changes, new=False), touched_indexes(changes, new=True)
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
    places = {place(op_of(change))}
    for n in roots:  # independent roots elsewhere (an unseeded draw besides a changed file)
        if place(op_of(changes[n])) not in places:
            places.add(place(op_of(changes[n])))
            others.append(Root(*_verdict(changes[n], old, new, inputs), changes[n], _following(changes, n)))
            if len(others) == OTHER_ROOTS:
                break
    return Explanation(verdict, change, _following(changes, root), chain, tuple(j for j, _ in path),
                       in_baseline, reorders, named, "", max(old.dropped, new.dropped), tuple(others))


# ---------------------------------------------------------------------------------------------
# the root


def _valid(s: Slice) -> bool:
    return s.edges is not None and len(s.edges) == len(s.ops)


def _partners(changes: Sequence[OpChange], n_old: int, n_new: int,
              touched: tuple[set[int], set[int]] | None = None) -> list[int]:
    """Old index -> new index of the same op (-1 for a removed one).

    The ops no change touches are the same on both sides, in the same order (what
    `diff_operations` guarantees), so they pair by rank; the changes pair themselves.
    """
    partner = [-1] * n_old
    touched_old, touched_new = touched or (touched_indexes(changes, new=False), touched_indexes(changes, new=True))
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
        if change.kind is OpKind.MOVED:
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
    op = op_of(change)
    if change.kind is not OpKind.CHANGED or op.kind in VALUE_KINDS or _rewritten(change):
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
