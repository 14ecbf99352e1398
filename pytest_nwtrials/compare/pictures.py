"""What the HTML report draws for two trials that differ: each explained slice as a graph of
statements, and the experiment's code in both trials with the lines that changed or diverged.

`pictures(diff)` returns JSON-ready data for a report's experiment (see render/html.py);
render/graph.py and render/code.py draw it. No pytest in here.

A graph has one node per statement of the slice (the operations of one line, labelled with the
longest code among them) in the order the trial first ran them, and an edge where an operation
of one depends on an operation of another (data, mutation, hidden state, control flow). It is
drawn from the slice the explanation walked: the new trial's, or the baseline's when the root
is a step that no longer runs. What each node shows:

- ``root``: the explanation's root (or first divergence, which may be a symptom: `verdict` says
  which), and the other roots it names; for a value that varies between identical runs because
  an earlier call drew (an unseeded model's `fit`), that call, and the value is ``changed``;
- ``changed``: a statement with an operation that changed, came or moved;
- ``path``: on the chain from the root to the tagged value, and unchanged (a changed statement on
  it has "path" true: it is outlined as the path is);
- ``context``: unchanged, greyed out.

A slice of more than `MAX_NODES` statements is shown collapsed around those (each run of others
is one gap node); the whole one can be opened unless it has more than `WHOLE_NODES`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..provenance.reader import Op, Slice
from .explain import Explained, story_head
from .rootcause import Verdict
from .slices import OpChange, OpKind

if TYPE_CHECKING:
    from .diffing import TrialDiff

__all__ = ["MAX_NODES", "WHOLE_NODES", "code_doc", "fold_doc", "graph_doc", "pictures"]

MAX_NODES = 30
WHOLE_NODES = 400
_VALUE = 120  # characters of a value kept for a node's tooltip
_RANK = {"root": 3, "changed": 2, "path": 1, "context": 0}
_CELL = re.compile(r"^(?P<notebook>.+)#cell(?P<cell>\d+)$")
ROOT_WORDS = {Verdict.CAUSE: "root cause", Verdict.INPUT: "root cause (a changed input)",
              Verdict.UNSEEN: "first divergence (maybe a symptom: its recorded inputs did not change)",
              Verdict.DIVERGENCE: "first divergence (maybe a symptom: the record has no dependency edges)",
              Verdict.VARIES: "varies between identical runs"}


def pictures(diff: TrialDiff, *, outputs: bool = False, identical: bool | None = None,
             lines: Sequence[str] | None = None) -> dict[str, Any]:
    """The report data of `diff` beyond its text: "why_folded" (the why-lines with what the text
    leaves out, `fold_doc`; `lines` when already made with ``diff.why(fold=True)``),
    "explanations" (one per story, with its graph) and "code"."""
    stories = diff.explained(identical)[0]
    if lines is None:
        lines = diff.why(outputs=outputs, identical=identical, fold=True)
    return {"why_folded": fold_doc(lines),
            "explanations": [{"tags": list(story.tags), "head": story_head(story),
                              "verdict": story.explanation.verdict.value, "graph": graph_doc(story, diff.sources)}
                             for story in stories],
            "code": code_doc(diff.sources, stories)}


def fold_doc(lines: Sequence[str]) -> dict[str, Any]:
    """Lines with `render.slices.Fold`s as data: all "lines", and "folds", each [index of the
    line standing for the hidden ones, how many follow it]."""
    from ..render.slices import Fold

    return {"lines": [str(line) for line in lines],
            "folds": [[n, line.hidden] for n, line in enumerate(lines) if isinstance(line, Fold)]}


# -- the graph of a slice ----------------------------------------------------------------------

def graph_doc(story: Explained, sources: tuple[Mapping[str, str], Mapping[str, str]] = ({}, {})) -> dict[str, Any]:
    """The graph of `story`'s slice: "nodes", "edges", "shown" (the collapsed view: node
    numbers and ``{"gap": n}``), "whole" (whether the whole graph may be drawn), "side" (the
    trial whose slice it is), "root" (what its root is called), and "note" when it cannot be drawn.
    A node's "text" is its line as written, from the code the trial recorded (`sources`)."""
    explanation, diff = story.explanation, story.diff
    side = "old" if explanation.chain_in_baseline else "new"
    chosen = diff.old if side == "old" else diff.new
    doc: dict[str, Any] = {"side": side, "nodes": [], "edges": [], "shown": [], "whole": True,
                           "root": ROOT_WORDS.get(explanation.verdict, "first divergence")}
    if chosen is None or not chosen.ops:
        doc["note"] = "no slice was recorded on this side"
        return doc
    if chosen.edges is None:
        doc["note"] = "this record has no dependency edges (recorded by an older version): save it again to draw it"
        return doc
    states = _op_states(story, chosen, side)
    statement: dict[tuple[str, int], int] = {}
    node_of: list[int] = []
    nodes: list[dict[str, Any]] = []
    for index, op in enumerate(chosen.ops):
        key = (op.file, op.line)
        if key not in statement:
            statement[key] = len(nodes)
            nodes.append({"file": op.file, "line": op.line, "code": op.code, "kind": op.kind, "state": "context",
                          "ops": 0, "tag": False, "path": False})
        node = nodes[statement[key]]
        node_of.append(statement[key])
        node["ops"] += 1
        if len(op.code) > len(node["code"]):
            node["code"], node["kind"] = op.code, op.kind
        state = states.get(index, "context")
        if _RANK[state] > _RANK[node["state"]]:
            node["state"] = state
    nodes[node_of[-1]]["tag"] = True  # the slice ends with the tagged value
    code = sources[0] if side == "old" else sources[1]
    for node in nodes:
        lines = code.get(node["file"], "").splitlines()
        if 0 < node["line"] <= len(lines) and lines[node["line"] - 1].strip():
            node["text"] = lines[node["line"] - 1].strip()
    root = explanation.change
    if root is not None and explanation.path:
        node = nodes[node_of[explanation.path[0]]]
        node["old"] = _short(root.old.value) if root.old is not None else None
        node["new"] = _short(root.new.value) if root.new is not None else None
    for change, at in _varied_at(explanation):  # the call that drew is the root drawn; what differed first, changed
        if (at.file, at.line) in statement:
            first = change.index_old if side == "old" else change.index_new
            if first is not None and 0 <= first < len(node_of) and node_of[first] != statement[(at.file, at.line)]:
                nodes[node_of[first]]["state"] = "changed"
            nodes[statement[(at.file, at.line)]]["state"] = "root"
    for index in explanation.path:
        nodes[node_of[index]]["path"] = True  # drawn with the path's outline, whatever its state
    path_pairs = {(node_of[a], node_of[b]) for a, b in zip(explanation.path, explanation.path[1:])}
    edges: dict[tuple[int, int], set[str]] = {}
    for target, deps in enumerate(chosen.edges):
        for source, kind in deps:
            pair = (node_of[source], node_of[target])
            if pair[0] != pair[1]:
                edges.setdefault(pair, set()).add(kind)
    doc["nodes"] = nodes
    doc["edges"] = [{"from": a, "to": b, "kinds": sorted(kinds), "path": (a, b) in path_pairs}
                    for (a, b), kinds in sorted(edges.items())]
    doc["shown"] = _collapsed(nodes)
    doc["whole"] = len(nodes) <= WHOLE_NODES
    return doc


def _op_states(story: Explained, chosen: Slice, side: str) -> dict[int, str]:
    """The state of each marked operation of the slice drawn, by its index there."""
    explanation = story.explanation
    states: dict[int, str] = {}

    def mark(index: int | None, state: str) -> None:
        if index is not None and 0 <= index < len(chosen.ops) and _RANK[state] > _RANK[states.get(index, "context")]:
            states[index] = state

    for change in story.diff.changes:
        mark(change.index_old if side == "old" else change.index_new, "changed")
    for index in explanation.path:
        mark(index, "path")
    if explanation.path and explanation.change is not None:
        mark(explanation.path[0], "root")
    for other in explanation.others:
        mark(other.change.index_old if side == "old" else other.change.index_new, "root")
    return states


def _varied_at(explanation: Any) -> list[tuple[OpChange, Op]]:
    """For each root that varies between identical runs because of an earlier call that drew
    (`rf.fit(X, y)` on an unseeded model, whose value looks the same), that root and the call:
    the text names the call, so the picture does too."""
    pairs = [(explanation.change, explanation.variation),
             *((other.change, other.variation) for other in explanation.others)]
    return [(change, variation.op) for change, variation in pairs
            if change is not None and variation is not None and variation.op != variation.root]


def _collapsed(nodes: list[dict[str, Any]]) -> list[Any]:
    """Node numbers to draw, runs of the others as ``{"gap": n}``: all of them when few;
    else the marked ones (roots, the path and the tag first) and their neighbours."""
    if len(nodes) <= MAX_NODES:
        return list(range(len(nodes)))
    order = sorted(range(len(nodes)), key=lambda n: (-_RANK[nodes[n]["state"]] - (2 if nodes[n]["tag"] else 0), n))
    keep = {n for n in order[:MAX_NODES] if nodes[n]["state"] != "context" or nodes[n]["tag"]}
    for n in sorted(keep):
        for neighbour in (n - 1, n + 1):
            if 0 <= neighbour < len(nodes) and len(keep) < MAX_NODES:
                keep.add(neighbour)
    for n in range(1, len(nodes) - 1):  # a gap of one statement would take its place: draw it instead
        if n not in keep and n - 1 in keep and n + 1 in keep:
            keep.add(n)
    if 0 not in keep and 1 in keep:
        keep.add(0)
    if len(nodes) - 1 not in keep and len(nodes) - 2 in keep:
        keep.add(len(nodes) - 1)
    shown: list[Any] = []
    for n in range(len(nodes)):
        if n in keep:
            shown.append(n)
        elif shown and isinstance(shown[-1], dict):
            shown[-1]["gap"] += 1
        else:
            shown.append({"gap": 1})
    return shown


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _VALUE else text[: _VALUE - 3] + "..."


# -- the code of both trials -------------------------------------------------------------------

def code_doc(sources: tuple[Mapping[str, str], Mapping[str, str]], stories: Sequence[Explained]) -> dict[str, Any]:
    """Each file of the experiment's code in both trials (a notebook: each cell), with the lines
    to highlight on each side: "root" (a root's line) or "changed" (an operation that changed,
    came, went or moved). "note" says what is missing."""
    old, new = sources
    marks: dict[str, dict[str, dict[str, str]]] = {}

    def mark(op: Op | None, side: str, state: str) -> None:
        if op is not None and op.file:
            lines = marks.setdefault(op.file, {"old": {}, "new": {}})[side]
            if _RANK[state] > _RANK.get(lines.get(str(op.line), "context"), 0):
                lines[str(op.line)] = state

    for story in stories:
        for change in story.diff.changes:
            if change.kind is not OpKind.ADDED:
                mark(change.old, "old", "changed")
            if change.kind is not OpKind.REMOVED:
                mark(change.new, "new", "changed")
        varied = dict(_varied_at(story.explanation))
        for at in varied.values():
            mark(at, "new", "root")
        roots = [story.explanation.change, *(other.change for other in story.explanation.others)]
        for root in roots:
            if root is not None and root not in varied:
                mark(root.old, "old", "root")
                mark(root.new, "new", "root")
    files = [{"file": name, "old": old.get(name), "new": new.get(name),
              "old_marks": marks.get(name, {}).get("old", {}), "new_marks": marks.get(name, {}).get("new", {})}
             for name in sorted(set(old) | set(new), key=_file_order)]
    doc: dict[str, Any] = {"files": files}
    if not old and not new:
        doc["note"] = "neither trial recorded its code"
    elif not old or not new:
        which = "the baseline" if not old else "the new trial"
        doc["note"] = (f"{which} did not record its code (recorded by an older version, or its file changed while "
                       "it ran)" + ("; save the baseline again to see it" if not old else ""))
    return doc


def _file_order(name: str) -> tuple[str, int, str]:
    cell = _CELL.match(name)
    return (cell["notebook"], int(cell["cell"]), "") if cell else (name, 0, name)
