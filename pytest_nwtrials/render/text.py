"""Change records -> lines of text for a failure report. No terminal writer in here."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..compare.engine import Change, Kind, dotted_path, split_path
from ..values.codec import OpaqueValue, Summary, summarize
from ..values.summary import DOTTED as _DOTTED

DETAIL_LINES = 12  # a single array or frame summary never takes more than this


def format_changes(changes: Sequence[Change], *, limit: int = 20, width: int = 100) -> list[str]:
    """One block per change (a headline, then its detail indented), at most `limit` blocks."""
    lines: list[str] = []
    for change in changes[:limit]:
        lines += format_change(change, width=width)
    hidden = len(changes) - limit
    if hidden > 0:
        lines.append(f"  ... and {hidden} more change{'s' if hidden != 1 else ''}")
    return lines


def format_change(change: Change, *, width: int = 100) -> list[str]:
    """The block of one change: `  path: what happened: old -> new`, then its detail lines."""
    path = change.path or "(value)"
    kind = change.kind
    room = max(width - len(path) - len(kind.value) - 12, 40)  # what the values may use together
    if kind is Kind.REMOVED:
        head = f"{path}: {kind.value} (baseline: {summarize(change.old, room)})"
    elif kind is Kind.ADDED:
        phrase = "added" if len(split_path(change.path)) > 1 else "new tag"
        head = f"{path}: {phrase} (value: {summarize(change.new, room)})"
    elif kind is Kind.HYPERPARAMETER:  # "model: max_depth: None -> 5"
        *_, key = split_path(change.path)
        old, new = _distinct(summarize, change.old, change.new, room)
        head = f"{change.path[: len(change.path) - len(key) - 2]}: {dotted_path(change.path).rpartition('.')[2]}: {old} -> {new}"
    elif kind is Kind.CLASS_CHANGED:  # "model: RandomForestClassifier(n_estimators=100) -> XGBClassifier(...)"
        head = f"{path}: " + " -> ".join(estimators_within(str(change.old), str(change.new), width - len(path) - 10))
    elif kind is Kind.TYPE_CHANGED:
        old, new = _distinct(_typed, change.old, change.new, room)
        head = f"{path}: {kind.value}: {old} -> {new}"
    elif _same_type_objects(change.old, change.new):
        head = _object_change(path, change.old, change.new, width)
    else:
        old, new = summarize(change.old, room), summarize(change.new, room)
        if old == new:  # arrays and frames of the same outline: say what it is once, the detail says how
            head = f"{path}: {kind.value} ({old})"
        else:
            old, new = _distinct(summarize, change.old, change.new, room)
            head = f"{path}: {kind.value}: {old} -> {new}"
    lines = [_fit("  " + head, width)]
    detail = change.detail.splitlines()
    if len(detail) > DETAIL_LINES:
        hidden = len(detail) - DETAIL_LINES + 1
        detail = detail[: DETAIL_LINES - 1] + [f"... ({hidden} more lines)"]
    lines += [_fit("    " + line, width) for line in detail]
    return lines


def _share(show: Callable[[Any, int], str], old: Any, new: Any, room: int) -> tuple[str, str]:
    """Both values within `room` characters, the shorter one kept whole when it can be."""
    old_text, new_text = show(old, room), show(new, room)
    if len(old_text) + len(new_text) <= room:
        return old_text, new_text
    half = room // 2
    if len(old_text) <= half:
        return old_text, show(new, room - len(old_text))
    if len(new_text) <= half:
        return show(old, room - len(new_text)), new_text
    return show(old, half), show(new, room - half)


def _distinct(show: Callable[[Any, int], str], old: Any, new: Any, room: int) -> tuple[str, str]:
    """`_share`, but two different values never read the same: when both texts had to be
    shortened (and so may differ only in what was cut) or read the same, both show the stretch
    of their full texts around the first character that differs."""
    old_text, new_text = _share(show, old, new, room)
    old_full, new_full = show(old, 10_000), show(new, 10_000)
    whole = old_text == old_full or new_text == new_full
    uncut = not old_text.endswith("...") and not new_text.endswith("...")  # shorter forms of objects
    if old_full == new_full or (old_text != new_text and (whole or uncut)):
        return old_text, new_text
    return difference_window(old_full, new_full, room // 2)


def difference_window(old: str, new: str, width: int) -> tuple[str, str]:
    """Both texts cut to at most `width` characters around where they first differ, with "..."
    where something was left out; the differing character is always shown."""
    width = max(width, 12)
    at = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
    start = max(at - width // 3, 0)

    def cut(text: str) -> str:
        head = "..." if start else ""
        body = text[start: start + width - len(head)]
        if start + width - len(head) < len(text):
            body = body[:-3] + "..."
        return head + body

    return cut(old), cut(new)


def _same_type_objects(old: Any, new: Any) -> bool:
    return (type(old) is OpaqueValue and type(new) is OpaqueValue and old.type == new.type
            and old.digest is not None and new.digest is not None)


def _object_change(path: str, old: OpaqueValue, new: OpaqueValue, width: int) -> str:
    """`path: changed (type): size, digest -> size, digest`: the type said once, whole when it
    fits, so the line shows what differs (the digests) and never two identical texts."""
    def sides(value: OpaqueValue) -> tuple[str, ...]:
        digest = (value.digest or "")[:8]  # both have one (`_same_type_objects`)
        return f"{value.size} bytes, digest={digest}", f"digest={digest}", digest

    type_texts = (old.type, _DOTTED.sub(lambda match: match.group(1), old.type))
    heads = [f"{path}: changed ({kind}): {a} -> {b}" for kind in type_texts for a, b in zip(sides(old), sides(new))]
    return next((head for head in heads if len(head) + 2 <= width), heads[-1])


def estimators_within(old: str, new: str, room: int) -> tuple[str, str]:
    """Two estimators' texts ("RandomForestClassifier(n_estimators=100)") in about `room`
    characters: the longer one's parameters become "(...)" first, then the other's; class
    names are never cut (the detail lines name both classes whole)."""
    def short(text: str) -> str:
        return text.partition("(")[0] + "(...)" if "(" in text else text

    longer_first = [(old, short(new)), (short(old), new)] if len(new) >= len(old) else [(short(old), new), (old, short(new))]
    for pair in [(old, new), *longer_first]:
        if len(pair[0]) + len(pair[1]) <= room:
            return pair
    return short(old), short(new)


def _typed(value: Any, width: int) -> str:
    """A value with its type in front, unless its summary already names it."""
    if value is None or isinstance(value, (Summary, OpaqueValue)):
        return summarize(value, width)
    name = f"numpy.{value.dtype.name}" if isinstance(value, np.generic) else type(value).__name__
    return f"{name} {summarize(value, max(width - len(name) - 1, 10))}"


def _fit(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 3] + "..."
