"""The data the HTML report draws: folded why-lines, the graph of a slice, the code marks.

Properties on generated slices (with dependency edges), then the graph of real captures
gated by the plugin.
"""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FRAUD

from pytest_nwtrials.compare.explain import explain_slices
from pytest_nwtrials.compare.pictures import MAX_NODES, code_doc, fold_doc, graph_doc
from pytest_nwtrials.compare.slices import diff_slices
from pytest_nwtrials.provenance.reader import Op, Slice
from pytest_nwtrials.render.slices import Fold, folded, format_slice_diff

ops = st.builds(
    Op,
    kind=st.sampled_from(["name", "literal", "call"]),
    code=st.sampled_from(["a", "b", "f(a)", "x * y", "LR"]),
    file=st.sampled_from(["train.py", "nb.ipynb#cell3"]),
    line=st.integers(1, 60),
    value=st.sampled_from(["1", "2", "3"]),
)


@st.composite
def slices(draw, tag: str = "auc") -> Slice:
    """A slice of up to 80 operations, each depending on some earlier ones."""
    found = draw(st.lists(ops, min_size=1, max_size=80))
    edges = tuple(tuple((draw(st.integers(0, n - 1)), draw(st.sampled_from(["data", "mutation", "state", "control"])))
                        for _ in range(draw(st.integers(0, min(n, 3)))))
                  for n in range(len(found)))
    return Slice(tag, tuple(found), 1, edges=edges)


def stories(old: Slice, new: Slice):
    return explain_slices([], [diff_slices(old, new)], identical=False)[0]


@settings(max_examples=150, deadline=None)
@given(slices(), slices(), st.integers(1, 20))
def test_a_folded_report_shows_what_the_text_report_shows(old, new, limit):
    diff = diff_slices(old, new)
    whole = format_slice_diff(diff, limit=limit, fold=True)
    assert folded(whole) == format_slice_diff(diff, limit=limit)
    for n, line in enumerate(whole):
        if isinstance(line, Fold):
            assert line.hidden >= 1 and n + line.hidden < len(whole)
    doc = fold_doc(whole)
    assert doc["lines"] == [str(line) for line in whole]
    assert all(isinstance(whole[n], Fold) and whole[n].hidden == hidden for n, hidden in doc["folds"])


@settings(max_examples=150, deadline=None)
@given(slices(), slices())
def test_a_graph_shows_every_statement_once_and_keeps_what_is_marked(old, new):
    for story in stories(old, new):
        doc = graph_doc(story)
        nodes, shown = doc["nodes"], doc["shown"]
        drawn = [item for item in shown if isinstance(item, int)]
        gaps = [item["gap"] for item in shown if isinstance(item, dict)]
        assert drawn == sorted(set(drawn)) and len(drawn) + sum(gaps) == len(nodes)
        assert all(g >= 2 for g in gaps)  # a single statement is drawn, not replaced by a gap of one
        assert not any(isinstance(a, dict) and isinstance(b, dict) for a, b in zip(shown, shown[1:]))
        walked = old if doc["side"] == "old" else new
        assert len(nodes) == len({(op.file, op.line) for op in walked.ops})
        marked = [n for n, node in enumerate(nodes) if node["state"] != "context" or node["tag"]]
        if len(marked) <= MAX_NODES:
            assert set(marked) <= set(drawn)  # collapsing never hides a root, a change, the path or the tag
        assert sum(node["tag"] for node in nodes) == 1
        for edge in doc["edges"]:
            assert 0 <= edge["from"] < len(nodes) and 0 <= edge["to"] < len(nodes) and edge["from"] != edge["to"]
        explanation = story.explanation
        if explanation.change is not None and explanation.path:
            assert any(node["state"] == "root" for node in nodes)


def test_a_slice_without_edges_says_why_it_has_no_picture():
    old = Slice("auc", (Op("literal", "1", "t.py", 1, "1"),), 1)
    new = Slice("auc", (Op("literal", "2", "t.py", 1, "2"),), 1)
    (story,) = stories(old, new)
    doc = graph_doc(story)
    assert doc["nodes"] == [] and "no dependency edges" in doc["note"]


def test_code_marks_the_root_line_on_each_side_and_the_changed_lines():
    old = Slice("auc", (Op("literal", "0.1", "t.py", 1, "0.1"), Op("name", "LR", "t.py", 1, "0.1"),
                        Op("name", "auc", "t.py", 3, "0.1")), 1, edges=((), ((0, "data"),), ((1, "data"),)))
    new = Slice("auc", (Op("literal", "0.5", "t.py", 2, "0.5"), Op("name", "LR", "t.py", 2, "0.5"),
                        Op("name", "auc", "t.py", 4, "0.5")), 1, edges=((), ((0, "data"),), ((1, "data"),)))
    sources = ({"t.py": "LR = 0.1\n\nauc = LR\n"}, {"t.py": "# tuned\nLR = 0.5\n\nauc = LR\n"})
    found = stories(old, new)
    doc = code_doc(sources, found)
    (file,) = doc["files"]
    assert file["old_marks"] == {"1": "root", "3": "changed"}
    assert file["new_marks"] == {"2": "root", "4": "changed"}
    assert "note" not in doc
    graph = graph_doc(found[0], sources)
    assert [node.get("text") for node in graph["nodes"]] == ["LR = 0.5", "auc = LR"]
    assert graph["nodes"][0]["state"] == "root" and (graph["nodes"][0]["old"], graph["nodes"][0]["new"]) == ("0.1", "0.5")
    assert code_doc(({}, sources[1]), found)["note"].startswith("the baseline did not record its code")




@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_the_report_data_of_a_changed_hyperparameter(project, workers):
    project.experiment("fraud.py", FRAUD.format(rate=0.1))
    project.run("--nw-save-baseline=ref").assert_outcomes(passed=1)
    project.experiment("fraud.py", FRAUD.format(rate=0.5))
    project.run("--nw-baseline=ref", "--nw-json=report.json", *workers).assert_outcomes(failed=1)
    (experiment,) = json.loads((project.root / "report.json").read_text())["experiments"]
    (story,) = experiment["explanations"]
    assert story["tags"] == ["weights"] and story["verdict"] == "cause"
    graph = story["graph"]
    roots = [node for node in graph["nodes"] if node["state"] == "root"]
    assert [(node["file"], node["line"]) for node in roots] == [("fraud.py", 4)]
    assert (roots[0]["old"], roots[0]["new"]) == ("0.1", "0.5")
    lines = {node["line"]: node for node in graph["nodes"]}
    assert lines[5]["state"] == "context" and lines[13]["state"] == "changed" and lines[15]["tag"]
    assert any(edge["path"] for edge in graph["edges"])
    folds = experiment["why_folded"]
    assert folded_text(folds) == experiment["why"]  # the text report's lines, and what they leave out
    assert folds["folds"] and len(folds["lines"]) > len(experiment["why"])


def folded_text(doc):
    hidden = {n: count for n, count in doc["folds"]}
    lines, n = [], 0
    while n < len(doc["lines"]):
        lines.append(doc["lines"][n])
        n += 1 + hidden.get(n, 0)
    return lines


def test_a_long_slice_is_collapsed_around_its_root_and_path(project):
    chain = "\n".join(f"b{i} = b{i - 1} + 1" for i in range(1, 45))
    code = "from pytest_nwtrials import tag\nSEED = {seed}\nb0 = 1\n" + chain + "\ntag('total', SEED + b44)\n"
    project.experiment("long.py", code.format(seed=1))
    project.run("--nw-save-baseline=ref").assert_outcomes(passed=1)
    project.experiment("long.py", code.format(seed=2))
    project.run("--nw-baseline=ref", "--nw-json=report.json").assert_outcomes(failed=1)
    (experiment,) = json.loads((project.root / "report.json").read_text())["experiments"]
    graph = experiment["explanations"][0]["graph"]
    assert len(graph["nodes"]) > MAX_NODES and graph["whole"]
    shown = graph["shown"]
    gaps = [item["gap"] for item in shown if isinstance(item, dict)]
    assert gaps and sum(gaps) + sum(isinstance(item, int) for item in shown) == len(graph["nodes"])
    drawn = {graph["nodes"][n]["line"]: graph["nodes"][n]["state"] for n in shown if isinstance(n, int)}
    assert drawn[2] == "root" and max(drawn) == 48  # the root and the tag are drawn; the unchanged chain folded


def test_runs_that_diverged_are_drawn_where_they_diverged(project):
    project.experiment("noisy.py", "import numpy as np\nfrom pytest_nwtrials import tag\n"
                                   "rng = np.random.default_rng()\nscale = 2.0\n"
                                   "noise = rng.normal(size=3) * scale\ntag('noise', noise)\n")
    project.run("--nw-repeat=2", "--nw-json=report.json")
    experiments = json.loads((project.root / "report.json").read_text())["experiments"]
    first = next(e for e in experiments if e["verdict"] == "unstable")
    assert first["why_title"] == "Where the runs diverged"
    (story,) = first["explanations"]
    assert story["verdict"] == "varies"
    roots = [node for node in story["graph"]["nodes"] if node["state"] == "root"]
    assert [node["line"] for node in roots] == [5] and story["graph"]["root"] == "varies between identical runs"
    assert [node["line"] for node in story["graph"]["nodes"] if node["state"] == "context"] == [3, 4]


def test_an_unseeded_model_is_drawn_at_its_fit_where_the_text_names_it(project):
    project.experiment("forest.py", "import numpy as np\nfrom sklearn.ensemble import RandomForestClassifier\n"
                                    "from pytest_nwtrials import tag\n\nX = np.arange(40.0).reshape(20, 2)\n"
                                    "y = np.arange(20) % 2\nrf = RandomForestClassifier(n_estimators=3)\n"
                                    "rf.fit(X, y)\ntag('proba', rf.predict_proba(X))\n")
    project.run("--nw-repeat=2", "--nw-json=report.json")
    experiments = json.loads((project.root / "report.json").read_text())["experiments"]
    first = next(e for e in experiments if e.get("explanations"))
    assert any("varies between identical runs: forest.py:8  rf.fit(X, y)" in line for line in first["why_folded"]["lines"])
    (story,) = first["explanations"]
    states = {node["line"]: node["state"] for node in story["graph"]["nodes"]}
    assert states[8] == "root" and states[9] == "changed"  # the fit that drew; the prediction that differed first
    (code,) = first["code"]["files"]
    assert code["new_marks"] == {"8": "root", "9": "changed"}
