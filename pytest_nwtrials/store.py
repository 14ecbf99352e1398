"""The local trial store: every trial's record, its values and noWorkflow's provenance.

Layout under the store root (``.nwtrials/`` at the rootdir by default)::

    .gitignore, README.md      the folder is local state, never committed
    trials/trialN.json         one record per trial, N counting up within this store
    records/<trial id>.json    the trial's operations and tag slices (see explain.py)
    values/<sha256>.<ext>      content-addressed value files (arrays, frames, pickles)
    provenance/<worker>/       noWorkflow's database, one per process writing at a time

Records are written atomically and claim their name exclusively (``os.link`` fails when the name
is taken), so concurrent writers never overwrite each other. A record that cannot be read is
reported once as a warning and otherwise ignored.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

SCHEMA = 1
TRIAL_NAME = re.compile(r"^trial([0-9]+)$")

_GITIGNORE = "# local trial store of pytest-nwtrials: not meant to be committed\n*\n"
_README = """# pytest-nwtrials local store

This folder holds the trials recorded by pytest-nwtrials on this machine: one JSON record per
trial in `trials/`, the tagged values in `values/`, and noWorkflow's provenance databases in
`provenance/`. It is local state: it is ignored by git, and deleting it loses only history.
Baselines meant to be shared are saved with `pytest --nw-save-baseline=NAME`.
"""


class StoreError(Exception):
    """A store or baseline file is unusable; the message names the file and what to do."""


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
    provenance: str = ""  # the noWorkflow project folder of the capture, relative to the store
    values_dir: Path | None = field(default=None, compare=False, repr=False)
    allow_pickle: bool = field(default=False, compare=False, repr=False)

    @cached_property
    def values(self) -> dict[str, Any]:
        """The tagged values, decoded; opaque objects as their summary unless `allow_pickle`."""
        from .values import BlobStore, decode

        blobs = BlobStore(self.values_dir) if self.values_dir is not None else None
        return {name: decode(doc["value"], blobs, allow_pickle=self.allow_pickle)
                for name, doc in self.tags.items()}

    @property
    def store_root(self) -> Path | None:
        return self.values_dir.parent if self.values_dir is not None else None

    def record(self) -> Any:
        """The trial's provenance record (`explain.ProvenanceRecord`), None when it has none."""
        from .explain import ProvenanceRecord

        path = self.store_root / "records" / f"{self.id}.json" if self.store_root else None
        if path is None or not path.is_file():
            return None
        try:
            return ProvenanceRecord.from_json(read_json(path))
        except ValueError as exc:
            raise StoreError(f"{path}: {exc}") from None

    def slice(self, tag: str, union: bool = False) -> Any:
        """The provenance slice of `tag` (`provenance.Slice`): the operations its value depends on.

        By default the slice of its last tagging; with `union`, of all its taggings, read from
        noWorkflow's database in the local store.
        """
        if union:
            from .provenance import read_slices

            if not (self.store_root and self.provenance):
                raise LookupError(f"{self.name} has no provenance database in the local store")
            db = self.store_root / self.provenance / ".noworkflow" / "db.sqlite"
            found = read_slices(db, self.id, [tag], union=True)
        else:
            record = self.record()
            found = record.slices if record is not None else {}
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
            "tags": self.tags,
        }

    @classmethod
    def from_json(cls, doc: Any, where: str, values_dir: Path | None = None) -> Trial:
        try:
            if doc.get("schema") != SCHEMA:
                raise StoreError(f"{where}: unknown record schema {doc.get('schema')!r}")
            return cls(
                name=str(doc["name"]),
                id=str(doc["id"]),
                experiment=str(doc["experiment"]),
                argv=tuple(str(a) for a in doc["argv"]),
                status=str(doc["status"]),
                exit_code=doc["exit_code"],
                started=doc["started"],
                duration=float(doc["duration"]),
                tags=dict(doc["tags"]),
                error=doc.get("error"),
                python=str(doc.get("python", "")),
                inputs=dict(doc.get("inputs") or {}),
                provenance=str(doc.get("provenance", "")),
                values_dir=values_dir,
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{where}: not a valid trial record ({type(exc).__name__}: {exc})") from None


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` to `path` through a temporary file beside it, so readers see all of it or none."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json_atomic(path: str | os.PathLike[str], doc: Any) -> None:
    """Write `doc` as JSON atomically; a document JSON refuses raises before anything is written."""
    write_text_atomic(path, json.dumps(doc, indent=1, allow_nan=False) + "\n")


def copy_atomic(source: Path, target: Path) -> None:
    """Copy a file so that `target` is either absent or whole."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_json(path: Path) -> Any:
    """Load a JSON file, turning every way it can be broken into a StoreError naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise StoreError(f"{path}: cannot be read as JSON ({exc})") from None


class TrialStore:
    """The local store at `root`; created on first write."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.trials_dir = self.root / "trials"
        self.values_dir = self.root / "values"
        self.records_dir = self.root / "records"
        self.warnings: list[str] = []

    def ensure(self) -> None:
        self.trials_dir.mkdir(parents=True, exist_ok=True)
        self.values_dir.mkdir(parents=True, exist_ok=True)
        for name, text in ((".gitignore", _GITIGNORE), ("README.md", _README)):
            target = self.root / name
            if not target.exists():
                target.write_text(text, encoding="utf-8")

    def provenance_dir(self, worker: str) -> Path:
        return self.root / "provenance" / worker

    def record_path(self, trial_id: str) -> Path:
        """Where the provenance record of trial `trial_id` is kept (it may not exist)."""
        return self.records_dir / f"{trial_id}.json"

    def _numbers(self) -> list[int]:
        if not self.trials_dir.is_dir():
            return []
        found = []
        for path in self.trials_dir.glob("trial*.json"):
            match = TRIAL_NAME.match(path.stem)
            if match:
                found.append(int(match.group(1)))
        return found

    def add(self, trial: Trial) -> Trial:
        """Store `trial` under the next free ``trialN`` name and return it with that name."""
        self.ensure()
        number = self.next_number()
        tmp = self.trials_dir / f".new.{os.getpid()}.tmp"
        while True:
            named = replace(trial, name=f"trial{number}", values_dir=self.values_dir)
            write_json_atomic(tmp, named.to_json())
            try:
                os.link(tmp, self.trials_dir / f"{named.name}.json")
            except FileExistsError:
                number += 1
                continue
            finally:
                tmp.unlink()
            return named

    def trials(self) -> list[Trial]:
        """Every readable trial, oldest first; unreadable records become warnings."""
        result = []
        for number in sorted(self._numbers()):
            path = self.trials_dir / f"trial{number}.json"
            try:
                result.append(Trial.from_json(read_json(path), str(path), self.values_dir))
            except StoreError as exc:
                message = f"{exc}; skipped (delete the file to silence this warning)"
                if message not in self.warnings:
                    self.warnings.append(message)
        return result

    def find(self, ref: str) -> list[Trial]:
        """Trials whose short name, id, or id prefix (4+ characters) is `ref`."""
        trials = self.trials()
        exact = [t for t in trials if ref in (t.name, t.id)]
        if exact or len(ref) < 4:
            return exact
        return [t for t in trials if t.id.startswith(ref)]

    def latest(self, experiment: str, argv: tuple[str, ...], before: int) -> Trial | None:
        """The most recent finished trial of `experiment` numbered below `before`."""
        matching = [t for t in self.trials()
                    if t.experiment == experiment and t.argv == argv
                    and t.status == "finished" and t.number < before]
        return matching[-1] if matching else None

    def next_number(self) -> int:
        """The number the next trial would get: trials numbered below it are earlier."""
        return max(self._numbers(), default=0) + 1



def find_store(start: Path | None = None) -> Path | None:
    """The nearest ``.nwtrials`` folder at `start` (default: the working directory) or above it."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".nwtrials" / "trials").is_dir():
            return folder / ".nwtrials"
    return None
