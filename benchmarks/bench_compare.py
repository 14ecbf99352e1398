"""How the diff engine compares with numpy.allclose and pandas.testing.assert_frame_equal.

    python benchmarks/bench_compare.py [--repeat N] [--check]

Times are the best of N runs (ours and the reference alternate, so both see the same machine
load); the ratio is ours / reference. Memory is the peak of what our diff allocates
(tracemalloc, which numpy reports to) divided by the size of the two inputs. `--check` exits
with status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow

from pytest_nwtrials.compare.engine import diff

ARRAY_SIZE = 10_000_000
FRAME_SHAPE = (1_000_000, 10)
MEMORY_TARGET = 3.0  # peak allocation / size of the two inputs


@dataclass
class Case:
    name: str
    ours: Callable[[], Any]
    reference: Callable[[], Any]
    reference_name: str
    input_bytes: int
    time_target: float  # ours / reference at most


def best_of(run: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def alternating_best(case: Case, repeat: int) -> tuple[float, float]:
    ours = reference = float("inf")
    for _ in range(repeat):
        ours = min(ours, best_of(case.ours, 1))
        reference = min(reference, best_of(case.reference, 1))
    return ours, reference


def peak_allocation(run: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def frame_reference(old: pd.DataFrame, new: pd.DataFrame) -> Callable[[], None]:
    def run() -> None:
        try:
            pd.testing.assert_frame_equal(old, new, check_exact=False)
        except AssertionError:
            pass  # it stops at the first differing column; the message is built by then

    return run


def build_cases() -> list[Case]:
    rng = np.random.default_rng(20240501)
    old = rng.random(ARRAY_SIZE)
    same = old.copy()
    changed = old.copy()
    picked = rng.choice(ARRAY_SIZE, ARRAY_SIZE // 100, replace=False)
    changed[picked] += 1e-3
    with_nan = old.copy()
    with_nan[::1000] = np.nan  # bit-identical arrays holding nan skip the fast path
    with_nan_too = with_nan.copy()
    array_bytes = old.nbytes * 2

    frame = pd.DataFrame(rng.random(FRAME_SHAPE), columns=[f"c{i}" for i in range(FRAME_SHAPE[1])])
    frame_same = frame.copy()
    # 1% of the rows of the last column: assert_frame_equal checks every column before it raises.
    frame_changed = frame.copy()
    rows = rng.choice(FRAME_SHAPE[0], FRAME_SHAPE[0] // 100, replace=False)
    frame_changed.iloc[rows, -1] += 1e-3
    frame_all_changed = frame.copy()
    frame_all_changed.iloc[rows, :] += 1e-3
    frame_bytes = frame.to_numpy().nbytes * 2

    assert diff(old, same) == [] and len(diff(old, changed)) == 1
    assert diff(with_nan, with_nan_too) == []
    assert diff(frame, frame_same) == [] and len(diff(frame, frame_changed)) == 1
    assert len(diff(frame, frame_all_changed)) == FRAME_SHAPE[1]
    return [
        Case("arrays 10M float64, equal", lambda: diff(old, same), lambda: np.allclose(same, old),
             "numpy.allclose", array_bytes, 1.5),
        Case("arrays 10M float64, 1% differ (summary)", lambda: diff(old, changed)[0].detail,
             lambda: np.allclose(changed, old), "numpy.allclose", array_bytes, 3.0),
        Case("arrays 10M float64 with nan, equal", lambda: diff(with_nan, with_nan_too),
             lambda: np.allclose(with_nan_too, with_nan, equal_nan=True), "allclose(equal_nan)", array_bytes, 1.5),
        Case("frame 1M x 10 float64, equal", lambda: diff(frame, frame_same),
             frame_reference(frame, frame_same), "assert_frame_equal", frame_bytes, 1.0),
        Case("frame 1M x 10 float64, 1% of a column differ", lambda: diff(frame, frame_changed)[0].detail,
             frame_reference(frame, frame_changed), "assert_frame_equal", frame_bytes, 1.0),
        Case("frame 1M x 10 float64, 1% of every column", lambda: diff(frame, frame_all_changed)[0].detail,
             frame_reference(frame, frame_all_changed), "assert_frame_equal", frame_bytes, 1.0),
    ]


def machine() -> list[str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return [
        f"platform: {platform.platform()}",
        f"cpu: {cpu}, {os.cpu_count()} logical cores",
        f"python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"pyarrow {pyarrow.__version__}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="Runs per measurement (best of N)")
    parser.add_argument("--check", action="store_true", help="Exit with status 1 when a target is missed")
    args = parser.parse_args(argv)

    print("\n".join(machine()))
    cases = build_cases()
    header = (f"{'case':46} {'ours':>9} {'reference':>31} {'ratio':>6} {'target':>7} "
              f"{'peak/inputs':>11} {'target':>7}  result")
    rows, missed = [], 0
    for case in cases:
        ours, reference = alternating_best(case, args.repeat)
        ratio = ours / reference
        memory = peak_allocation(case.ours) / case.input_bytes
        ok = ratio <= case.time_target and memory <= MEMORY_TARGET
        missed += not ok
        rows.append(
            f"{case.name:46} {ours * 1e3:7.1f}ms {case.reference_name:>20} {reference * 1e3:8.1f}ms "
            f"{ratio:6.2f} {'<=' + format(case.time_target, 'g'):>7} {memory:11.3f} "
            f"{'<=' + format(MEMORY_TARGET, 'g'):>7}  {'ok' if ok else 'MISSED'}"
        )
    print(f"\nbest of {args.repeat} runs; ratio = ours / reference; peak/inputs = peak allocation of our "
          "diff / bytes of both inputs\n")
    print(header)
    print("\n".join(rows))
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
