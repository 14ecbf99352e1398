"""How much the local store grows per trial: this checkout against another, side by side.

Each project is copied to a fresh folder without its store, then `pytest --nw-capture=fine` runs
it `--runs` times. After each run the store (``.nwtrials/``, without ``tmp/``) is measured two
ways: apparent size (the bytes of its files) and disk usage (the blocks they take, as `du`
counts them). The first run pays for what later trials of the same experiments share; the
growth per trial of the later runs is what a store pays run after run, and the figure to watch.

Projects: five scripts of the scikit-learn example gallery, unchanged, each with one tag
(`--sklearn-examples`: the ``examples/`` folder of scikit-learn's source distribution, which
``pip download --no-deps --no-binary :all: --no-clean scikit-learn`` leaves unpacked even though
its build fails), and the fraud example of this checkout (``examples/``). With `--against`, the
same runs use another checkout's package (an earlier version, for instance
``git worktree add /tmp/before <commit>``), put first on ``PYTHONPATH``.

Usage: python benchmarks/bench_store.py [--against PATH] [--runs 3] [--sklearn-examples DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
# the gallery scripts measured (their path under examples/) and the variable each tags
GALLERY = {
    "linear_model/plot_bayesian_ridge_curvefit.py": "X_test",
    "neighbors/plot_caching_nearest_neighbors.py": "n_neighbors_list",
    "calibration/plot_calibration_curve.py": "scores",
    "calibration/plot_compare_calibration.py": "markers",
    "cluster/plot_inductive_clustering.py": "probable_clusters",
}


def gallery_project(examples: Path, folder: Path) -> Path:
    """A project of the `GALLERY` scripts copied from scikit-learn's `examples` folder."""
    (folder / "skl").mkdir(parents=True)
    tags = []
    for relative, tag in GALLERY.items():
        source = examples / relative
        if not source.is_file():
            sys.exit(f"--sklearn-examples {examples}: {relative} is missing; give the examples/ folder of "
                     f"scikit-learn's source distribution")
        shutil.copy(source, folder / "skl" / source.name)
        tags.append(f"    skl/{source.name}: {tag}")
    (folder / "pytest.ini").write_text("[pytest]\nnw_experiments = skl/*.py\nnw_tags =\n" + "\n".join(tags) + "\n")
    return folder


@dataclass(frozen=True)
class Growth:
    """Store sizes after each run, and how many trials each run added."""

    apparent: tuple[int, ...]
    disk: tuple[int, ...]
    trials: tuple[int, ...]

    def first(self, sizes: tuple[int, ...]) -> float:
        return sizes[0] / max(self.trials[0], 1)

    def later(self, sizes: tuple[int, ...]) -> float:
        """Bytes per trial added by the runs after the first (the first when there is one run)."""
        if len(sizes) < 2:
            return self.first(sizes)
        return (sizes[-1] - sizes[0]) / max(sum(self.trials[1:]), 1)


def store_size(store: Path) -> tuple[int, int, int]:
    """Apparent bytes, disk bytes and trial count of the store, its ``tmp/`` left out."""
    apparent = disk = 0
    for folder, dirs, names in os.walk(store):
        if Path(folder) == store:
            dirs[:] = [d for d in dirs if d != "tmp"]
        for name in names:
            info = os.lstat(os.path.join(folder, name))
            apparent += info.st_size
            disk += info.st_blocks * 512
    trials = len(list((store / "trials").glob("trial*.json")))
    return apparent, disk, trials


def measure(project: Path, checkout: Path, runs: int) -> Growth:
    """Run `project` `runs` times with `checkout`'s package; the store's size after each."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(checkout), os.environ.get("PYTHONPATH", "")])}
    apparent, disk, trials = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        folder = Path(tmp, project.name)
        shutil.copytree(project, folder, ignore=shutil.ignore_patterns(".nwtrials", "__pycache__"))
        seen = 0
        for _ in range(runs):
            done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                                   "--nw-capture=fine"], cwd=folder, env=env, capture_output=True, text=True)
            if done.returncode not in (0, 1):
                sys.exit(f"pytest failed in {folder} with {checkout}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
            size, blocks, count = store_size(folder / ".nwtrials")
            apparent.append(size)
            disk.append(blocks)
            trials.append(count - seen)
            seen = count
    return Growth(tuple(apparent), tuple(disk), tuple(trials))


def kb(value: float) -> str:
    return f"{value / 1000:.1f} KB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another checkout of pytest-nwtrials to compare with")
    parser.add_argument("--runs", type=int, default=3, help="pytest runs per project (default 3)")
    parser.add_argument("--sklearn-examples", type=Path,
                        help="the examples/ folder of scikit-learn's source distribution (the gallery)")
    args = parser.parse_args()
    sides = {"this": HERE} | ({"other": args.against.resolve()} if args.against else {})
    built = tempfile.TemporaryDirectory(prefix="bench-gallery-")
    projects = {"fraud": HERE / "examples"}
    if args.sklearn_examples:
        projects = {"gallery": gallery_project(args.sklearn_examples, Path(built.name) / "gallery"), **projects}
    else:
        print("gallery: skipped (give --sklearn-examples DIR)")
    print(f"{args.runs} runs each, --nw-capture=fine; per trial: first run, then later runs "
          f"(apparent size / du); other = {args.against}")
    for label, project in projects.items():
        results = {side: measure(project, checkout, args.runs) for side, checkout in sides.items()}
        for side, growth in results.items():
            print(f"{label:<8} {side:<6} first {kb(growth.first(growth.apparent)):>10} / "
                  f"{kb(growth.first(growth.disk)):>10}   later {kb(growth.later(growth.apparent)):>10} / "
                  f"{kb(growth.later(growth.disk)):>10}   trials per run {list(growth.trials)}")
        if "other" in results:
            this, other = results["this"], results["other"]
            ratios = [this.later(this.apparent) / max(other.later(other.apparent), 1),
                      this.later(this.disk) / max(other.later(other.disk), 1),
                      this.first(this.apparent) / max(other.first(other.apparent), 1)]
            print(f"{label:<8} this/other: later runs {ratios[0]:.3f} (apparent), {ratios[1]:.3f} (du); "
                  f"first run {ratios[2]:.3f} (apparent)")


if __name__ == "__main__":
    main()
