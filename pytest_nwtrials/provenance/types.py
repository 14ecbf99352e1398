"""What the readers of a trial's evaluation graph share: the graph as they see it, call sites.

`provenance.graph.TrialGraph` loads the graph and asks `provenance/control.py`,
`provenance/effects.py`, `provenance/observed.py` and `provenance/state.py` for the edges noWorkflow
does not store. They read the graph through `GraphView` and pass `CallSite` records among
themselves; all of them import this module and none imports `provenance/graph.py`, so the imports
go one way: graph -> control, effects -> observed, state -> types.
"""
from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

# code blocks whose operations are the experiment's own top level: a script, a notebook's cells
TOP_BLOCKS = frozenset({"script", "cell"})
# the stored value of a module object, naming the module
MODULE = re.compile(r"<module ([\w.]+)>")


@dataclass(frozen=True)
class CallSite:
    """One call evaluation and what it was given."""

    call: int
    moment: float  # its checkpoint: when it returned
    name: str  # the called function's or method's name, from the source text ("" if none)
    func: int  # the evaluation of the called expression
    receiver: int | None  # the `obj` read of `obj.name(...)`
    arguments: tuple[int, ...]  # in source order: positional, then keywords
    keywords: tuple[str, ...]  # names of the last len(keywords) arguments; () when unknown


class GraphView(Protocol):
    """The part of `provenance.graph.TrialGraph` that the edge finders read."""

    conn: sqlite3.Connection
    trial_id: str
    # code component -> (name, type, first line, container)
    components: dict[int, tuple[str, str, int, int | None]]
    # evaluation -> (checkpoint, code component, object it holds)
    evaluations: dict[int, tuple[float, int, int]]
    deps: dict[int, list[tuple[int, str]]]  # dependent -> [(dependency, type)]
    conditions: dict[int, list[int]]  # dependent -> noWorkflow's `condition` dependencies

    def container(self, eid: int) -> int:
        """The object evaluation `eid` holds (its own id when it holds no other's)."""

    def tag_calls(self) -> dict[int, tuple[str, int]]:
        """Tag calls of the trial: call evaluation id -> (tag name, value evaluation id)."""

    def values(self, ids: Iterable[int]) -> dict[int, str]:
        """Stored values (reprs) of these evaluations."""
