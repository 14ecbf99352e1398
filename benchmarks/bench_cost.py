"""What a run costs end to end, against what it stands in for: whole processes, side by side.

Every variant is a whole process (wall time, CPU time of the process and the children it waited
for, and its peak resident memory, from ``os.wait4``). Each round runs every variant of a case
once, in turn, so that a busy machine slows them alike; the figures are medians over the rounds.

Cases (``--cases``, all by default):
- ``fraud``: the fraud example (``examples/fraud/train.py``) gated against its committed
  baseline: a passing gate, a failing gate (``LEARNING_RATE = 0.1``) and a baseline save, against
  ``python train.py`` plus an empty ``pytest`` run, and against noWorkflow's ``now run train.py``.
- ``array``: an experiment that tags an array of 10 million floats, gated against a saved
  baseline, against ``python`` running the same script and against pytest-regressions'
  ``ndarrays_regression`` checking the same array (``pip install -e ".[bench]"``).
- ``notebooks``: five small notebooks (five cells each, numpy) gated against a saved baseline,
  against ``pytest --nbmake`` on the same notebooks.
- ``inert``: a project of 50 ordinary tests and no experiments, with the plugin installed,
  against the same run with ``-p no:nwtrials``.

Targets: passing gate <= 1.5x (python + empty pytest); the array gate <= 1.5x python and below
pytest-regressions; five notebooks <= 1.3x nbmake; the inert run within noise of
``-p no:nwtrials``.

Usage: python benchmarks/bench_cost.py [--runs N] [--cases fraud,array,notebooks,inert]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
PYTHON = sys.executable
PYTEST = (PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider")


@dataclass
class Cost:
    wall: float
    cpu: float
    rss_mb: float


@dataclass
class Variant:
    label: str
    command: tuple[str, ...]
    cwd: Path
    codes: tuple[int, ...] = (0,)


def measure(variant: Variant) -> Cost:
    """One whole run of `variant`; exits with its output if it ends with an unexpected code."""
    with tempfile.TemporaryFile() as output:
        start = time.perf_counter()
        process = subprocess.Popen(variant.command, cwd=variant.cwd, stdout=output, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = code = os.waitstatus_to_exitcode(status)
        if code not in variant.codes:
            output.seek(0)
            sys.exit(f"{variant.label}: {' '.join(variant.command)} exited {code}:\n"
                     f"{output.read().decode(errors='replace')[-4000:]}")
    return Cost(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def rounds(variants: list[Variant], runs: int) -> dict[str, Cost]:
    """Median cost of each variant over `runs` rounds, after one warm-up round."""
    seen: dict[str, list[Cost]] = {variant.label: [] for variant in variants}
    for round_ in range(runs + 1):
        for variant in variants:
            cost = measure(variant)
            if round_:
                seen[variant.label].append(cost)
    return {label: Cost(*(statistics.median(getattr(cost, field) for cost in costs)
                          for field in ("wall", "cpu", "rss_mb")))
            for label, costs in seen.items()}


def run_once(command: tuple[str, ...], cwd: Path) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"setup {' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def table(title: str, costs: dict[str, Cost], reference: str | None = None) -> None:
    print(f"\n{title}")
    print(f"  {'run':<52} {'wall':>8} {'CPU':>8} {'peak RSS':>10}")
    for label, cost in costs.items():
        ratio = f"  {cost.wall / costs[reference].wall:5.2f}x {reference}" if reference and label != reference else ""
        print(f"  {label:<52} {cost.wall:7.2f}s {cost.cpu:7.2f}s {cost.rss_mb:8.0f}MB{ratio}")


def target(label: str, value: float, limit: float, below: bool = True) -> None:
    verdict = "met" if (value <= limit) == below else "NOT met"
    print(f"  target {label}: {value:.2f} {'<=' if below else '>='} {limit:g}: {verdict}")


# the default, auto, runs a gate without capture first; fine is what every gate paid before auto
FINE = "--nw-capture=fine"


def fraud_case(root: Path, runs: int) -> None:
    for name in ("gate", "failing", "save"):
        shutil.copytree(EXAMPLES / "fraud", root / name / "fraud", ignore=shutil.ignore_patterns("*.ipynb"))
        shutil.copytree(EXAMPLES / "nw-baselines", root / name / "nw-baselines")
        (root / name / "pytest.ini").write_text("[pytest]\nnw_experiments = fraud/train.py\nnw_baseline = reference\n")
    train = root / "failing" / "fraud" / "train.py"
    train.write_text(train.read_text().replace("LEARNING_RATE = 0.5", "LEARNING_RATE = 0.1"))
    shutil.copytree(EXAMPLES / "fraud", root / "now" / "fraud", ignore=shutil.ignore_patterns("*.ipynb"))
    (root / "empty").mkdir()
    (root / "empty" / "pytest.ini").write_text("[pytest]\n")
    costs = rounds([
        Variant("python train.py", (PYTHON, "train.py"), root / "gate" / "fraud"),
        Variant("empty pytest run (-p no:nwtrials)", (*PYTEST, "-p", "no:nwtrials"), root / "empty", (5,)),
        Variant("now run train.py", (PYTHON, "-m", "noworkflow", "run", "-v", "train.py"), root / "now" / "fraud"),
        Variant("pytest, passing gate", PYTEST, root / "gate"),
        Variant("pytest, passing gate, --nw-capture=fine", (*PYTEST, FINE), root / "gate"),
        Variant("pytest, failing gate", PYTEST, root / "failing", (1,)),
        Variant("pytest, failing gate, --nw-capture=fine", (*PYTEST, FINE), root / "failing", (1,)),
        Variant("pytest --nw-save-baseline", (*PYTEST, "--nw-save-baseline=reference"), root / "save"),
    ], runs)
    reference = Cost(*(getattr(costs["python train.py"], field) + getattr(costs["empty pytest run (-p no:nwtrials)"], field)
                       for field in ("wall", "cpu", "rss_mb")))
    costs = {"python train.py + empty pytest run": reference, **costs}
    table(f"fraud example (median of {runs} rounds)", costs, "python train.py + empty pytest run")
    print(f"  passing gate / now run: {costs['pytest, passing gate'].wall / costs['now run train.py'].wall:.2f}x")
    target("passing gate / (python + empty pytest)", costs["pytest, passing gate"].wall / reference.wall, 1.5)


ARRAY_SCRIPT = """\
import numpy as np

from pytest_nwtrials import tag

values = tag("values", np.random.default_rng(0).random(10_000_000))
print(float(values.mean()))
"""

REGRESSION_TEST = """\
import numpy as np


def test_values(ndarrays_regression):
    values = np.random.default_rng(0).random(10_000_000)
    ndarrays_regression.check({"values": values})
"""


def array_case(root: Path, runs: int) -> None:
    (root / "array").mkdir()
    (root / "array" / "big.py").write_text(ARRAY_SCRIPT)
    (root / "array" / "pytest.ini").write_text("[pytest]\nnw_experiments = big.py\nnw_baseline = bench\n")
    run_once((*PYTEST, "--nw-save-baseline=bench"), root / "array")
    (root / "regressions").mkdir()
    (root / "regressions" / "test_big.py").write_text(REGRESSION_TEST)
    (root / "regressions" / "pytest.ini").write_text("[pytest]\n")
    done = subprocess.run((*PYTEST, "-p", "no:nwtrials", "--force-regen"), cwd=root / "regressions",
                          capture_output=True, text=True)
    if done.returncode not in (0, 1):  # --force-regen fails the test that wrote the file
        sys.exit(f"pytest-regressions setup failed (pip install -e '.[bench]'):\n{done.stdout[-3000:]}")
    (root / "empty").mkdir()
    (root / "empty" / "pytest.ini").write_text("[pytest]\n")
    costs = rounds([
        Variant("python big.py", (PYTHON, "big.py"), root / "array"),
        Variant("empty pytest run (-p no:nwtrials)", (*PYTEST, "-p", "no:nwtrials"), root / "empty", (5,)),
        Variant("pytest, passing gate on the array", PYTEST, root / "array"),
        Variant("pytest, passing gate on the array, --nw-capture=fine", (*PYTEST, FINE), root / "array"),
        Variant("pytest-regressions ndarrays_regression", (*PYTEST, "-p", "no:nwtrials"), root / "regressions"),
    ], runs)
    plain = costs["python big.py"]
    both = Cost(*(getattr(plain, field) + getattr(costs["empty pytest run (-p no:nwtrials)"], field)
                  for field in ("wall", "cpu", "rss_mb")))
    costs = {"python big.py + empty pytest run": both, **costs}
    table(f"a tag of 10 million floats (median of {runs} rounds)", costs, "python big.py")
    gate = costs["pytest, passing gate on the array"].wall
    target("array gate / python", gate / plain.wall, 1.5)
    target("array gate / (python + empty pytest)", gate / both.wall, 1.5)
    target("array gate / pytest-regressions", gate / costs["pytest-regressions ndarrays_regression"].wall, 1.0)


def notebook(index: int) -> dict:
    cells = [
        "import numpy as np\nfrom pytest_nwtrials import tag",
        f"rng = np.random.default_rng({index})",
        "data = rng.normal(size=(200, 5))",
        "means = data.mean(axis=0)",
        "tag('means', means)\nprint(means.round(3))",
    ]
    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                         "language_info": {"name": "python"}},
            "cells": [{"cell_type": "code", "id": f"c{number}", "metadata": {}, "execution_count": None,
                       "outputs": [], "source": source} for number, source in enumerate(cells)]}


def notebooks_case(root: Path, runs: int) -> None:
    for name in ("items", "nbmake"):
        (root / name / "notebooks").mkdir(parents=True)
        for index in range(1, 6):
            (root / name / "notebooks" / f"nb{index}.ipynb").write_text(json.dumps(notebook(index), indent=1))
    (root / "items" / "pytest.ini").write_text("[pytest]\nnw_experiments = notebooks/*.ipynb\nnw_baseline = bench\n")
    (root / "nbmake" / "pytest.ini").write_text("[pytest]\n")
    run_once((*PYTEST, "--nw-save-baseline=bench"), root / "items")
    costs = rounds([
        Variant("pytest --nbmake (-p no:nwtrials)", (*PYTEST, "-p", "no:nwtrials", "--nbmake", "notebooks"),
                root / "nbmake"),
        Variant("pytest, passing gate on five notebooks", PYTEST, root / "items"),
        Variant("pytest, passing gate on five notebooks, --nw-capture=fine", (*PYTEST, FINE), root / "items"),
    ], runs)
    table(f"five small notebooks (median of {runs} rounds)", costs, "pytest --nbmake (-p no:nwtrials)")
    target("notebooks / nbmake", costs["pytest, passing gate on five notebooks"].wall
           / costs["pytest --nbmake (-p no:nwtrials)"].wall, 1.3)


def inert_case(root: Path, runs: int) -> None:
    (root / "inert").mkdir()
    (root / "inert" / "pytest.ini").write_text("[pytest]\n")
    (root / "inert" / "test_plain.py").write_text(
        "import pytest\n\n\n@pytest.mark.parametrize('n', range(50))\ndef test_square(n):\n    assert n * n >= n\n")
    costs = rounds([
        Variant("pytest -p no:nwtrials", (*PYTEST, "-p", "no:nwtrials"), root / "inert"),
        Variant("pytest (plugin installed, no experiments)", PYTEST, root / "inert"),
    ], runs)
    table(f"50 ordinary tests, no experiments (median of {runs} rounds)", costs, "pytest -p no:nwtrials")
    plugin, without = costs["pytest (plugin installed, no experiments)"], costs["pytest -p no:nwtrials"]
    print(f"  CPU {plugin.cpu / without.cpu:.2f}x, peak RSS +{plugin.rss_mb - without.rss_mb:.1f} MB")


CASES = {"fraud": fraud_case, "array": array_case, "notebooks": notebooks_case, "inert": inert_case}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    chosen = [name.strip() for name in args.cases.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}: choose from {', '.join(CASES)}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    root = Path(tempfile.mkdtemp(prefix="bench-cost-"))
    try:
        for name in chosen:
            (root / name).mkdir()
            CASES[name](root / name, args.runs)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
