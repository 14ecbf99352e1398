"""Baseline folders written by someone else, and saves that are killed or fed a damaged file.

A baseline folder is committed, so it may hold symbolic links planted to lead outside the
project: no command then creates, changes or deletes a file outside the rootdir, and reading never
follows such a link. A save killed at any point leaves each entry old or new, whole, and no
partial file that git would add. A damaged value file is never copied into a baseline.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import record_doc, snapshot
from test_cli import nwtrials
from test_corrupt_files import intact, output

TRAIN = """
import numpy as np
from pytest_nwtrials import tag
version = int(open("../version.txt").read())
tag("weights", np.linspace(0.0, 1.0, 40) * version)
tag("auc", 0.9 + version / 100)
"""
PREP = """
from pytest_nwtrials import tag
version = int(open("../version.txt").read())
tag("rows", 10 + version)
"""
EXPERIMENTS = ("experiments/prep.py", "experiments/train.py")


def saved(project, version: int = 1) -> Path:
    """Two experiments saved as baseline 'base' at `version`; returns the baseline's folder."""
    project.experiment("train.py", TRAIN)
    project.experiment("prep.py", PREP)
    (project.root / "version.txt").write_text(str(version))
    project.run("--nw-save-baseline=base").assert_outcomes(passed=2)
    subprocess.run(["git", "init", "-q"], cwd=project.root, check=True)  # to ask what `git add` would add
    return project.root / "nw-baselines" / "base"



# -- links leading out of the project -----------------------------------------------------------


def outside_copy(project, base: Path) -> Path:
    """A folder beside the rootdir that looks like baseline 'base', with bait for a save: an
    entry of an experiment that no longer exists (pruned on save) and a damaged value file
    (replaced on save)."""
    outside = project.root.parent / f"{project.root.name}-outside"
    shutil.copytree(base, outside / "base", symlinks=True)
    bait = outside / "base"
    gone = json.loads((bait / "experiments" / "prep.py.json").read_text())
    (bait / "experiments" / "gone.py.json").write_text(json.dumps({**gone, "experiment": "experiments/gone.py"}))
    for blob in (bait / "values").iterdir():
        blob.write_bytes(b"not what its name says")
    (outside / "README.md").write_text("someone else's file")
    return outside


def plant(kind: str, project, base: Path, outside: Path) -> Path:
    """Replace part of the baseline with a link of `kind` into `outside`; returns the link."""
    bait = outside / "base"
    [blob] = [p.name for p in (base / "values").iterdir()]
    targets = {
        "baselines folder": (project.root / "nw-baselines", outside),
        "baseline folder": (base, bait),
        "experiments folder": (base / "experiments", bait / "experiments"),
        "values folder": (base / "values", bait / "values"),
        "entry file": (base / "experiments" / "train.py.json", bait / "experiments" / "train.py.json"),
        "record file": (base / "experiments" / "train.py.provenance.json",
                        bait / "experiments" / "train.py.provenance.json"),
        "value file": (base / "values" / blob, bait / "values" / blob),
        "dangling entry": (base / "experiments" / "train.py.json", bait / "experiments" / "absent.json"),
    }
    link, target = targets[kind]
    if link.is_dir():
        shutil.rmtree(link)
    else:
        link.unlink()
    link.symlink_to(target)
    return link


LINKS = ["baselines folder", "baseline folder", "experiments folder", "values folder", "entry file",
         "record file", "value file", "dangling entry"]


@pytest.mark.parametrize("kind", LINKS)
def test_no_command_touches_or_reads_a_file_through_a_link_leading_out(project, kind):
    base = saved(project)
    outside = outside_copy(project, base)
    link = plant(kind, project, base, outside)
    before, siblings = snapshot(outside), sorted(os.listdir(project.root.parent))
    (project.root / "version.txt").write_text("2")  # a save would write new values

    runs = [["--nw-save-baseline=base"], ["--nw-baseline=base"]]
    if kind == "values folder":  # once under pytest-xdist is enough
        runs.append(["-n", "2", "--nw-save-baseline=base"])
    for args in runs:
        result = project.run(*args)
        assert result.ret == 4, result.stdout.str() + result.stderr.str()
        text = output(result)
        assert f"{link} leads outside" in text and "remove the link" in text, text
    for command in (["baseline", "show", "base"], ["baseline", "delete", "base"]):
        done = nwtrials(*command, cwd=project.root)
        assert done.returncode == 2 and f"{link} leads outside" in done.stderr, (done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
    listed = nwtrials("baseline", "list", cwd=project.root)
    assert "Traceback" not in listed.stderr
    assert nwtrials("diff", "trial1", "trial2", cwd=project.root).returncode in (0, 1)

    assert snapshot(outside) == before
    assert sorted(os.listdir(project.root.parent)) == siblings
    assert os.path.islink(link)


def test_a_dangling_readme_link_is_not_written_through(project):
    base = saved(project)
    outside = outside_copy(project, base)
    readme = project.root / "nw-baselines" / "README.md"
    readme.unlink()
    readme.symlink_to(outside / "new-readme.md")
    before = snapshot(outside)
    (project.root / "version.txt").write_text("2")
    project.run("--nw-save-baseline=base").assert_outcomes(passed=2)
    project.run("--nw-baseline=base").assert_outcomes(passed=2)
    assert nwtrials("baseline", "delete", "base", cwd=project.root).returncode == 0
    assert snapshot(outside) == before and not base.exists()


@pytest.mark.parametrize("claim", ["../../../{outside}/base/experiments/train.py", "{parent}/{outside}/base/x.py"])
def test_an_entry_claiming_a_path_outside_cannot_make_a_save_reach_it(project, claim):
    base = saved(project)
    outside = outside_copy(project, base)
    claim = claim.format(outside=outside.name, parent=project.root.parent)
    evil = base / "experiments" / "evil.py.json"
    evil.write_text(json.dumps({**json.loads((base / "experiments" / "prep.py.json").read_text()),
                                "experiment": claim}))
    before = snapshot(outside)

    result = project.run("--nw-baseline=base")
    result.assert_outcomes(passed=2)
    assert f"warning: {evil}: " in output(result)
    saving = project.run("--nw-save-baseline=base")
    saving.assert_outcomes(passed=2)
    saving.stdout.fnmatch_lines(["removed entries of experiments that no longer exist: experiments/evil.py"])
    output(saving)
    assert not evil.exists() and snapshot(outside) == before


def test_an_experiment_run_from_outside_the_rootdir_is_not_saved_outside(project):
    base = saved(project)
    outside = outside_copy(project, base)
    (outside / "script.py").write_text("from pytest_nwtrials import tag\ntag('x', 1)\n")
    project.pytester.makepyfile(test_outside=f"""
        def test_outside(nw_trial):
            nw_trial.run({str(outside / 'script.py')!r})
    """)
    before = snapshot(outside)
    result = project.run("--nw-save-baseline=base")
    assert result.ret == 1
    text = output(result)
    assert "is not a relative path inside" in text and "not saved" in text
    assert snapshot(outside) == before


# -- a damaged value file -----------------------------------------------------------------------

DAMAGE_NEW_VALUES = """
import os
from pathlib import Path

def pytest_sessionfinish(session):
    # runs before the plugin saves the baseline: the new trial's value files get damaged
    if os.environ.get("NW_DAMAGE"):
        kept = {p.name for p in Path("nw-baselines/base/values").iterdir()}
        for blob in Path(".nwtrials/values").glob("*.npy"):
            if blob.name not in kept:
                blob.write_bytes(b"not what its name says")
"""


def test_a_damaged_value_file_is_never_saved_into_a_baseline(project, monkeypatch):
    base = saved(project)
    project.pytester.makeconftest(DAMAGE_NEW_VALUES)
    train, record = base / "experiments" / "train.py.json", base / "experiments" / "train.py.provenance.json"
    old = {path: path.read_bytes() for path in (train, record)}
    old_prep = json.loads((base / "experiments" / "prep.py.json").read_text())
    (project.root / "version.txt").write_text("2")
    monkeypatch.setenv("NW_DAMAGE", "1")

    result = project.run("--nw-save-baseline=base")
    assert result.ret == 1  # the experiments passed, the save of one failed
    text = output(result)
    [damaged] = [p for p in (project.root / ".nwtrials" / "values").glob("*.npy")
                 if p.read_bytes() == b"not what its name says"]
    assert f"{damaged}: this value file of " in text
    assert "run experiments/train.py again to record it anew, then save with --nw-save-baseline=base" in text
    assert {path: path.read_bytes() for path in old} == old  # the old entry is whole
    assert json.loads((base / "experiments" / "prep.py.json").read_text())["tags"] != old_prep["tags"]
    assert not (base / "values" / damaged.name).exists()
    assert_whole(project, base)

    monkeypatch.delenv("NW_DAMAGE")
    damaged.unlink()  # what the message says: the next run records it anew
    project.run("--nw-save-baseline=base").assert_outcomes(passed=2)
    assert (base / "values" / damaged.name).is_file()
    project.run("--nw-baseline=base").assert_outcomes(passed=2)


# -- an interrupted save ------------------------------------------------------------------------

KILL_ON_RENAME = """
import os, signal, sys

FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nw-baselines", "base") + os.sep
AT = int(os.environ.get("NW_KILL_AT", "0"))
renames = 0


def kill_on_rename(event, args):
    # os.rename and os.replace both raise the "os.rename" audit event, before renaming
    global renames
    if AT and event == "os.rename" and os.path.abspath(os.fsdecode(args[1])).startswith(FOLDER):
        renames += 1
        if renames == AT:
            os.kill(os.getpid(), getattr(signal, os.environ["NW_KILL_SIGNAL"]))


sys.addaudithook(kill_on_rename)
"""


def entries(base: Path) -> dict[str, dict]:
    return {e: json.loads((base / f"{e}.json").read_text()) for e in EXPERIMENTS}


def assert_whole(project, base: Path, pending_ok: bool = False) -> dict[str, str]:
    """Each entry is whole: its value files are there and intact, and its record is the one of
    its trial (unless `pending_ok` and a journal will complete the save). No partial or hidden
    file is in the baseline, and git would add none. Returns each experiment's trial id."""
    ids = {}
    for experiment, doc in entries(base).items():
        ids[experiment] = doc["trial_id"]
        for blob in set(re.findall(r'"blob": "([^"]+)"', json.dumps(doc["tags"]))):
            assert intact(base / "values" / blob), blob
        record = json.loads((base / f"{experiment}.provenance.json").read_text())
        record.pop("trial_id", None)  # saved records name their trial, the store's are named by it
        [trial] = [t for t in project.trials() if t["id"] == doc["trial_id"]]
        own = record_doc(project.root / ".nwtrials", trial)
        journals = list((project.root / "nw-baselines").glob(".saving-*/journal.json"))
        assert record == own or pending_ok and journals, (experiment, journals)
    for path in base.rglob("*"):
        assert not path.name.startswith(".") and not path.name.endswith((".tmp", ".part")), path
    added = subprocess.run(["git", "add", "--dry-run", "nw-baselines"], cwd=project.root, capture_output=True,
                           text=True, check=True).stdout
    assert ".saving" not in added and ".tmp" not in added, added
    return ids


@pytest.mark.parametrize("signame", ["SIGKILL", "SIGINT"])
def test_a_save_interrupted_at_any_rename_leaves_every_entry_old_or_new_and_whole(project, monkeypatch, signame):
    base = saved(project)
    project.pytester.makeconftest(KILL_ON_RENAME)
    old_folder = project.root.parent / f"{project.root.name}-old-baseline"
    shutil.copytree(base, old_folder)
    old_ids = {e: doc["trial_id"] for e, doc in entries(base).items()}
    (project.root / "version.txt").write_text("2")
    monkeypatch.setenv("NW_KILL_SIGNAL", signame)

    position = 0
    while True:
        position += 1
        shutil.rmtree(base)
        shutil.copytree(old_folder, base)
        monkeypatch.setenv("NW_KILL_AT", str(position))
        killed = project.run("--nw-save-baseline=base")
        if killed.ret == 0:
            break  # every rename position has been tried
        assert position < 10, "a save of two experiments makes a handful of renames"
        new_ids = {t["experiment"]: t["id"] for t in project.trials()}
        ids = assert_whole(project, base, pending_ok=True)
        assert all(ids[e] in (old_ids[e], new_ids[e]) for e in EXPERIMENTS), (ids, old_ids, new_ids)

        if position % 2:  # any reader completes the interrupted save: the command line ...
            done = nwtrials("baseline", "show", "base", cwd=project.root)
            assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        monkeypatch.delenv("NW_KILL_AT")
        result = project.run("--nw-baseline=base")  # ... or pytest
        ids = assert_whole(project, base)
        assert all(ids[e] in (old_ids[e], new_ids[e]) for e in EXPERIMENTS), (ids, old_ids, new_ids)
        renewed = sum(ids[e] == new_ids[e] for e in EXPERIMENTS)
        result.assert_outcomes(passed=renewed, failed=2 - renewed)  # old values differ from version 2
        text = output(result)
        assert "is the record of trial" not in text and "not compared" not in text
        assert not list((project.root / "nw-baselines").glob(".saving-*"))
    assert position > 5  # values, record and entry of one experiment, record and entry of the other
    new_ids = {t["experiment"]: t["id"] for t in project.trials()}
    assert assert_whole(project, base) == new_ids


def test_a_record_beside_the_entry_of_another_trial_is_not_used_to_explain(project):
    base = saved(project)
    record = base / "experiments" / "train.py.provenance.json"
    older = record.read_bytes()
    (project.root / "version.txt").write_text("2")
    project.run("--nw-save-baseline=base").assert_outcomes(passed=2)
    record.write_bytes(older)  # as a save stopped between the record and the entry would leave it
    entry = json.loads((base / "experiments" / "train.py.json").read_text())

    result = project.run("--nw-baseline=base", "--nw-capture=fine")  # auto reads no record on a match
    result.assert_outcomes(passed=2)
    text = output(result)
    assert (f"warning: {record}: it is the record of trial {json.loads(older)['trial_id']}, not of trial "
            f"{entry['trial_id']} that its entry was saved from") in text
    assert "the operations are not compared" in text


STAGE_AND_WAIT = """
import sys, time
from pathlib import Path
from pytest_nwtrials.store.baseline_files import Staging
staging = Staging(Path(sys.argv[1]), "base", Path(sys.argv[1]) / "base")
print(staging.path, flush=True)
time.sleep(300)
"""


def test_the_staging_folder_of_a_save_is_removed_only_once_its_process_is_gone(project):
    base = saved(project)
    saver = subprocess.Popen([sys.executable, "-c", STAGE_AND_WAIT, str(base.parent)],
                             stdout=subprocess.PIPE, text=True)
    try:
        staging = Path(saver.stdout.readline().strip())
        assert staging.is_dir() and staging.name.startswith(".saving-")
        shown = nwtrials("baseline", "show", "base", cwd=project.root)
        assert shown.returncode == 0, shown.stderr
        assert staging.is_dir()  # its save may still be running: left alone
    finally:
        saver.kill()
        saver.wait()
    project.run("--nw-baseline=base").assert_outcomes(passed=2)
    assert not staging.exists()  # killed before its journal: removed, and nothing was changed
    assert sorted(p.name for p in base.parent.iterdir() if p.name.startswith(".")) == []
