"""Calls that may have changed an object they were given, which noWorkflow does not record.

noWorkflow connects a later read of an object to the evaluation that created it, not to the
calls that changed it since (`model.fit(X)`, `rows.sort()`). `mutation_effects` names those
calls, so that a slice that reads the object includes them: each is an *effect* on the object
(identified by noWorkflow's `member_container_id`, the evaluation that created it).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from .provenance_graph import TrialGraph

__all__ = ["mutation_effects"]


def mutation_effects(graph: TrialGraph) -> Iterator[tuple[int, int, str]]:
    """(object, call evaluation, edge kind) for every call that may have changed the object.

    Today: a method call on an object that returned None (`losses.append(x)`, `rows.sort()`,
    `df.drop(..., inplace=True)`).
    """
    from .provenance_graph import MUTATION

    for (call,) in graph.conn.execute(
            "SELECT e.id FROM evaluation e JOIN code_component cc"
            " ON cc.trial_id = e.trial_id AND cc.id = e.code_component_id"
            " WHERE e.trial_id = ? AND cc.type = 'call' AND e.repr = 'None'", (graph.trial_id,)):
        target = method_target(graph, call)
        if target is not None:
            yield target, call, MUTATION


def method_target(graph: TrialGraph, call: int) -> int | None:
    """The object of `obj.method(...)`: the container of the `obj` read."""
    func = next((dep for dep, kind in graph.deps.get(call, ()) if kind == "func"), None)
    if func is None or graph.components[graph.evaluations[func][1]][1] != "attribute":
        return None
    obj = next((dep for dep, kind in graph.deps.get(func, ()) if kind == "value"), None)
    return None if obj is None else graph.container(obj)
