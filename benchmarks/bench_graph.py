"""Times `provenance.read_slices` on real captured trials of about 100,000 operations, with the
package of this checkout against the package of an earlier commit (before the mutation rules).

`bench_slices.py` times the diff of two synthetic operation sequences; slicing needs a real
noWorkflow database, so it is timed here. Two scripts are captured once each (the capture
runner, as the plugin runs it), then every tag's slice is read in a fresh child process per
package version, best of N:

- mutations: a training loop that mutates on every step: `rng.normal(...)` (a generator
  object), `np.random.normal()` (the hidden global generator), `model.partial_fit(...)` on a
  model from another module, `losses.append(...)`;
- pure: a loop of the same length of arithmetic and pure calls (`np.mean`, `len`, `abs`),
  where no rule adds an edge: the cost of looking for mutations where there are none.

Printed: operations of the trial; per version the seconds of `read_slices`, the same per
1000 operations of the slices it returned (slices that follow mutations are larger: more
output, more time), the seconds of loading the graph alone (where the mutation rules run);
the ratios after / before; the slice sizes and the edge kinds.

    python benchmarks/bench_graph.py [--steps 4000] [--runs 3] [--before 67cb5e2]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import textwrap
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

LIBRARY = '''
class Model:
    """A library model: the loop calls it, capture records each call as one operation."""

    def __init__(self):
        self.w = [0.0, 0.0, 0.0]

    def partial_fit(self, batch, target, lr=0.01):
        self.w = [w + lr * (target - w) * float(b) for w, b in zip(self.w, batch)]
        return self

    def loss(self, batch):
        return sum(abs(w * float(b)) for w, b in zip(self.w, batch))
'''

MUTATIONS = """
import numpy as np
from pytest_nwtrials import tag
from benchlib import Model

STEPS = {steps}
rng = np.random.default_rng(0)
np.random.seed(0)
model = Model()
losses = []
for step in range(STEPS):
    batch = rng.normal(size=3)
    target = np.random.normal()
    model.partial_fit(batch, target)
    losses.append(model.loss(batch))
tag("loss", losses[-1])
tag("weights", model.w)
"""

PURE = """
import numpy as np
from pytest_nwtrials import tag

STEPS = {steps}
values = np.arange(8.0)
total = 0.0
for step in range(STEPS):
    scaled = values * (step % 7)
    centre = float(np.mean(scaled))
    total = total + abs(centre - len(values)) * 0.001 + step % 3
tag("total", total)
tag("centre", centre)
"""

TIMER = """
import json, sqlite3, sys, time
from pathlib import Path
# the package on argv[2], not the editable install of this checkout (an import hook)
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path.insert(0, sys.argv[2])
from pytest_nwtrials.provenance import graph as provenance_graph, reader as provenance
db = Path(sys.argv[1])
trial = sqlite3.connect(db).execute("SELECT id FROM trial").fetchone()[0]
start = time.perf_counter()
with sqlite3.connect(db) as conn:  # loading the graph (and its effects) alone
    provenance_graph.TrialGraph(conn, trial, db).backward([])
load = time.perf_counter() - start
start = time.perf_counter()
slices = provenance.read_slices(db, trial)
elapsed = time.perf_counter() - start
kinds = {}
for s in slices.values():
    for deps in (s.edges or ()):
        for _dep, kind in deps:
            kinds[kind] = kinds.get(kind, 0) + 1
print(json.dumps({"seconds": elapsed, "load": load, "sizes": {n: len(s.ops) for n, s in slices.items()}, "kinds": kinds,
                  "module": provenance.__file__}))
"""


def capture(folder: Path, name: str, code: str) -> Path:
    """Run `code` under capture as the plugin does; the trial's database."""
    folder.mkdir(parents=True)
    (folder / "benchlib.py").write_text(LIBRARY)
    script = folder / name
    script.write_text(textwrap.dedent(code))
    spec = {"script": str(script), "argv": [], "name": name, "provenance_dir": str(folder / ".prov"),
            "blobs_dir": str(folder / ".blobs"), "result": str(folder / "result.json")}
    (folder / "spec.json").write_text(json.dumps(spec))
    subprocess.run([sys.executable, "-c", "from pytest_nwtrials.capture.runner import main\nmain()\n",
                    str(folder / "spec.json")], cwd=folder, check=True, capture_output=True)
    result = json.loads((folder / "result.json").read_text())
    if result["exit_code"] != 0 or result["internal_error"]:
        raise SystemExit(f"capture of {name} failed: {result}")
    return folder / ".prov" / ".noworkflow" / "db.sqlite"


def package_at(commit: str, target: Path) -> Path:
    """The `pytest_nwtrials` package of `commit`, unpacked into `target`; the folder to put on
    PYTHONPATH."""
    data = subprocess.run(["git", "archive", commit, "pytest_nwtrials"], cwd=REPO, check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as archive:
        archive.extractall(target, filter="data")
    return target


def time_slices(db: Path, path: Path, runs: int) -> dict:
    """Best of `runs` of read_slices in a fresh process with the package at `path`."""
    best = None
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", TIMER, str(db), str(path)], check=True,
                              capture_output=True, text=True)
        found = json.loads(done.stdout)
        if best is None or found["seconds"] < best["seconds"]:
            best = found
    return best


def operations(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM evaluation").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4000, help="Loop iterations of each script")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", default="67cb5e2", help="Commit whose package is timed as 'before'")
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="nwtrials-bench-graph-") as tmp:
        before = package_at(args.before, Path(tmp, "before"))
        for label, code in (("mutations", MUTATIONS), ("pure", PURE)):
            db = capture(Path(tmp, label), f"{label}.py", code.format(steps=args.steps))
            old = time_slices(db, before, args.runs)
            new = time_slices(db, REPO, args.runs)
            print(f"\n[{label}] {operations(db)} evaluations, read_slices of every tag, best of {args.runs}")
            for name, found in ((f"before ({args.before})", old), ("after (this tree)", new)):
                per = 1000 * found["seconds"] / max(1, sum(found["sizes"].values()))
                print(f"  {name:20s} {found['seconds']:7.3f} s ({per:.3f} s per 1000 slice ops; graph load"
                      f" {found['load']:.3f} s)   sizes {found['sizes']}   edges {found['kinds']}")
            print(f"  ratio after / before: {new['seconds'] / old['seconds']:.2f}x"
                  f" (graph load {new['load'] / old['load']:.2f}x)")
            print(f"  read from {old['module']} and {new['module']}")


if __name__ == "__main__":
    main()
