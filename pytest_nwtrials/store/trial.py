"""One trial as the local store records it: ``trials/trialN.json``, read back into a `Trial`.

A trial record names its run (experiment, arguments, status, timing), its tagged values (small
ones inline, the others as value files in ``values/``), what it depended on, and the files of its
provenance: its record in ``records/`` and, when kept, noWorkflow's database. `Trial.from_json`
checks every field of a record that may have been edited by hand and turns a bad one into a
`StoreError` naming the file; the record's paths are checked to stay inside the store before
anything is read through them. The store that holds trials is store/trial_store.py.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .. import paths
from ..errors import StoreError, short
from ..provenance.reader import Slice
from .archive import archive_name
from .layout import TRIAL_NAME, record_file, trial_file
from .record_fields import check_argv, check_inputs, check_tags, decode_tag, field_of, json_type
from .records import ProvenanceRecord, check_record_name, load_record

SCHEMA = 1

# Trial ids become file names (``records/<id>.json``): letters, digits, '.', '_' and '-' only.
_TRIAL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
# what to do about a damaged file of the local store: a value file, a trial's record
LOCAL_REMEDY = "run the experiment that tagged the value again to write it anew"
TRIAL_REMEDY = "delete the file (the trial is then forgotten)"


def record_remedy(trial_name: str) -> str:
    """What to do about a damaged provenance record of trial `trial_name`."""
    return f"delete it: {trial_name} keeps its values, without its operations"


@dataclass(frozen=True)
class Trial:
    """One recorded run of an experiment."""

    name: str
    id: str
    experiment: str
    argv: tuple[str, ...]
    status: str
    exit_code: int | None
    started: str | None
    duration: float
    tags: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    python: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    provenance: str = ""  # the compressed noWorkflow database, relative to the store (archive_name)
    record_name: str = ""  # its compressed provenance record in records/ (store/records.py); "" in older records
    # of the first run of a group run with --nw-repeat: `spread.Stability.to_json()`, else None
    stability: dict[str, Any] | None = None
    capture: str = ""  # the capture mode it was recorded with (fine, coarse, off); "" in older records
    fallback: str | None = None  # why it was recorded with coarse capture, not fine (see capture/fallback.py)
    values_dir: Path | None = field(default=None, compare=False, repr=False)
    allow_pickle: bool = field(default=False, compare=False, repr=False)
    # load models from their skops files (values.models.load_models); None in the gate: summaries
    trusted: tuple[str, ...] | None = field(default=None, compare=False, repr=False)
    load_models: bool = field(default=False, compare=False, repr=False)

    @cached_property
    def values(self) -> dict[str, Any]:
        """The tagged values, decoded; opaque objects as their summary unless `allow_pickle`."""
        return self.values_except(frozenset())

    def values_except(self, skipped: frozenset[str]) -> dict[str, Any]:
        """The tagged values but those named in `skipped`, decoded (see `values`)."""
        from ..values.codec import BlobStore

        blobs = BlobStore(self.values_dir, remedy=LOCAL_REMEDY) if self.values_dir is not None else None
        values = {name: decode_tag(name, doc, blobs, self.where, TRIAL_REMEDY, allow_pickle=self.allow_pickle)
                  for name, doc in self.tags.items() if name not in skipped}
        if self.load_models and not self.allow_pickle:
            from ..values.models import load_models

            values = load_models(values, blobs, self.trusted)
        return values

    @property
    def where(self) -> str:
        """The record's file, for messages."""
        if self.values_dir is None:
            return self.name
        return str(trial_file(self.values_dir.parent, self.name))

    @property
    def store_root(self) -> Path | None:
        return self.values_dir.parent if self.values_dir is not None else None

    @property
    def has_provenance(self) -> bool:
        """Whether the trial kept provenance (a record, or noWorkflow's database)."""
        return bool(self.record_name or self.provenance)

    def record(self) -> ProvenanceRecord | None:
        """The trial's provenance record, None when it has none."""
        root = self.store_root
        if root is None:
            return None
        path = record_file(root, self.record_name, self.id)
        if not path.is_file():
            return None
        paths.check_within(root, path, "provenance record")
        return load_record(path, record_remedy(self.name))

    def slice(self, tag: str, union: bool = False) -> Slice:
        """The provenance slice of `tag`: the operations its value depends on, of its last tagging,
        or with `union` of all its taggings.

        The union comes from the record; a tag tagged once has one slice for both. A trial whose
        record predates unions reads it from its noWorkflow database, when that was kept. KeyError
        when there is no such slice, LookupError when the database is needed and missing.
        """
        record = self.record()
        found = record.slices if record is not None else {}
        if union and record is not None:
            found = {**{t: s for t, s in found.items() if s.events <= 1}, **record.unions}
        if union and tag not in found and self.provenance and self.store_root is not None:
            from ..provenance.reader import read_slices
            from .archive import opened

            with opened(self.store_root, self.provenance) as db:
                found = read_slices(db, self.id, [tag], union=True)
        if tag not in found:
            raise KeyError(f"{self.name} has no provenance slice for tag {tag!r}")
        return found[tag]

    @property
    def number(self) -> int:
        match = TRIAL_NAME.match(self.name)
        return int(match.group(1)) if match else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "name": self.name,
            "id": self.id,
            "experiment": self.experiment,
            "argv": list(self.argv),
            "status": self.status,
            "exit_code": self.exit_code,
            "started": self.started,
            "duration": self.duration,
            "python": self.python,
            "error": self.error,
            "inputs": self.inputs,
            "provenance": self.provenance,
            **({"record": self.record_name} if self.record_name else {}),
            "tags": self.tags,
            **({"stability": self.stability} if self.stability is not None else {}),
            **({"capture": self.capture} if self.capture else {}),
            **({"fallback": self.fallback} if self.fallback is not None else {}),
        }

    @classmethod
    def from_json(cls, doc: Any, where: str, values_dir: Path | None = None) -> Trial:
        """The trial a record describes; StoreError naming `where` when it is not a valid one."""
        if not isinstance(doc, dict):
            raise StoreError(f"{where}: not a valid trial record (a JSON {json_type(doc)}, not an object)")
        if doc.get("schema") != SCHEMA:
            raise StoreError(f"{where}: unknown record schema {short(doc.get('schema'))}")
        try:
            trial_id = field_of(doc, "id", str)
            if not _TRIAL_ID.match(trial_id):
                raise ValueError(f"'id' {short(trial_id)} is not a trial id")
            duration = field_of(doc, "duration", (int, float))
            return cls(
                name=field_of(doc, "name", str),
                id=trial_id,
                experiment=field_of(doc, "experiment", str),
                argv=check_argv(doc),
                status=field_of(doc, "status", str),
                exit_code=field_of(doc, "exit_code", (int, type(None))),
                started=field_of(doc, "started", (str, type(None))),
                duration=float(duration),
                tags=check_tags(doc),
                error=field_of(doc, "error", (dict, type(None)), None),
                python=field_of(doc, "python", str, ""),
                inputs=check_inputs(doc),
                provenance=_check_provenance(field_of(doc, "provenance", str, ""), trial_id),
                record_name=check_record_name(field_of(doc, "record", str, "")),
                stability=field_of(doc, "stability", (dict, type(None)), None),
                capture=field_of(doc, "capture", str, ""),
                fallback=field_of(doc, "fallback", (str, type(None)), None),
                values_dir=values_dir,
            )
        except ValueError as exc:
            raise StoreError(f"{where}: not a valid trial record ({exc})") from None


def _check_provenance(provenance: str, trial_id: str) -> str:
    """A record's ``provenance`` field: empty, or the trial's own archive, never another path."""
    if provenance not in ("", archive_name(trial_id)):
        raise ValueError(f"'provenance' {short(provenance)} is not {archive_name(trial_id)!r}, the trial's "
                         "own noWorkflow database")
    return provenance
