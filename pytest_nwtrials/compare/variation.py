"""Variation between identical runs: the unseeded construct behind an operation whose value
changed while everything it was computed from stayed the same.

`rootcause` finds the operation (a root whose recorded inputs did not change, verdict UNSEEN);
when the experiment's code, input files and libraries did not change either, the value varies
between identical runs, and `unseeded` reads from the slice (and the facts the capture recorded
about the experiment's objects) what is likely behind it: an estimator whose ``random_state`` is
None, a generator created without a seed, a global generator never seeded, iteration over a
set, the clock. `varying_op` names where it varies: for an estimator fitted in place, the first
value that differs is what it predicts (``fit`` returns the same object), yet the ``fit`` call is
where the run drew its randomness. No pytest in here.

Everything is read from stored text (codes and values), so nothing the experiment imported is
needed; arbitrary slices, edges and facts are tolerated, never trusted.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..provenance.graph import DATA, MUTATION
from ..provenance.reader import Op, Slice
from ..provenance.state import generator_of
from .rootcause import Explanation, Verdict, ancestors, dependencies
from .slices import OpChange

__all__ = ["Construct", "Variation", "between_identical_runs", "unseeded", "varying_op"]

_WIDTH = 60  # code quoted in a construct's text
CONSTRUCTS_SHOWN = 5
_FUNCS = frozenset({"name", "attribute"})

# a generator whose constructor was given no seed (or None): `np.random.default_rng()`,
# `np.random.RandomState()`, a bit generator, `random.Random()`. torch's generators start from a
# fixed default seed, so an unseeded `torch.Generator()` does not vary between runs.
_CONSTRUCTORS = re.compile(
    r"<(?:cyfunction|built-in function) default_rng>"
    r"|<class 'numpy\.random\.[\w.]*\.(?:RandomState|Generator|PCG64|PCG64DXSM|MT19937|Philox|SFC64|SeedSequence)'>"
    r"|<class 'random\.Random'>")
_SYSTEM_RANDOM = re.compile(r"<class 'random\.SystemRandom'>")
_CLOCK = frozenset({"time", "time_ns", "perf_counter", "perf_counter_ns", "monotonic", "monotonic_ns",
                    "process_time", "process_time_ns", "thread_time", "thread_time_ns", "now", "utcnow", "today"})
_OS_RANDOM = frozenset({"uuid1", "uuid4", "urandom", "getrandom", "token_bytes", "token_hex", "token_urlsafe"})
# consumers of a set that keep its order: a loop's target, a list or string built from it
_ORDERED = re.compile(r"^(?:list|tuple|enumerate|iter|next|zip|reversed|dict\.fromkeys)\(|\.join\(|\bfor\b")
_SET_VALUE = re.compile(r"(?:frozenset\()?\{[^:]*\}\)?")
_GLOBAL = {"numpy.random": ("the numpy global generator", "np.random.seed(0)"),
           "random": ("the random module's global generator", "random.seed(0)")}


@dataclass(frozen=True)
class Construct:
    """An unseeded construct behind a varying operation."""

    what: str  # "rf is a RandomForestClassifier whose random_state is None"
    seed: str  # what to do: "pass random_state=0 to RandomForestClassifier(...)"
    op: Op | None = None  # the operation that shows it, when one does


@dataclass(frozen=True)
class Variation:
    """Where a value varies between identical runs, and what is behind it (maybe nothing seen)."""

    op: Op  # the operation named: the root, or the in-place call that drew (`rf.fit(X, y)`)
    root: Op  # the first operation whose value differs
    constructs: tuple[Construct, ...]


def unseeded(s: Slice, index: int, facts: Mapping[str, Any] | None = None,
             operations: Sequence[Op] = (), *, tagged: bool = False) -> tuple[Construct, ...]:
    """The unseeded constructs behind op `index` of slice `s` (it and the ops it depends on);
    `facts` is what the capture recorded about the experiment's objects (``Trial.inputs``),
    `operations` the trial's whole sequence (to tell whether a global generator was seeded).
    With `tagged`, op `index` is the tagged value itself, read at the end of the run: when it
    builds an object of a class only one unseeded object has, that object is named."""
    if not 0 <= index < len(s.ops):
        return ()
    reached = sorted(ancestors(s, index))
    found: list[Construct] = []
    flagged = _flagged(facts)
    classes = Counter(cls for cls, _param in flagged.values())
    for name, (cls, param) in flagged.items():
        call = _mutating_call(s, reached, name)
        # an object whose calls only produced values that stayed the same (a `pca.fit_transform(X)`
        # upstream) passes nothing on: it is behind the change only when the op itself reads it,
        # or reads what a call changed in it
        at = index if _reads(s.ops[index], name) else call
        if at is None and tagged and classes[cls] == 1 and _builds(s, index, cls):
            # a model tagged as it was built (`now_variable('model', RandomForestClassifier())`)
            # and read at the end of the run, after a `fit` its slice does not reach
            at = index
        if at is not None:
            short = cls.rpartition(".")[2] or cls
            found.append(Construct(f"{name} is {_article(short)} whose {param} is None",
                                   f"pass {param}=0 (or any fixed number) to {short}(...)",
                                   s.ops[call] if call is not None else s.ops[at]))
    globals_drawn: dict[str, int] = {}
    seeded: set[str] = set()
    iterated = _iterated_sets(s, reached)
    for a in reached:
        op = s.ops[a]
        if op.kind == "call":
            found += _call_constructs(s, a)
            callee = _callee(s, a)
            generator = generator_of(callee.value) if callee is not None else None
            if generator is not None:
                if generator[1]:
                    seeded.add(generator[0])
                else:
                    globals_drawn.setdefault(generator[0], a)
        elif a in iterated:
            found.append(Construct(f"iteration over the set `{_short(op.code)}` (its order follows PYTHONHASHSEED)",
                                   "iterate over sorted(...) or set PYTHONHASHSEED", op))
    for drawn, a in globals_drawn.items():
        if drawn not in seeded and drawn in _GLOBAL and not _seeded_anywhere(operations, drawn):
            name, seed_call = _GLOBAL[drawn]
            found.append(Construct(f"{name} is never seeded (`{_short(s.ops[a].code)}` draws from it)",
                                   f"call {seed_call} first", s.ops[a]))
    unique: dict[str, Construct] = {}
    for construct in found:
        unique.setdefault(construct.what, construct)
    return tuple(unique.values())[:CONSTRUCTS_SHOWN]


def varying_op(s: Slice, index: int, facts: Mapping[str, Any] | None = None) -> int:
    """The op to name as where the value of op `index` varies: the call on an object flagged
    unseeded that changed it in place (`rf.fit(X, y)` behind `rf.predict(X)`), when the op
    reads such an object or depends on one through a mutation; else `index` itself."""
    if not 0 <= index < len(s.ops):
        return index
    reached = sorted(ancestors(s, index))
    for name in _flagged(facts):
        if any(_reads(s.ops[a], name) for a in reached):
            call = _mutating_call(s, reached, name)
            if call is not None:
                return call
    return index


# ---------------------------------------------------------------------------------------------


def _flagged(facts: Mapping[str, Any] | None) -> dict[str, tuple[str, str]]:
    """Name -> (class, parameter) of the objects the capture found unseeded; a malformed entry
    (a record edited by hand) is skipped."""
    entries = facts.get("unseeded") if isinstance(facts, Mapping) else None
    flagged: dict[str, tuple[str, str]] = {}
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, Mapping) and all(isinstance(entry.get(k), str) and entry.get(k)
                                              for k in ("name", "class", "param")):
            flagged.setdefault(entry["name"], (entry["class"], entry["param"]))
    return flagged


def _builds(s: Slice, index: int, cls: str) -> bool:
    """Whether op `index` calls class `cls` itself (builds one of its objects)."""
    callee = _callee(s, index) if s.ops[index].kind == "call" else None
    return callee is not None and callee.value == f"<class '{cls}'>"


def _reads(op: Op, name: str) -> bool:
    """Whether the op reads the object named `name` (`rf`, `rf.predict`, `rf.fit(X, y)`)."""
    return op.code == name if op.kind == "name" else op.code.startswith(name + ".") and op.kind in ("attribute", "call")


def _mutating_call(s: Slice, reached: Sequence[int], name: str) -> int | None:
    """The earliest call on `name` among the `reached` ops that another of them depends on
    through a mutation edge: the call that changed the object in place."""
    calls = {d for a in reached for d, kind in dependencies(s, a)
             if kind == MUTATION and s.ops[d].kind == "call" and s.ops[d].code.startswith(name + ".")}
    return min(calls) if calls else None


def _callee_index(s: Slice, index: int) -> int | None:
    """The function a call op called: its first dependency by data, when a name or attribute."""
    first = next((d for d, kind in dependencies(s, index) if kind == DATA), None)
    return first if first is not None and s.ops[first].kind in _FUNCS else None


def _callee(s: Slice, index: int) -> Op | None:
    at = _callee_index(s, index)
    return s.ops[at] if at is not None else None


def _arguments(s: Slice, index: int) -> Iterator[Op]:
    """The ops a call op reads besides its function: its arguments."""
    callee = _callee_index(s, index)
    for d, kind in dependencies(s, index):
        if kind == DATA and d != callee:
            yield s.ops[d]


def _call_constructs(s: Slice, index: int) -> list[Construct]:
    """A generator created without a seed, the clock, the operating system's randomness."""
    op, callee = s.ops[index], _callee(s, index)
    if callee is None:
        return []
    name = callee.code.rpartition(".")[2]
    if _CONSTRUCTORS.fullmatch(callee.value):
        arguments = list(_arguments(s, index))
        if all(argument.value == "None" for argument in arguments):
            given = "" if not arguments else f" ({', '.join(_short(a.code) for a in arguments)} is None)"
            return [Construct(f"`{_short(op.code)}` creates a generator without a seed{given}",
                              f"create it with a seed: {_seeded(op, callee)}", op)]
    elif _SYSTEM_RANDOM.fullmatch(callee.value):
        return [Construct(f"`{_short(op.code)}` creates a generator that cannot be seeded",
                          "use random.Random(0) (or any fixed number) instead", op)]
    elif name in _CLOCK and _function(callee, name):
        return [Construct(f"the clock ({_short(op.code)})",
                          "keep clock readings out of tagged values, or pass the time in", op)]
    elif name in _OS_RANDOM and _function(callee, name):
        return [Construct(f"randomness from the operating system ({_short(op.code)})",
                          "draw it from a seeded generator instead", op)]
    return []


def _function(callee: Op, name: str) -> bool:
    """Whether the callee's stored value is a function or method of that name (not a variable
    that happens to be called `time`)."""
    return name in callee.value and callee.value.startswith(("<built-in", "<function", "<bound method", "<cyfunction"))


def _seeded(op: Op, callee: Op) -> str:
    """The constructor call with a seed: `np.random.default_rng(0)`."""
    code = op.code.strip()
    if code.endswith("()"):
        return code[:-1] + "0)"
    return f"{code.partition('(')[0] or callee.code}(0)"


def _is_set(op: Op) -> bool:
    return op.kind == "set" or (op.value.startswith(("{", "frozenset({")) and _SET_VALUE.fullmatch(op.value) is not None
                                and op.value not in ("{}",))


def _iterated_sets(s: Slice, reached: Sequence[int]) -> set[int]:
    """The set ops that a `reached` op depends on in a way that keeps the set's order: a loop's
    target (a name whose value is not the set), `list(...)`, `"".join(...)`, a comprehension.
    One pass over the edges."""
    found = set()
    for a in reached:
        op = s.ops[a]
        for d, kind in dependencies(s, a):
            if kind == DATA and d not in found and _is_set(s.ops[d]) and (
                    (op.kind == "name" and op.value != s.ops[d].value) or _ORDERED.search(op.code)):
                found.add(d)
    return found


def _seeded_anywhere(operations: Sequence[Op], generator: str) -> bool:
    """Whether the trial read a seed function of the global `generator` anywhere."""
    for op in operations:
        if op.kind in _FUNCS and op.value.startswith("<"):
            found = generator_of(op.value)
            if found == (generator, True):
                return True
    return False


def _article(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def _short(code: str) -> str:
    code = " ".join(code.split())
    return code if len(code) <= _WIDTH else code[: _WIDTH - 3] + "..."


def between_identical_runs(explanation: Explanation, s: Slice | None, facts: Mapping[str, Any] | None = None,
                           operations: Sequence[Op] = ()) -> Explanation:
    """`explanation` of a diff between runs with the same code, inputs and libraries: its UNSEEN
    roots become VARIES, each with its `Variation` read from the new trial's slice `s`."""
    def variation(change: OpChange) -> Variation | None:
        index = change.index_new
        if s is None or index is None or not 0 <= index < len(s.ops):
            return None
        return Variation(s.ops[varying_op(s, index, facts)], s.ops[index], unseeded(s, index, facts, operations))

    if explanation.verdict is Verdict.UNSEEN and explanation.change is not None:
        explanation = replace(explanation, verdict=Verdict.VARIES, variation=variation(explanation.change))
    others = tuple(replace(root, verdict=Verdict.VARIES, variation=variation(root.change))
                   if root.verdict is Verdict.UNSEEN else root for root in explanation.others)
    return replace(explanation, others=others)
