"""What a session leaves behind: the terminal summary, JUnit properties, JSON report, pruning."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET


def tagging(auc: float) -> str:
    return f"from pytest_nwtrials import tag\ntag('auc', {auc})\ntag('name', 'logreg')\ntag('weights', [1, 2])\n"


def test_junit_xml_carries_trial_baseline_and_scalar_tags(project):
    project.experiment("train.py", tagging(0.9))
    project.run("--nw-save-baseline=reference").assert_outcomes(passed=1)
    project.run("--nw-baseline=reference", "--junitxml=junit.xml").assert_outcomes(passed=1)
    testcase = ET.parse(project.root / "junit.xml").getroot().find(".//testcase")
    properties = {p.get("name"): p.get("value") for p in testcase.iter("property")}
    [*_, trial] = project.trials()
    assert properties["nw_trial"] == trial["name"] and properties["nw_trial_id"] == trial["id"]
    assert properties["nw_baseline"] == "baseline 'reference'"
    assert properties["nw_tag_auc"] == "0.9" and properties["nw_tag_name"] == "logreg"
    assert "nw_tag_weights" not in properties  # only scalars


def test_summary_counts_and_entries_no_experiment_used(project):
    project.experiment("a.py", tagging(0.9))
    project.experiment("b.py", tagging(0.8))
    project.experiment("gone.py", tagging(0.7))
    project.run("--nw-save-baseline=ref").assert_outcomes(passed=3)
    (project.root / "experiments" / "gone.py").unlink()
    project.experiment("b.py", tagging(0.5))
    project.experiment("c.py", tagging(0.1))
    result = project.run("--nw-baseline=ref", "--nw-json=out/session.json")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "3 run, 1 matched, 1 changed, 1 new, 0 failed, 0 skipped, 1 missing",
        "baseline entries no experiment of this session used: experiments/gone.py (run them; entries of "
        "experiments that no longer exist go when the baseline is saved again with --nw-save-baseline=ref)",
    ])
    data = json.loads((project.root / "out" / "session.json").read_text())
    assert data["schema"] == 1 and data["baseline"] == "ref"
    assert data["summary"] == {"run": 3, "matched": 1, "changed": 1, "new": 1, "failed": 0,
                               "skipped": 0, "missing": 1, "repeats": 0, "unstable": 0}
    assert data["unused_baseline_entries"] == ["experiments/gone.py"]
    by_name = {e["experiment"]: e for e in data["experiments"]}
    changed = by_name["experiments/b.py"]
    assert changed["verdict"] == "changed" and changed["tags"]["auc"] == 0.5
    assert changed["changes"] == [{"path": "auc", "kind": "changed", "old": "0.8", "new": "0.5", "detail": ""}]
    assert "To accept the new values, run: pytest --nw-save-baseline=ref" in changed["message"]
    assert by_name["experiments/c.py"]["verdict"] == "new"
    # saving prunes the entry of the experiment that no longer exists, and keeps the others
    saved = project.run("--nw-save-baseline=ref", "-k", "a.py")
    saved.stdout.fnmatch_lines(["removed entries of experiments that no longer exist: experiments/gone.py"])
    entries = sorted(p.name for p in (project.root / "nw-baselines" / "ref" / "experiments").glob("*.json"))
    assert entries == ["a.py.json", "a.py.provenance.json", "b.py.json", "b.py.provenance.json"]


def test_bad_report_options_are_usage_errors(project):
    project.experiment("a.py", tagging(0.9))
    (project.root / "somewhere").mkdir()
    result = project.run("--nw-json=somewhere")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--nw-json=somewhere is a folder; give a file name*"])
