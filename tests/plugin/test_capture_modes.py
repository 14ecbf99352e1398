"""Capture modes (fine, coarse, off), the compressed provenance kept per trial, and nw_keep."""
from __future__ import annotations

import gzip
import sqlite3

import pytest

LOOP = """
from pytest_nwtrials import tag
total = 0
for i in range(50):
    total += i
tag("total", total)
now_tag_variable("twice", total * 2)
"""


def operations(project, trial: dict) -> int:
    """The number of evaluations noWorkflow recorded for `trial`, read from its archive."""
    archive = project.root / ".nwtrials" / trial["provenance"]
    db = project.root / "db.sqlite"
    db.write_bytes(gzip.decompress(archive.read_bytes()))
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute("SELECT count(*) FROM evaluation WHERE trial_id = ?", (trial["id"],)).fetchone()
        (env,) = conn.execute("SELECT count(*) FROM environment_attr WHERE trial_id = ?", (trial["id"],)).fetchone()
        (modules,) = conn.execute("SELECT count(*) FROM module").fetchone()
    db.unlink()
    assert 10 < env < 400 and modules == 0  # no sysconf table, no module analysis
    return count


@pytest.mark.parametrize("how", ["option", "ini", "marker"])
def test_capture_modes_from_option_ini_and_marker(project, how):
    project.ini("nw_keep_database = true")  # `operations` reads noWorkflow's database
    project.experiment("loop.py", LOOP)
    project.run().assert_outcomes(passed=1)  # fine, the default
    if how == "option":
        args = ["--nw-capture=coarse"]
    elif how == "ini":
        project.ini("nw_capture = coarse\nnw_keep_database = true")
        args = []
    else:
        project.pytester.makeconftest(
            "import pytest\n"
            "def pytest_collection_modifyitems(items):\n"
            "    for item in items:\n"
            "        item.add_marker(pytest.mark.nw(capture='coarse'))\n")
        args = []
    project.run(*args).assert_outcomes(passed=1)
    fine, coarse = project.trials()
    assert fine["tags"]["total"]["value"] == coarse["tags"]["total"]["value"] == 1225
    assert coarse["tags"]["twice"]["value"] == 2450
    assert operations(project, coarse) * 3 < operations(project, fine)


def test_capture_off_records_values_without_provenance(project):
    project.experiment("loop.py", LOOP)
    project.experiment("fails.py", "import json\nraise ValueError('bad input')\n")
    result = project.run("--nw-capture=off", "--nw-ops=strict")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*fails.py\", line 2, in <module>*", "*ValueError: bad input*"])
    trials = {t["experiment"]: t for t in project.trials()}
    loop = trials["experiments/loop.py"]
    assert loop["provenance"] == "" and loop["status"] == "finished"
    assert loop["tags"]["total"]["value"] == 1225 and loop["tags"]["twice"]["value"] == 2450
    assert "record" not in loop and not (project.root / ".nwtrials" / "records").exists()
    assert trials["experiments/fails.py"]["error"]["type"] == "ValueError"


def test_bad_capture_marker_fails_the_item(project):
    project.experiment("loop.py", LOOP)
    project.pytester.makeconftest(
        "import pytest\n"
        "def pytest_collection_modifyitems(items):\n"
        "    items[0].add_marker(pytest.mark.nw(capture='full'))\n")
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.nw capture must be one of auto, fine, coarse, off, got 'full'*"])


def test_each_trial_keeps_its_own_compressed_database_when_asked(project):
    project.ini("nw_keep_database = true")
    project.experiment("loop.py", LOOP)
    for _ in range(2):
        project.run().assert_outcomes(passed=1)
    first, second = project.trials()
    assert first["provenance"] == f"provenance/{first['id']}.sqlite.gz"
    assert operations(project, first) == operations(project, second) > 50
    assert not (project.root / ".nwtrials" / "provenance" / "main").exists()


def test_nw_keep_removes_older_trials_and_their_files(project):
    project.ini("nw_keep = 2")
    project.experiment("loop.py", LOOP)
    project.experiment("other.py", "from pytest_nwtrials import tag\ntag('x', 1)\n")
    for _ in range(2):
        project.run().assert_outcomes(passed=2)
    result = project.run("experiments/loop.py")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["removed 1 old trial from the local store (nw_keep = 2 per experiment)"])
    kept = project.trials()
    assert [(t["name"], t["experiment"]) for t in kept] == [
        ("trial2", "experiments/other.py"), ("trial3", "experiments/loop.py"),
        ("trial4", "experiments/other.py"), ("trial5", "experiments/loop.py")]
    store = project.root / ".nwtrials"
    assert not (store / "provenance").exists()  # noWorkflow's databases are not kept by default
    assert sorted(p.name for p in (store / "records").iterdir()) == sorted({t["record"] for t in kept})


def test_nw_keep_zero_keeps_every_trial(project):
    project.ini("nw_keep = 0")
    project.experiment("other.py", "from pytest_nwtrials import tag\ntag('x', 1)\n")
    for _ in range(3):
        project.run().assert_outcomes(passed=1)
    assert len(project.trials()) == 3
