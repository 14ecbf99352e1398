"""Mutations seen in the values: an object that was passed to a call and read back changed.

No list of mutating functions is complete (a library's own `normalize_(X)`, a C extension
that writes into a buffer). What the capture does record is each read's value: our serializer
stores an array's, a frame's or a container's content digest. When an object's value at its
next read after a call differs from its value when it was given to the call, and no known
effect (a recorded part write, a call matched by `provenance/effects.py`) changed it in between,
that call changed it.

Cheap by construction: only objects given to calls that no rule already explains are
candidates, and only the two reads around each such call are fetched. A value whose stored
form does not show its content (`<Est object>`) is never seen to change.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Mapping

from .types import CallSite, GraphView

__all__ = ["observed_mutations"]


def observed_mutations(graph: GraphView, sites: list[CallSite], known: list[tuple[int, int]],
                       parts: Mapping[int, list[tuple[float, int, str]]], modules: set[int]) -> list[tuple[int, int]]:
    """(object, call) for each call after which an object it was given is seen changed.

    `known` are the (object, call) effects found by rule, `parts` each object's recorded part
    writes as (checkpoint, part, kind), `modules` the reads of modules (never candidates)."""
    explained = set(known)
    components, evaluations = graph.components, graph.evaluations
    # (object, call, the read of the object given to the call)
    candidates = []
    for site in sites:
        receiver = site.receiver
        given = site.arguments if receiver is None or receiver in modules else (receiver, *site.arguments)
        for read in given:
            obj = graph.container(read)
            if (obj, site.call) in explained or obj == site.call or obj not in evaluations:
                continue
            if components.get(evaluations[obj][1], ("", ""))[1] == "literal":
                continue  # a number or a string: nothing to change in place
            candidates.append((obj, site, read))
    if not candidates:
        return []
    wanted = {obj for obj, _site, _read in candidates}
    reads: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for eid, (moment, _component, obj) in graph.evaluations.items():
        if obj in wanted:
            reads[obj].append((moment, eid))
    times = {}
    for obj, items in reads.items():
        items.sort()
        times[obj] = [moment for moment, _eid in items]
    effect_times: dict[int, list[float]] = defaultdict(list)
    for obj, call in known:
        effect_times[obj].append(graph.evaluations[call][0])
    for obj in wanted:
        effect_times[obj].extend(moment for moment, _part, _kind in parts.get(obj, ()))
    for moments in effect_times.values():
        moments.sort()
    pairs = []
    for obj, site, read in candidates:
        after = bisect_right(times[obj], site.moment)
        if after == len(times[obj]):
            continue  # never read again
        following = reads[obj][after][1]
        moments = effect_times.get(obj, [])
        start = graph.evaluations[read][0]
        if moments and bisect_left(moments, start) != bisect_right(moments, times[obj][after]):
            continue  # changed, if at all, by a known effect
        pairs.append((obj, site.call, read, following))
    values = graph.values(eid for _obj, _call, read, following in pairs for eid in (read, following))
    found = []
    for obj, call, read, following in pairs:
        if values.get(read) != values.get(following):
            found.append((obj, call))
    return list(dict.fromkeys(found))

