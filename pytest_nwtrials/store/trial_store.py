"""The local trial store: every trial's record, its values and noWorkflow's provenance.

Its folders and files are listed in store/layout.py; a trial's record is store/trial.py.

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
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .. import paths
from ..errors import StoreError, short
from ..files import read_json, write_json_atomic
from . import layout
from .archive import archive_name
from .records import move_record_in
from .staging import SessionFolder, acquire, store_lock
from .trial import LOCAL_REMEDY, SCHEMA, TRIAL_REMEDY, Trial, record_remedy

if TYPE_CHECKING:
    from filelock import FileLock

# what the modules that read and write the store have always imported from here
__all__ = ["LOCAL_REMEDY", "SCHEMA", "TRIAL_REMEDY", "StoreError", "Trial", "TrialStore", "record_remedy"]


class TrialStore:
    """The local store at `root`; created on first write."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.trials_dir = self.root / layout.TRIALS
        self.values_dir = self.root / layout.VALUES
        self.records_dir = self.root / layout.RECORDS
        self.provenance_dir = self.root / layout.PROVENANCE
        self.tmp_dir = self.root / layout.TMP
        self.warnings: list[str] = []
        self.skipped: list[Path] = []  # trial records that could not be read (each also a warning)
        self.session: SessionFolder | None = None  # this process's folder of staged runs
        self._lock: FileLock | None = None

    def check_layout(self) -> None:
        """OutsideError when a folder of the store (or its lock) is a link leading out of it."""
        for path in (self.trials_dir, self.values_dir, self.records_dir, self.provenance_dir, self.tmp_dir,
                     self.root / layout.LOCK):
            if os.path.lexists(path):
                paths.check_within(self.root, path, f"the store's {path.name}")

    def ensure(self) -> None:
        self.check_layout()
        self.trials_dir.mkdir(parents=True, exist_ok=True)
        self.values_dir.mkdir(parents=True, exist_ok=True)
        for name, text in ((layout.GITIGNORE, layout.STORE_GITIGNORE), (layout.README, layout.STORE_README)):
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
        return layout.record_file(self.root, trial.record_name, trial.id)

    def _files(self) -> list[tuple[int, Path]]:
        """Every ``trialN.json`` file with its number N, oldest first."""
        self.check_layout()
        if not self.trials_dir.is_dir():
            return []
        found = []
        for path in self.trials_dir.glob(layout.TRIAL_GLOB):
            match = layout.TRIAL_NAME.match(path.stem)
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
        path = layout.trial_file(self.root, trial.name)
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
        from ..values.blobs import BlobStore, is_blob_name

        blobs = BlobStore(self.values_dir)
        for path in sorted((staged / layout.VALUES).iterdir()):
            if is_blob_name(path.name) and path.is_file() and not path.is_symlink():
                blobs.put_file(path, path.suffix[1:], digest=None if check_names else path.stem)
        move_record_in(self.records_dir, trial.record_name, staged / layout.RECORDS, check_names)
        for target in (layout.record_file(self.root, "", trial.id), self.root / archive_name(trial.id)):
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
                os.link(tmp, layout.trial_file(self.root, named.name))
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
