"""--nw-repeat=N: each experiment run N times in the session, the runs compared with each other.

Real captures in a pytest subprocess; the spread itself is tested on values in test_spread.py.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from pytest_nwtrials.settings import REPEAT, option

DETERMINISTIC = """
from pytest_nwtrials import tag
total = sum(i * i for i in range(100))
tag("total", total)
tag("mean", total / 100)
"""

UNSEEDED = """
import numpy as np
from pytest_nwtrials import tag
rng = np.random.default_rng()
draws = rng.random(4)
tag("mean", float(draws.mean()))
"""

# a value that varies by up to a hundred-thousandth of itself: beyond the default rtol of 1e-7
JITTER = """
import numpy as np
from pytest_nwtrials import tag
rng = np.random.default_rng()
tag("loss", 1.0 + float(rng.random()) * 1e-5)
"""

# the order of a set of 16 strings follows the str hash seed
SET_ORDER = """
from pytest_nwtrials import tag
names = {"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10", "n11", "n12", "n13", "n14", "n15"}
tag("order", ",".join(names))
"""


def summary_part(result: pytest.RunResult) -> str:
    """The output before pytest's short summary, which under CI repeats the failure messages."""
    return result.stdout.str().split("short test summary info")[0]


def test_a_deterministic_experiment_is_stable_across_three_runs(project):
    project.experiment("train.py", DETERMINISTIC)
    result = project.run("--nw-repeat=3", "--junitxml=junit.xml")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*note: experiments/train.py: stable across 3 runs",
                                 "3 run, 0 matched, * 0 missing, 0 unstable (2 runs were repeats)"])
    first, *repeats = project.trials()
    assert len(repeats) == 2 and all("stability" not in trial for trial in repeats)
    assert first["stability"] == {"runs": 3, "trials": ["trial1", "trial2", "trial3"], "stable": True,
                                  "covered": True, "spread": {}, "diverged": [], "proposal": []}
    testcase = ET.parse(project.root / "junit.xml").getroot().find(".//testcase")
    properties = {p.get("name"): p.get("value") for p in testcase.iter("property")}
    assert properties["nw_stable"] == "true" and properties["nw_runs"] == "3"
    assert properties["nw_trial"] == "trial1"


def test_an_unseeded_generator_is_not_reproducible(project):
    project.experiment("draw.py", UNSEEDED)
    result = project.run("--nw-repeat=3", "--nw-json=report.json", "--junitxml=junit.xml")
    result.assert_outcomes(failed=1)
    text = summary_part(result)
    assert "experiments/draw.py is not reproducible: 3 runs gave different values (trial1, trial2, trial3)" in text
    result.stdout.fnmatch_lines([
        "Unstable tags (min, max and spread across the runs):",
        "  mean: min *, max *, relative spread *, largest deviation from the first run *",
        "Where the runs diverged (trial* against trial1):",
        "*varies between identical runs: draw.py:5  `rng.random(4)`*",
        "Tolerance that would have covered the spread of these runs:",
        "  ini:     nw_tolerances =",
        "               mean: rtol=*",
        "  marker:  @pytest.mark.nw(rtol=*)  (every tag of the experiment)",
        "Seed to set:",
        "  *np.random.default_rng(0)*",
    ])
    assert "Why it changed" not in text
    first = project.trials()[0]
    stability = first["stability"]
    assert stability["stable"] is False and stability["covered"] is False and stability["runs"] == 3
    spread = stability["spread"]["mean"]
    means = [trial["tags"]["mean"]["value"] for trial in project.trials()]
    assert spread["low"] == min(means) and spread["high"] == max(means)
    assert spread["deviation"] == pytest.approx(max(abs(m - means[0]) for m in means))
    report = json.loads((project.root / "report.json").read_text())
    assert report["summary"]["unstable"] == 1 and report["summary"]["repeats"] == 2
    [entry] = [e for e in report["experiments"] if e["verdict"] == "unstable"]
    assert entry["stability"] == stability and entry["message"].startswith("experiments/draw.py is not reproducible")
    testcase = ET.parse(project.root / "junit.xml").getroot().find(".//testcase")
    properties = {p.get("name"): p.get("value") for p in testcase.iter("property")}
    assert properties["nw_stable"] == "false" and properties["nw_runs"] == "3"


def test_the_proposed_tolerance_covers_the_spread(project):
    """The ini line the report proposes lets every run match the first under the diff engine."""
    from pytest_nwtrials.compare.engine import Rules, diff_tags, parse_tolerance_lines

    project.experiment("draw.py", UNSEEDED)
    failed = project.run("--nw-repeat=3")
    failed.assert_outcomes(failed=1)
    report = failed.stdout.str().split("short test summary info")[0]  # CI=true repeats it there
    [line] = [line.strip() for line in report.splitlines() if line.strip().startswith("mean: rtol=")]
    runs = [{"mean": trial["tags"]["mean"]["value"]} for trial in project.trials()]
    assert diff_tags(runs[0], runs[1]) or diff_tags(runs[0], runs[2])  # they did differ
    rules = Rules(patterns=parse_tolerance_lines([line]))
    assert not any(diff_tags(runs[0], run, rules) for run in runs[1:])


def test_a_spread_within_tolerance_passes_with_a_note(project):
    project.experiment("fit.py", JITTER)
    project.ini("nw_tolerances =\n    loss: rtol=1e-3\n")
    result = project.run("--nw-repeat=3", "--nw-report=report.html")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*note: experiments/fit.py: varied across 3 runs within tolerance (loss)"])
    stability = project.trials()[0]["stability"]
    assert stability["covered"] is True and stability["stable"] is False
    assert 0 < stability["spread"]["loss"]["relative"] < 1e-3
    html = (project.root / "report.html").read_text()
    assert "varied across 3 runs, within tolerance" in html and "<table class=\"spread\">" in html
    assert html.count("<section id=\"experiment-") == 1  # the repeats are shown as their first run


def test_the_same_spread_fails_without_the_tolerance(project):
    project.experiment("fit.py", JITTER)
    result = project.run("--nw-repeat=2")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*experiments/fit.py is not reproducible: 2 runs gave different values*",
                                 "               loss: rtol=*"])


def test_ini_nw_repeat_runs_each_experiment_that_often(project):
    project.experiment("train.py", DETERMINISTIC)
    project.ini(f"{REPEAT} = 2\n")
    project.run().assert_outcomes(passed=1)
    assert [trial["experiment"] for trial in project.trials()] == ["experiments/train.py"] * 2
    project.run(f"{option(REPEAT)}=1").assert_outcomes(passed=1)  # the command line wins
    assert len(project.trials()) == 3


def test_the_marker_and_the_fixture_repeat(project):
    project.experiment("train.py", DETERMINISTIC)
    project.ini(experiments="nothing/*.py")
    project.pytester.makepyfile(test_runs="""
        import pytest

        @pytest.mark.nw(repeat=3)
        def test_marked(nw_trial):
            trial = nw_trial.run("experiments/train.py")
            assert trial.stability["runs"] == 3 and trial.stability["stable"]
            assert trial.stability["trials"][0] == trial.name

        def test_argument(nw_trial):
            trial = nw_trial.run("experiments/train.py", repeat=2)
            assert trial.stability["runs"] == 2

        def test_unstable(nw_trial):
            nw_trial.run("experiments/draw.py", repeat=2)

        def test_unchecked(nw_trial):
            trial = nw_trial.run("experiments/draw.py", repeat=2, check=False)
            assert trial.stability["covered"] is False and "mean" in trial.stability["spread"]
    """)
    project.experiment("draw.py", UNSEEDED)
    result = project.run()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*experiments/draw.py is not reproducible: 2 runs gave different values*"])
    assert len(project.trials()) == 3 + 2 + 2 + 2


@pytest.mark.parametrize("args, ini, message", [
    (["--nw-repeat=0"], "", "--nw-repeat='0' must be 1 (run each experiment once) or more"),
    (["--nw-repeat=three"], "", "--nw-repeat='three' is not a whole number of runs"),
    (["--nw-repeat=2.5"], "", "--nw-repeat='2.5' is not a whole number of runs"),
    (["--nw-repeat="], "", "--nw-repeat was given an empty value"),
    ([], "nw_repeat = -1", "ini nw_repeat='-1' must be 1 (run each experiment once) or more"),
])
def test_a_bad_repeat_count_is_a_usage_error(project, args, ini, message):
    project.experiment("train.py", DETERMINISTIC)
    project.ini(ini)
    result = project.run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
    assert not (project.root / ".nwtrials" / "trials").exists()


def test_a_bad_repeat_in_the_marker_or_the_fixture_fails_the_test(project):
    project.experiment("train.py", DETERMINISTIC)
    project.ini(experiments="nothing/*.py")
    project.pytester.makepyfile(test_runs="""
        import pytest

        @pytest.mark.nw(repeat=0)
        def test_zero(nw_trial):
            nw_trial.run("experiments/train.py")

        @pytest.mark.nw(repeat=True)
        def test_bool(nw_trial):
            nw_trial.run("experiments/train.py")

        def test_float(nw_trial):
            nw_trial.run("experiments/train.py", repeat=1.5)
    """)
    result = project.run()
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines([
        "*test_zero: @pytest.mark.nw repeat=0 must be 1 (run each experiment once) or more",
        "*test_bool: @pytest.mark.nw repeat=True is not a whole number of runs",
        "*nw_trial.run repeat=1.5 is not a whole number of runs",
    ])
    assert not (project.root / ".nwtrials" / "trials").exists()


def test_repeat_one_is_a_single_run(project):
    project.experiment("train.py", DETERMINISTIC)
    result = project.run("--nw-repeat=1", "--junitxml=junit.xml")
    result.assert_outcomes(passed=1)
    [trial] = project.trials()
    assert "stability" not in trial
    result.stdout.fnmatch_lines(["1 run, 0 matched, 0 changed, 0 new, 0 failed, 0 skipped, 0 missing"])
    assert "stable across" not in result.stdout.str()
    testcase = ET.parse(project.root / "junit.xml").getroot().find(".//testcase")
    assert not {"nw_stable", "nw_runs"} & {p.get("name") for p in testcase.iter("property")}


def test_a_failing_repeat_fails_the_item_and_stops(project):
    project.experiment("flaky.py", """
        from pathlib import Path
        from pytest_nwtrials import tag
        marker = Path("../ran-once")
        if marker.exists():
            raise RuntimeError("second run")
        marker.write_text("yes")
        tag("x", 1)
    """)
    result = project.run("--nw-repeat=3")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*experiments/flaky.py: run 2 of 3 failed (trial1 was run 1 time before it):",
                                 "*raised RuntimeError: second run*"])
    assert [trial["status"] for trial in project.trials()] == ["finished", "failed"]


def test_the_first_run_is_saved_and_gated(project):
    project.experiment("train.py", DETERMINISTIC)
    project.run("--nw-save-baseline=base", "--nw-repeat=2").assert_outcomes(passed=1)
    entry = project.baseline_entry("base", "experiments/train.py")
    assert entry["trial"] == "trial1" and entry["trial_id"] == project.trials()[0]["id"]
    result = project.run("--nw-baseline=base", "--nw-repeat=2")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["trial3  experiments/train.py  matched*",
                                 "trial4  experiments/train.py  repeat of trial3*"])


def test_set_iteration_varies_between_repeats_unless_the_hash_seed_is_pinned(project, monkeypatch):
    project.experiment("names.py", SET_ORDER)
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    varied = project.run("--nw-repeat=3")
    varied.assert_outcomes(failed=1)
    varied.stdout.fnmatch_lines(["*experiments/names.py is not reproducible*",
                                 "*iteration over the set `names`*",
                                 "No tolerance covers order: the runs must give the same value."])
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    pinned = project.run("--nw-repeat=3")
    pinned.assert_outcomes(passed=1)
    pinned.stdout.fnmatch_lines(["*note: experiments/names.py: stable across 3 runs"])


def test_each_repeat_is_forked_by_a_warm_process_with_a_hash_seed_of_its_own(project, monkeypatch):
    """A fresh interpreter per repeat would do as well but cost a second each: the parent of
    every run is a fork server (one per run of the group), never pytest itself."""
    project.experiment("seed.py", """
        import os
        from pytest_nwtrials import tag
        tag("parent", os.getppid())
        tag("hash", hash("a string"))
    """)
    project.ini("nw_ignore = parent hash\n")
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    project.run("--nw-repeat=3").assert_outcomes(passed=1)
    runs = project.trials()
    parents = {trial["tags"]["parent"]["value"] for trial in runs}
    hashes = {trial["tags"]["hash"]["value"] for trial in runs}
    assert len(parents) == 3 and len(hashes) == 3


def test_under_xdist_the_stability_reaches_the_controllers_report(project):
    pytest.importorskip("xdist")
    project.experiment("train.py", DETERMINISTIC)
    project.experiment("draw.py", UNSEEDED)
    result = project.run("-n", "2", "--nw-repeat=2", "--nw-json=report.json")
    result.assert_outcomes(passed=1, failed=1)
    report = json.loads((project.root / "report.json").read_text())
    firsts = {e["experiment"]: e for e in report["experiments"] if e["verdict"] != "repeat"}
    assert firsts["experiments/train.py"]["stability"]["stable"] is True
    assert firsts["experiments/draw.py"]["verdict"] == "unstable"
    assert firsts["experiments/draw.py"]["stability"]["covered"] is False
    stored = {t["name"]: t for t in project.trials()}
    for entry in firsts.values():  # the controller's store names every run of the group
        names = entry["stability"]["trials"]
        assert names[0] == entry["trial"] and all(name in stored for name in names)
        assert {stored[name]["experiment"] for name in names} == {entry["experiment"]}
        assert stored[entry["trial"]]["stability"] == entry["stability"]
    assert report["summary"]["repeats"] == 2 and report["summary"]["unstable"] == 1
