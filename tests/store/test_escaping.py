"""Names and strings from the store and baselines never reach the terminal or JUnit XML raw.

Anyone who can commit can write a baseline entry or a trial record, and an experiment can tag
any name: ANSI escape sequences in them must not drive the terminal, and a NUL in a tag name
must not make the ``--junitxml`` file unreadable.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest

from pytest_nwtrials.printable import printable

# what a terminal acts on: C0 controls but tab and newline, DEL, C1 (CSI is \x9b), bidi overrides
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
CLEAR = "\x1b[2J"
LINK = "\x1b]8;;https://example.invalid\x07click\x1b]8;;\x07"

HOSTILE = f"""
import os
from pytest_nwtrials import tag

run = int(open("run.txt").read()) if os.path.exists("run.txt") else 0
tag({"auc" + CLEAR!r}, 0.5 + run)
tag("nul\\x00name", "a\\x00b\\x9b31m")
tag("message", {LINK!r} + str(run))
tag("rtl\\u202eevil", [1, 2, run])
tag("half\\ud800", "\\udfff")  # lone surrogates: UTF-8 cannot encode them
"""


def assert_clean(text: str, where: str) -> None:
    found = CONTROLS.findall(text)
    assert not found, f"{where} holds control characters {found!r}"


def assert_run_clean(result: pytest.RunResult) -> None:
    assert_clean(result.stdout.str(), "pytest's stdout")
    assert_clean(result.stderr.str(), "pytest's stderr")


def junit_properties(path) -> dict[str, str]:
    tree = ElementTree.parse(path)  # raises when the file is not well-formed XML
    return {p.get("name"): p.get("value") for p in tree.iter("property")}


def nwtrials(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_nwtrials.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def saved(project):
    project.experiment("hostile.py", HOSTILE)
    result = project.run("--nw-save-baseline=base", "--junitxml=saved.xml")
    result.assert_outcomes(passed=1)
    assert_run_clean(result)
    return project


def test_printable_shows_controls_and_keeps_lines():
    assert printable(f"a{CLEAR}\x00\r\x9b\ud800\u202e\tb\nc é") == "a\\x1b[2J\\x00\\x0d\\x9b\\ud800\\u202e\tb\nc é"


def test_hostile_tag_names_and_values_recorded_by_an_experiment(saved):
    properties = junit_properties(saved.root / "saved.xml")
    assert properties["nw_tag_nul\\x00name"] == "a\\x00b\\x9b31m"
    assert properties[f"nw_tag_auc{printable(CLEAR)}"] == "0.5"
    (saved.root / "experiments" / "run.txt").write_text("1")
    result = saved.run("--nw-baseline=base", "--junitxml=gate.xml", "--nw-report=report.html",
                       "--nw-json=report.json", "-rA")
    result.assert_outcomes(failed=1)
    assert_run_clean(result)
    out = result.stdout.str()
    assert "auc\\x1b[2J: changed: 0.5 -> 1.5" in out  # shown visibly, not acted on
    assert "rtl\\u202eevil[2]: changed: 0 -> 1" in out
    properties = junit_properties(saved.root / "gate.xml")
    assert properties["nw_tag_message"] == printable(LINK + "1")
    html = (saved.root / "report.html").read_text(encoding="utf-8")
    assert_clean(html, "the HTML report")
    assert "auc\\x1b[2J" in html
    report = json.loads((saved.root / "report.json").read_text(encoding="utf-8"))
    assert report["experiments"][0]["tags"]["message"] == LINK + "1"  # data keeps the exact value
    assert report["experiments"][0]["tags"]["half\ud800"] == "\udfff"
    assert_clean((saved.root / "report.json").read_text(encoding="utf-8"), "the JSON report")
    # under pytest-xdist the report is built on a worker and the summary on the controller
    workers = saved.run("-n", "2", "--nw-baseline=base", "--junitxml=workers.xml")
    workers.assert_outcomes(failed=1)
    assert_run_clean(workers)
    assert "auc\\x1b[2J: changed: 0.5 -> 1.5" in workers.stdout.str()
    assert junit_properties(saved.root / "workers.xml")["nw_tag_nul\\x00name"] == "a\\x00b\\x9b31m"


def plant_entry(project) -> None:
    """A committed baseline entry with hostile names and strings, and an entry nothing uses."""
    folder = project.root / "nw-baselines" / "base" / "experiments"
    entry = json.loads((folder / "hostile.py.json").read_text())
    entry["trial"] = f"trial1{CLEAR}"
    entry["tags"][f"gone{LINK}"] = {"value": f"old{CLEAR}", "count": 1}
    entry["tags"]["message"] = {"value": f"{CLEAR}\x00\x07", "count": 1}
    (folder / "hostile.py.json").write_text(json.dumps(entry))
    unused = dict(entry, experiment=f"experiments/gone{CLEAR}.py")
    (folder / f"gone{CLEAR}.py.json").write_text(json.dumps(unused))


def plant_trial(project, number: int) -> str:
    """A trial record in the store with hostile names, arguments, messages and tags."""
    trials = project.root / ".nwtrials" / "trials"
    record = json.loads((trials / "trial1.json").read_text())
    record.update(name=f"trial{number}", id="0123abcd-0000-4000-8000-00000000c1ea",
                  experiment=f"experiments/evil{CLEAR}.py", argv=[LINK, "\x00"], status="failed",
                  error={"type": f"Error{CLEAR}", "message": f"boom{LINK}"}, provenance="")
    record["tags"][f"secret{CLEAR}"] = {"value": f"{LINK}\x1b[31m", "count": 1}
    (trials / f"trial{number}.json").write_text(json.dumps(record))
    return record["id"]


def test_hostile_names_and_strings_planted_in_a_baseline_and_the_store(saved):
    plant_entry(saved)
    plant_trial(saved, 50)
    (saved.root / "experiments" / "run.txt").write_text("1")
    gate = saved.run("--nw-baseline=base", "--junitxml=gate.xml", "--nw-report=report.html")
    gate.assert_outcomes(failed=1)
    assert_run_clean(gate)
    out = gate.stdout.str()
    assert "gone\\x1b]8;;https://example.invalid\\x07click\\x1b]8;;\\x07: missing in the new trial" in out
    assert "(recorded in trial1\\x1b[2J)" in out
    assert "baseline entries no experiment of this session used: experiments/gone\\x1b[2J.py" in out
    junit_properties(saved.root / "gate.xml")
    assert_clean((saved.root / "report.html").read_text(encoding="utf-8"), "the HTML report")

    other = saved.run("--nw-baseline=trial50", "-rs")  # a trial of another experiment: skipped, saying which
    other.assert_outcomes(skipped=1)
    assert_run_clean(other)
    assert "evil\\x1b[2J.py" in other.stdout.str()
    saved.pytester.makepyfile(test_gate_from_a_test="""
        def test_matches(nw_trial):
            nw_trial.assert_matches(nw_trial.run("experiments/hostile.py"), "base")
    """)
    fixture = saved.run("test_gate_from_a_test.py")
    fixture.assert_outcomes(failed=1)
    assert_run_clean(fixture)
    assert "auc\\x1b[2J: changed: 0.5 -> 1.5" in fixture.stdout.str()
    unknown = saved.run("--nw-baseline=nothing-like-it")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR
    assert_run_clean(unknown)

    for command in (["list"], ["show", "trial50"], ["diff", "trial1", "trial50"], ["values", f"secret{CLEAR}"],
                    ["values", f"secret{CLEAR}", "--csv"], ["baseline", "show", "base"], ["show", "nope"]):
        done = nwtrials(*command, cwd=saved.root)
        assert done.returncode in (0, 1, 2), done.stderr
        assert_clean(done.stdout, f"stdout of nwtrials {command}")
        assert_clean(done.stderr, f"stderr of nwtrials {command}")
    shown = nwtrials("show", "trial50", cwd=saved.root).stdout
    assert "experiments/evil\\x1b[2J.py" in shown and "boom\\x1b]8;;" in shown
