"""The pictures of the HTML report as markup: folded lists, the slice's SVG, the code side by side.

The browser tests (test_html_browser.py) check how a real Chromium shows them.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser

from pytest_nwtrials.render.code import code_html
from pytest_nwtrials.render.graph import graph_svg
from pytest_nwtrials.render.html import report_html, why_html


class Elements(HTMLParser):
    """The start tags of a page, with their attributes, and whether it nests properly."""

    VOID = {"meta", "br", "img", "input", "link"}

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.open: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()

    def having(self, tag: str, cls: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag and cls in (attrs.get("class") or "").split()]


def test_folded_lines_open_under_their_summary():
    doc = {"lines": ["  in the provenance of auc:", "    root cause: t.py:1  LR = 0.1 -> 0.5",
                     "    ... and 3 more", "    ~ a", "    ~ <b>", "    ~ c", "  input file data.csv changed"],
           "folds": [[2, 3]]}
    page = why_html(doc, "why-1")
    parsed = Elements(page)
    assert not parsed.open
    more = re.search(r'<details class="more"><summary>(.*?)</summary>(.*?)</details>', page)
    assert more and more.group(1) == "    ... and 3 more"
    assert more.group(2) == "<div>    ~ a</div><div>    ~ &lt;b&gt;</div><div>    ~ c</div>"
    assert page.endswith("<div>  input file data.csv changed</div></div>")  # after the fold, not in it
    assert "<details" not in why_html({"lines": ["a", "b"], "folds": [[0, "x"], "bad"]}, "w")  # damaged folds are ignored


GRAPH = {"side": "new", "root": "root cause", "whole": True,
         "nodes": [{"file": "t.py", "line": 1, "code": "0.5", "text": "LR = 0.5", "state": "root", "ops": 2,
                    "tag": False, "old": "0.1", "new": "0.5"},
                   *({"file": "t.py", "line": n, "code": f"b{n}", "state": "context", "ops": 1, "tag": False}
                     for n in range(2, 9)),
                   {"file": "nb.ipynb#cell4", "line": 2, "code": "auc <script>", "state": "changed", "ops": 1,
                    "tag": True}],
         "edges": [{"from": 0, "to": 8, "kinds": ["data"], "path": True},
                   {"from": 1, "to": 2, "kinds": ["mutation", "data"], "path": False}],
         "shown": [0, 1, {"gap": 6}, 8]}


def test_the_svg_draws_the_collapsed_view_and_the_whole_one():
    svg = graph_svg(GRAPH, ident="x")
    parsed = Elements(svg)
    nodes = parsed.having("g", "node")
    assert [n["data-where"] for n in nodes] == ["t.py:1", "t.py:2", "nb.ipynb, cell 4, line 2"]
    assert [n["data-state"] for n in nodes] == ["root", "context", "changed"]
    assert "t.py:1  LR = 0.5   [0.1 -&gt; 0.5]" in svg and "auc &lt;script&gt;" in svg and "<script" not in svg
    assert len(parsed.having("g", "gap")) == 1 and "... 6 unchanged statements" in svg
    edges = parsed.having("path", "edge")
    assert [(e["data-from"], e["data-to"]) for e in edges] == [("0", "8")]  # 1 -> 2: node 2 is in the gap
    assert "path" in edges[0]["class"].split() and edges[0]["marker-end"] == "url(#x-arrow-path)"
    whole = Elements(graph_svg(GRAPH, whole=True, ident="y"))
    assert len(whole.having("g", "node")) == 9 and not whole.having("g", "gap")
    assert [e["class"] for e in whole.having("path", "edge")] == ["edge data path", "edge mutation data"]


def test_the_code_is_aligned_side_by_side_with_marks_and_folds():
    old = "\n".join(["import x", "LR = 0.1", *(f"a{n} = {n}" for n in range(20)), "tag('auc', LR)"])
    new = "\n".join(["import x", "LR = 0.5", *(f"a{n} = {n}" for n in range(20)), "tag('auc', LR)"])
    page = code_html({"files": [{"file": "t.py", "old": old, "new": new, "old_marks": {"2": "root"},
                                 "new_marks": {"2": "root", "23": "changed"}}]})
    parsed = Elements(page)
    assert not parsed.open
    rows = re.findall(r'<div class="code-row">(.*?)</div>', page)
    assert len(rows) == 23
    assert ('<span class="ln">2</span><span class="src chg root">LR = 0.1</span>'
            '<span class="ln">2</span><span class="src chg root">LR = 0.5</span>') in rows
    assert '<span class="src diverge">tag(&#x27;auc&#x27;, LR)</span>' in page
    fold = re.search(r'<details class="fold"><summary>\.\.\. (\d+) unchanged lines</summary>', page)
    assert fold and int(fold.group(1)) == 23 - 5 - 4  # lines 1-5 (around line 2) and 20-23 (around 23) stay


def test_a_notebook_shows_marked_cells_and_folds_the_others():
    files = [{"file": f"nb.ipynb#cell{n}", "old": f"x{n} = 1", "new": f"x{n} = 1", "old_marks": {},
              "new_marks": {"1": "changed"} if n == 3 else {}} for n in (1, 3, 5)]
    page = code_html({"files": files, "note": "the baseline did not record <its> code"})
    assert "the baseline did not record &lt;its&gt; code" in page
    same = re.search(r'<details class="same-code"><summary>(.*?)</summary>', page)
    assert same and same.group(1) == "2 more with nothing marked: nb.ipynb, cell 1, nb.ipynb, cell 5"
    assert page.index("nb.ipynb, cell 3: baseline") < page.index("same-code")
    assert code_html(None) == "" and code_html({"files": []}) == ""


def test_the_full_report_links_its_cut_short_lists_to_where_they_open():
    report = {"schema": 1, "experiments": [{
        "experiment": "t.py", "verdict": "changed", "trial": "trial2",
        "changes": [{"path": "auc", "kind": "changed", "old": "1", "new": "2", "detail": ""}],
        "why": ["  in the provenance of auc:", "  ... and 4 more"],
        "why_folded": {"lines": ["  in the provenance of auc:", "  ... and 4 more", "a", "b", "c", "d"],
                       "folds": [[1, 4]]},
        "explanations": [{"tags": ["auc"], "head": "in the provenance of auc", "graph": GRAPH}],
        "message": "t.py: 1 tagged value differs\n  ... and 3 more changes\nWhy it changed:\n    ... and 4 more\n"}]}
    page = report_html(report, None)
    Elements(page)  # nests properly
    assert '  <a href="#changes-1">... and 3 more changes</a>' in page
    assert '    <a href="#why-1">... and 4 more</a>' in page
    assert 'id="changes-1"' in page and 'id="why-1"' in page
    assert page.count('class="node ') == 3 + 9  # collapsed, and whole under "Show all"
    assert "<summary>Show all 9 statements</summary>" in page


def test_code_one_trial_did_not_record_is_shown_plain_beside_a_placeholder():
    page = code_html({"files": [{"file": "t.py", "old": None, "new": "a = 1\nb = 2", "old_marks": {},
                                 "new_marks": {"2": "root"}}]})
    assert "(not recorded)" in page
    assert re.findall(r'class="(src[^"]*)"', page) == ["src empty", "src", "src empty", "src", "src empty", "src root"]
    assert '<span class="ln">2</span><span class="src root">b = 2</span>' in page
    assert '<span class="ln">1</span><span class="src">a = 1</span>' in page


def test_cells_one_trial_did_not_record_are_folded_unless_marked():
    files = [{"file": f"nb.ipynb#cell{n}", "old": None, "new": f"x{n} = 1", "old_marks": {},
              "new_marks": {"1": "root"} if n == 3 else {}} for n in (1, 3, 5)]
    page = code_html({"files": files, "note": "the baseline did not record its code"})
    shown, _, folded = page.partition('<details class="same-code">')
    assert 'data-file="nb.ipynb#cell3"' in shown and 'data-file="nb.ipynb#cell1"' not in shown
    assert 'data-file="nb.ipynb#cell1"' in folded and 'data-file="nb.ipynb#cell5"' in folded
