"""Cost of ``--nw-repeat=3`` on the fraud example, against three plain runs.

In one run, from copies of ``examples/fraud/train.py`` in a temporary folder (a session of
three experiments), best of N rounds (each round runs every variant once, in turn), wall time:
- each experiment run three times as plain ``python train.py`` (no capture, no pytest);
- three sessions without repeats, one after the other (what a user would otherwise run);
- one session with ``--nw-repeat=3``, PYTHONHASHSEED not set: run k of each experiment gets a
  str hash seed of its own, forked by a warm capture process of its own (started once, with
  PYTHONHASHSEED=random);
- the same with PYTHONHASHSEED=0: every run is forked by the one warm process, as in a plain session.
The difference of the last two, per repeat, is what a hash seed of its own costs.

Target: ``--nw-repeat=3`` <= 1.0x three plain sessions (it saves two pytest start-ups and
collections; each repeat is forked from a warm capture process).

Usage: python benchmarks/bench_repeat.py [--runs N]
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

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fraud"
COPIES = 3
REPEAT = 3


def session(cwd: Path, *args: str, env: dict[str, str]) -> float:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed


def python_runs(root: Path, env: dict[str, str]) -> float:
    """Each experiment run REPEAT times as plain ``python train.py``, no capture, no pytest."""
    start = time.perf_counter()
    for copy in range(1, COPIES + 1):
        for _ in range(REPEAT):
            done = subprocess.run([sys.executable, "train.py"], cwd=root / f"fraud{copy}", capture_output=True,
                                  text=True, env=env)
            if done.returncode != 0:
                sys.exit(f"python train.py failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    root = Path(tempfile.mkdtemp(prefix="bench-repeat-"))
    unset = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED" and not k.startswith("PYTEST_")}
    pinned = dict(unset, PYTHONHASHSEED="0")
    variants = {
        "python": lambda: python_runs(root, unset),
        "plain": lambda: sum(session(root, env=unset) for _ in range(REPEAT)),
        "fresh": lambda: session(root, f"--nw-repeat={REPEAT}", env=unset),
        "forked": lambda: session(root, f"--nw-repeat={REPEAT}", env=pinned),
    }
    best: dict[str, float] = {}
    try:
        for copy in range(1, COPIES + 1):
            shutil.copytree(EXAMPLE, root / f"fraud{copy}", ignore=shutil.ignore_patterns("*.ipynb", "data"))
        (root / "pytest.ini").write_text("[pytest]\nnw_experiments = fraud*/train.py\nnw_keep = 0\n")
        for round_ in range(runs + 1):  # side by side: each round runs every variant once, in turn
            for name, measure in variants.items():
                elapsed = measure()
                if round_:  # round 0 warms caches and pays the store's one-off costs
                    best[name] = min(best.get(name, elapsed), elapsed)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    python, plain, fresh, forked = (best[name] for name in variants)
    repeats = COPIES * (REPEAT - 1)
    print(f"fraud example, {COPIES} experiments, best of {runs} rounds")
    print(f"  {REPEAT} plain python runs of each (no capture)  {python:6.2f} s")
    print(f"  {REPEAT} pytest sessions                        {plain:6.2f} s")
    print(f"  --nw-repeat={REPEAT}, PYTHONHASHSEED not set     {fresh:6.2f} s   ratio to sessions {fresh / plain:.2f}, "
          f"to python runs {fresh / python:.2f}")
    print(f"  --nw-repeat={REPEAT}, PYTHONHASHSEED=0           {forked:6.2f} s   ratio to sessions {forked / plain:.2f}, "
          f"to python runs {forked / python:.2f}")
    print(f"  a hash seed of its own costs per repeat  {(fresh - forked) / repeats:6.2f} s "
          f"({repeats} repeats)")
    ratio = fresh / plain
    print(f"  --nw-repeat={REPEAT} / {REPEAT} pytest sessions: {ratio:.2f}  (target <= 1.0: "
          f"{'ok' if ratio <= 1.0 else 'MISSED'})")


if __name__ == "__main__":
    main()
