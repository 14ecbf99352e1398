"""The noWorkflow fraud-detection use case end to end: part 1 as the baseline, part 4 in its place.

See tests/data/tutorial/README.md for where the notebooks come from. Both notebooks run once per
test module (about 40 s); the tests read the reports.
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

pytest.importorskip("sklearn")
pytest.importorskip("imblearn")

TUTORIAL = Path(__file__).parent / "data" / "tutorial"
EXPERIMENT = "experiments/now_usecase_part_1.ipynb"


def _pytest(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The gate's report of part 4 against part 1 (plain and with -v) and the two trial records."""
    root = tmp_path_factory.mktemp("tutorial")
    experiments = root / "experiments"
    experiments.mkdir()
    for part in (1, 4):
        shutil.copy(TUTORIAL / f"now_usecase_part_{part}.ipynb", experiments)
    subprocess.run([sys.executable, str(TUTORIAL / "make_creditcard.py"), str(experiments)], check=True,
                   capture_output=True)
    (root / "pytest.ini").write_text(f"[pytest]\nnw_experiments = {EXPERIMENT}\n")
    saved = _pytest(root, "--nw-save-baseline=tutorial")
    assert saved.returncode == 0, saved.stdout + saved.stderr
    shutil.copy(experiments / "now_usecase_part_4.ipynb", experiments / "now_usecase_part_1.ipynb")
    plain, verbose = _pytest(root, "--nw-baseline=tutorial"), _pytest(root, "--nw-baseline=tutorial", "-v")
    assert plain.returncode == verbose.returncode == 1, plain.stdout + plain.stderr
    trials = [json.loads(path.read_text()) for path in sorted((root / ".nwtrials" / "trials").glob("trial*.json"))]
    return {"plain": plain.stdout, "verbose": verbose.stdout, "trials": trials}


def why(report: str) -> str:
    return report.split("Why it changed:")[1].split("To accept the new values")[0]


def test_files_the_notebook_wrote_are_not_reported_as_inputs(tutorial):
    written = {path for trial in tutorial["trials"] for path, seen in trial["inputs"]["files"].items()
               if seen["written"]}
    assert {"experiments/ops.dat", "experiments/ops.dir"} <= written  # store_operations' shelve
    plain = why(tutorial["plain"])
    assert "f1_metric" in plain and "roc_metric" in plain
    assert "input file" not in plain  # the data set did not change; the shelve is an output
    assert "b'" not in tutorial["plain"]  # dbm.dumb opens bytes paths: they are named as paths
    assert "input file" not in why(tutorial["verbose"])
    assert "wrote a different experiments/ops.dat (sha1 " in why(tutorial["verbose"])


def test_swapped_pca_and_undersampling_are_named_as_a_reorder(tutorial):
    plain = why(tutorial["plain"])
    assert not re.search(r"moved from op (\d+) to op \1\b", plain)
    assert not re.search(r"\bop (\d+) -> \1\)", plain)
    section = plain.split("in the provenance of f1_metric")[1]
    headline = section.strip().splitlines()[1].strip()  # after "(and roc_metric):"
    assert headline.startswith("reordered: `PCA(n_components=pca_components)` now runs after "
                               "`rus.fit_resample(X, y)`"), headline
    assert headline.endswith("cell 8 -> cell 10"), headline
