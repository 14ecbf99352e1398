"""How often a rerun of unchanged, noisy code lands inside a band saved from N repeated runs.

Not a timing: the share of reruns the gate matches "within the recorded run-to-run spread", with
the same code the gate uses (`spread.measure` to record the band, `bands.apply_bands` to judge a
new value) on normally distributed noise:
- a number (an AUC): matched when within the largest deviation any saved run showed from the
  first (saved) one; for continuous noise about (N - 1) / N of reruns (the lowest..highest of
  the N runs alone would hold (N - 1) / (N + 1));
- a 50-element array: matched when every element is within the largest deviation any saved run
  showed from the first.

Usage: python benchmarks/bench_band.py [--trials T] [--seed S]
"""
from __future__ import annotations

import argparse

import numpy as np

from pytest_nwtrials.compare.bands import apply_bands
from pytest_nwtrials.compare.engine import Rules, diff_tags
from pytest_nwtrials.compare.spread import measure

RUNS = (3, 5, 10, 20)


def matched(saved: list[dict], new: dict, rules: Rules) -> bool:
    """Whether the gate matches `new` against the first of `saved`, within their band."""
    first = saved[0]
    return not apply_bands(diff_tags(first, new, rules), first, new, measure(saved), rules).changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000, help="Reruns simulated per N (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    rules = Rules()
    print(f"{'N runs saved':>12}  {'number matched':>15}  {'(N-1)/N':>11}  {'50-element array matched':>24}")
    for n in RUNS:
        numbers = arrays = 0
        for _ in range(args.trials):
            numbers += matched([{"auc": float(x)} for x in rng.normal(0.82, 0.01, n)],
                               {"auc": float(rng.normal(0.82, 0.01))}, rules)
            arrays += matched([{"w": rng.normal(0.82, 0.01, 50)} for _ in range(n)],
                              {"w": rng.normal(0.82, 0.01, 50)}, rules)
        print(f"{n:>12}  {numbers / args.trials:>15.1%}  {(n - 1) / n:>11.1%}  {arrays / args.trials:>24.1%}")


if __name__ == "__main__":
    main()
