"""The local trial store: every trial's record, its values and noWorkflow's provenance.

Layout under the store root (``.nwtrials/`` at the rootdir by default)::

    .gitignore, README.md      the folder is local state, never committed
    trials/trialN.json         one record per trial, N counting up within this store
    records/<sha256>.json.gz   content-addressed, compressed provenance records: operations and
                               tag slices (explain.py), shared by the trials that name them
                               (store_records.py); older trials have records/<trial id>.json
    values/<sha256>.<ext>      content-addressed value files (arrays, frames, pickles)
    provenance/<id>.sqlite.gz  the trial's noWorkflow database, compressed (provenance_archive.py):
                               kept only with ini nw_keep_database, and by older trials
    tmp/<session>/             the files of trials being recorded by a running session
    lock                       the store lock (see store_staging.py)

A run's files are staged in its session's folder and moved into place, with the trial record
written, under the store lock; records claim their name exclusively (``os.link`` fails when the
name is taken), so concurrent writers never overwrite each other. A record that cannot be read
is reported once as a warning and otherwise ignored.

Nothing here follows a path out of the store: a subfolder or file that is a symbolic link leading
outside it, a record naming another file than its own, is refused with a message naming it.

Every reader here turns a damaged or hand-edited file into a `StoreError` whose message names
the file and what to do about it; nothing is rewritten behind the user's back.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import paths
from .errors import StoreError, short
from .files import read_json, write_json_atomic
from .provenance_archive import archive_name
from .record_fields import check_argv, check_inputs, check_tags, decode_tag, field_of, json_type
from .store_records import check_record_name, move_record_in, record_file
from .store_staging import STORE_LOCK, SessionFolder, acquire, store_lock

if TYPE_CHECKING:
    from filelock import FileLock

SCHEMA = 1
TRIAL_NAME = re.compile(r"^trial([0-9]+)$")

_GITIGNORE = "# local trial store of pytest-nwtrials: not meant to be committed\n*\n"
_README = """# pytest-nwtrials local store

This folder holds the trials recorded by pytest-nwtrials on this machine: one JSON record per
trial in `trials/`, the tagged values in `values/`, their operations and slices in `records/`
(and noWorkflow's databases in `provenance/` when kept); `tmp/` holds the files of trials a
running pytest session is recording, and `lock` keeps sessions that record at once from getting
in each other's way. It is local state: it is ignored by git, and deleting it loses only history
(do not delete it while pytest runs).
`nwtrials gc --keep N` removes old trials and what interrupted runs left behind. Baselines
meant to be shared are saved with `pytest --nw-save-baseline=NAME`.
"""


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
    record_name: str = ""  # its compressed provenance record in records/ (store_records); "" in older records
    # of the first run of a group run with --nw-repeat: `spread.Stability.to_json()`, else None
    stability: dict[str, Any] | None = None
    capture: str = ""  # the capture mode it was recorded with (fine, coarse, off); "" in older records
    fallback: str | None = None  # why it was recorded with coarse capture, not fine (see fallback.py)
    values_dir: Path | None = field(default=None, compare=False, repr=False)
    allow_pickle: bool = field(default=False, compare=False, repr=False)
    # load models from their skops files (values_models.load_models); None in the gate: summaries
    trusted: tuple[str, ...] | None = field(default=None, compare=False, repr=False)
    load_models: bool = field(default=False, compare=False, repr=False)

    @cached_property
    def values(self) -> dict[str, Any]:
        """The tagged values, decoded; opaque objects as their summary unless `allow_pickle`."""
        return self.values_except(frozenset())

    def values_except(self, skipped: frozenset[str]) -> dict[str, Any]:
        """The tagged values but those named in `skipped`, decoded (see `values`)."""
        from .values import BlobStore

        blobs = BlobStore(self.values_dir, remedy=LOCAL_REMEDY) if self.values_dir is not None else None
        values = {name: decode_tag(name, doc, blobs, self.where, TRIAL_REMEDY, allow_pickle=self.allow_pickle)
                  for name, doc in self.tags.items() if name not in skipped}
        if self.load_models and not self.allow_pickle:
            from .values_models import load_models

            values = load_models(values, blobs, self.trusted)
        return values

    @property
    def where(self) -> str:
        """The record's file, for messages."""
        if self.values_dir is None:
            return self.name
        return str(self.values_dir.parent / "trials" / f"{self.name}.json")

    @property
    def store_root(self) -> Path | None:
        return self.values_dir.parent if self.values_dir is not None else None

    @property
    def has_provenance(self) -> bool:
        """Whether the trial kept provenance (a record, or noWorkflow's database)."""
        return bool(self.record_name or self.provenance)

    def record(self) -> Any:
        """The trial's provenance record (`explain.ProvenanceRecord`), None when it has none."""
        from .explain import load_record

        path = record_file(self.store_root, self) if self.store_root else None
        if path is None or not path.is_file():
            return None
        paths.check_within(self.store_root, path, "provenance record")
        return load_record(path, record_remedy(self.name))

    def slice(self, tag: str, union: bool = False) -> Any:
        """The provenance slice of `tag` (`provenance.Slice`): the operations its value depends on,
        of its last tagging, or with `union` of all its taggings (see `store_records.trial_slice`)."""
        from .store_records import trial_slice

        return trial_slice(self, tag, union)

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


class TrialStore:
    """The local store at `root`; created on first write."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.trials_dir = self.root / "trials"
        self.values_dir = self.root / "values"
        self.records_dir = self.root / "records"
        self.provenance_dir = self.root / "provenance"
        self.tmp_dir = self.root / "tmp"
        self.warnings: list[str] = []
        self.skipped: list[Path] = []  # trial records that could not be read (each also a warning)
        self.session: SessionFolder | None = None  # this process's folder of staged runs
        self._lock: FileLock | None = None

    def check_layout(self) -> None:
        """OutsideError when a folder of the store (or its lock) is a link leading out of it."""
        for path in (self.trials_dir, self.values_dir, self.records_dir, self.provenance_dir, self.tmp_dir,
                     self.root / STORE_LOCK):
            if os.path.lexists(path):
                paths.check_within(self.root, path, f"the store's {path.name}")

    def ensure(self) -> None:
        self.check_layout()
        self.trials_dir.mkdir(parents=True, exist_ok=True)
        self.values_dir.mkdir(parents=True, exist_ok=True)
        for name, text in ((".gitignore", _GITIGNORE), ("README.md", _README)):
            target = self.root / name
            if not os.path.lexists(target):  # a link, even a dangling one, is never written through
                target.write_text(text, encoding="utf-8")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store lock for the block (reentrant within this process)."""
        if self._lock is None:
            self._lock = store_lock(self.root)
        acquire(self._lock)
        try:
            yield
        finally:
            self._lock.release()

    def stage(self) -> Path:
        """A fresh folder, private to this process and inside the store, for the files of one run:
        ``values/`` (the capture writes its value files there), ``records/``, ``provenance/``.
        `add` with ``staged=`` moves them into place."""
        if self.session is None:
            self.ensure()
            with self.locked():  # see SessionFolder: collectors probe session locks under it
                self.session = SessionFolder(self.tmp_dir)
        return self.session.stage()

    def close(self) -> None:
        """Remove this process's staging folder and give up its lock (at the end of a session)."""
        if self.session is not None:
            self.session.close()
            self.session = None

    def record_path(self, trial: Trial) -> Path:
        """Where the provenance record of `trial` is kept (it may not exist)."""
        return record_file(self.root, trial)

    def _files(self) -> list[tuple[int, Path]]:
        """Every ``trialN.json`` file with its number N, oldest first."""
        self.check_layout()
        if not self.trials_dir.is_dir():
            return []
        found = []
        for path in self.trials_dir.glob("trial*.json"):
            match = TRIAL_NAME.match(path.stem)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found)

    def _numbers(self) -> list[int]:
        return [number for number, _ in self._files()]

    def add(self, trial: Trial, staged: Path | None = None, *, check_names: bool = False) -> Trial:
        """Store `trial` under the next free ``trialN`` name and return it with that name.

        With `staged` (a folder from `stage`), the run's files are moved into the store first,
        under the same hold of the store lock as the record. A value file is named by the
        capture process that wrote it, from the bytes as it wrote them, and replaces one of the
        same name (a rename costs less than reading that one to check it). With `check_names`
        (files that came from elsewhere: a pytest-xdist worker) each file is hashed first, and
        one already there is reused only when intact, a damaged one replaced.
        """
        self.ensure()
        with self.locked():
            if staged is not None:
                self._move_in(trial, staged, check_names)
            named = self._claim(trial)
            if self.session is not None:
                self.session.pin(named.name)
        if staged is not None and self.session is not None and staged.parent == self.session.root:
            shutil.rmtree(staged, ignore_errors=True)
        return named

    def rewrite(self, trial: Trial) -> Trial:
        """Write `trial`'s record anew over its own ``trialN.json`` (to add what is known only
        after it was added: the stability of its group of repeated runs); atomically, under the
        store lock. StoreError when the file is gone or holds another trial: nothing is written."""
        path = self.trials_dir / f"{trial.name}.json"
        with self.locked():
            paths.check_within(self.trials_dir, path, "trial record")
            if not path.is_file():
                raise StoreError(f"{path}: the record of {trial.name} is gone; it was not updated")
            current = Trial.from_json(read_json(path), str(path), self.values_dir)
            if current.id != trial.id:
                raise StoreError(f"{path}: holds trial {current.id}, not {trial.id}; it was not updated")
            write_json_atomic(path, trial.to_json())
        return replace(trial, values_dir=self.values_dir)

    def _move_in(self, trial: Trial, staged: Path, check_names: bool) -> None:
        from .values_blobs import BlobStore, is_blob_name

        blobs = BlobStore(self.values_dir)
        for path in sorted((staged / "values").iterdir()):
            if is_blob_name(path.name) and path.is_file() and not path.is_symlink():
                blobs.put_file(path, path.suffix[1:], digest=None if check_names else path.stem)
        move_record_in(self.records_dir, trial.record_name, staged / "records", check_names)
        for target in (self.records_dir / f"{trial.id}.json", self.root / archive_name(trial.id)):
            source = staged / target.parent.name / target.name
            if source.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)

    def _claim(self, trial: Trial) -> Trial:
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
        for _, path in self._files():
            try:
                paths.check_within(self.trials_dir, path, "trial record")
                trial = Trial.from_json(read_json(path), str(path), self.values_dir)
                if trial.name != path.stem:
                    raise StoreError(f"{path}: not a valid trial record (it names itself {short(trial.name)})")
                result.append(trial)
            except StoreError as exc:
                message = f"{exc}; skipped (delete the file to silence this warning)"
                if message not in self.warnings:
                    self.warnings.append(message)
                if path not in self.skipped:
                    self.skipped.append(path)
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
