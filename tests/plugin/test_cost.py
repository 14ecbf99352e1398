"""What a run pays for: nothing in a run that uses no experiment, and a tagged array written once.

Behaviour, not timings (those are in benchmarks/bench_cost.py): which modules and plugins a
pytest run without experiments loads, when the session and the warm capture process start, and
how many times a large array's file is opened while it is recorded.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("numpy", "pandas", "noworkflow", "sqlalchemy", "IPython", "pytest_nwtrials.plugin.session",
         "pytest_nwtrials.store.trial_store", "pytest_nwtrials.api", "pytest_nwtrials.capture.forkserver")

# a conftest that writes, at the end of the run, what the pytest process had loaded and registered
REPORTER = f"""
import json
import sys


def pytest_unconfigure(config):
    plugins = sorted(name for name, _ in config.pluginmanager.list_name_plugin() if name and "nwtrials" in name)
    forkserver = sys.modules.get("pytest_nwtrials.capture.forkserver")
    with open("loaded.json", "w") as handle:
        json.dump({{"heavy": [name for name in {HEAVY!r} if name in sys.modules], "plugins": plugins,
                   "fork_servers": sorted(forkserver._shared) if forkserver else []}}, handle)
"""


def loaded(pytester) -> dict:
    return json.loads(Path(pytester.path, "loaded.json").read_text())


def test_a_run_without_experiments_loads_and_registers_nothing_heavy(pytester):
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(REPORTER)
    pytester.makepyfile(test_plain="""
        import pytest

        @pytest.mark.parametrize("n", range(3))
        def test_square(n):
            assert n * n >= n
    """)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=3)
    seen = loaded(pytester)
    assert seen["heavy"] == []
    assert seen["plugins"] == ["nwtrials"]  # the plugin's module alone: no session, no xdist plugin
    assert seen["fork_servers"] == []


def test_a_test_using_nw_trial_starts_the_session_and_the_capture_process_at_collection(pytester):
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(REPORTER)
    Path(pytester.path, "experiments").mkdir()
    Path(pytester.path, "experiments", "exp.py").write_text("from pytest_nwtrials import tag\ntag('x', 41 + 1)\n")
    pytester.makepyfile(test_exp="""
        import sys

        def test_warm_before_the_first_run(nw_trial):
            # started when the test was collected, before any experiment ran
            assert sys.modules["pytest_nwtrials.capture.forkserver"]._shared
            assert nw_trial.run("experiments/exp.py").values == {"x": 42}
    """)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert "nwtrials-session" in loaded(pytester)["plugins"]
    assert len(list(Path(pytester.path, ".nwtrials", "trials").glob("trial*.json"))) == 1


def test_a_dynamically_requested_nw_trial_starts_the_session_itself(pytester):
    pytester.makeini("[pytest]\n")
    Path(pytester.path, "exp.py").write_text("from pytest_nwtrials import tag\ntag('x', 1)\n")
    pytester.makepyfile(test_exp="""
        def test_requested_by_name(request):
            assert request.getfixturevalue("nw_" + "trial").run("exp.py").values == {"x": 1}
    """)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


ENCODE = """
import hashlib, json, os, sys
import numpy as np
from pytest_nwtrials.values import codec as values
from pytest_nwtrials.values.blobs import BlobStore

folder = sys.argv[1]
reads = []


def audit(event, args):
    if event == "open" and str(args[0]).startswith(folder):
        path, mode, flags = args
        if (mode or "").startswith("r") or mode is None and flags & 3 == os.O_RDONLY:
            reads.append(str(path))


sys.addaudithook(audit)
doc = values.encode(np.arange(500_000, dtype=np.float64), BlobStore(folder))
print(json.dumps({"doc": doc, "reads": reads}))
"""


def test_a_large_array_is_written_once_and_never_read_back(tmp_path):
    folder = tmp_path / "values"
    done = subprocess.run([sys.executable, "-c", ENCODE, str(folder)], cwd=tmp_path, capture_output=True, text=True,
                          check=True)
    report = json.loads(done.stdout)
    blob = report["doc"]["blob"]
    assert report["reads"] == []  # the file is written; it is never read back to be named
    data = (folder / blob).read_bytes()
    assert blob == f"{hashlib.sha256(data).hexdigest()}.npy"  # named by its bytes all the same
    assert [p.name for p in folder.iterdir()] == [blob]


def test_a_gate_on_a_large_array_keeps_one_intact_file(project):
    project.ini()
    project.experiment("big.py", """
        import numpy as np
        from pytest_nwtrials import tag
        tag("values", np.random.default_rng(0).random(300_000))
    """)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    stored = project.root / ".nwtrials" / "values"
    (blob,) = stored.glob("*.npy")
    blob.write_bytes(b"damaged")  # the next run of the same value puts the good bytes back
    project.run("--nw-baseline=base").assert_outcomes(passed=1)
    project.run("--nw-baseline=base").assert_outcomes(passed=1)
    assert [p.name for p in stored.iterdir()] == [blob.name]
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.stem
    baseline_blobs = list((project.root / "nw-baselines" / "base").rglob("*.npy"))
    assert [p.name for p in baseline_blobs] == [blob.name]



# what the pytest process had loaded when a gate ended: a value stored as the baseline stores it
# needs neither numpy nor the comparison engine there
GATE_REPORTER = """
import json
import sys


def pytest_unconfigure(config):
    with open("loaded.json", "w") as handle:
        json.dump([name for name in ("numpy", "pytest_nwtrials.compare.engine", "pytest_nwtrials.compare.diffing")
                   if name in sys.modules], handle)
"""
BIG = """
import numpy as np
from pytest_nwtrials import tag
tag("values", np.random.default_rng(0).random(300_000))
tag("mean", 0.5)
"""


def test_a_matching_gate_links_its_large_array_and_decodes_nothing(project):
    project.ini()
    project.experiment("big.py", BIG)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    (Path(project.root) / "conftest.py").write_text(GATE_REPORTER)
    project.run("--nw-baseline=base").assert_outcomes(passed=1)
    assert json.loads((Path(project.root) / "loaded.json").read_text()) == []
    (saved,) = (project.root / "nw-baselines" / "base").rglob("*.npy")
    stored = project.root / ".nwtrials" / "values" / saved.name
    assert stored.stat().st_ino == saved.stat().st_ino  # one file, two names: nothing written
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == saved.stem


def test_a_baseline_file_damaged_in_place_is_never_linked_nor_matched(project):
    project.ini()
    project.experiment("big.py", BIG)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    (saved,) = (project.root / "nw-baselines" / "base").rglob("*.npy")
    data = bytearray(saved.read_bytes())
    data[-1] ^= 0x40  # an exponent bit of the last element: the same size, another value
    saved.write_bytes(bytes(data))
    project.run("--nw-baseline=base", "--nw-capture=off").assert_outcomes(failed=1)
    stored = project.root / ".nwtrials" / "values" / saved.name
    assert stored.stat().st_ino != saved.stat().st_ino
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == saved.stem  # the run's own bytes
