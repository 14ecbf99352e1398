"""Capture cost on the fraud example: an experiment item against plain ``python`` and ``now run``.

In one run, from copies of ``examples/fraud`` in a temporary folder, best of N each:
- ``python train.py`` (no capture);
- ``python -m noworkflow run train.py`` (noWorkflow alone, its own ``.noworkflow`` store);
- the script as pytest-nwtrials experiment items, per capture mode (fine, coarse, off), in a
  session of four copies of the experiment: the item's own duration (``--durations``), for the
  first item of the session, which also waits for the fork server to preload noWorkflow, and
  for the items after it.
Store growth: bytes a repeated run adds to ``.noworkflow`` and, per trial, to ``.nwtrials``
(median over the runs after the first, whose one-off costs are left out).

Targets: item (fine) <= 0.5x ``now run`` and <= 4x plain python; store growth <= 0.25x noWorkflow's.

Usage: python benchmarks/bench_capture.py [--runs N]
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fraud"


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed, done.stdout


def repeated(command: list[str], cwd: Path, runs: int, store: Path | None = None):
    """Best wall time of `runs` runs, and the median bytes each run after the first added to `store`."""
    times, growth, size = [], [], 0
    for run in range(runs + 1):  # the first run warms caches and pays one-off store costs
        elapsed, out = timed(command, cwd)
        if run:
            times.append(elapsed)
        if store is not None:
            now = folder_size(store)
            if run:
                growth.append(now - size)
            size = now
    return min(times), (statistics.median(growth) if growth else None), out


COPIES = 4


def item_durations(out: str) -> list[float]:
    """The call durations of the copies' items, in the order they ran."""
    found = re.findall(r"^([\d.]+)s call\s+fraud(\d)/train\.py::experiment", out, re.M)
    if len(found) != COPIES:
        sys.exit(f"expected {COPIES} item durations in pytest's output:\n{out[-2000:]}")
    return [float(seconds) for seconds, _ in sorted(found, key=lambda item: item[1])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    root = Path(tempfile.mkdtemp(prefix="bench-capture-"))
    try:
        for name in ("plain", "now"):
            shutil.copytree(EXAMPLE, root / name / "fraud", ignore=shutil.ignore_patterns("*.ipynb", "data"))
        for copy in range(1, COPIES + 1):
            shutil.copytree(EXAMPLE, root / "item" / f"fraud{copy}", ignore=shutil.ignore_patterns("*.ipynb", "data"))
        (root / "item" / "pytest.ini").write_text("[pytest]\nnw_experiments = fraud*/train.py\nnw_keep = 0\n")
        python = sys.executable
        plain, _, _ = repeated([python, "train.py"], root / "plain" / "fraud", runs)
        now, now_growth, _ = repeated([python, "-m", "noworkflow", "run", "train.py"], root / "now" / "fraud",
                                      runs, root / "now" / "fraud" / ".noworkflow")
        items = {}
        for mode in ("fine", "coarse", "off"):
            command = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=0",
                       "--durations-min=0", f"--nw-capture={mode}"]
            first, later, growth = [], [], []
            size = folder_size(root / "item")
            for run in range(runs + 1):
                _, out = timed(command, root / "item")
                current = folder_size(root / "item")
                if run:
                    durations = item_durations(out)
                    first.append(durations[0])
                    later.append(statistics.median(durations[1:]))
                    growth.append((current - size) / COPIES)
                size = current
            items[mode] = (min(first), min(later), statistics.median(growth))
    finally:
        shutil.rmtree(root, ignore_errors=True)

    first, later, growth = items["fine"]
    print(f"fraud example, best of {runs} runs (store growth: median per repeated run)")
    print(f"  plain python train.py                 {plain:6.2f} s")
    print(f"  now run train.py                      {now:6.2f} s   store +{now_growth / 1024:6.1f} KB per run")
    for mode, (mode_first, mode_later, mode_growth) in items.items():
        print(f"  experiment item, capture={mode:<6}      {mode_later:6.2f} s   store +{mode_growth / 1024:6.1f} KB "
              f"per trial   (first item of a session: {mode_first:.2f} s)")
    checks = [
        ("item / now run", later / now, 0.5),
        ("item / plain python", later / plain, 4.0),
        ("first item / now run", first / now, 0.5),
        ("first item / plain python", first / plain, 4.0),
        ("store growth item / now run", growth / now_growth, 0.25),
    ]
    for label, ratio, target in checks:
        print(f"  {label:<30} {ratio:5.2f}x  (target <= {target}x: {'ok' if ratio <= target else 'missed'})")


if __name__ == "__main__":
    main()
