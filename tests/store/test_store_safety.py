"""The local store under attack and under load: crafted records and links never make garbage
collection (or a reader) touch a file outside the store; two sessions recording at once never
lose a value file; what killed runs leave is reclaimed; a damaged value file is never reused.

Every run is a real pytest session in a subprocess with real noWorkflow captures.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import snapshot
from test_cli import nwtrials
from test_faults import assert_store_consistent

ARRAY = """
import os
import numpy as np
from pytest_nwtrials import tag
tag("weights", np.arange(200_000, dtype=np.float64) + int(os.environ.get("NWV", "0")))
tag("rows", 10)
"""

RUN_THRICE = """
def test_runs(nw_trial):
    for _ in range(3):
        nw_trial.run("experiments/exp.py")
"""


def env(**extra: str) -> dict[str, str]:
    """The environment of a pytest run started by hand (pytester's own variables removed)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return {**base, **extra}


def pytest_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]


def blob_refs(record: dict) -> list[str]:
    return re.findall(r'"blob": "([0-9a-f]{64}\.[a-z]+)"', json.dumps(record["tags"]))


def assert_values_intact(root: Path) -> list[dict]:
    """Every trial record is whole, and every value file it names is there with the bytes its
    name (their sha256) says; no temporary file is left. Returns the records."""
    assert_store_consistent(root)
    records = []
    for path in sorted((root / ".nwtrials" / "trials").glob("trial*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        for blob in blob_refs(record):
            data = (root / ".nwtrials" / "values" / blob).read_bytes()
            assert hashlib.sha256(data).hexdigest() == blob.partition(".")[0], f"{path.name}: {blob} is damaged"
        records.append(record)
    return records


def referenced_only(root: Path) -> None:
    """Every value file of the store is named by a trial record."""
    named = {blob for path in (root / ".nwtrials" / "trials").glob("trial*.json")
             for blob in blob_refs(json.loads(path.read_text(encoding="utf-8")))}
    present = {p.name for p in (root / ".nwtrials" / "values").iterdir()}
    assert present <= named, f"value files no trial uses: {sorted(present - named)}"



def no_traceback(text: str) -> str:
    assert "Traceback" not in text and "INTERNALERROR" not in text, text
    return text


# -- gc stays inside the store ------------------------------------------------------------------


def victim_folder(project) -> Path:
    """A folder next to the rootdir, outside it, with files a crafted store could aim at."""
    victim = project.root.parent / f"{project.root.name}-victim"
    (victim / "sub").mkdir(parents=True)
    for name in ("db.sqlite.gz", "blob.npy", "named.json", "sub/file.txt", "keep.txt"):
        (victim / name).write_bytes(f"precious {name}\n".encode())
    (victim / "link").symlink_to(victim / "keep.txt")
    return victim


RANDOM = """
import numpy as np
from pytest_nwtrials import tag
tag("weights", np.random.default_rng().random(1000))
"""


def record_project(project) -> Path:
    """Four trials of experiments/exp.py, each with a value file and a noWorkflow database of its
    own; the store."""
    project.ini("nw_keep_database = true")
    project.experiment("exp.py", RANDOM)
    project.pytester.makepyfile(test_runs=RUN_THRICE)
    project.run().assert_outcomes(passed=2)
    return project.root / ".nwtrials"


def craft_records(store: Path, victim: Path) -> list[str]:
    """Records and links that name files outside the store; the records they are planted in."""
    out = os.path.relpath(victim, store)  # ../../<victim>
    trials = sorted(store.glob("trials/trial*.json"), key=lambda p: int(p.stem[5:]))
    docs = [json.loads(p.read_text()) for p in trials]
    docs[0]["provenance"] = f"{out}/db.sqlite.gz"
    docs[1]["provenance"] = str(victim / "db.sqlite.gz")
    docs[2]["tags"]["evil"] = {"value": {"__nw__": "ndarray", "blob": f"../{out}/blob.npy"}, "count": 1}
    docs[3]["name"] = f"../{out}/named"
    for path, doc in zip(trials, docs):
        path.write_text(json.dumps(doc))
    (store / "tmp").mkdir(exist_ok=True)
    (store / "tmp" / ("ab" * 16)).symlink_to(victim)  # looks like the folder of a dead session
    (store / "values" / ("cd" * 32 + ".npy")).symlink_to(victim / "keep.txt")  # a value file no trial uses
    (store / "README.md").unlink()
    (store / "README.md").symlink_to(victim / "created.md")  # dangling: writing it would create a file
    return [trials[0].name, trials[1].name, trials[3].name]


@pytest.mark.parametrize("attack", ["records", "values", "provenance", "trials", "tmp"])
def test_gc_never_touches_a_file_outside_the_store(project, attack):
    store = record_project(project)
    victim = victim_folder(project)
    if attack == "records":
        crafted = craft_records(store, victim)
    else:  # a folder of the store replaced by a link to a folder outside, holding copies of its files
        folder = store / attack
        (victim / attack).mkdir()
        for path in folder.iterdir():
            (victim / attack / path.name).write_bytes(path.read_bytes())
        os.rename(folder, store / f"{attack}.real")
        folder.symlink_to(victim / attack)
        crafted = [attack]
    before = snapshot(victim)
    project.ini("nw_keep = 1")

    result = project.run()
    text = no_traceback(result.stdout.str() + result.stderr.str())
    done = nwtrials("gc", "--keep", "1", cwd=project.root)
    assert snapshot(victim) == before
    no_traceback(done.stdout + done.stderr)
    for name in crafted:
        assert name in text and name in done.stderr, (name, text, done.stderr)
    if attack == "records":
        result.assert_outcomes(passed=2)
        assert "not a valid trial record ('provenance'" in text and "(it names itself" in text
        assert done.returncode == 0
    else:  # the store is refused as a whole, saying which folder leads where
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert f"the store's {attack} {store / attack} leads outside {store}" in text
        assert done.returncode == 2 and "leads outside" in done.stderr


def test_a_record_naming_another_provenance_database_is_skipped_by_readers(project):
    store = record_project(project)
    first, second = sorted(store.glob("trials/trial*.json"))[:2]
    doc = json.loads(first.read_text())
    doc["provenance"] = json.loads(second.read_text())["provenance"]  # another trial's database
    first.write_text(json.dumps(doc))
    done = nwtrials("list", cwd=project.root)
    assert done.returncode == 0
    assert f"{first}: not a valid trial record ('provenance' " in done.stderr
    assert "trial1" not in done.stdout and "trial2" in done.stdout


@pytest.mark.parametrize("name", ["../../outside.json.gz", "records/" + "ab" * 32 + ".json.gz", "ab" * 32 + ".json"])
def test_a_record_naming_a_path_as_its_provenance_record_is_skipped_by_readers(project, name):
    store = record_project(project)
    first = sorted(store.glob("trials/trial*.json"))[0]
    doc = json.loads(first.read_text())
    assert doc["record"].endswith(".json.gz")
    first.write_text(json.dumps({**doc, "record": name}))
    done = nwtrials("list", cwd=project.root)
    assert done.returncode == 0
    assert f"{first}: not a valid trial record ('record' " in done.stderr
    assert "trial1" not in done.stdout and "trial2" in done.stdout


# -- two sessions at once -----------------------------------------------------------------------

SLOW = """
import os, time
from pathlib import Path
import numpy as np
from pytest_nwtrials import tag
tag("weights", np.arange(200_000, dtype=np.float64) + int(os.environ.get("NWV", "0")))
Path("../tagged").write_text("")
deadline = time.monotonic() + 120
while not Path("../go").exists() and time.monotonic() < deadline:
    time.sleep(0.05)
"""


def wait_for(path: Path, proc: subprocess.Popen, log: Path, within: float = 120) -> None:
    deadline = time.monotonic() + within
    while not path.exists():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def test_pruning_by_another_session_never_removes_a_value_file_a_running_trial_uses(project):
    """Session X tags a value an old trial already stored; meanwhile session Y records a newer
    trial of that old trial's experiment and prunes it (nw_keep = 1); X's trial keeps its value."""
    project.ini("nw_keep = 1")
    project.experiment("fast.py", ARRAY)
    project.experiment("slow.py", SLOW)
    root = project.root
    first = subprocess.run(pytest_cmd("experiments/fast.py"), cwd=root, env=env(NWV="0"),
                           capture_output=True, text=True, timeout=240)
    assert first.returncode == 0, first.stdout + first.stderr
    log = root / "x.log"
    with open(log, "wb") as out:
        x = subprocess.Popen(pytest_cmd("experiments/slow.py", "--nw-json=x.json"), cwd=root, env=env(NWV="0"),
                             stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(root / "tagged", x, log)
        y = subprocess.run(pytest_cmd("experiments/fast.py"), cwd=root, env=env(NWV="1"),
                           capture_output=True, text=True, timeout=240)
        assert y.returncode == 0, y.stdout + y.stderr
        assert "removed 1 old trial from the local store" in y.stdout
        assert x.poll() is None and not (root / "x.json").exists(), "X was to be still running"
        (root / "go").write_text("")
        assert x.wait(timeout=240) == 0, log.read_text()
    finally:
        if x.poll() is None:
            x.kill()
            x.wait()
    records = assert_values_intact(root)
    referenced_only(root)
    assert sorted(r["experiment"] for r in records) == ["experiments/fast.py", "experiments/slow.py"]
    [slow] = json.loads((root / "x.json").read_text())["experiments"]
    assert slow["verdict"] == "recorded" and "(unreadable)" not in slow["tags"]

    from pytest_nwtrials import load_trial

    import numpy as np

    trial = load_trial(slow["trial"], store=root / ".nwtrials")
    np.testing.assert_array_equal(trial.values["weights"], np.arange(200_000, dtype=np.float64))


def test_two_sessions_recording_at_once_lose_no_trial_and_no_value(project):
    """Two sessions started together, each tagging values the other's older trials hold, each
    pruning (nw_keep = 1) while the other records; repeated."""
    project.ini("nw_keep = 1")
    for name in ("a.py", "b.py", "c.py"):
        project.experiment(name, ARRAY)
    root = project.root
    names: list[str] = []
    for round_ in range(3):
        procs = [subprocess.Popen(pytest_cmd(f"--nw-json={who}.json"), cwd=root, env=env(NWV=str(round_ + k)),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                 for k, who in enumerate("xy")]
        outputs = [proc.communicate(timeout=300)[0].decode() for proc in procs]
        for proc, output in zip(procs, outputs):
            assert proc.returncode == 0, output
            no_traceback(output)
        for who in "xy":
            report = json.loads((root / f"{who}.json").read_text())
            assert report["summary"]["run"] == 3
            for experiment in report["experiments"]:  # read back from the store at the session's end
                assert experiment["verdict"] == "recorded" and "(unreadable)" not in experiment["tags"], experiment
                assert experiment["tags"]["rows"] == 10
            names.extend(e["trial"] for e in report["experiments"])
        assert_values_intact(root)
        referenced_only(root)
    assert len(names) == len(set(names)) == 18  # every trial got a name of its own
    assert sorted(r["experiment"] for r in assert_values_intact(root)) == [
        "experiments/a.py", "experiments/b.py", "experiments/c.py"]
    assert list((root / ".nwtrials" / "tmp").iterdir()) == []


# -- what killed runs leave ---------------------------------------------------------------------


def kill_mid_experiment(project) -> None:
    """Start pytest on experiments/slow.py and SIGKILL it once the experiment has tagged a value."""
    root = project.root
    log = root / "killed.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(pytest_cmd("experiments/slow.py"), cwd=root, env=env(NWV="7"),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(root / "tagged", proc, log)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # pytest and what shares its group
        proc.wait()
    (root / "go").write_text("")  # the experiment, if still running, ends by itself


def plant_leftovers(store: Path) -> list[Path]:
    """Files interrupted writes leave, and files no trial references."""
    orphan = b"\x93NUMPY a value of a trial that was never recorded"
    planted = {
        "values/.tmp-k2j3h4.part": b"half a value",
        "trials/.new.4242.tmp": b"{",
        "trials/..new.4242.tmp.4242.tmp": b"{",
        "records/.0b7a.json.4242.tmp": b"{",
        "provenance/.0b7a.sqlite.gz.4242.tmp": b"",
        f"values/{hashlib.sha256(orphan).hexdigest()}.npy": orphan,
        "records/0b7a4e1c-dead-4bad-8bad-000000000000.json": b"{}",
        "provenance/0b7a4e1c-dead-4bad-8bad-000000000000.sqlite.gz": b"",
        f"records/{hashlib.sha256(b'a record').hexdigest()}.json.gz": b"a record",
    }
    for relative, data in planted.items():
        (store / relative).parent.mkdir(parents=True, exist_ok=True)
        (store / relative).write_bytes(data)
    return [store / relative for relative in planted]


def test_gc_reclaims_what_a_killed_run_left_and_keeps_earlier_trials(project):
    project.experiment("exp.py", ARRAY)
    project.experiment("slow.py", SLOW)
    root, store = project.root, project.root / ".nwtrials"
    project.run("experiments/exp.py").assert_outcomes(passed=1)
    earlier = assert_values_intact(root)
    kill_mid_experiment(project)
    dead = [p for p in (store / "tmp").iterdir()]
    assert dead, "the killed session left no staging folder: the test kills too late"
    assert any((p / "run1" / "values").glob("*.npy") for p in dead if p.is_dir())
    planted = plant_leftovers(store)

    dry = nwtrials("gc", "--keep", "5", "--dry-run", cwd=root)
    assert dry.returncode == 0, dry.stderr
    assert "would remove files no trial uses" in dry.stdout
    assert "  value files: 1 files" in dry.stdout
    assert f"  left by interrupted runs: {len(planted) - 1 + len(dead)} files" in dry.stdout
    assert all(p.exists() for p in planted + dead)

    done = nwtrials("gc", "--keep", "5", cwd=root)
    assert done.returncode == 0, done.stderr
    assert not any(os.path.lexists(p) for p in planted + dead)
    assert list((store / "tmp").iterdir()) == []
    assert assert_values_intact(root) == earlier
    referenced_only(root)

    from pytest_nwtrials import load_trial

    assert load_trial("trial1", store=store).values["rows"] == 10


def test_the_session_end_reclaims_what_a_killed_run_left(project):
    project.experiment("exp.py", ARRAY)
    project.experiment("slow.py", SLOW)
    root, store = project.root, project.root / ".nwtrials"
    kill_mid_experiment(project)
    planted = plant_leftovers(store)
    project.run("experiments/exp.py").assert_outcomes(passed=1)  # nw_keep = 50 by default
    assert not any(os.path.lexists(p) for p in planted)
    assert list((store / "tmp").iterdir()) == []
    referenced_only(root)
    assert [r["experiment"] for r in assert_values_intact(root)] == ["experiments/exp.py"]


def test_value_files_stay_while_a_trial_record_cannot_be_read(project):
    project.experiment("exp.py", ARRAY)
    root, store = project.root, project.root / ".nwtrials"
    project.run().assert_outcomes(passed=1)
    project.run().assert_outcomes(passed=1)
    [orphan] = [p for p in plant_leftovers(store) if p.suffix == ".npy"]
    broken = store / "trials" / "trial1.json"
    broken.write_text("{ not json")
    done = nwtrials("gc", "--keep", "5", cwd=root)
    assert done.returncode == 0, done.stderr
    assert f"value files were not removed: {broken} cannot be read" in done.stderr
    assert orphan.exists()
    broken.unlink()
    assert nwtrials("gc", "--keep", "5", cwd=root).returncode == 0
    assert not orphan.exists()
    referenced_only(root)


# -- damaged value files are healed, never reused -----------------------------------------------


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_a_damaged_value_file_is_replaced_when_a_trial_tags_that_value_again(project, how):
    project.experiment("exp.py", ARRAY)
    root, store = project.root, project.root / ".nwtrials"
    project.run().assert_outcomes(passed=1)
    [blob] = (store / "values").glob("*.npy")
    data = blob.read_bytes()
    blob.write_bytes(data[: len(data) // 2] if how == "truncated" else b"\x00\xff not a value file")

    project.run().assert_outcomes(passed=1)
    assert blob.read_bytes() == data
    from pytest_nwtrials import load_trial

    import numpy as np

    for name in ("trial1", "trial2"):  # the earlier trial is repaired too: its value was the same
        np.testing.assert_array_equal(load_trial(name, store=store).values["weights"],
                                      np.arange(200_000, dtype=np.float64))
    blob.write_bytes(b"damaged again")
    saved = project.run("--nw-save-baseline=base")
    saved.assert_outcomes(passed=1)
    [copy] = (root / "nw-baselines" / "base").rglob(blob.name)
    assert copy.read_bytes() == data and blob.read_bytes() == data
