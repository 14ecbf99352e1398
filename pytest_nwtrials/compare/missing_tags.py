"""What the baseline's slice says about a tag the new trial did not make.

Where the baseline tagged it (`Slice.site`, or the place of the tagged value's own op in a
record without sites), and the test that decided whether the tagging ran: the "control" edge
of the op at the site, with the test's value in the baseline and, when the new trial
evaluated the same test (same file, line, kind and code), its value there. What changed the
test is found by aligning the test's own provenance in the baseline (the ops it depends on)
with the new trial's operations at the same lines: `report = True -> False`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..provenance.reader import Op, Slice
from .rootcause import ancestors, dependencies
from .slices import SliceDiff, diff_operations

__all__ = ["MissingTag", "missing_tag"]


@dataclass(frozen=True)
class MissingTag:
    """A tag of the baseline the new trial did not make: where it was made, and what decided it."""

    tag: str
    site: tuple[str, int] | None  # where the baseline tagged it
    condition: Op | None  # the test that decided whether the tagging ran, with its baseline value
    now: str | None  # the value of the same test in the new trial, None when it was not evaluated
    because: SliceDiff | None = None  # how the test's own provenance changed, when it did


def missing_tag(name: str, old: Slice, new_operations: Sequence[Op]) -> MissingTag:
    """What the baseline's slice of a tag that is now missing says about it."""
    condition = test = None
    if old.edges is not None and len(old.edges) == len(old.ops) and old.ops:
        sites = [n for n, op in enumerate(old.ops) if old.site and (op.file, op.line) == tuple(old.site)]
        for n in [*sites[::-1], len(old.ops) - 1]:
            control = [d for d, kind in dependencies(old, n) if kind == "control"]
            if control:
                test = max(control)  # the innermost test is the latest
                condition = old.ops[test]
                break
    now = None
    if condition is not None:
        for op in reversed(new_operations):
            if (op.file, op.line, op.kind, op.code) == (condition.file, condition.line, condition.kind, condition.code):
                now = op.value
                break
    if old.site is not None:
        site: tuple[str, int] | None = (str(old.site[0]), int(old.site[1]))
    else:  # a record without sites: the tagged value's own op is an argument of the tag call
        site = (old.ops[-1].file, old.ops[-1].line) if old.ops else None
    changed = test is not None and condition is not None and now != condition.value
    because = _test_diff(name, old, test, new_operations) if changed and test is not None else None
    return MissingTag(name, site, condition, now, because)


def _test_diff(name: str, old: Slice, test: int, new_operations: Sequence[Op]) -> SliceDiff | None:
    """The test's provenance in the baseline against the new trial's operations on its lines."""
    before = [old.ops[i] for i in sorted(ancestors(old, test))]
    lines = {(op.file, op.line) for op in before}
    after = [op for op in new_operations if (op.file, op.line) in lines]
    changes = diff_operations(before, after)
    return SliceDiff(name, changes) if changes else None
