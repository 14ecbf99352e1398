"""Eight CPU-bound experiments with and without pytest-xdist (``-n 2``), whole pytest processes.

Each experiment calls a pure-Python function of a helper module (recorded by fine capture as one
call, as noWorkflow records library code) for a given number of seconds and tags its result.
For each amount of work, prints the best of N wall times of ``pytest`` and ``pytest -n 2`` in
one project, their ratio (target on 2 cores: at least 1.7x), and checks that each session
recorded its 8 trials. Starting the workers costs about 2 s, so short experiments gain less.

Usage: python benchmarks/bench_xdist.py [--runs N] [--work SECONDS,SECONDS,...]
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

HELPER = """
def crunch(seed, seconds):
    '''Pure-Python work of about `seconds` on this machine (calibrated by the benchmark).'''
    total, x = 0, seed
    for _ in range(int({rate} * seconds)):
        x = (x * 1103515245 + 12345) % 2147483648
        total += x % 7
    return total
"""

EXPERIMENT = """
from pytest_nwtrials import tag
from work import crunch
tag("total", crunch({seed}, {seconds}))
"""


def calibrate() -> float:
    """Loop iterations per second of the helper's loop in this Python."""
    namespace: dict = {}
    exec(HELPER.format(rate=1_000_000), namespace)  # noqa: S102 - our own benchmark code
    start = time.perf_counter()
    namespace["crunch"](1, 0.5)
    return 1_000_000 * 0.5 / (time.perf_counter() - start)


def session(folder: Path, args: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        before = len(list((folder / ".nwtrials" / "trials").glob("trial*.json")))
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                              cwd=folder, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        after = len(list((folder / ".nwtrials" / "trials").glob("trial*.json")))
        if done.returncode != 0 or after - before != 8:
            sys.exit(f"pytest {' '.join(args)} failed or lost trials ({after - before} of 8):\n"
                     f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return min(times)


def measure(work: float, runs: int) -> tuple[float, float]:
    folder = Path(tempfile.mkdtemp(prefix="bench-xdist-"))
    try:
        (folder / "experiments").mkdir()
        (folder / "pytest.ini").write_text("[pytest]\nnw_experiments = experiments/exp*.py\nnw_keep = 0\n")
        (folder / "experiments" / "work.py").write_text(HELPER.format(rate=round(calibrate())))
        for seed in range(8):
            (folder / "experiments" / f"exp{seed}.py").write_text(EXPERIMENT.format(seed=seed, seconds=work))
        session(folder, [], 1)  # warm caches
        return session(folder, [], runs), session(folder, ["-n", "2"], runs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--work", default="1,3", help="seconds of work per experiment, comma-separated")
    options = parser.parse_args()
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"8 experiments, best of {options.runs} whole pytest runs")
    for work in (float(w) for w in options.work.split(",")):
        serial, parallel = measure(work, options.runs)
        ratio = serial / parallel
        print(f"  {work:g} s of work each: pytest {serial:6.2f} s, pytest -n 2 {parallel:6.2f} s, "
              f"speed-up {ratio:.2f}x (target >= 1.7x: {'ok' if ratio >= 1.7 else 'missed'})")


if __name__ == "__main__":
    main()
