"""The evaluation graph of one trial, read from noWorkflow's SQLite database.

Plain `sqlite3`, read-only; noWorkflow's SQLAlchemy models are not imported (slow to import,
and they connect process-wide). Only ids and edges are loaded; values are fetched for the
evaluations a caller asks about.

How a tagged value is found: every `tag(name, value)` and `now_tag_variable(name, value)` call
of the script is a `call` evaluation with an activation of that function name; its `func`
dependency is the function (checked by its stored value) and its `argument` dependencies are
the arguments in source order (positional first, then keywords; keyword names are not stored,
so they are read from the call's source text). Each such call is one tagging event.

How a slice is walked (`TrialGraph.backward`): from the tagged value's evaluation, backwards
over every edge of table `dependency`, plus two edges noWorkflow stores elsewhere:
- the parts of a container as of the moment it was read (table `member`: `data[0] = 5`,
  `obj.attr = v`), skipping the `.__class__` part every value has;
- calls that may have changed the object before that moment (MUTATION edges), which
  noWorkflow does not connect to the object: `model.fit(X)`, `rows.sort()`,
  `df.fillna(v, inplace=True)`, `rng.shuffle(data)` (of `rng` and of `data`), an `out=`
  array, and calls after which the object's stored value is seen changed; the rules are in
  `provenance/effects.py` and `provenance/observed.py`.
Parts and mutating calls are collected once per object, up to the latest read: a slice
includes every write into a container before it was read, also a write later overwritten.
Each read of such an object has edges to the effects since the read of it before, and to that
read, so that every read is tied to what changed the object (`_link_reads`).
A call that seeds or draws from a module's hidden random generator (`np.random.seed`,
`np.random.normal`, `random.random`, `torch.manual_seed`) has a STATE edge to the previous
seed or draw of that generator (`provenance/state.py`).
A tag call met on the way is transparent: only its value argument is followed. Control edges
(the test of the `if`/`while`, or the iterable of the `for`, an evaluation ran under, and the
tests that decided whether a name it reads was reassigned) come from `provenance/control.py`,
which replaces noWorkflow's `condition` dependencies; a loop counter that a value does not use
is not in its slice, the loop's iterable is.
"""
from __future__ import annotations

import ast
import os
import re
import sqlite3
from bisect import bisect_right
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

from .control import ControlFlow
from .effects import call_effects
from .types import TOP_BLOCKS

__all__ = ["CONTROL", "DATA", "MUTATION", "NOT_OPERATIONS", "STATE", "ProvenanceError", "TrialGraph", "connect"]

# kinds of the edges of a slice: noWorkflow's own dependencies and a container's parts; a call
# that may have changed an object read later; hidden module state (a global random generator);
# a condition that decided whether an operation ran
DATA, MUTATION, STATE, CONTROL = "data", "mutation", "state", "control"

# evaluations that are no operation of the script: builtins looked up, types, the module itself
NOT_OPERATIONS = frozenset({"type", "global", "script", "cell"})
_TAG_FUNCTION = re.compile(r"<function (?:pytest_nwtrials\.)?tag(?: at 0x[0-9a-fA-F]+)?>")
_TAGGERS = {"tag": ("name", "value"), "now_tag_variable": ("var_name", "value")}
_CHUNK = 500
# dependency types that are not plain data: STATE edges are added by _load_effects (noWorkflow's
# `condition` dependencies are kept apart, for `provenance/control.py`)
_EDGE_KIND = {STATE: STATE}


class ProvenanceError(Exception):
    """The database or the trial cannot be read."""


def connect(db_path: Path) -> sqlite3.Connection:
    """A read-only connection to a noWorkflow database."""
    path = Path(db_path).resolve()
    if not path.is_file():
        raise ProvenanceError(f"no noWorkflow database at {path}")
    try:
        return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ProvenanceError(f"cannot open noWorkflow database {path}: {exc}") from exc


class TrialGraph:
    """One trial's evaluations and their edges, loaded once (ids only; values on demand)."""

    def __init__(self, conn: sqlite3.Connection, trial_id: str, db_path: Path) -> None:
        self.conn = conn
        self.trial_id = trial_id
        try:
            row = conn.execute("SELECT path, main_id FROM trial WHERE id = ?", (trial_id,)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise ProvenanceError(f"{db_path} is not a noWorkflow database: {exc}") from exc
        if row is None:
            raise ProvenanceError(f"trial {trial_id} is not in {db_path}")
        self.cwd, self.main_block = row[0] or "", row[1]
        self.store_dir = db_path.resolve().parent.parent  # names of scripts are relative to it
        self.components = {
            cid: (name or "", kind or "", line if line is not None else -1, container)
            for cid, name, kind, line, container in conn.execute(
                "SELECT id, name, type, first_char_line, container_id FROM code_component"
                " WHERE trial_id = ?", (trial_id,))
        }
        self._files: dict[int, str] = {}
        self._loaded = False
        self._effects_loaded = False
        self._tag_calls: dict[int, tuple[str, int]] | None = None
        # filled by _load(): evaluation -> (checkpoint, code component, object it holds)
        self.evaluations: dict[int, tuple[float, int, int]] = {}
        self.deps: dict[int, list[tuple[int, str]]] = {}  # dependent -> [(dependency, type)]
        self.conditions: dict[int, list[int]] = {}  # dependent -> noWorkflow's `condition` dependencies
        # filled by _load_effects(): object -> its parts and the calls that may have changed it,
        # as (checkpoint, evaluation, edge kind)
        self.effects: dict[int, list[tuple[float, int, str]]] = {}
        self.effect_times: dict[int, list[float]] = {}
        self.transparent: dict[int, int] = {}  # tag call -> its value argument
        self._control: ControlFlow | None = None

    # -- loading the graph, only when a slice is asked for ----------------------------------

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        self.evaluations = {
            eid: (checkpoint or 0.0, component, container if container is not None else eid)
            for eid, checkpoint, component, container in self.conn.execute(
                "SELECT id, checkpoint, code_component_id, member_container_id FROM evaluation"
                " WHERE trial_id = ?", (self.trial_id,))
        }
        deps: dict[int, list[tuple[int, str]]] = defaultdict(list)
        conditions: dict[int, list[int]] = defaultdict(list)
        for dependent, dependency, kind in self.conn.execute(
                "SELECT dependent_id, dependency_id, type FROM dependency WHERE trial_id = ?"
                " ORDER BY id", (self.trial_id,)):
            if dependency in self.evaluations:
                if kind == "condition":  # control edges: `control_of` scopes them
                    conditions[dependent].append(dependency)
                else:
                    deps[dependent].append((dependency, kind))
        self.deps = dict(deps)
        self.conditions = dict(conditions)

    def _load_effects(self) -> None:
        """What a slice follows besides noWorkflow's dependencies: parts of containers, calls
        that may have changed an object, hidden state. Not needed to find tags or files."""
        self._load()
        if self._effects_loaded:
            return
        self._effects_loaded = True
        effects: dict[int, list[tuple[float, int, str]]] = defaultdict(list)
        for collection, member, checkpoint in self.conn.execute(
                "SELECT collection_id, member_id, checkpoint FROM member"
                " WHERE trial_id = ? AND key != '.__class__'", (self.trial_id,)):
            if member in self.evaluations:
                effects[self.container(collection)].append((checkpoint or 0.0, member, DATA))
        mutations, state = call_effects(self, effects)
        for obj, call in mutations:
            effects[obj].append((self.evaluations[call][0], call, MUTATION))
        for draw, earlier in state:
            self.deps.setdefault(draw, []).append((earlier, STATE))
        self.effects = {obj: sorted(items) for obj, items in effects.items()}
        self.effect_times = {obj: [t for t, _e, _k in items] for obj, items in self.effects.items()}
        self.transparent = {call: value for call, (_name, value) in self.tag_calls().items()}

    def container(self, eid: int) -> int:
        found = self.evaluations.get(eid)
        return found[2] if found else eid

    # -- tags --------------------------------------------------------------------------------

    def tag_calls(self) -> dict[int, tuple[str, int]]:
        """Tag calls of the trial: call evaluation id -> (tag name, value evaluation id)."""
        if self._tag_calls is not None:
            return self._tag_calls
        self._load()
        candidates = {
            call: name for call, name in self.conn.execute(
                "SELECT id, name FROM activation WHERE trial_id = ? AND name IN (?, ?)",
                (self.trial_id, *_TAGGERS))
        }
        funcs = {call: next((d for d, k in self.deps.get(call, ()) if k == "func"), None) for call in candidates}
        arguments = {call: [d for d, k in self.deps.get(call, ()) if k == "argument"] for call in candidates}
        func_values = self.values(f for f in funcs.values() if f is not None)
        name_evals = {}
        found = {}
        for call, function in candidates.items():
            func = funcs[call]
            text = func_values.get(func, "") if func is not None else ""
            if not (_TAG_FUNCTION.fullmatch(text) if function == "tag" else "now_tag_variable" in text):
                continue
            component = self.components.get(self.evaluations.get(call, (0, -1, 0))[1])
            places = _argument_places(component[0] if component else "", _TAGGERS[function])
            args = arguments[call]
            if places is None or max(places) >= len(args):
                continue
            name_evals[call] = args[places[0]]
            found[call] = args[places[1]]
        names = self.values(name_evals.values())
        self._tag_calls = {}
        for call in sorted(found, key=lambda c: (self.evaluations[c][0], c)):
            name = _literal_text(names.get(name_evals[call], ""))
            if name:
                self._tag_calls[call] = (name, found[call])
        return self._tag_calls

    def tag_events(self) -> dict[str, list[int]]:
        """Tag name -> the value evaluations of its events, in execution order."""
        events: dict[str, list[int]] = defaultdict(list)
        for name, value in self.tag_calls().values():
            events[name].append(value)
        return dict(events)

    def last_module_assignment(self, name: str) -> int | None:
        row = self.conn.execute(
            "SELECT e.id FROM evaluation e"
            " JOIN code_component cc ON cc.trial_id = e.trial_id AND cc.id = e.code_component_id"
            " JOIN activation a ON a.trial_id = e.trial_id AND a.id = e.activation_id"
            " WHERE e.trial_id = ? AND cc.type = 'name' AND cc.mode = 'w' AND cc.name = ?"
            " AND (a.code_block_id = ? OR a.code_block_id IN (SELECT id FROM code_component"
            " WHERE trial_id = ? AND type = 'cell')) ORDER BY e.checkpoint DESC, e.id DESC LIMIT 1",
            (self.trial_id, name, self.main_block, self.trial_id),
        ).fetchone()
        return row[0] if row else None

    # -- the slice ---------------------------------------------------------------------------

    def backward(self, starts: Iterable[int]) -> set[int]:
        """Every evaluation the given ones depend on (see the module docstring)."""
        return set(self.backward_edges(starts))

    def backward_edges(self, starts: Iterable[int]) -> dict[int, set[tuple[int, str]]]:
        """The slice of `starts`: each evaluation in it -> its direct dependencies in it, with
        the kind of each edge (`DATA`, `MUTATION`, `STATE`, `CONTROL`)."""
        self._load_effects()
        evaluations, deps, effects, transparent = self.evaluations, self.deps, self.effects, self.transparent
        edges: dict[int, set[tuple[int, str]]] = {}
        observed: dict[int, float] = {}  # evaluation -> latest moment its object was looked at
        expanded: dict[int, int] = {}  # object -> how many of its effects are already queued
        # (evaluation, moment it is looked at, the evaluation that led here, edge kind)
        stack: list[tuple[int, float, int | None, str]] = [
            (eid, evaluations[eid][0], None, DATA) for eid in starts if eid in evaluations]
        control_of = self._control_flow().of
        while stack:
            eid, moment, via, kind = stack.pop()
            if eid in transparent:  # a tag call stands for its value argument
                eid = transparent[eid]
                moment = evaluations[eid][0]
            if via is not None and via != eid:
                edges[via].add((eid, kind))
            first = eid not in edges
            if not first and moment <= observed[eid]:
                continue
            if first:
                edges[eid] = set()
                stack.extend((dep, evaluations[dep][0], eid, _EDGE_KIND.get(kind, DATA))
                             for dep, kind in deps.get(eid, ()))
                stack.extend((test, evaluations[test][0], eid, CONTROL) for test in control_of(eid))
            observed[eid] = moment
            obj = evaluations[eid][2]
            if obj in effects:
                done = expanded.get(obj, 0)
                upto = bisect_right(self.effect_times[obj], moment)
                if upto > done:
                    expanded[obj] = upto
                    # a part is looked at when its container was
                    stack.extend((effect, max(moment, evaluations[effect][0]), eid, effect_kind)
                                 for _t, effect, effect_kind in effects[obj][done:upto])
        self._link_reads(edges, expanded)
        return edges

    def _link_reads(self, edges: dict[int, set[tuple[int, str]]], expanded: dict[int, int]) -> None:
        """Give every read of a changed object in the slice its edges to the effects since the
        read before it, and to that read (the object as it was then seen).

        The walk queues an object's effects once, from the first read that reaches them; the
        other reads need edges too, or a later read looks unchanged by a call that changed the
        object (`rng.shuffle(indices)` then two reads of `indices`). Linear: each effect is
        linked to one read, each read to one earlier read.
        """
        evaluations, effects = self.evaluations, self.effects
        reads: dict[int, list[tuple[float, int]]] = defaultdict(list)
        for eid in edges:
            obj = evaluations[eid][2]
            if obj in expanded:
                reads[obj].append((evaluations[eid][0], eid))
        for obj, found in reads.items():
            found.sort()
            included = effects[obj][:expanded[obj]]
            # a container built from parts is data; an object a call changed in place is mutated
            carried = MUTATION if any(kind != DATA for _t, _e, kind in included) else DATA
            at = 0
            previous = None
            for moment, eid in found:
                while at < len(included) and included[at][0] <= moment:
                    _t, effect, kind = included[at]
                    if effect != eid and effect in edges:
                        edges[eid].add((effect, kind))
                    at += 1
                if previous is not None:  # the object as last seen, changed since
                    edges[eid].add((previous, carried))
                previous = eid

    def control_of(self, eid: int) -> list[int]:
        """The evaluations of conditions that decided whether `eid` ran, or whether a name it
        reads was reassigned before it (`provenance/control.py`)."""
        return self._control_flow().of(eid)

    def _control_flow(self) -> ControlFlow:
        self._load()
        if self._control is None:
            self._control = ControlFlow(self)
        return self._control

    def in_order(self, ids: Iterable[int]) -> list[int]:
        """Evaluations in execution order (checkpoint, then id), without non-operations."""
        ordered = sorted(ids, key=lambda eid: (self.evaluations[eid][0], eid))
        return [eid for eid in ordered if self.components[self.evaluations[eid][1]][1] not in NOT_OPERATIONS]

    def component_of(self, eid: int) -> int:
        return self.evaluations[eid][1]

    def values(self, ids: Iterable[int]) -> dict[int, str]:
        """Stored values (reprs) of these evaluations."""
        ids = list(dict.fromkeys(ids))
        if len(ids) > 20 * _CHUNK:  # a large slice: one scan beats many lookups
            wanted = set(ids)
            rows: Iterator = (r for r in self.conn.execute(
                "SELECT id, repr FROM evaluation WHERE trial_id = ?", (self.trial_id,)) if r[0] in wanted)
            return dict(rows)
        values: dict[int, str] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            values.update(self.conn.execute(
                f"SELECT id, repr FROM evaluation WHERE trial_id = ? AND id IN ({marks})",  # noqa: S608
                (self.trial_id, *chunk)))
        return values

    def file_of(self, component: int) -> str:
        """The script a code component belongs to, relative to the trial's working directory."""
        chain = []
        current: int | None = component
        while current is not None and current not in self._files:
            chain.append(current)
            entry = self.components.get(current)
            if entry is None or entry[1] in TOP_BLOCKS:
                break
            current = entry[3]
        if current is not None and current in self._files:
            file = self._files[current]
        else:
            entry = self.components.get(chain[-1]) if chain else None
            file = self._script_path(entry[0]) if entry and entry[1] in TOP_BLOCKS else ""
        for cid in chain:
            self._files[cid] = file
        return file

    def _script_path(self, name: str) -> str:
        path = Path(os.path.normpath(self.store_dir / name))
        if self.cwd and path.is_relative_to(self.cwd):
            return path.relative_to(self.cwd).as_posix()
        return path.as_posix()


@lru_cache(maxsize=1024)
def _argument_places(call_text: str, params: tuple[str, str]) -> tuple[int, int] | None:
    """Which stored arguments of a `tag(...)` call are the name and the value, from its source."""
    try:
        call = ast.parse(call_text.strip(), mode="eval").body
    except SyntaxError:
        call = None
    if not isinstance(call, ast.Call):
        return (0, 1)
    if any(isinstance(arg, ast.Starred) for arg in call.args) or any(kw.arg is None for kw in call.keywords):
        return None  # tag(*pair) / tag(**kw): not mapped
    places = {}
    for index, param in enumerate(params):
        if index < len(call.args):
            places[param] = index
    for index, keyword in enumerate(call.keywords):
        if keyword.arg in params:
            places[keyword.arg] = len(call.args) + index
    if len(places) != 2:
        return None
    return places[params[0]], places[params[1]]


def _literal_text(value: str) -> str:
    try:
        text = ast.literal_eval(value)
    except Exception:  # not a literal (a summarised value), or one too deep to evaluate
        return ""
    return text if isinstance(text, str) else ""
