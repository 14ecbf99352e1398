"""Damaged and hand-edited files in the local store and in baselines, end to end.

Each is reported with its path and what to do, never with a traceback; the other experiments of
the session still run and pass; and the damaged file is left byte for byte as it was, unless the
user saves the baseline it belongs to (saving replaces the damaged files of the experiments saved)
or, for a value file of the local store, a new trial tags the same value (it writes the file anew).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import INI, record_file

TRAIN = """
import numpy as np
from pytest_nwtrials import tag
tag("weights", np.linspace(0.0, 1.0, 40))
tag("auc", 0.9)
"""
PREP = "from pytest_nwtrials import tag\ntag('rows', 10)\n"

DAMAGE = {
    "truncated": lambda data: data[: len(data) // 2],
    "garbage": lambda data: b"\x00\xff\x93NUMP not what was written",
}
BASELINE_REMEDY = "restore it from version control, or save the baseline again with --nw-save-baseline=base"


def record(root: Path, args: tuple[str, ...]) -> Path:
    """Record train.py and prep.py in a new project `root`: one pytest run, with `args`."""
    (root / "experiments").mkdir(parents=True)
    (root / "pytest.ini").write_text(INI.format(experiments="experiments/*.py", extra=""))
    (root / "experiments" / "train.py").write_text(TRAIN)
    (root / "experiments" / "prep.py").write_text(PREP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args], cwd=root,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "2 passed" in done.stdout, done.stdout + done.stderr
    return root


@pytest.fixture(scope="module")
def two_experiments(tmp_path_factory: pytest.TempPathFactory):
    """`two_experiments(project, *args)`: the project as one pytest run with `args` recorded it.

    Each kind of run is recorded once per module (and test process) and copied into each
    test's project, rather than recorded again by every test.
    """
    recorded: dict[tuple[str, ...], Path] = {}

    def copy(project, *args: str) -> None:
        if args not in recorded:
            recorded[args] = record(tmp_path_factory.mktemp("recorded") / "project", args)
        shutil.copytree(recorded[args], project.root, dirs_exist_ok=True, symlinks=True)

    return copy


def damage(path: Path, how: str) -> bytes:
    data = DAMAGE[how](path.read_bytes())
    path.write_bytes(data)
    return data


def output(result) -> str:
    """All the run printed, checked to hold no traceback: neither Python's nor pytest's long form."""
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text and "INTERNALERROR" not in text, text
    assert not re.search(r"pytest_nwtrials[/\\]\S+\.py:\d+", text), text
    return text


def store(project) -> Path:
    return project.root / ".nwtrials"


def baseline(project, name: str = "base") -> Path:
    return project.root / "nw-baselines" / name


def trial_of(project, experiment: str) -> dict:
    return [t for t in project.trials() if t["experiment"] == experiment][-1]


def intact(blob: Path) -> bool:
    return hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name.partition(".")[0]


# -- the local store ----------------------------------------------------------------------------


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_a_damaged_trial_record_is_skipped_with_a_warning_and_kept(project, two_experiments, how):
    two_experiments(project)
    path = store(project) / "trials" / f"{trial_of(project, 'experiments/train.py')['name']}.json"
    data = damage(path, how)
    result = project.run("--nw-baseline=latest")
    result.assert_outcomes(passed=1, failed=1)
    text = output(result)
    result.stdout.fnmatch_lines(["*experiments/train.py has no earlier finished trial*"])
    assert f"warning: {path}: cannot be read as JSON" in text
    assert "; skipped (delete the file to silence this warning)" in text
    assert path.read_bytes() == data
    assert len(list(path.parent.glob("trial*.json"))) == 4  # new trials got new names

    path.unlink()  # what the warning says to do
    assert "warning:" not in output(project.run("--nw-baseline=latest"))


def test_a_reference_to_a_damaged_trial_record_is_a_usage_error_naming_it(project, two_experiments):
    two_experiments(project)
    path = store(project) / "trials" / "trial1.json"
    data = damage(path, "garbage")
    for reference in ("trial1", "nothing"):
        result = project.run(f"--nw-baseline={reference}")
        assert result.ret == 4  # pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"*--nw-baseline={reference} names no baseline and no trial.*"])
        assert f"Trial records that cannot be read were skipped: {path}" in output(result)
    assert path.read_bytes() == data


def test_a_damaged_provenance_record_is_a_warning_and_the_values_are_still_compared(project, two_experiments):
    two_experiments(project)
    path = record_file(store(project), trial_of(project, "experiments/train.py"))
    data = damage(path, "truncated")
    project.experiment("train.py", TRAIN + "unused = 1\n")  # same values, another record: this one stays damaged
    result = project.run("--nw-baseline=latest")
    result.assert_outcomes(passed=2)
    text = output(result)
    assert f"{path}: cannot be read as a compressed provenance record" in text
    assert "the operations are not compared" in text
    assert path.read_bytes() == data


def test_a_damaged_value_file_in_the_store_fails_only_its_experiment(project, two_experiments):
    two_experiments(project)
    [blob] = (store(project) / "values").glob("*.npy")
    data = damage(blob, "truncated")
    project.experiment("train.py", TRAIN.replace("40", "41"))  # another value: the damaged one is not written
    result = project.run("--nw-baseline=latest")
    result.assert_outcomes(passed=1, failed=1)
    text = output(result)
    assert f"{blob}: not a" in text and "the file is damaged: delete it, then run the experiment" in text
    assert blob.read_bytes() == data

    blob.unlink()  # what the message says to do: the next run of the experiment that tagged it writes it again
    project.experiment("train.py", TRAIN)
    project.run().assert_outcomes(passed=2)
    assert intact(blob)


def test_a_damaged_value_file_is_written_anew_by_the_next_trial_of_that_value(project, two_experiments):
    two_experiments(project, "--nw-save-baseline=base")
    [blob] = (store(project) / "values").glob("*.npy")
    damage(blob, "garbage")  # the next trial of train.py tags the same value: it replaces the damaged file
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(passed=2)
    output(result)
    assert intact(blob)
    project.run("--nw-baseline=latest").assert_outcomes(passed=2)  # the earlier trial reads it back too


# -- baselines ----------------------------------------------------------------------------------


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_a_damaged_baseline_entry_fails_its_experiment_until_the_baseline_is_saved(project, two_experiments, how):
    two_experiments(project, "--nw-save-baseline=base")
    entry = baseline(project) / "experiments" / "train.py.json"
    data = damage(entry, how)
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(passed=1, failed=1)
    text = output(result)
    assert f"{entry}: cannot be read as JSON" in text and BASELINE_REMEDY in text
    assert entry.read_bytes() == data

    project.run("--nw-save-baseline=base").assert_outcomes(passed=2)  # saving replaces it
    assert project.baseline_entry("base", "experiments/train.py")["tags"]["auc"]["value"] == 0.9
    project.run("--nw-baseline=base").assert_outcomes(passed=2)


def test_a_damaged_baseline_provenance_record_is_a_warning_until_the_baseline_is_saved(project, two_experiments):
    two_experiments(project, "--nw-save-baseline=base")
    record = baseline(project) / "experiments" / "train.py.provenance.json"
    data = damage(record, "garbage")
    # operations are compared under capture; a gate that matches under auto reads no record
    result = project.run("--nw-baseline=base", "--nw-capture=fine")
    result.assert_outcomes(passed=2)
    text = output(result)
    assert f"{record}: cannot be read as JSON" in text and "the operations are not compared" in text
    assert record.read_bytes() == data

    project.run("--nw-save-baseline=base").assert_outcomes(passed=2)
    assert "the operations are not compared" not in output(project.run("--nw-baseline=base", "--nw-capture=fine"))


def test_a_damaged_baseline_value_file_fails_its_experiment_until_the_baseline_is_saved(project, two_experiments):
    two_experiments(project, "--nw-save-baseline=base")
    [blob] = (baseline(project) / "values").glob("*.npy")
    data = damage(blob, "garbage")
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(passed=1, failed=1)
    text = output(result)
    assert f"{blob}: not a" in text and "the file is damaged: delete it" in text and "--nw-save-baseline=" in text
    assert blob.read_bytes() == data

    project.run("--nw-save-baseline=base").assert_outcomes(passed=2)  # saving replaces it
    assert intact(blob)
    project.run("--nw-baseline=base").assert_outcomes(passed=2)


def test_an_entry_whose_value_file_is_missing_names_it(project, two_experiments):
    two_experiments(project, "--nw-save-baseline=base")
    [blob] = (baseline(project) / "values").glob("*.npy")
    blob.unlink()
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(passed=1, failed=1)
    entry = baseline(project) / "experiments" / "train.py.json"
    assert (f"{entry}: its tags reference value files missing from {blob.parent}: {blob.name}; "
            f"{BASELINE_REMEDY}") in output(result)


def test_files_that_are_no_part_of_a_baseline_are_reported_and_kept(project, two_experiments):
    two_experiments(project, "--nw-save-baseline=base")
    strays = {baseline(project) / "notes.txt": b"reviewed by Ana",
              baseline(project) / "experiments" / "owners.json": b'{"owner": "ana"}',
              baseline(project) / "values" / "README.md": b"arrays",
              baseline(project) / "experiments" / "old.py.provenance.json": b"{}"}
    for path, data in strays.items():
        path.write_bytes(data)
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(passed=2)
    text = output(result)
    for path in strays:
        assert f"warning: {path}: " in text
    assert f"move it out of {baseline(project)}" in text
    assert "a provenance record without its entry old.py.json; delete it" in text
    assert "0 missing" in text  # owners.json is no entry of an experiment

    project.run("--nw-save-baseline=base").assert_outcomes(passed=2)
    assert all(path.read_bytes() == data for path, data in strays.items())


def test_an_entry_of_an_experiment_that_no_longer_exists_is_listed_then_removed_on_save(project, two_experiments):
    two_experiments(project, "--nw-save-baseline=base")
    (project.root / "experiments" / "prep.py").unlink()
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(passed=1)
    output(result)
    result.stdout.fnmatch_lines(["1 run, 1 matched, 0 changed, 0 new, 0 failed, 0 skipped, 1 missing",
                                 "baseline entries no experiment of this session used: experiments/prep.py*"])
    saved = project.run("--nw-save-baseline=base")
    saved.stdout.fnmatch_lines(["removed entries of experiments that no longer exist: experiments/prep.py"])
    assert not (baseline(project) / "experiments" / "prep.py.json").exists()


def test_two_entries_claiming_one_run_are_reported(project, two_experiments):
    two_experiments(project, "--nw-save-baseline=base")
    entry = baseline(project) / "experiments" / "train.py.json"
    copy = entry.with_name("train.py.0123456789.json")
    shutil.copyfile(entry, copy)
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(passed=2)
    assert (f"warning: {copy}: holds the entry of experiments/train.py, as {entry} does; "
            "delete the one you do not want") in output(result)

    entry.unlink()  # only the misplaced copy is left: it is not taken for the entry
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(passed=1, failed=1)
    assert (f"{copy}: not a valid baseline entry (its arguments [] belong in experiments/train.py.json); "
            f"{BASELINE_REMEDY}") in output(result)
    assert copy.read_bytes() != b""


def baseline_that_is_a_file(project, two_experiments) -> Path:
    """Two experiments, and a file where the folder of baseline 'base' would be."""
    two_experiments(project)
    path = baseline(project)
    path.parent.mkdir()
    path.write_text("not a folder")
    return path


def test_a_baseline_that_is_a_file_is_a_usage_error(project, two_experiments):
    path = baseline_that_is_a_file(project, two_experiments)
    result = project.run("--nw-baseline=base")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["*--nw-baseline=base: *nw-baselines/base is a file, not a baseline folder; move it away*"])
    output(result)
    assert path.read_text() == "not a folder"


def test_saving_over_a_file_is_a_usage_error(project, two_experiments):
    baseline_that_is_a_file(project, two_experiments)
    result = project.run("--nw-save-baseline=base")
    assert result.ret == 4
    assert "is a file, where baseline 'base' needs a folder" in output(result)


def test_an_empty_baseline_folder_is_a_usage_error(project, two_experiments):
    two_experiments(project)
    baseline(project, "empty").mkdir(parents=True)
    result = project.run("--nw-baseline=empty")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--nw-baseline=empty: the baseline folder *nw-baselines/empty has no entries. "
                                 "Save the baseline with --nw-save-baseline=empty, or delete the empty folder*"])
    output(result)


def test_an_unknown_reference_is_still_a_usage_error(project, two_experiments):
    two_experiments(project, "--nw-save-baseline=base")
    result = project.run("--nw-baseline=gamma")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--nw-baseline=gamma names no baseline and no trial. Baselines: base.*"])
    assert "Trial records that cannot be read" not in output(result)
    json.loads((baseline(project) / "experiments" / "train.py.json").read_text())
