"""Times `slices.diff_operations` against `difflib.SequenceMatcher` on two trials' operations.

Synthetic sequences of 100,000 operations shaped like a recorded experiment: a preprocessing
part (statements run once), a training loop (the same 40 operations per epoch, the epoch
counter and the running values changing), an evaluation part. Three new trials against it:

- typical: a few changed values, an inserted block of 60 operations, two swapped statements;
- loop step: one operation added to the loop body, so once in every epoch;
- new rate: every value computed in the loop changed (a hyperparameter moved).

difflib gets the same `Op.key()` tuples (computed before timing; `diff_operations` computes
them itself) and is stopped after `--difflib-cap` seconds (SIGALRM), with its default
autojunk and without. `diff_operations` is timed cold (first call, code normalisation cache
empty) and warm (best of three). Then the headline of the diff (`rootcause.explain` and its
text) is timed once, on the two sequences taken as slices with two data edges per op and a
mutation edge on every tenth.

    python benchmarks/bench_slices.py [--ops 100000] [--difflib-cap 60]
"""
from __future__ import annotations

import argparse
import difflib
import os
import platform
import random
import signal
import sys
import time
from typing import Callable

from pytest_nwtrials.provenance.reader import Op, Slice, normalize_code
from pytest_nwtrials.compare.rootcause import explain
from pytest_nwtrials.compare.slices import CHANGE_KINDS, SliceDiff, diff_operations
from pytest_nwtrials.render.slices import format_slice_diff

BODY = 40  # operations per epoch


def baseline(n_ops: int, seed: int = 1) -> tuple[list[Op], list[Op], list[Op]]:
    """Preprocessing, loop and evaluation operations of a trial."""
    rng = random.Random(seed)
    pre = [Op("literal" if k % 3 == 0 else "name", f"step{k // 4}_{k % 4}", "train.py", 10 + k // 4,
              repr(round(rng.random(), 6))) for k in range(2_000)]
    post = [Op("call", f"metric{k}(y, scores)", "train.py", 900 + k, repr(round(rng.random(), 6)))
            for k in range(1_000)]
    loop = []
    loss = 1.0
    for epoch in range((n_ops - len(pre) - len(post)) // BODY):
        loop.append(Op("name", "epoch", "train.py", 50, repr(epoch)))
        for k in range(BODY - 1):
            kind = ("name", "attribute", "call", "mult", "add")[k % 5]
            value = "0.5" if k % 7 == 0 else repr(round(loss * (k + 1), 9))
            loop.append(Op(kind, f"body{k}", "train.py", 51 + k, value))
        loss *= 0.999
    return pre, loop, post


def typical(pre: list[Op], loop: list[Op], post: list[Op]) -> list[Op]:
    ops = pre + loop + post
    for index in (120, 20_000, 55_555, 80_001, len(ops) - 500):  # a few values changed
        op = ops[index]
        ops[index] = Op(op.kind, op.code, op.file, op.line, op.value + "1")
    ops[400:400] = [Op("call", f"clip{k}(X)", "train.py", 30, repr(k)) for k in range(60)]  # a new block
    ops[860:864], ops[864:868] = ops[864:868], ops[860:864]  # two statements swapped
    return ops


def loop_step(pre: list[Op], loop: list[Op], post: list[Op]) -> list[Op]:
    ops = []
    for op in pre + loop + post:
        ops.append(op)
        if op.code == "body10":
            ops.append(Op("call", "np.clip(w, -1, 1)", "train.py", 61, op.value))
    return ops


def new_rate(pre: list[Op], loop: list[Op], post: list[Op]) -> list[Op]:
    changed = [Op(op.kind, op.code, op.file, op.line, op.value + "9") if op.code.startswith("body") else op
               for op in loop]
    return pre + changed + post


def with_edges(ops: list[Op]) -> Slice:
    """The sequence as one slice: each op reads the op before it and the same op one epoch
    earlier, and every tenth op was changed in place by the call three ops before it."""
    edges = []
    for k in range(len(ops)):
        deps = [(k - 1, "data")] if k else []
        if k >= BODY:
            deps.append((k - BODY, "data"))
        if k % 10 == 0 and k >= 3:
            deps.append((k - 3, "mutation"))
        edges.append(tuple(deps))
    return Slice("t", tuple(ops), 1, 0, tuple(edges))


def time_difflib(a: list[tuple], b: list[tuple], autojunk: bool, cap: float) -> tuple[float | None, int]:
    """Seconds (None when stopped at `cap`) and the number of non-equal opcodes."""
    def stop(_signum, _frame):
        raise TimeoutError

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, cap)
    start = time.perf_counter()
    try:
        opcodes = difflib.SequenceMatcher(None, a, b, autojunk=autojunk).get_opcodes()
        return time.perf_counter() - start, sum(1 for tag, *_ in opcodes if tag != "equal")
    except TimeoutError:
        return None, 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=100_000)
    parser.add_argument("--difflib-cap", type=float, default=60.0, help="Seconds before difflib is stopped")
    args = parser.parse_args()

    print(f"machine: {platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {sys.version.split()[0]} ({platform.python_implementation()})")
    print(f"difflib is stopped after {args.difflib_cap:.0f} s")
    parts = baseline(args.ops)
    old = parts[0] + parts[1] + parts[2]
    scenarios: list[tuple[str, Callable]] = [("typical", typical), ("loop step", loop_step), ("new rate", new_rate)]
    for label, make in scenarios:
        new = make(*parts)
        normalize_code.cache_clear()
        start = time.perf_counter()
        changes = diff_operations(old, new)
        cold = time.perf_counter() - start
        warm = min(_timed(lambda: diff_operations(old, new)) for _ in range(3))
        counts = ", ".join(f"{kind} {sum(1 for c in changes if c.kind == kind)}" for kind in CHANGE_KINDS)
        print(f"\n[{label}] old {len(old)} ops, new {len(new)} ops")
        print(f"  diff_operations                 cold {cold:7.3f} s, warm {warm:7.3f} s   ({counts})")
        old_slice, new_slice = with_edges(old), with_edges(new)
        start = time.perf_counter()
        explanation = explain(old_slice, new_slice, changes)
        lines = format_slice_diff(SliceDiff("t", changes, old_slice, new_slice), explanation=explanation)
        elapsed = time.perf_counter() - start
        print(f"  root cause, chain and text      {elapsed:7.3f} s                 "
              f"({explanation.verdict.value}, chain of {len(explanation.chain)} ops, {len(lines)} lines)")
        a, b = [op.key() for op in old], [op.key() for op in new]
        for autojunk in (True, False):
            elapsed, edits = time_difflib(a, b, autojunk, args.difflib_cap)
            name = f"SequenceMatcher(autojunk={autojunk})"
            if elapsed is None:
                print(f"  {name:31s} > {args.difflib_cap:5.0f} s (stopped)      ratio to warm > {args.difflib_cap / warm:.0f}x")
            else:
                print(f"  {name:31s} {elapsed:9.3f} s              ratio to warm {elapsed / warm:6.1f}x"
                      f"   ({edits} non-equal opcodes)")


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
