"""Times what a report's pictures add to a failing gate: the slice graphs, the folded why-lines
and the side-by-side code (`compare/pictures.py`, drawn by render/graph.py and render/code.py),
against the text explanation the gate makes anyway (`TrialDiff.why()`), side by side in one
process on the same two real trials.

A training loop is captured twice by the plugin (a baseline, then with its learning rate
changed) in a temporary project; the two provenance records are read back from the store and
compared as the gate compares them. Then, best of N each:

- reference: `diff.why()`, the "Why it changed" text of the failure message;
- pictures: what the gate does instead when `--nw-report` / `--nw-json` is given:
  `diff.why(fold=True)` (the text report is `folded()` of it), `pictures(diff)` (which reuses
  the explanations the why-lines made) and the report's HTML of that experiment.

Each timed run works on a fresh copy of the diff, which has explained nothing yet.

Printed: operations of the trial and of the slice drawn, statements (graph nodes), the seconds
of each, the ratio pictures / reference, and the bytes of HTML the pictures add.

    python benchmarks/bench_pictures.py [--steps 400] [--runs 5]
"""
from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

SCRIPT = """\
import numpy as np
from pytest_nwtrials import tag

LEARNING_RATE = {rate}
STEPS = {steps}
rng = np.random.default_rng(0)
X = rng.normal(size=(200, 4))
y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(float)
w = np.zeros(4)
losses = []
for step in range(STEPS):
    p = 1 / (1 + np.exp(-X @ w))
    grad = X.T @ (p - y) / len(y)
    w -= LEARNING_RATE * grad
    losses.append(float(np.mean((p - y) ** 2)))
accuracy = float(((X @ w > 0) == y).mean())
tag("weights", w)
tag("loss", losses[-1])
tag("accuracy", accuracy)
"""


def best(runs: int, work) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from pytest_nwtrials.compare.diffing import diff_trials
    from pytest_nwtrials.compare.pictures import pictures
    from pytest_nwtrials.render.html import report_html
    from pytest_nwtrials.render.slices import folded
    from pytest_nwtrials.store.trial_store import TrialStore

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "experiments").mkdir()
        (root / "pytest.ini").write_text("[pytest]\nnw_experiments = experiments/*.py\n")
        script = root / "experiments" / "train.py"
        for rate in ("0.1", "0.5"):
            script.write_text(SCRIPT.format(rate=rate, steps=args.steps))
            subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
                           cwd=root, check=True, capture_output=True)
        old, new = TrialStore(root / ".nwtrials").trials()[-2:]
        old_record, new_record = old.record(), new.record()
        diff = diff_trials(old.name, new.name, old.values, new.values, None, old.inputs, old.argv,
                           new.inputs, new.argv, old_record, new_record)
        doc = pictures(diff)

        # each timed run on a fresh copy of the diff, which has not explained its slices yet (as in the gate)
        def text_only() -> None:
            replace(diff).why()

        def with_pictures() -> None:
            fresh = replace(diff)
            lines = fresh.why(fold=True)
            data = pictures(fresh, lines=lines)
            experiment = {"experiment": "experiments/train.py", "verdict": "changed", "why": folded(lines), **data}
            report_html({"schema": 1, "experiments": [experiment]}, None)

        reference = best(args.runs, text_only)
        drawn = best(args.runs, with_pictures)
        text_only = report_html({"schema": 1, "experiments": [{"experiment": "experiments/train.py",
                                                               "verdict": "changed", "why": diff.why()}]}, None)
        whole = report_html({"schema": 1, "experiments": [{"experiment": "experiments/train.py", "verdict": "changed",
                                                           "why": diff.why(), **doc}]}, None)
    graphs = [story["graph"] for story in doc["explanations"]]
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}")
    print(f"operations of the trial: {len(new_record.operations)}; slices: "
          + ", ".join(f"{s.tag} {len(s.new.ops) if s.new else 0} ops" for s in diff.slices))
    print("graphs: " + ", ".join(f"{len(g['nodes'])} statements ({len(g['shown'])} rows drawn collapsed)"
                                 for g in graphs))
    print(f"reference (why text): {reference * 1000:.1f} ms")
    print(f"with pictures (why folded, graphs, code, HTML): {drawn * 1000:.1f} ms")
    print(f"ratio pictures / reference: {drawn / reference:.2f}")
    print(f"HTML of the experiment: {len(text_only.encode()) / 1024:.0f} KiB as text, "
          f"{len(whole.encode()) / 1024:.0f} KiB with pictures")


if __name__ == "__main__":
    main()
