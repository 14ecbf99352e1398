"""The `nwtrials` command, run as a real subprocess on a recorded store."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

SUBCOMMANDS = [[], ["list"], ["show"], ["diff"], ["values"], ["plot"], ["baseline"], ["baseline", "list"],
               ["baseline", "show"], ["baseline", "delete"], ["gc"]]


def nwtrials(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_nwtrials.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def assert_bad_input(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit status 2 and one line on stderr, with no traceback."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("nwtrials: error: ")
    for fragment in fragments:
        assert fragment in done.stderr


@pytest.mark.parametrize("command", SUBCOMMANDS, ids=lambda c: " ".join(c) or "nwtrials")
def test_every_command_has_help(command, tmp_path):
    done = nwtrials(*command, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {' '.join(['nwtrials', *command])}")


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "nwtrials"
    assert script.exists(), "reinstall the package (pip install -e .) to create the nwtrials script"
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "gc" in done.stdout and "baseline" in done.stdout


def test_list_shows_every_trial(nw_project):
    done = nwtrials("list", cwd=nw_project / "experiments")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["trial", "status", "started", "(UTC)", "duration", "experiment", "tags"]
    assert [line.split()[:2] for line in lines[1:]] == [
        ["trial1", "finished"], ["trial2", "finished"], ["trial3", "finished"],
        ["trial4", "finished"], ["trial5", "failed"], ["trial6", "finished"]]
    assert "experiments/train.py  auc, summary, model, epochs, weights" in lines[2]


def test_list_of_one_experiment_and_global_options_after_the_command(nw_project, tmp_path):
    done = nwtrials("list", "--experiment", "*/train.py", "--store", str(nw_project / ".nwtrials"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()[1:]] == ["trial2", "trial4", "trial6"]
    assert_bad_input(nwtrials("list", "--experiment", "nope.py", cwd=nw_project),
                     "no trials of experiment 'nope.py'", "experiments/train.py")


def test_missing_and_empty_store(tmp_path):
    assert_bad_input(nwtrials("list", cwd=tmp_path), "no trial store (.nwtrials) found in", "--store PATH")
    assert_bad_input(nwtrials("baseline", "list", cwd=tmp_path), "no nw-baselines folder found", "--baselines PATH")
    assert_bad_input(nwtrials("--store", str(tmp_path / "nope"), "values", "auc", cwd=tmp_path),
                     f"no trial store at {tmp_path / 'nope'}")
    (tmp_path / ".nwtrials" / "trials").mkdir(parents=True)
    for command in (["list"], ["show", "trial1"], ["gc", "--keep", "1"]):
        assert_bad_input(nwtrials(*command, cwd=tmp_path), "no trials in", "run pytest on the experiments first")


def test_show_a_trial(nw_project):
    trial_id = json.loads((nw_project / ".nwtrials/trials/trial4.json").read_text())["id"]
    done = nwtrials("show", trial_id[:8], cwd=nw_project)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("trial4  experiments/train.py  finished (exit code 0)")
    assert f"id:         {trial_id}" in out
    assert "  auc      0.89" in out and "  model    'logreg'" in out
    assert "  weights  ndarray(shape=(50,), dtype=float64" in out
    assert "inputs:" in out and "file run.txt: read sha1" in out and "library numpy" in out
    failed = nwtrials("show", "trial5", cwd=nw_project)
    assert "trial5  experiments/prep.py  failed (exit code 3)" in failed.stdout


def test_unknown_refs(nw_project):
    assert_bad_input(nwtrials("show", "trial99", cwd=nw_project), "no trial 'trial99'", "nwtrials list")
    assert_bad_input(nwtrials("show", "abc", cwd=nw_project), "at least 4 characters")
    assert_bad_input(nwtrials("diff", "trial1", "zzzz", cwd=nw_project), "no trial 'zzzz'")


def test_diff_exit_status_is_1_when_trials_differ_and_0_when_they_match(nw_project):
    differ = nwtrials("diff", "trial2", "trial4", cwd=nw_project)
    assert differ.returncode == 1, differ.stderr
    assert differ.stdout.startswith("trial4 differs from trial2")
    assert "auc: changed: 0.9 -> 0.89" in differ.stdout and "Why it changed:" in differ.stdout
    same = nwtrials("diff", "trial2", "trial2", cwd=nw_project)
    assert same.returncode == 0 and same.stdout.strip() == "trial2 matches trial2"
    # every value of trial4 is within 100% of trial2's
    assert nwtrials("diff", "trial2", "trial4", "--rtol", "1", cwd=nw_project).returncode == 0
    assert nwtrials("diff", "trial2", "trial4", "--ops", cwd=nw_project).returncode == 1
    assert_bad_input(nwtrials("diff", "trial2", "trial4", "--rtol", "-1", cwd=nw_project), "--rtol", "number >= 0")
    assert_bad_input(nwtrials("diff", "trial2", cwd=nw_project), "required: NEW", "nwtrials diff --help")


def test_diff_as_json_and_html(nw_project, tmp_path):
    page = tmp_path / "diff.html"
    done = nwtrials("diff", "trial2", "trial4", "--json", "--html", str(page), cwd=nw_project)
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["old"] == "trial2" and doc["new"] == "trial4" and doc["match"] is False
    assert {c["path"] for c in doc["changes"]} == {"auc", "summary['precision']", "weights"}
    assert next(c for c in doc["changes"] if c["path"] == "auc") == {
        "path": "auc", "kind": "changed", "old": "0.9", "new": "0.89", "detail": ""}
    assert doc["tags"] == ["auc", "summary", "weights"] and doc["why"]
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<code>auc</code>" in text and "<script" not in text


def test_values_as_table_and_csv(nw_project):
    done = nwtrials("values", "auc", "--experiment", "experiments/train.py", cwd=nw_project)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()[1:]]
    assert [(row[0], row[-1]) for row in rows] == [("trial2", "0.90"), ("trial4", "0.89"), ("trial6", "0.88")]
    table = list(csv.DictReader(io.StringIO(nwtrials("values", "rows", "--csv", cwd=nw_project).stdout)))
    assert [(r["name"], r["status"], r["value"]) for r in table] == [
        ("trial1", "finished", "100"), ("trial3", "finished", "101"), ("trial5", "failed", "102")]
    assert len(table[0]["id"]) == 36
    assert_bad_input(nwtrials("values", "acu", cwd=nw_project), "tagged 'acu'", "tags: auc, epochs")


def test_plot_writes_a_png(nw_project, tmp_path):
    out = tmp_path / "auc.png"
    done = nwtrials("plot", "auc", "-o", str(out), "--baseline", "reference", cwd=nw_project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {out}"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert nwtrials("plot", "weights", "-o", str(tmp_path / "w.svg"), cwd=nw_project).returncode == 0


def test_plot_refuses_what_it_cannot_draw(nw_project, tmp_path):
    out = str(tmp_path / "x.png")
    assert_bad_input(nwtrials("plot", "model", "-o", out, cwd=nw_project),
                     "tag 'model' of trial2 is a str, which cannot be plotted")
    assert_bad_input(nwtrials("plot", "nope", "-o", out, cwd=nw_project), "tagged 'nope'")
    assert_bad_input(nwtrials("plot", "auc", "-o", out, "--baseline", "other", cwd=nw_project),
                     "no baseline 'other'", "baselines: reference")
    assert_bad_input(nwtrials("plot", "auc", "-o", str(tmp_path / "x.xyz"), cwd=nw_project), "x.xyz", ".png")
    assert_bad_input(nwtrials("plot", "auc", cwd=nw_project), "required: -o/--output")


def test_baseline_list_show_delete(nw_project, tmp_path):
    listed = nwtrials("baseline", "list", cwd=nw_project)
    assert listed.returncode == 0 and listed.stdout.split() == ["reference", "2", "entries"]
    shown = nwtrials("baseline", "show", "reference", cwd=nw_project)
    assert shown.returncode == 0, shown.stderr
    assert "experiments/train.py  (recorded in trial2" in shown.stdout and "  auc      0.9" in shown.stdout
    assert_bad_input(nwtrials("baseline", "show", "nope", cwd=nw_project), "no baseline 'nope'", "baselines: reference")
    assert_bad_input(nwtrials("baseline", "delete", "../nw-baselines", cwd=nw_project), "no baseline")
    assert (nw_project / "nw-baselines" / "reference").is_dir()
    # found next to the store even from elsewhere
    deleted = nwtrials("--store", str(nw_project), "baseline", "delete", "reference", cwd=tmp_path)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.startswith("removed baseline 'reference' (")
    assert "2 entries" in deleted.stdout and "  experiments/prep.py" in deleted.stdout
    assert not (nw_project / "nw-baselines" / "reference").exists()
    assert "no baselines in" in nwtrials("baseline", "list", cwd=nw_project).stdout
    assert_bad_input(nwtrials("baseline", "delete", "reference", cwd=nw_project), "baselines: none")


@pytest.mark.parametrize("keep", [1, 2])
def test_gc_keeps_the_last_n_trials_of_each_experiment(nw_project, keep):
    from pytest_nwtrials import load_trial

    store = nw_project / ".nwtrials"
    before = {p.stem: json.loads(p.read_text()) for p in (store / "trials").glob("trial*.json")}
    gone = ["trial1", "trial2", "trial3", "trial4"][: 6 - 2 * keep]
    kept = sorted(set(before) - set(gone))

    def records() -> list[str]:
        return sorted(p.name for p in (store / "records").iterdir())

    assert records() == sorted({trial["record"] for trial in before.values()})
    done = nwtrials("gc", "--keep", str(keep), cwd=nw_project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"removed {len(gone)} trials: {', '.join(gone)}")
    assert f"  trial records and provenance: {2 * len(gone)} files" in done.stdout
    reclaimed = int(done.stdout.strip().splitlines()[-1].split()[1].replace(",", ""))
    assert reclaimed > 0
    assert sorted(p.stem for p in (store / "trials").glob("*.json")) == kept
    by_experiment = [before[name]["experiment"] for name in kept]
    assert sorted(by_experiment) == sorted(["experiments/prep.py", "experiments/train.py"] * keep)
    assert records() == sorted(before[n]["record"] for n in kept)
    blobs = {p.name for p in (store / "values").iterdir()}
    assert blobs == {before[name]["tags"]["weights"]["value"]["blob"] for name in kept if name in ("trial4", "trial6")}
    for name in kept:
        trial = load_trial(name, store=store)
        for tag in trial.tags:
            assert trial.values[tag] is not None
            assert trial.slice(tag).ops
            assert trial.slice(tag, union=True).ops
    again = nwtrials("gc", "--keep", str(keep), cwd=nw_project)
    assert again.stdout.strip() == f"nothing to remove: no experiment has more than {keep} trials"


def test_gc_dry_run_and_bad_keep(nw_project):
    store = nw_project / ".nwtrials"
    before = sorted(p.relative_to(store) for p in store.rglob("*"))
    done = nwtrials("gc", "--keep", "2", "--dry-run", cwd=nw_project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("would remove 2 trials: trial1, trial2")
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before
    assert_bad_input(nwtrials("gc", "--keep", "0", cwd=nw_project), "--keep must be at least 1")
    assert_bad_input(nwtrials("gc", "--keep", "x", cwd=nw_project), "--keep", "invalid int value")
    assert_bad_input(nwtrials("gc", cwd=nw_project), "required: --keep")
    assert_bad_input(nwtrials("frobnicate", cwd=nw_project), "invalid choice")
