"""Variation between identical runs: the unseeded construct behind an operation whose value
changed while everything it was computed from stayed the same.

`rootcause` finds the operation (a root whose recorded inputs did not change, verdict UNSEEN);
when the experiment's code, input files and libraries did not change either, the value varies
between identical runs, and `unseeded` reads from the slice (and the facts the capture recorded
about the experiment's objects) what is likely behind it: an estimator whose ``random_state`` is
None, a generator created without a seed, a global generator never seeded, iteration over a
set, the clock. No pytest in here.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .provenance import Op, Slice

__all__ = ["Construct", "unseeded"]


@dataclass(frozen=True)
class Construct:
    """An unseeded construct behind a varying operation."""

    what: str  # "rf is a RandomForestClassifier whose random_state is None"
    seed: str  # what to do: "pass random_state=0 to RandomForestClassifier(...)"
    op: Op | None = None  # the operation that shows it, when one does


def unseeded(s: Slice, index: int, facts: Mapping[str, Any] | None = None,
             operations: Sequence[Op] = ()) -> tuple[Construct, ...]:
    """The unseeded constructs behind op `index` of slice `s` (it and the ops it depends on);
    `facts` is what the capture recorded about the experiment's objects (``Trial.inputs``),
    `operations` the trial's whole sequence (to tell whether a global generator was seeded)."""
    raise NotImplementedError
