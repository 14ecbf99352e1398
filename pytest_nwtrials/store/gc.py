"""Garbage collection of the local store: old trials, and what interrupted runs left behind.

Runs at the end of a pytest session (ini ``nw_keep``) and as ``nwtrials gc``. It holds the store
lock while it decides and deletes (see store/staging.py), so a trial being added by another
session is either wholly in the store, and its files are referenced, or wholly in that session's
private folder, which is not touched while the session lives.

Every path deleted is built from a record anyone can edit, so each is checked to stay inside the
store first (`paths.inside`, `paths.check_within`): a crafted record or a folder replaced by a
link is reported as a warning naming it, and nothing outside the store is touched.

Besides old trials it reclaims, when their owner is gone:

- temporary files of interrupted writes (``.tmp-*.part``, ``.new.<pid>.tmp``, ``.<name>.<pid>.tmp``):
  every writer of the store's folders holds the store lock, so under it they belong to nobody;
- the private folders of sessions that died (their lock can be taken);
- value files, provenance records and noWorkflow databases that no trial references, but only
  when every trial record could be read: an unreadable one might reference them. Compressed
  provenance records are shared by trials (`store/records.py`): one goes with the last trial
  that names it.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import paths
from ..values.blobs import is_blob_name
from . import layout
from .archive import SUFFIX
from .records import is_record_name
from .staging import survey
from .trial_store import Trial, TrialStore

# what write_bytes_atomic, TrialStore.add and BlobStore.temp_path leave when interrupted
_TEMPORARY = re.compile(r"\A(\..+\.tmp|\.tmp-.+\.part)\Z", re.DOTALL)


@dataclass(frozen=True)
class GcResult:
    """What garbage collection removed (or would remove, on a dry run)."""

    removed: tuple[Trial, ...]
    record_files: int  # trial records, provenance records and compressed noWorkflow databases
    record_bytes: int
    value_files: int  # value files no remaining trial references
    value_bytes: int
    leftover_files: int = 0  # temporary files, folders of dead sessions, records of no trial
    leftover_bytes: int = 0
    warnings: tuple[str, ...] = ()

    @property
    def reclaimed(self) -> int:
        return self.record_bytes + self.value_bytes + self.leftover_bytes


def collect_garbage(st: TrialStore, keep: int | None, *, dry_run: bool = False) -> GcResult:
    """Remove trials older than the last `keep` of each experiment (none when `keep` is None or
    0) and what interrupted runs left; with `dry_run`, only say what would go.

    Trials recorded by another session still running are kept until it ends. OutsideError
    (a StoreError) when a folder of the store is a link leading out of it.
    """
    st.check_layout()
    with contextlib.nullcontext() if dry_run else st.locked():
        return _Collector(st, dry_run).run(keep)


class _Collector:
    def __init__(self, st: TrialStore, dry_run: bool) -> None:
        self.st, self.dry_run = st, dry_run
        self.warnings: list[str] = []

    def run(self, keep: int | None) -> GcResult:
        st = self.st
        trials = st.trials()
        sessions = survey(st.tmp_dir, st.session.name if st.session else None)
        self.warnings.extend(sessions.warnings)
        removed = _old_trials(trials, keep, sessions.pinned)
        gone = {t.name for t in removed}
        kept = [t for t in trials if t.name not in gone]
        records = [path for t in removed for path in self._files_of(t)]
        values, leftovers = self._unreferenced(kept), self._temporaries() + sessions.dead
        if not st.skipped:  # an unreadable trial record may name any of these
            leftovers += self._orphan_records({t.id for t in kept} | {t.id for t in removed})
            named = {t.record_name for t in removed}  # the last trials naming them: theirs; else a killed run's
            for path in self._unnamed_records(kept):
                (records if path.name in named else leftovers).append(path)
        sizes = _size(records), _size(values), _size(leftovers)
        if not self.dry_run:
            for path in records + values + leftovers:  # trial records first: see TrialStore.add
                self._remove(path)
        return GcResult(tuple(removed), len(records), sizes[0], len(values), sizes[1],
                        len(leftovers), sizes[2], tuple(dict.fromkeys(self.warnings)))

    def _files_of(self, trial: Trial) -> list[Path]:
        """The files of a removed trial, each checked to be inside the store."""
        relatives = [layout.trial_file(Path(), trial.name).as_posix(), layout.record_file(Path(), "", trial.id).as_posix()]
        if trial.provenance:
            relatives.append(trial.provenance)
        found = []
        for relative in relatives:
            try:
                path = paths.inside(self.st.root, relative, f"a file of {trial.where}")
            except paths.OutsideError as exc:
                self.warnings.append(f"{exc}; not removed")
                continue
            if path.is_file():
                found.append(path)
        return found

    def _unnamed_records(self, kept: list[Trial]) -> list[Path]:
        """Compressed provenance records no kept trial names (listed, never taken from a record)."""
        folder = self.st.records_dir
        if not folder.is_dir():
            return []
        named = {t.record_name for t in kept}
        return sorted(path for path in folder.iterdir()
                      if is_record_name(path.name) and path.name not in named and not path.is_dir())

    def _unreferenced(self, kept: list[Trial]) -> list[Path]:
        """Value files no kept trial references; none when a record is unreadable."""
        folder = self.st.values_dir
        if not folder.is_dir():
            return []
        if self.st.skipped:
            unread = ", ".join(str(path) for path in self.st.skipped)
            self.warnings.append(f"value files were not removed: {unread} cannot be read, so the value files "
                                 "it uses are unknown (delete or restore it, then run `nwtrials gc` again)")
            return []
        used = self._references(kept)
        return sorted(path for path in folder.iterdir()
                      if is_blob_name(path.name) and path.name not in used and not path.is_dir())

    def _references(self, trials: list[Trial]) -> set[str]:
        from ..values.codec import blob_refs

        used = set()
        for trial in trials:
            for doc in trial.tags.values():
                for ref in blob_refs(doc["value"], include_pickles=True):
                    if is_blob_name(ref):
                        used.add(ref)
                    else:
                        self.warnings.append(f"{trial.where}: {ref!r:.80} is not the name of a value file; ignored")
        return used

    def _temporaries(self) -> list[Path]:
        st = self.st
        found: list[Path] = []
        for folder in (st.root, st.trials_dir, st.values_dir, st.records_dir, st.provenance_dir):
            if folder.is_dir():
                found.extend(path for path in folder.iterdir() if _TEMPORARY.match(path.name))
        return sorted(found)

    def _orphan_records(self, ids: set[str]) -> list[Path]:
        """Provenance records and databases of trials that were never recorded (a killed run)."""
        found: list[Path] = []
        for folder, suffix in ((self.st.records_dir, ".json"), (self.st.provenance_dir, SUFFIX)):
            if folder.is_dir():
                found.extend(path for path in folder.iterdir() if path.name.endswith(suffix)
                             and not path.name.startswith(".") and path.name[: -len(suffix)] not in ids)
        return sorted(found)

    def _remove(self, path: Path) -> None:
        """Delete `path` (a link itself, never its target), once checked to be inside the store."""
        try:
            if path.is_symlink():
                paths.check_within(self.st.root, path.parent, "a folder of the store")
                path.unlink(missing_ok=True)
            elif path.is_dir():
                paths.check_within(self.st.root, path, "a folder of the store")
                shutil.rmtree(path)  # removes the links inside, never follows them
            else:
                paths.check_within(self.st.root, path, "a file of the store")
                path.unlink(missing_ok=True)
        except paths.OutsideError as exc:
            self.warnings.append(f"{exc}; not removed")
        except FileNotFoundError:
            pass  # removed meanwhile by its owner or another collector


def _old_trials(trials: list[Trial], keep: int | None, pinned: set[str]) -> list[Trial]:
    """Trials beyond the newest `keep` of their experiment, oldest first; pinned ones stay."""
    if not keep:
        return []
    by_experiment: dict[str, list[Trial]] = {}
    for trial in trials:
        by_experiment.setdefault(trial.experiment, []).append(trial)
    old = [t for group in by_experiment.values() for t in group[:-keep] if t.name not in pinned]
    return sorted(old, key=lambda t: t.number)


def _size(found: list[Path]) -> int:
    """Bytes taken by files and folders (not following links)."""
    total = 0
    for path in found:
        try:
            if path.is_dir() and not path.is_symlink():
                total += sum(os.lstat(os.path.join(folder, name)).st_size
                             for folder, _, names in os.walk(path) for name in names)
            else:
                total += path.lstat().st_size
        except OSError:
            pass
    return total
