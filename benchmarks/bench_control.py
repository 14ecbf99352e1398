"""Times `provenance.read_slices` on a real captured loop-heavy trial, with and without control edges.

The experiment (`LOOP`) is captured once under pytest-nwtrials, in a temporary project: about
`--epochs` x 23 operations (100,000 at the default 4,000), every one of them inside a `for`
body and many under an `if`, which is the worst case for control edges: each operation of the
loop body gets one. Then `read_slices` of its two tags is timed (CPU time, best of `--repeat`):

- without control: noWorkflow's own `condition` dependencies followed as they are recorded,
  nothing else (what slices were before `provenance_control`);
- with control: the slices as they are read now.

    python benchmarks/bench_control.py [--epochs 4000] [--repeat 5] [--db PATH]

`--db` reuses a database (`db.sqlite` of a noWorkflow project, or one extracted from a trial's
``provenance/<id>.sqlite.gz``) instead of capturing.
"""
from __future__ import annotations

import argparse
import gzip
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from pytest_nwtrials.provenance.reader import read_slices
from pytest_nwtrials.provenance.graph import TrialGraph

LOOP = """
from pytest_nwtrials import tag
lr = 0.1
w = 0.0
normalize = True
losses = []
for epoch in range({epochs}):
    g = 2 * (w - 3.0)
    if normalize:
        g = g / 2
    w = w - lr * g
    if epoch % 100 == 0:
        losses.append(w)
tag("w", w)
tag("losses", losses)
"""


def capture(epochs: int, folder: Path) -> Path:
    """Run the loop experiment under pytest-nwtrials; the path of its extracted database."""
    (folder / "experiments").mkdir(parents=True)
    (folder / "pytest.ini").write_text("[pytest]\nnw_experiments = experiments/*.py\n")
    (folder / "experiments" / "loop.py").write_text(LOOP.format(epochs=epochs))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        sys.exit(f"capture failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    [archive] = (folder / ".nwtrials" / "provenance").glob("*.sqlite.gz")
    db = folder / "db.sqlite"
    with gzip.open(archive) as source, db.open("wb") as target:
        shutil.copyfileobj(source, target)
    return db


def without_control() -> Callable[[], None]:
    """Make slices as they were before this module's control edges: noWorkflow's own `condition`
    dependencies followed as recorded, nothing else. Returns the undo."""
    original = TrialGraph._control_flow

    class Recorded:
        def __init__(self, graph: TrialGraph) -> None:
            self.of = lambda eid: graph.conditions.get(eid, ())

    TrialGraph._control_flow = lambda self: Recorded(self)  # type: ignore[method-assign, assignment, return-value]

    def undo() -> None:
        TrialGraph._control_flow = original  # type: ignore[method-assign]

    return undo


def timed(db: Path, trial_id: str, repeat: int) -> tuple[float, dict[str, tuple[int, int]]]:
    best, sizes = float("inf"), {}
    for _ in range(repeat):
        start = time.process_time()
        found = read_slices(db, trial_id)
        best = min(best, time.process_time() - start)
        sizes = {tag: (len(s.ops), sum(kind == "control" for edges in s.edges or () for _d, kind in edges))
                 for tag, s in found.items()}
    return best, sizes


def control_case(db: Path, repeat: int) -> None:
    """The comparison this benchmark is for, in a function of its own."""
    with sqlite3.connect(db) as conn:
        trial_id = conn.execute("SELECT id FROM trial").fetchone()[0]
        evaluations = conn.execute("SELECT COUNT(*) FROM evaluation").fetchone()[0]
    print(f"trial: {evaluations} evaluations")
    undo = without_control()
    try:
        before, old_sizes = timed(db, trial_id, repeat)
    finally:
        undo()
    after, new_sizes = timed(db, trial_id, repeat)
    for label, seconds, sizes in (("without control", before, old_sizes), ("with control", after, new_sizes)):
        shown = ", ".join(f"{tag}: {ops} ops, {control} control edges" for tag, (ops, control) in sizes.items())
        print(f"  {label:16} {seconds:6.3f} s CPU   ({shown})")
    print(f"  ratio: {after / before:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", type=Path)
    args = parser.parse_args()
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    if args.db:
        control_case(args.db, args.repeat)
        return
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        db = capture(args.epochs, Path(folder) / "project")
        print(f"captured in {time.perf_counter() - start:.1f} s")
        control_case(db, args.repeat)


if __name__ == "__main__":
    main()
