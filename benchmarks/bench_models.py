"""What recording a fitted model costs: `values.encode` of a forest, this checkout against another.

The gate encodes every tagged model once per run, so this is a cost every run pays. Both
checkouts' encoders run in this one process on the same fitted estimators (the other one's
package is loaded under another name), each timed as the best of a few repeats, into a fresh
value folder each time:
- this checkout as a run that does not save a baseline pays (no skops file);
- this checkout as a run that saves one pays (`model_files=True`: the skops file too);
- another checkout of pytest-nwtrials, an earlier version for instance
  (`git worktree add /tmp/before <commit>`).

Usage: python benchmarks/bench_models.py --against PATH [--trees 100] [--repeat 5]
"""
from __future__ import annotations

import argparse
import importlib.util
import inspect
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pytest_nwtrials.values import codec as values


def load_other(checkout: Path) -> Any:
    """The `values` module of the package in `checkout`, imported as `nwtrials_other`."""
    package = checkout / "pytest_nwtrials"
    spec = importlib.util.spec_from_file_location("nwtrials_other", package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["nwtrials_other"] = module
    spec.loader.exec_module(module)
    return importlib.import_module("nwtrials_other.values")


def best_of(repeat: int, run: Callable[[Path], Any]) -> float:
    """The fastest of `repeat` runs, in milliseconds, each into an empty folder."""
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            run(Path(folder))
            times.append((time.perf_counter() - start) * 1000)
    return min(times)


def encoder(module: Any, **options: Any) -> Callable[[Any, Path], Any]:
    accepted = {k: v for k, v in options.items() if k in inspect.signature(module.encode).parameters}
    return lambda value, folder: module.encode(value, module.BlobStore(folder), **accepted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, required=True,
                        help="another checkout of pytest-nwtrials to compare with")
    parser.add_argument("--trees", type=int, default=100, help="Trees in the forest (default 100)")
    parser.add_argument("--repeat", type=int, default=5, help="Timed runs per encoder; the best counts")
    args = parser.parse_args()
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 8))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    models = {
        f"RandomForestClassifier({args.trees})": RandomForestClassifier(n_estimators=args.trees, random_state=0),
        f"GradientBoostingClassifier({args.trees})": GradientBoostingClassifier(n_estimators=args.trees),
        "LogisticRegression": LogisticRegression(),
    }
    other = load_other(args.against)
    encoders = {"this, gate run": encoder(values), "this, saving a baseline": encoder(values, model_files=True),
                f"{args.against}": encoder(other)}
    print(f"{'model':<32}" + "".join(f"{name:>26}" for name in encoders) + f"{'gate run / other':>18}")
    for label, model in models.items():
        model.fit(X, y)
        times = [best_of(args.repeat, lambda folder, run=run: run(model, folder)) for run in encoders.values()]
        print(f"{label:<32}" + "".join(f"{t:>23.1f} ms" for t in times) + f"{times[0] / times[2]:>17.2f}x")


if __name__ == "__main__":
    main()
