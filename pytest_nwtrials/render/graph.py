"""The slice of a changed tag as an SVG picture, drawn here in Python: no script, no font or
library fetched when the report is viewed.

A graph (`compare/pictures.py` `graph_doc`) is drawn top-down in the order the trial ran its
statements, one box per statement (``train.py:12  w -= lr * grad``), and each dependency as an
arc on the right, from the statement depended on to the one depending on it. The root is
orange, changed statements yellow, the path from the root to the tag blue, unchanged context
grey; the arcs of the path are drawn bold. A large slice is drawn collapsed (the gaps say how
many statements they stand for) and, unless too large, whole under "Show all".
"""
from __future__ import annotations

import html
from typing import Any

from ..printable import printable
from .slices import where_place

__all__ = ["explanation_html", "graph_svg"]

ROW = 30  # pixels between the tops of two boxes
BOX_HEIGHT = 22
BOX_WIDTH = 620
LEFT = 6
TOP = 34  # below the legend
LABEL_CHARS = 84  # the monospace label fits the box at 12px
FILL = {"root": "#ffd8b5", "changed": "#fff1c2", "path": "#dbe9ff", "context": "#f6f8fa"}
STROKE = {"root": "#bc4c00", "changed": "#9a6700", "path": "#0969da", "context": "#d0d4d8"}
TEXT = {"context": "#8c959f"}
EDGE = {"data": ("#8c959f", ""), "mutation": ("#8250df", "5 3"), "state": ("#9a6700", "2 3"),
        "control": ("#0969da", "8 3 2 3")}
_EDGE_ORDER = ("control", "state", "mutation", "data")  # an arc of several kinds is drawn as the first


def _e(value: Any) -> str:
    return html.escape(printable("" if value is None else value), quote=True)


def _label(node: dict[str, Any]) -> str:
    """``train.py:12  w -= lr * grad``: the line as written when the trial recorded its code, else
    the longest operation of the line; a root with the value it had and has."""
    code = " ".join(str(node.get("text") or node.get("code", "")).split())
    text = f"{where_place(str(node.get('file', '')), int(node.get('line', 0)))}  {code}"
    if node.get("state") == "root" and ("old" in node or "new" in node):
        text += f"   [{_value(node.get('old'))} -> {_value(node.get('new'))}]"
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 3] + "..."


def _value(value: Any) -> str:
    text = "(none)" if value is None else str(value)
    return text if len(text) <= 24 else text[:21] + "..."


def _title(node: dict[str, Any], root_words: str) -> str:
    where = where_place(str(node.get("file", "")), int(node.get("line", 0)))
    parts = [f"{where}: {node.get('text') or node.get('code', '')}",
             f"{node.get('ops', 1)} operation(s), the longest: {node.get('code', '')} ({node.get('kind', '')})"]
    state = node.get("state")
    parts.append({"root": root_words, "changed": "changed", "path": "on the path from the root to the tag",
                  "context": "unchanged"}.get(str(state), str(state)))
    if "old" in node or "new" in node:
        parts.append(f"{node.get('old')} -> {node.get('new')}")
    if node.get("tag"):
        parts.append("the tagged value")
    return "\n".join(parts)


def graph_svg(doc: dict[str, Any], *, whole: bool = False, ident: str = "g") -> str:
    """The SVG of a graph doc: its collapsed view ("shown"), or with `whole` every node; `ident`
    makes its arrowheads' ids unique in the page."""
    nodes: list[dict[str, Any]] = doc.get("nodes") or []
    view: list[Any] = list(range(len(nodes))) if whole else list(doc.get("shown") or [])
    root_words = str(doc.get("root") or "root cause")
    row_of = {item: row for row, item in enumerate(view) if isinstance(item, int)}
    arcs = []
    widest = 0
    for edge in doc.get("edges") or []:
        a, b = row_of.get(edge.get("from")), row_of.get(edge.get("to"))
        if a is None or b is None:
            continue  # an end is folded into a gap
        kinds = [k for k in _EDGE_ORDER if k in (edge.get("kinds") or ())] or ["data"]
        colour, dash = EDGE.get(kinds[0], EDGE["data"])
        span = abs(b - a)
        reach = 14 + 9 * min(span, 40)
        widest = max(widest, reach)
        x = LEFT + BOX_WIDTH
        ya, yb = TOP + a * ROW + BOX_HEIGHT / 2 - 3, TOP + b * ROW + BOX_HEIGHT / 2 + 3
        path = bool(edge.get("path"))
        stroke = "#bc4c00" if path else colour
        width = 2.4 if path else 1.2
        dashes = f" stroke-dasharray=\"{dash}\"" if dash and not path else ""
        arcs.append(f"<path class=\"edge {' '.join(kinds)}{' path' if path else ''}\" data-from=\"{edge.get('from')}\" "
                    f"data-to=\"{edge.get('to')}\" d=\"M{x},{ya:.1f} C{x + reach},{ya:.1f} {x + reach},{yb:.1f} "
                    f"{x + 2},{yb:.1f}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"{width}\"{dashes} "
                    f"marker-end=\"url(#{ident}-{'arrow-path' if path else 'arrow'})\"><title>{_e(', '.join(kinds))}"
                    "</title></path>")
    boxes = []
    for row, item in enumerate(view):
        y = TOP + row * ROW
        if isinstance(item, dict):
            count = int(item.get("gap", 0))
            boxes.append(f"<g class=\"gap\"><rect x=\"{LEFT}\" y=\"{y}\" width=\"{BOX_WIDTH}\" height=\"{BOX_HEIGHT}\" "
                         "rx=\"4\" fill=\"#fff\" stroke=\"#d0d4d8\" stroke-dasharray=\"4 3\"/>"
                         f"<text x=\"{LEFT + 10}\" y=\"{y + 15}\" fill=\"#8c959f\">... {count} unchanged "
                         f"statement{'s' if count != 1 else ''}</text></g>")
            continue
        node = nodes[item]
        state = str(node.get("state", "context"))
        state = state if state in FILL else "context"
        weight = " font-weight=\"bold\"" if state == "root" or node.get("tag") else ""
        on_path = bool(node.get("path")) and state != "root"
        stroke = STROKE["path"] if on_path else STROKE[state]
        where = where_place(str(node.get("file", "")), int(node.get("line", 0)))
        boxes.append(f"<g class=\"node {state}{' tag' if node.get('tag') else ''}{' on-path' if on_path else ''}\" "
                     f"data-node=\"{item}\" "
                     f"data-state=\"{state}\" data-where=\"{_e(where)}\" data-code=\"{_e(node.get('code'))}\">"
                     f"<title>{_e(_title(node, root_words))}</title>"
                     f"<rect x=\"{LEFT}\" y=\"{y}\" width=\"{BOX_WIDTH}\" height=\"{BOX_HEIGHT}\" rx=\"4\" "
                     f"fill=\"{FILL[state]}\" stroke=\"{stroke}\" stroke-width=\"{2 if state == 'root' or on_path else 1}\"/>"
                     f"<text x=\"{LEFT + 8}\" y=\"{y + 15}\" fill=\"{TEXT.get(state, '#1d2125')}\"{weight}>"
                     f"{_e(_label(node))}</text></g>")
    legend, legend_width = _legend(root_words)
    width = max(LEFT + BOX_WIDTH + widest + 16, legend_width)
    height = TOP + len(view) * ROW + 4
    return (f"<svg class=\"slice-graph\" role=\"img\" width=\"{width}\" "
            f"height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"ui-monospace, Menlo, Consolas, "
            f"monospace\" font-size=\"12\"><title>{_e(_summary(doc, whole))}</title>"
            f"<defs><marker id=\"{ident}-arrow\" viewBox=\"0 0 8 8\" refX=\"7\" refY=\"4\" markerWidth=\"7\" markerHeight=\"7\" "
            "orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\" fill=\"#8c959f\"/></marker>"
            f"<marker id=\"{ident}-arrow-path\" viewBox=\"0 0 8 8\" refX=\"7\" refY=\"4\" markerWidth=\"6\" markerHeight=\"6\" "
            "orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\" fill=\"#bc4c00\"/></marker></defs>"
            f"{legend}{''.join(arcs)}{''.join(boxes)}</svg>")


def _legend(root_words: str) -> tuple[str, int]:
    """The legend's SVG and its width."""
    short = root_words.split(" (")[0]
    items = [(short, "root"), ("changed", "changed"), ("path to the tag", "path"), ("unchanged", "context")]
    parts, x = [], LEFT
    for text, state in items:
        parts.append(f"<rect x=\"{x}\" y=\"6\" width=\"14\" height=\"14\" rx=\"3\" fill=\"{FILL[state]}\" "
                     f"stroke=\"{STROKE[state]}\"/><text x=\"{x + 19}\" y=\"17\" fill=\"#555\">{_e(text)}</text>")
        x += 19 + 7 * len(text) + 18
    for kind in ("data", "mutation", "state", "control"):
        colour, dash = EDGE[kind]
        dashes = f" stroke-dasharray=\"{dash}\"" if dash else ""
        parts.append(f"<line x1=\"{x}\" y1=\"13\" x2=\"{x + 22}\" y2=\"13\" stroke=\"{colour}\" stroke-width=\"1.5\""
                     f"{dashes}/><text x=\"{x + 26}\" y=\"17\" fill=\"#555\">{kind}</text>")
        x += 26 + 7 * len(kind) + 14
    return f"<g class=\"legend\">{''.join(parts)}</g>", x


def _summary(doc: dict[str, Any], whole: bool) -> str:
    nodes = doc.get("nodes") or []
    marked = sum(1 for node in nodes if node.get("state") != "context")
    return (f"slice of {len(nodes)} statements ({marked} marked), in the order the "
            f"{'baseline' if doc.get('side') == 'old' else 'new trial'} ran them"
            + ("" if whole or len(doc.get("shown") or ()) >= len(nodes) else ", collapsed"))


def explanation_html(explanation: dict[str, Any], number: str) -> str:
    """One story of "Why it changed" as a picture: its heading, its graph collapsed, and the
    whole graph under a <details> when it was collapsed."""
    graph = explanation.get("graph") or {}
    head = f"<h4>{_e(str(explanation.get('head', '')).capitalize())}</h4>"
    if graph.get("note") or not graph.get("nodes"):
        return f"{head}<p class=\"note\">No picture of this slice: {_e(graph.get('note') or 'it is empty')}</p>"
    nodes = graph["nodes"]
    side = "the baseline's run (the root is a step that no longer runs)" if graph.get("side") == "old" else "the new trial"
    parts = [head, f"<p class=\"note\">The statements {_e(explanation.get('tags', ['?'])[0])} depends on, in the "
                   f"order {side} ran them; hover a box for its values.</p>",
             f"<div class=\"graph\" id=\"graph-{number}\">{graph_svg(graph, ident=f'g{number}')}</div>"]
    collapsed = len(graph.get("shown") or ()) < len(nodes)
    if collapsed and graph.get("whole"):
        parts.append(f"<details class=\"whole-graph\"><summary>Show all {len(nodes)} statements</summary>"
                     f"<div class=\"graph\">{graph_svg(graph, whole=True, ident=f'g{number}w')}</div></details>")
    elif collapsed:
        parts.append(f"<p class=\"note\">The slice has {len(nodes)} statements, too many to draw whole; "
                     "the list above names every change.</p>")
    return "".join(parts)
