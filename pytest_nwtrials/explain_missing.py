"""Why a tag is missing from the new trial: where the baseline tagged it, and the condition that
decided whether that tagging ran.

A missing tag has no slice in the new trial, so there is nothing to align. What the baseline's
slice holds is enough: its site (the tag call) and the CONTROL edges of its value's operation,
the tests of the `if`/`while`/`for` the tag call sat in. Each such test is looked up in the new
trial's operations (same code at the same place) to tell its new value, and its own provenance in
the baseline (the operations it depends on) is aligned with the new trial's operations at the
same lines, which names the statement that changed the condition (`report = True -> False`).
"""
from __future__ import annotations

from collections.abc import Iterable

from .explain import ProvenanceRecord
from .provenance import Op, Slice, normalize_code
from .provenance_graph import CONTROL
from .slices import SliceDiff, diff_operations, format_slice_diff, place

__all__ = ["missing_lines"]


def missing_lines(old: ProvenanceRecord, new: ProvenanceRecord, tags: Iterable[str]) -> list[str]:
    """Lines for the "why it changed" section about the tags the new trial no longer has."""
    lines = []
    for tag in tags:
        found = old.slices.get(tag)
        if found is None or tag in new.slices or found.site is None:
            continue
        lines.append(f"  {tag}: missing in the new trial (tagged at {place(*found.site)} in the baseline)")
        for condition in _conditions(found):
            lines += _condition_lines(found, condition, new)
    return lines


def _conditions(found: Slice) -> list[int]:
    """The tests the tagged value's operation ran under, innermost first."""
    if not found.edges or not found.ops:
        return []
    return sorted((dep for dep, kind in found.edges[-1] if kind == CONTROL), reverse=True)


def _condition_lines(found: Slice, index: int, new: ProvenanceRecord) -> list[str]:
    test = found.ops[index]
    now = _same(test, new.operations)
    state = f"was {test.value}, now {now.value}" if now else f"was {test.value}, not evaluated in the new trial"
    lines = [f"    under the condition {place(test.file, test.line)}  {test.code}: {state}"]
    before = [found.ops[i] for i in sorted(_ancestors(found, index))]
    where = {(op.file, op.line) for op in before}
    after = [op for op in new.operations if (op.file, op.line) in where]
    diff = SliceDiff(found.tag, diff_operations(before, after))
    return lines + ["  " + line for line in format_slice_diff(diff, limit=6)]


def _same(op: Op, operations: Iterable[Op]) -> Op | None:
    """The last evaluation of the same code at the same place in another trial."""
    code = normalize_code(op.code)
    last = None
    for other in operations:
        if other.line == op.line and other.file == op.file and other.kind == op.kind \
                and normalize_code(other.code) == code:
            last = other
    return last


def _ancestors(found: Slice, index: int) -> set[int]:
    """Operation `index` of the slice and every operation it depends on in it."""
    assert found.edges is not None
    seen, stack = {index}, [index]
    while stack:
        for dep, _kind in found.edges[stack.pop()]:
            if dep not in seen:
                seen.add(dep)
                stack.append(dep)
    return seen
