"""Shared fixtures: a pytester project with experiments, run in a pytest subprocess.

Capture patches builtins process-wide, so every pytest run of the plugin happens in a subprocess
(`runpytest_subprocess`), and every experiment in a child process of that.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy  # noqa: F401 - loaded once, before pytester's sys.modules snapshots (see below)
import pytest

# The plugin does not import numpy when pytest starts. A test that loads a trial in this
# process imports it inside pytester's snapshot of sys.modules, which forgets it afterwards;
# numpy's C extension cannot be imported a second time in one process.

INI = """
[pytest]
nw_experiments =
    {experiments}
{extra}
"""


class Project:
    """An experiment project inside pytester's temporary folder."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.root = Path(pytester.path)

    def ini(self, extra: str = "", experiments: str = "experiments/*.py") -> None:
        self.pytester.makefile(".ini", pytest=INI.format(experiments=experiments, extra=textwrap.dedent(extra)))

    def experiment(self, name: str, code: str) -> Path:
        path = self.root / "experiments" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(code), encoding="utf-8")
        return path

    def run(self, *args: str, timeout: float = 240) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=timeout)

    def gate(self, name: str, before: str, after: str) -> pytest.RunResult:
        """Save experiment `name` as `before` in baseline 'base', change it to `after` and run
        the gate: the failing result."""
        self.experiment(name, before)
        self.run("--nw-save-baseline=base").assert_outcomes(passed=1)
        self.experiment(name, after)
        result = self.run("--nw-baseline=base")
        result.assert_outcomes(failed=1)
        return result

    def trials(self) -> list[dict]:
        folder = self.root / ".nwtrials" / "trials"
        paths = sorted(folder.glob("trial*.json"), key=lambda p: int(p.stem[5:]))
        return [json.loads(p.read_text()) for p in paths]

    def baseline_entry(self, name: str, experiment: str) -> dict:
        return json.loads((self.root / "nw-baselines" / name / f"{experiment}.json").read_text())


def record_file(store: Path, trial: dict) -> Path:
    """The provenance record file of `trial` (a trial record's document) in the store `store`:
    compressed and named by its content, or ``records/<id>.json`` in older stores."""
    return store / "records" / (trial.get("record") or f"{trial['id']}.json")


def record_doc(store: Path, trial: dict) -> dict:
    """The provenance record document of `trial`, decompressed when it is."""
    path = record_file(store, trial)
    data = path.read_bytes()
    return json.loads(gzip.decompress(data) if path.name.endswith(".gz") else data)


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every path under `folder`, links not followed, with what it is: a link's target, a file's
    bytes, and the modification time of each (a folder's changes when an entry is added)."""
    found = {}
    for parent, folders, files in os.walk(folder):
        for name in folders + files:
            path = Path(parent, name)
            info = path.lstat()
            key = path.relative_to(folder).as_posix()
            if path.is_symlink():
                found[key] = ("link", os.readlink(path), info.st_mtime_ns)
            elif path.is_dir():
                found[key] = ("folder", info.st_mtime_ns)
            else:
                found[key] = ("file", path.read_bytes(), info.st_mtime_ns)
    return found


@pytest.fixture
def project(pytester: pytest.Pytester) -> Project:
    project = Project(pytester)
    project.ini()
    return project


# -- a store with several recorded trials, for the API, CLI and report tests ------------------

TRAIN = """
import numpy as np
from pytest_nwtrials import tag
run = int(open("../run.txt").read())
tag("auc", round(0.9 - run / 100, 6))
tag("summary", {"precision": 0.5 + run / 10, "recall": 0.4})
tag("model", "logreg")
tag("epochs", 3)
tag("weights", np.linspace(0.0, 1.0, 50) * (run + 1))
"""

PREP = """
import sys
from pytest_nwtrials import tag
run = int(open("../run.txt").read())
tag("rows", 100 + run)
tag("auc", 0.5)
if run == 2:
    sys.exit(3)
"""

# trial1 prep, trial2 train (saved as baseline 'reference'); trial3 prep, trial4 train;
# trial5 prep (failed: exit status 3), trial6 train
RUNS = [("--nw-save-baseline=reference",), (), ()]


def build_project(root: Path) -> Path:
    """Record three runs of two experiments in `root`, with pytest in a subprocess."""
    (root / "experiments").mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\nnw_experiments = experiments/*.py\n")
    (root / "experiments" / "train.py").write_text(textwrap.dedent(TRAIN))
    (root / "experiments" / "prep.py").write_text(textwrap.dedent(PREP))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    for run, args in enumerate(RUNS):
        (root / "run.txt").write_text(str(run))
        done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
                              cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == (1 if run == 2 else 0), done.stdout + done.stderr
    return root


@pytest.fixture(scope="session")
def nw_project_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One recorded project per test process, copied by `nw_project` for each test."""
    return build_project(tmp_path_factory.mktemp("nwtrials-template") / "project")


@pytest.fixture
def nw_project(nw_project_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the recorded project: rootdir with .nwtrials/ and nw-baselines/."""
    return Path(shutil.copytree(nw_project_template, tmp_path / "project"))


@pytest.fixture
def store(nw_project: Path) -> Path:
    return nw_project / ".nwtrials"


# an experiment whose learning rate the tests of explanations change (0.1 -> 0.5): `rate`
FRAUD = """\
import numpy as np
from pytest_nwtrials import tag

LEARNING_RATE = {rate}
SEED = 0

rng = np.random.default_rng(SEED)
X = rng.normal(size=(60, 3))
y = (X[:, 0] > 0).astype(float)
w = np.zeros(3)
for epoch in range(5):
    p = 1 / (1 + np.exp(-X @ w))
    w -= LEARNING_RATE * X.T @ (p - y) / len(y)
tag("accuracy", float(((X @ w > 0) == y).mean()))
tag("weights", w)
"""


# -- a real browser ----------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NO_CHROMIUM = "no chromium installed (Debian package 'chromium'; .ci/run installs it)"
# screenshots the browser tests save, to look at after a run (kept out of version control)
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"


def chromium(profile: Path, url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run headless Chromium on `url` with `args` (``--dump-dom``, ``--screenshot=PATH``), offline."""
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args, url],
        capture_output=True, text=True, timeout=timeout)
