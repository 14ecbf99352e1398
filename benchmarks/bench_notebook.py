"""Wall time of a small notebook under pytest-nwtrials against the same notebook under nbmake.

Prints, best of N runs each (whole pytest processes, started from here one after another):
- the notebook as a pytest-nwtrials experiment item (capture kernel, trial recorded);
- the same notebook under ``pytest --nbmake`` (runs it, no capture);
- the same code as a script, as an experiment item and under plain ``python``: their difference
  is the capture cost of that code.
Target: notebook item <= 1.5 x nbmake + capture cost. Needs nbmake (``pip install -e .[bench]``).

Usage: python benchmarks/bench_notebook.py [--runs N]
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

CELLS = [
    "import numpy as np\nfrom pytest_nwtrials import tag",
    "rng = np.random.default_rng(0)\nX = rng.normal(size=(2000, 5))\ny = (X @ np.arange(5) > 0).astype(float)",
    "w = np.zeros(5)\nfor _ in range(50):\n    p = 1 / (1 + np.exp(-X @ w))\n    w -= 0.1 * X.T @ (p - y) / len(y)",
    "accuracy = float(((1 / (1 + np.exp(-X @ w)) > 0.5) == y).mean())",
    "tag('accuracy', accuracy)\ntag('w', w)",
]


def make_project(folder: Path) -> None:
    nb = new_notebook(cells=[new_code_cell(source) for source in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "small.ipynb")
    (folder / "small.py").write_text("\n".join(CELLS) + "\n")
    (folder / "pytest.ini").write_text("[pytest]\nnw_experiments =\n    small.ipynb\n    small.py\n")


def best(command: list[str], cwd: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    folder = Path(tempfile.mkdtemp(prefix="bench-notebook-"))
    try:
        make_project(folder)
        pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        notebook_item = best(pytest + ["small.ipynb"], folder, runs)
        nbmake = best(pytest + ["-p", "no:nwtrials", "--nbmake", "small.ipynb"], folder, runs)
        script_item = best(pytest + ["small.py"], folder, runs)
        plain = best([sys.executable, "small.py"], folder, runs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    capture = script_item - plain
    target = 1.5 * nbmake + capture
    print(f"best of {runs} runs, whole processes")
    print(f"  notebook as an experiment item     {notebook_item:6.2f} s")
    print(f"  notebook under pytest --nbmake     {nbmake:6.2f} s   ratio {notebook_item / nbmake:.2f}x")
    print(f"  script as an experiment item       {script_item:6.2f} s")
    print(f"  script under plain python          {plain:6.2f} s   capture cost {capture:.2f} s")
    print(f"  target: 1.5 x nbmake + capture = {target:.2f} s -> "
          f"{'ok' if notebook_item <= target else 'missed'} ({notebook_item:.2f} s)")


if __name__ == "__main__":
    main()
