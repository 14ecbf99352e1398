"""Run-to-run spread: how the tagged values of repeated runs of one experiment differ.

`--nw-repeat=N` runs an experiment N times in the session; `measure` compares the runs' values
path by path (a tag, or a path inside it: an element of a list or dict, a frame's column) and
keeps, for each path where they differ, its `PathSpread`: the smallest and largest value seen
(of any element, for an array or a column), the largest deviation from the first run's value
(elementwise for arrays) and that deviation relative to the first run's largest magnitude there.
A path whose runs differ in something that is not a number (a string, a shape, a type, a
model's digest) has a spread without numbers: no tolerance covers it.

A baseline saved with repeats keeps these spreads beside its values (``"spread"`` in its entry):
a later value inside the recorded band is matched "within the recorded run-to-run spread".
No pytest in here.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PathSpread", "Stability", "measure", "spreads_from_json", "spreads_to_json"]


@dataclass(frozen=True)
class PathSpread:
    """The spread of one path across the runs; the numbers are None when it is not numeric."""

    path: str
    low: float | None = None  # smallest value seen in any run (any element of an array or column)
    high: float | None = None  # largest
    deviation: float | None = None  # largest |value - first run's value|, elementwise
    relative: float | None = None  # deviation / largest |first run's value| at the path; None when that is 0
    detail: str = ""  # what differs, when it is not a number ("shape (3,) -> (4,)", "digest ...")

    @property
    def numeric(self) -> bool:
        return self.deviation is not None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"low": self.low, "high": self.high, "deviation": self.deviation,
                               "relative": self.relative}
        if self.detail:
            doc["detail"] = self.detail
        return doc

    @classmethod
    def from_json(cls, path: str, doc: Any) -> PathSpread:
        """A stored spread; ValueError when `doc` is not one (the caller names the file)."""
        if not isinstance(doc, dict):
            raise ValueError(f"the spread of {path!r} is not an object")
        numbers = []
        for key in ("low", "high", "deviation", "relative"):
            value = doc.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"the spread of {path!r} has a {key} that is not a number")
            numbers.append(None if value is None else float(value))
        detail = doc.get("detail", "")
        if not isinstance(detail, str):
            raise ValueError(f"the spread of {path!r} has a detail that is not a string")
        return cls(path, *numbers, detail=detail)


def spreads_to_json(spreads: Mapping[str, PathSpread]) -> dict[str, Any]:
    return {path: spread.to_json() for path, spread in sorted(spreads.items())}


def spreads_from_json(doc: Any) -> dict[str, PathSpread]:
    """Stored spreads by path; ValueError when `doc` is not a mapping of them."""
    if not isinstance(doc, dict):
        raise ValueError("the spread is not an object of paths")
    return {str(path): PathSpread.from_json(str(path), value) for path, value in doc.items()}


@dataclass(frozen=True)
class Stability:
    """What N runs of one experiment in a session showed: stored in the first run's trial
    (``Trial.stability``) and carried by reports."""

    runs: int
    trials: tuple[str, ...]  # the trial names of the runs, the first (gated, saved) first
    spreads: dict[str, PathSpread] = field(default_factory=dict)  # the paths that differ; {} when stable
    covered: bool = True  # every difference is within the comparison's tolerance
    diverged: tuple[str, ...] = ()  # report lines: the first operation where the runs diverged
    proposal: tuple[str, ...] = ()  # report lines: the tolerance that covers the spread, the seed to set

    @property
    def stable(self) -> bool:
        return not self.spreads

    def to_json(self) -> dict[str, Any]:
        return {"runs": self.runs, "trials": list(self.trials), "stable": self.stable, "covered": self.covered,
                "spread": spreads_to_json(self.spreads), "diverged": list(self.diverged),
                "proposal": list(self.proposal)}

    @classmethod
    def from_json(cls, doc: Any) -> Stability:
        """ValueError when `doc` is not a stability document."""
        if not isinstance(doc, dict):
            raise ValueError("the stability is not an object")
        runs, trials = doc.get("runs"), doc.get("trials")
        if type(runs) is not int or runs < 1:
            raise ValueError("the stability's runs is not a whole number >= 1")
        if not isinstance(trials, list) or not all(isinstance(t, str) for t in trials):
            raise ValueError("the stability's trials is not a list of names")
        lines = []
        for key in ("diverged", "proposal"):
            value = doc.get(key, [])
            if not isinstance(value, list) or not all(isinstance(line, str) for line in value):
                raise ValueError(f"the stability's {key} is not a list of lines")
            lines.append(tuple(value))
        covered = doc.get("covered", True)
        if not isinstance(covered, bool):
            raise ValueError("the stability's covered is not true or false")
        return cls(runs, tuple(trials), spreads_from_json(doc.get("spread", {})), covered, *lines)


def measure(runs: Sequence[Mapping[str, Any]]) -> dict[str, PathSpread]:
    """The spread of every path whose value differs between `runs` (each a trial's decoded
    values by tag name, the first run first); {} when they all agree exactly."""
    raise NotImplementedError
