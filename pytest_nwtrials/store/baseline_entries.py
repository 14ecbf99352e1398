"""One baseline entry: what an experiment is compared with, its place in a baseline, and its JSON.

An entry holds the tagged values of one earlier trial (without their source lines), what that
trial depended on and, when it was saved from repeated runs (``--nw-repeat``), the run-to-run
spread of the paths whose values differed between the runs (``"spread"``, beside ``"tags"``).
An entry saved without repeats has no ``"spread"`` and reads as having none.

`entry_doc` writes an entry and `entry_fields` checks one read back; store/baselines.py places them in
a baseline's folder. No pytest in here.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..compare.spread import PathSpread, Stability, spreads_from_json, spreads_to_json
from .layout import ENTRY_EXTENSION, entry_record, trial_file
from .record_fields import check_argv, check_inputs, check_tags, decode_tag, field_of
from .records import ProvenanceRecord, load_record
from .trial_store import LOCAL_REMEDY, SCHEMA, TRIAL_REMEDY, StoreError, Trial, TrialStore, record_remedy


def baseline_remedy(name: str) -> str:
    """What to do about a damaged file of baseline `name`."""
    return f"restore it from version control, or save the baseline again with --nw-save-baseline={name}"


@dataclass(frozen=True)
class Entry:
    """What one experiment is compared with: the tagged values of one earlier trial."""

    experiment: str
    argv: tuple[str, ...]
    tags: dict[str, Any]
    trial: str
    trial_id: str
    values_dir: Path
    label: str  # how reports name it: "baseline 'reference'" or "trial3"
    inputs: dict[str, Any] = field(default_factory=dict)
    record: Path | None = None  # its provenance record, when one was kept
    path: Path | None = None  # the entry file, for entries of a named baseline
    baseline: str | None = None  # the baseline's name, for entries of a named baseline
    # the run-to-run spread by path, when the entry was recorded from repeated runs; {} otherwise
    spread: dict[str, PathSpread] = field(default_factory=dict)

    @property
    def where(self) -> str:
        """The file the entry was read from: the baseline entry, or the trial's record."""
        return str(self.path or trial_file(self.values_dir.parent, self.trial))

    @property
    def remedy(self) -> str:
        return baseline_remedy(self.baseline) if self.baseline else TRIAL_REMEDY

    def blobs(self) -> Any:
        """The `values.BlobStore` of the entry's value files, whose errors say how to repair them."""
        from ..values.codec import BlobStore

        return BlobStore(self.values_dir, remedy=baseline_remedy(self.baseline) if self.baseline else LOCAL_REMEDY)

    def values(self, skipped: frozenset[str] = frozenset()) -> dict[str, Any]:
        """The tagged values but those named in `skipped`, decoded; a StoreError naming the
        damaged file and what to do."""
        blobs = self.blobs()
        return {name: decode_tag(name, doc, blobs, self.where, self.remedy)
                for name, doc in self.tags.items() if name not in skipped}

    def provenance(self) -> ProvenanceRecord | None:
        """The provenance record, None when none was kept."""
        if self.record is None or not self.record.is_file():
            return None
        if self.baseline:
            remedy = f"{baseline_remedy(self.baseline)} (or delete it: the operations are then not compared)"
        else:
            remedy = record_remedy(self.trial)
        return load_record(self.record, remedy, self.trial_id if self.baseline else None)


def records_of(entry: Entry, trial: Trial) -> tuple[ProvenanceRecord | None, ProvenanceRecord | None, list[str]]:
    """The provenance records of `entry` and of `trial` compared with it, None for a side without
    one; and for a side whose record cannot be read, what is wrong (the file, what to do) and
    that the operations are not compared."""
    records: list[ProvenanceRecord | None] = []
    problems = []
    for read in (entry.provenance, trial.record):
        try:
            records.append(read())
        except StoreError as exc:  # names the file and what to do
            problems.append(f"{exc}; the operations are not compared")
            records.append(None)
    return records[0], records[1], problems


# what entry_path appends to the experiment's path: "" or an argv digest, then ".json"
ENTRY_SUFFIX = r"(\.[0-9a-f]{10})?\.json"


def entry_path(experiment: str, argv: tuple[str, ...]) -> str:
    """The entry's path inside a baseline: the experiment's own path, plus an argv digest if any."""
    if not argv:
        return f"{experiment}{ENTRY_EXTENSION}"
    digest = hashlib.sha1(json.dumps(list(argv)).encode()).hexdigest()[:10]
    return f"{experiment}.{digest}{ENTRY_EXTENSION}"


def record_path(entry_file: Path) -> Path:
    """The provenance record saved next to a baseline entry: ``train.py.json`` -> ``train.py.provenance.json``."""
    return entry_record(entry_file)


def trial_spread(trial: Trial) -> dict[str, PathSpread] | None:
    """The run-to-run spread recorded in `trial` (the first run of a repeated group), None when it
    was run once; ValueError when its stability is damaged."""
    if trial.stability is None:
        return None
    return Stability.from_json(trial.stability).spreads


def entry_from_trial(trial: Trial, store: TrialStore) -> Entry:
    """`trial` as what a later trial is compared with (``--nw-baseline=trial3`` or ``latest``).

    Without a spread, even when the trial recorded one: the band is what a saved baseline adds,
    so comparing two trials (here, `nwtrials diff`, `trial_diff`) stays exact.
    """
    return Entry(trial.experiment, trial.argv, trial.tags, trial.name, trial.id,
                 store.values_dir, trial.name, trial.inputs, store.record_path(trial))


def saved_with_spread(trials: Iterable[Trial], saved: Iterable[Path], folder: Path) -> list[str]:
    """The experiments of `trials` whose entry in the baseline `folder` is among the `saved`
    files and was saved with a run-to-run spread: repeated runs that differed somewhere."""
    saved = set(saved)
    return sorted({trial.experiment for trial in trials if (trial.stability or {}).get("spread")
                   and folder / entry_path(trial.experiment, trial.argv) in saved})


def entry_fields(doc: Any, experiment: str) -> dict[str, Any]:
    """The checked fields of entry document `doc` of `experiment`, as `Entry` keywords (without
    the place-dependent ones); ValueError saying what is wrong (the caller names the file)."""
    if not isinstance(doc, dict):
        raise ValueError("it is not a JSON object")
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"unknown schema {doc.get('schema')!r:.40}")
    claimed = field_of(doc, "experiment", str)
    if claimed != experiment:
        raise ValueError(f"it holds the entry of {claimed!r:.200}, not of {experiment} as its place says")
    return {"experiment": experiment, "argv": check_argv(doc), "tags": check_tags(doc),
            "trial": field_of(doc, "trial", str), "trial_id": field_of(doc, "trial_id", str),
            "inputs": check_inputs(doc), "spread": check_spread(doc)}


def check_spread(doc: dict[str, Any]) -> dict[str, PathSpread]:
    """The entry's recorded run-to-run spread, {} when it was saved without repeats."""
    if "spread" not in doc:
        return {}
    try:
        return bands_from_json(doc["spread"])
    except ValueError as exc:
        raise ValueError(f"'spread': {exc}"[:300]) from None


def bands_from_json(doc: Any) -> dict[str, PathSpread]:
    """An entry's ``"spread"`` as spreads by path; ValueError when it is not one a run could record."""
    spreads = spreads_from_json(doc)
    for spread in spreads.values():
        _check_band(spread)
    return spreads


def _check_band(spread: PathSpread) -> None:
    """A band that could not come from measured runs (an infinite or negative deviation, a low
    above the high) would match what it should not: it is damage, not a band."""
    numbers = {"low": spread.low, "high": spread.high, "deviation": spread.deviation, "relative": spread.relative}
    for key, number in numbers.items():
        if number is not None and not math.isfinite(number):
            raise ValueError(f"the spread of {spread.path!r} has a {key} that is not finite")
    for key in ("deviation", "relative"):
        if (numbers[key] or 0.0) < 0:
            raise ValueError(f"the spread of {spread.path!r} has a negative {key}")
    if spread.low is not None and spread.high is not None and spread.low > spread.high:
        raise ValueError(f"the spread of {spread.path!r} has a low above its high")


def entry_doc(trial: Trial) -> bytes:
    """The baseline entry of `trial`: its tags without the source lines and, when it was the first
    of repeated runs, the spread they showed. StoreError when that spread cannot be read."""
    tags = {tag: {k: v for k, v in doc.items() if k != "source"} for tag, doc in trial.tags.items()}
    try:
        spread = trial_spread(trial)
    except ValueError as exc:
        raise StoreError(f"{trial.where}: the run-to-run spread of {trial.name} cannot be read ({exc}), so "
                         f"{trial.experiment} is not saved; run it again with --nw-repeat") from None
    doc = {
        "schema": SCHEMA,
        "experiment": trial.experiment,
        "argv": list(trial.argv),
        "trial": trial.name,
        "trial_id": trial.id,
        "started": trial.started,
        "python": trial.python,
        "inputs": trial.inputs,
        "tags": tags,
        **({"spread": spreads_to_json(spread)} if spread is not None else {}),
    }
    return (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode("utf-8")
