"""The tag recorder active inside a captured child process.

`pytest_nwtrials.tag` hands values to the recorder installed here; outside a capture there is
none and tagging is a no-op. Values are encoded at tag time, so a later mutation of the tagged
object does not change what was recorded.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

_active: Recorder | None = None


def active() -> Recorder | None:
    """The recorder of this process, or None when not running under capture."""
    return _active


def install(recorder: Recorder | None) -> None:
    global _active
    _active = recorder


def check_tag_name(name: object) -> str:
    """Reject tag names that could not be reported or stored unambiguously."""
    if not isinstance(name, str):
        raise TypeError(f"tag name must be a string, got {type(name).__name__}: {name!r:.60}")
    if not name.strip():
        raise ValueError("tag name must not be empty")
    return name


def check_tolerance(what: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"tag {what} must be a finite number >= 0, got {value!r}")
    return float(value)


@dataclass
class TagRecord:
    """The last value recorded under one tag name, and how often it was recorded."""

    value: Any
    count: int = 1
    rtol: float | None = None
    atol: float | None = None
    source: str = "tag"

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"value": self.value, "count": self.count, "source": self.source}
        if self.rtol is not None:
            doc["rtol"] = self.rtol
        if self.atol is not None:
            doc["atol"] = self.atol
        return doc


@dataclass
class Recorder:
    """Collects encoded tag values for one trial; large values go to files in `blobs_dir`.

    The value encoders (and numpy with them) are imported at the first tag, not before the
    experiment starts, so that the experiment's own imports are what capture sees.
    """

    blobs_dir: str
    tags: dict[str, TagRecord] = field(default_factory=dict)
    _blobs: Any = None

    def record(self, name: str, value: Any, *, rtol: float | None = None,
               atol: float | None = None, source: str = "tag") -> None:
        from .. import values

        if self._blobs is None:
            self._blobs = values.BlobStore(self.blobs_dir)
        doc = values.encode(value, self._blobs)
        previous = self.tags.get(name)
        count = previous.count + 1 if previous else 1
        self.tags[name] = TagRecord(doc, count, rtol, atol, source)
