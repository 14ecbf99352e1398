"""The session report renderers: strict JSON and one self-contained HTML file."""
from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_nwtrials.render.html import report_html, report_json
from pytest_nwtrials.store.trial_store import TrialStore

VERDICTS = ["matched", "changed", "new", "missing", "failed", "timeout", "error", "skipped", "recorded"]


def experiment(verdict: str, **overrides: Any) -> dict[str, Any]:
    entry = {
        "experiment": "experiments/train.py", "argv": [], "trial": "trial6", "trial_id": "0000-trial6",
        "verdict": verdict, "against": "baseline 'reference' (recorded in trial2)", "message": None,
        "changes": [], "why": [], "tags": {"auc": 0.88, "model": "'logreg'", "weights": "ndarray(shape=(50,), ...)"},
    }
    entry.update(overrides)
    return entry


def make_report(experiments: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schema": 1, "created": "2026-05-01T12:00:00+00:00", "rootdir": "/home/me/project",
        "baseline": "reference",
        "summary": {"run": len(experiments), "matched": 1, "changed": 1, "new": 1, "missing": 1,
                    "failed": 3, "skipped": 1},
        "unused_baseline_entries": ["experiments/old.py"],
        "experiments": experiments,
    }


def every_verdict() -> dict[str, Any]:
    experiments = [experiment(v) for v in VERDICTS]
    experiments[1].update(
        message="experiments/train.py: 1 tagged value differs <from> baseline 'reference'",
        changes=[{"path": "auc", "kind": "changed", "old": "0.9", "new": "0.88", "detail": ""},
                 {"path": "weights", "kind": "changed", "old": "ndarray(...)", "new": "ndarray(...)",
                  "detail": "Shape: (50,)\nNumber of differences: 49 / 50 (98%)"}],
        why=["  input file run.txt changed (sha1 1a2b -> 3c4d)", "  first divergence: train.py:4  run = 0 -> 2"])
    experiments[4].update(message="experiments/train.py raised ValueError: <script>alert(1)</script>")
    experiments[2].update(experiment="experiments/prep.py", tags={"rows": 102, "auc": 0.5})
    return make_report(experiments)


def test_report_json_is_strict_json_with_non_finite_floats_as_strings():
    report = every_verdict()
    report["experiments"][0]["tags"].update(loss=math.nan, best=-math.inf)
    text = report_json(report)
    doc = json.loads(text, parse_constant=lambda word: pytest.fail(f"non-standard JSON constant {word}"))
    assert doc["experiments"][0]["tags"]["loss"] == "nan" and doc["experiments"][0]["tags"]["best"] == "-inf"
    assert doc["summary"] == report["summary"] and [e["verdict"] for e in doc["experiments"]] == VERDICTS
    assert text.endswith("\n")
    with pytest.raises(ValueError, match="not a pytest-nwtrials report of schema 1"):
        report_json({"schema": 2})


def test_html_has_every_verdict_the_summary_and_plots(nw_project):
    page = report_html(every_verdict(), TrialStore(nw_project / ".nwtrials"))
    assert page.startswith("<!DOCTYPE html>")
    for verdict in VERDICTS:
        assert f'class="experiment verdict-{verdict}"' in page
        assert f'<span class="verdict">{verdict}</span>' in page
    for key, count in [("run", 9), ("matched", 1), ("failed", 3)]:
        assert f'<li class="count-{key}">{key} <b>{count}</b></li>' in page
    assert "compared with baseline <b>reference</b>" in page
    assert "<code>experiments/old.py</code>" in page
    assert "<td><code>weights</code></td><td>changed</td>" in page
    assert "<pre>Shape: (50,)\nNumber of differences: 49 / 50 (98%)</pre>" in page
    assert re.search(r'<pre class="why" id="why-\d+">  input file run.txt changed \(sha1 1a2b -&gt; 3c4d\)\n', page)
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)">', page)
    assert images
    assert all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for data, _ in images)
    # numeric tags only: auc of train (every section), rows and auc of prep; never model or weights
    assert {alt for _, alt in images} == {"auc across 3 stored trials", "rows across 3 stored trials"}


def test_html_is_self_contained_and_escaped(nw_project):
    report = every_verdict()
    report["experiments"][0].update(experiment='a<b>&"c.py', tags={"<i>x</i>": "<img src=x onerror=alert(1)>"})
    page = report_html(report, TrialStore(nw_project / ".nwtrials"))
    assert "<script" not in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a&lt;b&gt;&amp;&quot;c.py" in page and "&lt;i&gt;x&lt;/i&gt;" in page
    assert "&lt;from&gt;" in page
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert sources and all(src.startswith("data:image/png;base64,") for src in sources)


def test_html_without_a_store_has_no_plots():
    page = report_html(every_verdict(), None)
    assert "<img" not in page and "History" not in page
    assert page.count('class="experiment verdict-') == len(VERDICTS) + 1  # and the unused entries


def test_a_tag_the_store_lacks_gets_a_note_not_an_error(nw_project):
    report = make_report([experiment("recorded", experiment="experiments/gone.py", tags={"auc": 0.1})])
    page = report_html(report, TrialStore(nw_project / ".nwtrials"))
    assert "No plot of auc: no stored trial of this experiment has it" in page
    assert report_html(report, TrialStore(Path(nw_project / "missing"))).count("<img") == 0


def test_report_html_refuses_other_schemas():
    with pytest.raises(ValueError, match="schema 1"):
        report_html({"experiments": []}, None)
