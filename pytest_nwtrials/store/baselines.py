"""Named baselines on disk: their entries, reading them and saving them (store/references.py resolves
``--nw-baseline`` values to them).

A baseline is a folder meant to be committed: ``<baselines_dir>/<NAME>/`` holds one JSON entry per
experiment, at the experiment's own relative path plus ``.json`` (``experiments/train.py.json``),
and ``values/`` with the array and frame files those entries reference. What an entry holds, with
the run-to-run spread of repeated runs, is in store/baseline_entries.py. Entries hold no absolute
paths and no pickles: opaque objects are kept as their summary.

Baselines are committed and edited by hand, so every reader here turns a damaged or inconsistent
file into a `StoreError` (or, for a file that does not stop a comparison, a line of `problems`)
naming the file and what to do. Saving a baseline replaces a damaged entry, record or value file
of the experiments it saves; it never touches the others.

Anyone who can commit can also commit symbolic links, so every use of a baseline goes through
`BaselineStore.folder`: it refuses a baseline folder that leads outside the folder of baselines
and one holding a link that leads outside it, so nothing is read, written or deleted outside it
(links that stay inside are followed). Saves are staged and journaled (store/baseline_files.py), so an
interrupted save leaves each entry old or new, whole, and no temporary file in the folder.
"""
from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import short
from ..files import read_json
from ..paths import check_within, inside
from . import layout
from .baseline_entries import (
    ENTRY_SUFFIX, Entry, baseline_remedy, entry_doc, entry_fields, entry_from_trial, entry_path, record_path)
from .baseline_files import Staging, finish_interrupted, hidden, lexically_in, links, walk
from .record_fields import check_argv, field_of
from .trial_store import StoreError, Trial, TrialStore

__all__ = ["BASELINE_NAME", "LATEST", "BaselineStore", "Entry", "baseline_remedy", "check_baseline_name",
           "entry_from_trial", "entry_path", "record_path"]

BASELINE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
LATEST = "latest"


def check_baseline_name(name: str) -> str:
    """A baseline name must be a plain folder name that no other kind of reference can mean."""
    if not BASELINE_NAME.match(name):
        raise ValueError(
            f"baseline name {name!r} is not valid: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit")
    if name == LATEST or layout.TRIAL_NAME.match(name):
        raise ValueError(f"baseline name {name!r} is reserved for trial references; choose another name")
    return name


class BaselineStore:
    """The folder of named baselines (``nw-baselines/`` at the rootdir by default).

    `project` is the rootdir: a folder of baselines lexically inside it must really be inside it,
    so a committed link in its place cannot lead elsewhere (one configured outside it is the
    user's choice). With `complete_saves` False, reading a baseline leaves a save of it that was
    interrupted for the next writer to complete: a reader that must write nothing (the trial browser).
    """

    def __init__(self, root: Path, project: Path | None = None, *, complete_saves: bool = True) -> None:
        self.root = Path(root)
        self.project = Path(project) if project is not None else None
        self.complete_saves = complete_saves

    def _check_root(self) -> None:
        """OutsideError when the folder of baselines lies in the project as written but leads out of it."""
        if self.project is not None and lexically_in(self.root, self.project):
            check_within(self.project, self.root, "the folder of baselines")

    def names(self) -> list[str]:
        self._check_root()
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if (p.is_dir() or p.is_symlink()) and BASELINE_NAME.match(p.name))

    def exists(self, name: str) -> bool:
        """Whether there is a baseline folder `name` (or a link in its place, which `folder` refuses)."""
        self._check_root()
        path = self.root / name
        return BASELINE_NAME.match(name) is not None and (path.is_symlink() or path.is_dir())

    def folder(self, name: str) -> Path:
        """The folder of baseline `name`, checked before anything in it is read, written or deleted.

        A save of it that was interrupted is completed first (unless `complete_saves` is False). OutsideError (a StoreError) naming
        the link when the folder, or a link anywhere in it, leads outside it.
        """
        if not BASELINE_NAME.match(name):
            raise StoreError(f"{short(name)} is not a baseline name")
        self._check_root()
        folder = self.root / name
        check_within(self.root, folder, f"the folder of baseline '{name}'")
        if self.complete_saves:
            finish_interrupted(self.root, name, folder)
        for link in links(folder):
            check_within(folder, link, f"in baseline '{name}', the link")
        return folder

    def _files(self, name: str) -> list[tuple[Path, PurePosixPath]]:
        """Every file of baseline `name` with its path inside it, without descending through links."""
        folder = self.folder(name)
        return [(path, PurePosixPath(path.relative_to(folder).as_posix())) for path in walk(folder)]

    def entry(self, name: str, experiment: str, argv: tuple[str, ...]) -> Entry | None:
        """The entry for `experiment` run with `argv`, None when the baseline has none.

        When there is no entry for these arguments but exactly one for the experiment, that one
        is returned: the comparison then reports the arguments as changed.
        """
        path = inside(self.folder(name), entry_path(experiment, argv), f"the entry of {experiment}")
        if not path.is_file():
            others = self.entries_of(name, experiment)
            if len(others) != 1:
                return None
            path = others[0]
        return self.read_entry(name, path, experiment)

    def read_entry(self, name: str, path: Path, experiment: str) -> Entry:
        """The entry file `path` of `experiment` in baseline `name`, checked against its place
        and its value files; StoreError naming the file and what to do when it is unusable."""
        from ..values.codec import BlobStore, blob_refs

        folder = self.folder(name)
        check_within(folder, path, f"the entry of {experiment}")
        remedy = baseline_remedy(name)
        try:
            doc = read_json(path)
        except StoreError as exc:
            raise StoreError(f"{exc}; {remedy}") from None
        try:
            fields = entry_fields(doc, experiment)
            argv = fields["argv"]
            if folder / entry_path(experiment, argv) != path:
                raise ValueError(f"its arguments {list(argv)!r:.200} belong in {entry_path(experiment, argv)}")
            record = record_path(path)
            entry = Entry(**fields, values_dir=folder / layout.VALUES, label=f"baseline '{name}'",
                          record=record if record.is_file() else None, path=path, baseline=name)
        except ValueError as exc:
            raise StoreError(f"{path}: not a valid baseline entry ({exc}); {remedy}") from None
        values = BlobStore(entry.values_dir)
        missing = sorted({blob for tag in entry.tags.values() for blob in blob_refs(tag["value"]) if blob not in values})
        if missing:
            listed = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            raise StoreError(f"{path}: its tags reference value files missing from {entry.values_dir}: {listed}; "
                             f"{remedy}")
        return entry

    def entries_of(self, name: str, experiment: str) -> list[Path]:
        """Every entry file of `experiment` in baseline `name`, whatever its arguments."""
        folder = inside(self.folder(name), experiment, f"the entries of {experiment}").parent
        if not folder.is_dir():
            return []
        pattern = re.compile(re.escape(Path(experiment).name) + ENTRY_SUFFIX)
        return sorted(p for p in folder.iterdir() if pattern.fullmatch(p.name) and p.is_file())

    def entry_files(self, name: str) -> dict[Path, str]:
        """Every entry file of baseline `name` and the experiment its place names.

        A JSON file that reads as something other than an entry (say, notes someone put there)
        is not one: it is reported by `problems` and never removed as an unused entry. A file
        that cannot be read at all is taken for a damaged entry.
        """
        return {path: experiment for path, (experiment, _) in self._entry_docs(name).items()}

    def _entry_docs(self, name: str) -> dict[Path, tuple[str, Any]]:
        """`entry_files`, with each file's document as read (None when it cannot be read)."""
        found: dict[Path, tuple[str, Any]] = {}
        for path, relative in self._files(name):
            if (relative.parts[0] == layout.VALUES or not path.name.endswith(layout.ENTRY_EXTENSION)
                    or path.name.endswith(layout.RECORD_EXTENSION) or hidden(relative)):
                continue
            try:
                doc = read_json(path)
            except StoreError:
                doc = None
            if doc is None or isinstance(doc, dict) and "experiment" in doc:
                found[path] = (re.sub(ENTRY_SUFFIX + "$", "", relative.as_posix()), doc)
        return found

    def problems(self, name: str) -> list[str]:
        """What is wrong in baseline `name` that comparing its entries does not report: files that
        are no part of a baseline, records without an entry, and entries that lie in the place of
        another experiment or other arguments (two entries claiming one run). Hidden files are
        left alone; unreadable entries are reported when an experiment uses them."""
        from ..values.codec import BlobStore

        folder = self.folder(name)
        entries = self._entry_docs(name)
        values = BlobStore(folder / layout.VALUES)
        found = []
        for path, relative in self._files(name):
            if hidden(relative):
                continue
            if relative.parts[0] == layout.VALUES and len(relative.parts) == 2 and path.name in values:
                continue
            if path.name.endswith(layout.RECORD_EXTENSION) and relative.parts[0] != layout.VALUES:
                owner = path.with_name(path.name[: -len(layout.RECORD_EXTENSION)] + layout.ENTRY_EXTENSION)
                if owner not in entries:
                    found.append(f"{path}: a provenance record without its entry {owner.name}; delete it")
            elif path in entries:
                found += self._misplaced(name, path, entries[path][1])
            else:
                found.append(f"{path}: not a file of baseline '{name}' (entries are <experiment>.json, value "
                             f"files values/<sha256>.npy|npz|parquet|pickle|skops); move it out of {folder}")
        return found

    def _misplaced(self, name: str, path: Path, doc: Any) -> list[str]:
        """`path`'s problem when its document `doc` belongs in another place of baseline `name`."""
        if doc is None:
            return []  # unreadable: reported, with what to do, when an experiment uses it
        try:
            claimed, argv = field_of(doc, "experiment", str), check_argv(doc)
        except ValueError:
            return []  # not an entry: reported when an experiment uses it
        run = f"{claimed} run with arguments {list(argv)}" if argv else claimed
        try:
            expected = inside(self.root / name, entry_path(claimed, argv), f"the place of the entry of {run}")
        except StoreError as exc:
            return [f"{path}: {exc}"]
        if expected == path:
            return []
        if expected.is_file():
            return [f"{path}: holds the entry of {run}, as {expected} does; delete the one you do not want"]
        return [f"{path}: holds the entry of {run}, whose place is {expected}; move it there, or save the "
                f"baseline again with --nw-save-baseline={name}"]

    def check_writable(self, name: str) -> None:
        """StoreError when baseline `name` cannot be saved: its folder, or the folder of baselines, is
        a file, or the folder leads outside the folder of baselines or holds a link leading outside it."""
        self._check_root()
        for path in (self.root, self.root / name):
            if path.exists() and not path.is_dir():
                raise StoreError(f"{path} is a file, where baseline '{name}' needs a folder; move the file away "
                                 "or save under another name")
        self.folder(name)

    def delete_entry(self, name: str, path: Path) -> None:
        """Remove the entry file `path` of baseline `name` and the provenance record beside it."""
        folder = self.folder(name)
        check_within(folder, path, "an entry to delete")
        staging = Staging(self.root, name, folder)
        for target in (path, record_path(path)):
            staging.delete(target.relative_to(folder).as_posix())
        staging.commit()

    def save(self, name: str, trial: Trial, store: TrialStore) -> Path:
        """Write `trial` as the entry of its experiment in baseline `name`, with its value files.

        A damaged entry, record or value file of the experiment is replaced: saving is how the
        user repairs them. StoreError when the baseline's folder cannot be written, or when a
        value file of the trial is missing or damaged (the old entry is then left as it was).
        """
        self.check_writable(name)
        try:
            return self._save(name, trial, store)
        except OSError as exc:
            raise StoreError(f"cannot save {trial.experiment} to baseline '{name}' in {self.root / name}: "
                             f"{exc}") from None

    def _save(self, name: str, trial: Trial, store: TrialStore) -> Path:
        from ..values.codec import BlobStore, blob_refs

        folder = self.folder(name)
        entry_file = entry_path(trial.experiment, trial.argv)
        target = inside(folder, entry_file, f"the entry of {trial.experiment}")
        values = BlobStore(folder / layout.VALUES)
        staging = Staging(self.root, name, folder)
        try:
            for blob in sorted({blob for tag in trial.tags.values() for blob in blob_refs(tag["value"])}):
                if not values.intact(blob):  # missing, or damaged since it was saved
                    self._stage_value(staging, trial, store, name, blob)
                    staging.replace(blob, f"{layout.VALUES}/{blob}")
            record = self._record(trial, store)
            saved_record = record_path(target).relative_to(folder).as_posix()
            if record is None:
                staging.delete(saved_record)  # a record of an older trial would explain the wrong run
            else:
                staging.stage_bytes(record, "record.json")
                staging.replace("record.json", saved_record)
            staging.stage_bytes(entry_doc(trial), "entry.json")
            staging.replace("entry.json", entry_file)
        except BaseException:
            staging.discard()
            raise
        staging.commit()  # the record before the entry: see store/baseline_files.py
        try:  # exclusive: never through a link, never over a file someone wrote
            with open(self.root / layout.README, "x", encoding="utf-8") as readme:
                readme.write(layout.BASELINES_README)
        except FileExistsError:
            pass
        return target

    @staticmethod
    def _stage_value(staging: Staging, trial: Trial, store: TrialStore, name: str, blob: str) -> None:
        """Copy value file `blob` of `trial` from the store; StoreError when it is missing or damaged."""
        from ..values.codec import BlobStore

        source = store.values_dir / blob
        if source.is_file():
            staging.stage_copy(source, blob)
            if BlobStore(staging.path).intact(blob):
                return
        raise StoreError(f"{source}: this value file of {trial.name} is missing or damaged (its bytes are not "
                         f"what its name says), so {trial.experiment} is not saved and its entry in baseline "
                         f"'{name}' is left as it was; delete the file, run {trial.experiment} again to record "
                         f"it anew, then save with --nw-save-baseline={name}")

    @staticmethod
    def _record(trial: Trial, store: TrialStore) -> bytes | None:
        """The trial's provenance record as it is saved in a baseline: naming its trial, so that a
        record left beside another trial's entry is recognised. None when the trial has none (or
        it cannot be read: the store reports that itself)."""
        from .records import read_record_doc

        path = store.record_path(trial)
        if not path.is_file():
            return None
        try:
            doc = read_record_doc(path)
        except StoreError as exc:
            store.warnings.append(f"{exc}; {trial.experiment} is saved without its operations")
            return None
        if not isinstance(doc, dict):
            return None
        return (json.dumps({**doc, "trial_id": trial.id}, indent=1) + "\n").encode("utf-8")

