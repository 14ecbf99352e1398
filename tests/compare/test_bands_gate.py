"""Baselines that know their run-to-run spread: saving it, gating within it, showing it.

Real pytest runs in a subprocess with real captures. The spreads that repeated runs record are
made here where the test needs a band of known width (`with_spread`); the runs with
``--nw-repeat`` are at the end.
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_nwtrials.store.baselines import BaselineStore
from pytest_nwtrials.compare.spread import PathSpread, Stability, spreads_to_json
from pytest_nwtrials.store.trial_store import StoreError, TrialStore

EXPERIMENT = """
from pathlib import Path
import numpy as np
from pytest_nwtrials import tag

here = Path(__file__).parent
tag("auc", float((here / "auc.txt").read_text()))
tag("weights", np.array([0.1, 0.2, 0.3]) + float((here / "shift.txt").read_text()))
tag("model", "forest")
"""
ENTRY = "experiments/fit.py"
SPREADS = {"auc": PathSpread("auc", 0.811, 0.834, 0.023, 0.0284),
           "weights": PathSpread("weights", 0.1, 0.31, 0.01, 0.0333)}
REMEDY = "restore it from version control, or save the baseline again with --nw-save-baseline=base"


def values(project, auc: float, shift: float = 0.0) -> None:
    (project.root / "experiments" / "auc.txt").write_text(repr(auc))
    (project.root / "experiments" / "shift.txt").write_text(repr(shift))


def entry_file(project) -> Path:
    return project.root / "nw-baselines" / "base" / f"{ENTRY}.json"


def with_spread(project, spread) -> None:
    """Record in the saved entry the spread that repeated runs would have recorded."""
    path = entry_file(project)
    doc = json.loads(path.read_text())
    doc["spread"] = spread
    path.write_text(json.dumps(doc, indent=1))


def saved(project, auc: float = 0.811) -> None:
    project.experiment("fit.py", EXPERIMENT)
    values(project, auc)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)


def banded(project, auc: float, shift: float) -> None:
    """A baseline saved with SPREADS recorded, and the experiment about to give `auc` and `shift`."""
    saved(project)
    with_spread(project, spreads_to_json(SPREADS))
    values(project, auc, shift)


def report(result) -> str:
    """The failure report, without pytest's short summary (which repeats it under CI)."""
    return result.stdout.str().split("short test summary info")[0]


def nwtrials(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_nwtrials.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


# -- gating ---------------------------------------------------------------------------------------

def test_values_inside_the_recorded_spread_match_and_the_summary_says_so(project):
    banded(project, 0.823, 0.005)
    result = project.run("--nw-baseline=base", "--nw-json=report.json", "--nw-report=report.html")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*  matched  (*",
                                 "  note: experiments/fit.py: matched within the recorded run-to-run spread "
                                 "(auc, weights)"])
    [experiment] = json.loads((project.root / "report.json").read_text())["experiments"]
    assert experiment["verdict"] == "matched"
    assert experiment["notes"] == ["experiments/fit.py: matched within the recorded run-to-run spread (auc, weights)"]
    assert ("<li>experiments/fit.py: matched within the recorded run-to-run spread (auc, weights)</li>"
            in (project.root / "report.html").read_text())


def test_under_xdist_the_worker_matches_within_the_spread_and_the_controller_says_so(project):
    banded(project, 0.823, 0.005)
    result = project.run("--nw-baseline=base", "-n", "2")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["  note: experiments/fit.py: matched within the recorded run-to-run spread "
                                 "(auc, weights)"])


def test_a_value_outside_the_recorded_spread_is_changed_and_the_report_names_the_band(project):
    banded(project, 0.9, 0.005)
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(failed=1)
    text = report(result)
    assert "experiments/fit.py: 1 tagged value differs from baseline 'base'" in text
    lines = text.splitlines()
    at = lines.index("  auc: changed: 0.811 -> 0.9")
    assert lines[at + 1] == "    outside the recorded run-to-run spread 0.788..0.834 (0.811 ± 0.023)"
    assert "  matched within the recorded run-to-run spread: weights" in lines
    assert "Why it changed:" in text and "weights" not in text.split("Why it changed:")[1]
    summary = result.stdout.str().split("= nwtrials =")[-1].split("short test summary info")[0]
    assert "matched within" not in summary  # no note: it changed


def test_an_array_outside_its_band_says_at_how_many_elements(project):
    banded(project, 0.82, 0.05)
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(failed=1)
    lines = report(result).splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  weights: changed"))
    assert lines[at + 1] == "    outside the recorded run-to-run spread (±0.01 of the baseline) at 3 of 3 elements"
    assert lines[at + 2] == "    Shape: (3,)"
    assert "  matched within the recorded run-to-run spread: auc" in lines


def test_without_a_spread_the_entry_and_the_gate_are_as_before(project):
    saved(project)
    doc = json.loads(entry_file(project).read_text())
    assert list(doc) == ["schema", "experiment", "argv", "trial", "trial_id", "started", "python", "inputs", "tags"]
    values(project, 0.823)
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(failed=1)
    assert "run-to-run" not in result.stdout.str()


def test_a_stable_save_records_an_empty_spread_and_compares_exactly(project):
    saved(project)
    with_spread(project, {})
    values(project, 0.823)
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(failed=1)
    assert "run-to-run" not in report(result)


def test_a_non_numeric_spread_never_matches_and_says_the_runs_differed_there(project):
    saved(project)
    with_spread(project, {"model": {"low": None, "high": None, "deviation": None, "relative": None,
                                    "detail": "'forest' -> 'tree'"}})
    project.experiment("fit.py", EXPERIMENT.replace('"forest"', '"tree"'))
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(failed=1)
    lines = report(result).splitlines()
    at = lines.index("  model: changed: 'forest' -> 'tree'")
    assert lines[at + 1] == "    the saved runs already differed here ('forest' -> 'tree'): no band covers it"


@pytest.mark.parametrize(("spread", "problem"), [
    ([1, 2], "'spread': the spread is not an object of paths"),
    ({"auc": 0.02}, "'spread': the spread of 'auc' is not an object"),
    ({"auc": {"low": "0.8"}}, "'spread': the spread of 'auc' has a low that is not a number"),
    ({"auc": {"deviation": True}}, "'spread': the spread of 'auc' has a deviation that is not a number"),
    ({"auc": {"detail": 3}}, "'spread': the spread of 'auc' has a detail that is not a string"),
    ({"auc": {"deviation": float("inf")}}, "'spread': the spread of 'auc' has a deviation that is not finite"),
    ({"auc": {"deviation": -0.1}}, "'spread': the spread of 'auc' has a negative deviation"),
    ({"auc": {"low": 0.9, "high": 0.8, "deviation": 0.1}}, "'spread': the spread of 'auc' has a low above its high"),
])
def test_a_damaged_spread_fails_the_experiment_naming_the_entry_and_the_remedy(project, spread, problem):
    saved(project)
    with_spread(project, spread)
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(failed=1)
    assert f"{entry_file(project)}: not a valid baseline entry ({problem}); {REMEDY}" in report(result)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)  # saving repairs it
    assert "spread" not in json.loads(entry_file(project).read_text())
    project.run("--nw-baseline=base").assert_outcomes(passed=1)


# -- saving ---------------------------------------------------------------------------------------

def test_saving_a_trial_with_a_stability_stores_its_spread_beside_the_tags(project):
    saved(project)
    plain = entry_file(project).read_bytes()
    store = TrialStore(project.root / ".nwtrials")
    [trial] = store.trials()
    baselines = BaselineStore(project.root / "nw-baselines", project.root)

    baselines.save("base", trial, store)  # without a stability: byte for byte what was saved
    assert entry_file(project).read_bytes() == plain

    stability = Stability(3, (trial.name, "trial2", "trial3"), SPREADS, covered=False)
    baselines.save("base", replace(trial, stability=stability.to_json()), store)
    doc = json.loads(entry_file(project).read_text())
    assert list(doc)[-2:] == ["tags", "spread"] and doc["spread"] == spreads_to_json(SPREADS)
    assert baselines.entry("base", ENTRY, ()).spread == SPREADS

    baselines.save("base", replace(trial, stability=Stability(3, (trial.name,)).to_json()), store)
    assert json.loads(entry_file(project).read_text())["spread"] == {}  # stable: an empty band

    with pytest.raises(StoreError, match=r"run-to-run spread of trial1 cannot be read .*--nw-repeat"):
        baselines.save("base", replace(trial, stability={"runs": 0}), store)
    assert json.loads(entry_file(project).read_text())["spread"] == {}  # left as it was


# -- showing --------------------------------------------------------------------------------------

def test_nwtrials_show_prints_the_stability_and_values_gets_spread_columns(project):
    saved(project)
    path = project.root / ".nwtrials" / "trials" / "trial1.json"
    doc = json.loads(path.read_text())
    doc["stability"] = Stability(3, ("trial1", "trial2", "trial3"), SPREADS, covered=False,
                                 diverged=("first divergence: fit.py, line 7",),
                                 proposal=("to cover it: rtol=0.03",)).to_json()
    path.write_text(json.dumps(doc))
    done = nwtrials("show", "trial1", cwd=project.root)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    at = lines.index("stability: not reproducible across 3 runs (trial1, trial2, trial3)")
    assert lines[at + 1:at + 7] == [
        "run-to-run spread:",
        "  path     low    high   deviation  relative",
        "  auc      0.811  0.834  0.023      2.84%",
        "  weights  0.1    0.31   0.01       3.33%",
        "  first divergence: fit.py, line 7",
        "  to cover it: rtol=0.03",
    ]
    assert lines[at + 7] == "inputs:"

    from pytest_nwtrials import tag_values

    frame = tag_values("auc", store=project.root)
    assert frame.loc[0, ["spread_low", "spread_high", "spread_relative"]].tolist() == [0.811, 0.834, 0.0284]
    assert frame["spread_low"].isna().tolist() == [False]
    table = nwtrials("values", "auc", cwd=project.root).stdout.splitlines()
    assert table[0].split()[-3:] == ["spread_low", "spread_high", "spread_relative"]


def test_nwtrials_show_of_a_stable_trial_and_of_one_run_once(project):
    saved(project)
    assert "stability" not in nwtrials("show", "trial1", cwd=project.root).stdout
    path = project.root / ".nwtrials" / "trials" / "trial1.json"
    doc = json.loads(path.read_text())
    doc["stability"] = Stability(3, ("trial1", "trial2", "trial3")).to_json()
    path.write_text(json.dumps(doc))
    shown = nwtrials("show", "trial1", cwd=project.root).stdout
    assert "stability: stable across 3 runs (trial1, trial2, trial3)" in shown
    assert "run-to-run spread" not in shown


def test_nwtrials_baseline_show_prints_recorded_spreads(project):
    saved(project)
    plain = nwtrials("baseline", "show", "base", cwd=project.root)
    assert plain.returncode == 0 and "run-to-run" not in plain.stdout
    with_spread(project, spreads_to_json(SPREADS))
    lines = nwtrials("baseline", "show", "base", cwd=project.root).stdout.splitlines()
    at = lines.index("  run-to-run spread (a later value inside it is matched):")
    assert lines[at + 1:] == [
        "    path     low    high   deviation  relative",
        "    auc      0.811  0.834  0.023      2.84%",
        "    weights  0.1    0.31   0.01       3.33%",
    ]
    with_spread(project, {})
    assert "  run-to-run spread: none, the saved runs agreed (a later change is compared exactly)" in \
        nwtrials("baseline", "show", "base", cwd=project.root).stdout.splitlines()
    with_spread(project, {"auc": 1})
    assert "  run-to-run spread: <unreadable: the spread of 'auc' is not an object>" in \
        nwtrials("baseline", "show", "base", cwd=project.root).stdout.splitlines()


# -- with real repeated runs ----------------------------------------------------------------------

NOISY = """
import numpy as np
from pytest_nwtrials import tag

rng = np.random.default_rng()  # unseeded: every run draws other bits
tag("draws", rng.integers(0, 2, size=64){shift})
tag("rows", 100)
"""


def test_a_baseline_saved_from_repeated_runs_gates_within_their_spread(project):
    project.experiment("noisy.py", NOISY.format(shift=""))
    saving = project.run("--nw-save-baseline=base", "--nw-repeat=3")
    saving.assert_outcomes(passed=1)  # the runs differ: saved with their band, and said so
    saving.stdout.fnmatch_lines([
        "  note: experiments/noisy.py: not reproducible across 3 runs (draws)",
        "  note: experiments/noisy.py: saved with the run-to-run spread of its 3 runs; to make it reproducible "
        "instead: *default_rng(0)*",
        "saved 1 entry to baseline 'base' in nw-baselines/base/",
        "with the run-to-run spread of their repeated runs (a later value inside it matches): experiments/noisy.py",
    ])
    entry = project.baseline_entry("base", "experiments/noisy.py")
    assert list(entry)[-2:] == ["tags", "spread"]
    assert entry["spread"] == {"draws": {"low": 0.0, "high": 1.0, "deviation": 1.0, "relative": 1.0}}
    [first] = [t for t in project.trials() if t.get("stability")]
    assert entry["trial"] == first["name"] and entry["spread"] == first["stability"]["spread"]

    # unchanged: other bits, every one within the recorded deviation of the saved one
    gate = project.run("--nw-baseline=base")
    gate.assert_outcomes(passed=1)
    gate.stdout.fnmatch_lines(["*experiments/noisy.py  matched  (*",
                               "  note: experiments/noisy.py: matched within the recorded run-to-run spread (draws)"])

    # unchanged and repeated: the runs vary as the saved ones did, which the baseline accepted
    repeated = project.run("--nw-baseline=base", "--nw-repeat=3")
    repeated.assert_outcomes(passed=1)
    repeated.stdout.fnmatch_lines([
        "  note: experiments/noisy.py: its 3 runs varied within the recorded run-to-run spread of its baseline"])

    # changed beyond the band: reported, naming it
    project.experiment("noisy.py", NOISY.format(shift=" + 5"))
    changed = project.run("--nw-baseline=base")
    changed.assert_outcomes(failed=1)
    lines = report(changed).splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  draws: changed"))
    assert lines[at + 1] == "    outside the recorded run-to-run spread (±1 of the baseline) at 64 of 64 elements"
    assert "matched within" not in changed.stdout.str()


def test_under_xdist_the_controller_saves_the_spread_the_worker_measured(project):
    project.experiment("noisy.py", NOISY.format(shift=""))
    project.run("--nw-save-baseline=base", "--nw-repeat=3", "-n", "2").assert_outcomes(passed=1)
    entry = project.baseline_entry("base", "experiments/noisy.py")
    assert entry["spread"] == {"draws": {"low": 0.0, "high": 1.0, "deviation": 1.0, "relative": 1.0}}
    gate = project.run("--nw-baseline=base", "-n", "2")
    gate.assert_outcomes(passed=1)
    gate.stdout.fnmatch_lines(["  note: experiments/noisy.py: matched within the recorded run-to-run spread (draws)"])


SCALAR = """
import numpy as np
from pytest_nwtrials import tag

tag("score", float(np.random.default_rng().random()))
"""


def test_a_number_is_matched_exactly_when_it_lies_within_the_deviation_of_the_saved_run(project):
    project.experiment("score.py", SCALAR)
    project.run("--nw-save-baseline=base", "--nw-repeat=3").assert_outcomes(passed=1)
    entry = project.baseline_entry("base", "experiments/score.py")
    band, saved = entry["spread"]["score"], entry["tags"]["score"]["value"]
    assert band["low"] < band["high"] and band["deviation"] == max(saved - band["low"], band["high"] - saved)
    gate = project.run("--nw-baseline=base", "--nw-capture=fine")  # one run: auto may run twice
    score = project.trials()[-1]["tags"]["score"]["value"]
    if abs(score - saved) <= band["deviation"]:  # a fresh draw: which side of the band it falls decides
        gate.assert_outcomes(passed=1)
        gate.stdout.fnmatch_lines(["*matched within the recorded run-to-run spread (score)"])
    else:
        gate.assert_outcomes(failed=1)
        low, high = saved - band["deviation"], saved + band["deviation"]
        assert f"    outside the recorded run-to-run spread {low:.6g}..{high:.6g} ({saved:.6g} " \
               f"± {band['deviation']:.6g})" in report(gate).splitlines()


def test_a_stable_experiment_saved_with_repeats_records_an_empty_spread(project):
    project.experiment("steady.py", NOISY.replace("default_rng()", "default_rng(7)").format(shift=""))
    saving = project.run("--nw-save-baseline=base", "--nw-repeat=2")
    saving.assert_outcomes(passed=1)
    assert "run-to-run spread" not in saving.stdout.str()
    assert project.baseline_entry("base", "experiments/steady.py")["spread"] == {}
    shown = subprocess.run([sys.executable, "-m", "pytest_nwtrials.cli", "show", "trial1"], cwd=project.root,
                           capture_output=True, text=True, timeout=120).stdout
    assert "stability: stable across 2 runs (trial1, trial2)" in shown


def test_comparing_with_a_trial_stays_exact_even_when_it_recorded_a_spread(project):
    saved(project)
    path = project.root / ".nwtrials" / "trials" / "trial1.json"
    doc = json.loads(path.read_text())
    doc["stability"] = Stability(3, ("trial1", "trial2", "trial3"), SPREADS, covered=False).to_json()
    path.write_text(json.dumps(doc))
    values(project, 0.823)
    result = project.run("--nw-baseline=trial1")
    result.assert_outcomes(failed=1)
    assert "run-to-run" not in report(result)
    done = nwtrials("diff", "trial1", "trial2", cwd=project.root)
    assert done.returncode == 1 and "auc: changed: 0.811 -> 0.823" in done.stdout and "run-to-run" not in done.stdout
