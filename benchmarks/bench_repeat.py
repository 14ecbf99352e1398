"""Cost of ``--nw-repeat=3`` on the fraud example, against three plain sessions.

In one run, from copies of ``examples/fraud/train.py`` in a temporary folder (a session of
three experiments), best of N each, wall time of whole pytest sessions:
- three sessions without repeats, one after the other (what a user would otherwise run);
- one session with ``--nw-repeat=3``, PYTHONHASHSEED not set: run k of each experiment gets a
  str hash seed of its own, forked by a warm capture process of its own (started once, with
  PYTHONHASHSEED=random);
- the same with PYTHONHASHSEED=0: every run is forked by the one warm process, as in a plain session.
The difference of the last two, per repeat, is what a hash seed of its own costs.

Target: ``--nw-repeat=3`` <= 1.0x three plain sessions (it saves two pytest start-ups and
collections, and spends a fresh interpreter per repeat).

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


def best(runs: int, measure) -> float:
    measure()  # warms caches and pays the store's one-off costs
    return min(measure() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    root = Path(tempfile.mkdtemp(prefix="bench-repeat-"))
    unset = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED" and not k.startswith("PYTEST_")}
    pinned = dict(unset, PYTHONHASHSEED="0")
    try:
        for copy in range(1, COPIES + 1):
            shutil.copytree(EXAMPLE, root / f"fraud{copy}", ignore=shutil.ignore_patterns("*.ipynb", "data"))
        (root / "pytest.ini").write_text("[pytest]\nnw_experiments = fraud*/train.py\nnw_keep = 0\n")
        plain = best(runs, lambda: sum(session(root, env=unset) for _ in range(REPEAT)))
        fresh = best(runs, lambda: session(root, f"--nw-repeat={REPEAT}", env=unset))
        forked = best(runs, lambda: session(root, f"--nw-repeat={REPEAT}", env=pinned))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    repeats = COPIES * (REPEAT - 1)
    print(f"fraud example, {COPIES} experiments, best of {runs}")
    print(f"  {REPEAT} plain sessions                        {plain:6.2f} s")
    print(f"  --nw-repeat={REPEAT}, PYTHONHASHSEED not set     {fresh:6.2f} s   ratio {fresh / plain:.2f}")
    print(f"  --nw-repeat={REPEAT}, PYTHONHASHSEED=0           {forked:6.2f} s   ratio {forked / plain:.2f}")
    print(f"  a hash seed of its own costs per repeat  {(fresh - forked) / repeats:6.2f} s "
          f"({repeats} repeats)")
    ratio = fresh / plain
    print(f"  --nw-repeat={REPEAT} / {REPEAT} plain sessions: {ratio:.2f}  (target <= 1.0: "
          f"{'ok' if ratio <= 1.0 else 'MISSED'})")


if __name__ == "__main__":
    main()
