"""Named baselines on disk, and resolving a ``--nw-baseline`` reference to what a trial is compared with.

A baseline is a folder meant to be committed: ``<baselines_dir>/<NAME>/`` holds one JSON entry per
experiment, at the experiment's own relative path plus ``.json`` (``experiments/train.py.json``),
and ``values/`` with the array and frame files those entries reference. Entries hold no absolute
paths and no pickles: opaque objects are kept as their summary.

Baselines are committed and edited by hand, so every reader here turns a damaged or inconsistent
file into a `StoreError` (or, for a file that does not stop a comparison, a line of `problems`)
naming the file and what to do. Saving a baseline replaces a damaged entry, record or value file
of the experiments it saves; it never touches the others.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .record_fields import check_argv, check_inputs, check_tags, decode_tag, field_of
from .store import (
    LOCAL_REMEDY, SCHEMA, TRIAL_REMEDY, StoreError, Trial, TrialStore, copy_atomic, read_json, record_remedy,
    write_json_atomic,
)

BASELINE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
LATEST = "latest"
MIN_PREFIX = 4

_README = """# Baselines of pytest-nwtrials

Each folder here is a named baseline: one JSON entry per experiment, recording the values the
experiment tagged, and `values/` with the arrays and frames they reference. Compare new trials
with one by running `pytest --nw-baseline=NAME`; accept new values with
`pytest --nw-save-baseline=NAME`. These files are meant to be committed and reviewed.
"""


class ReferenceError_(Exception):
    """A ``--nw-baseline`` reference that names nothing, or more than one thing."""


def check_baseline_name(name: str) -> str:
    """A baseline name must be a plain folder name that no other kind of reference can mean."""
    if not BASELINE_NAME.match(name):
        raise ValueError(
            f"baseline name {name!r} is not valid: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit")
    if name == LATEST or re.match(r"^trial[0-9]+$", name):
        raise ValueError(f"baseline name {name!r} is reserved for trial references; choose another name")
    return name


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

    @property
    def where(self) -> str:
        """The file the entry was read from: the baseline entry, or the trial's record."""
        return str(self.path or self.values_dir.parent / "trials" / f"{self.trial}.json")

    @property
    def remedy(self) -> str:
        return baseline_remedy(self.baseline) if self.baseline else TRIAL_REMEDY

    def blobs(self) -> Any:
        """The `values.BlobStore` of the entry's value files, whose errors say how to repair them."""
        from .values import BlobStore

        return BlobStore(self.values_dir, remedy=baseline_remedy(self.baseline) if self.baseline else LOCAL_REMEDY)

    def values(self) -> dict[str, Any]:
        """The tagged values, decoded; a StoreError naming the damaged file and what to do."""
        blobs = self.blobs()
        return {name: decode_tag(name, doc, blobs, self.where, self.remedy) for name, doc in self.tags.items()}

    def provenance(self) -> Any:
        """The provenance record (`explain.ProvenanceRecord`), None when none was kept."""
        from .explain import load_record

        if self.record is None or not self.record.is_file():
            return None
        if self.baseline:
            remedy = f"{baseline_remedy(self.baseline)} (or delete it: the operations are then not compared)"
        else:
            remedy = record_remedy(self.trial)
        return load_record(self.record, remedy)


# what entry_path appends to the experiment's path: "" or an argv digest, then ".json"
_ENTRY_SUFFIX = r"(\.[0-9a-f]{10})?\.json"


def entry_path(experiment: str, argv: tuple[str, ...]) -> str:
    """The entry's path inside a baseline: the experiment's own path, plus an argv digest if any."""
    if not argv:
        return f"{experiment}.json"
    digest = hashlib.sha1(json.dumps(list(argv)).encode()).hexdigest()[:10]
    return f"{experiment}.{digest}.json"


def record_path(entry_file: Path) -> Path:
    """The provenance record saved next to a baseline entry: ``train.py.json`` -> ``train.py.provenance.json``."""
    return entry_file.with_name(entry_file.name[: -len(".json")] + ".provenance.json")


def entry_from_trial(trial: Trial, store: TrialStore) -> Entry:
    return Entry(trial.experiment, trial.argv, trial.tags, trial.name, trial.id,
                 store.values_dir, trial.name, trial.inputs, store.record_path(trial.id))


class BaselineStore:
    """The folder of named baselines (``nw-baselines/`` at the rootdir by default)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and BASELINE_NAME.match(p.name))

    def exists(self, name: str) -> bool:
        return BASELINE_NAME.match(name) is not None and (self.root / name).is_dir()

    def entry(self, name: str, experiment: str, argv: tuple[str, ...]) -> Entry | None:
        """The entry for `experiment` run with `argv`, None when the baseline has none.

        When there is no entry for these arguments but exactly one for the experiment, that one
        is returned: the comparison then reports the arguments as changed.
        """
        path = self.root / name / entry_path(experiment, argv)
        if not path.is_file():
            others = self.entries_of(name, experiment)
            if len(others) != 1:
                return None
            path = others[0]
        return self.read_entry(name, path, experiment)

    def read_entry(self, name: str, path: Path, experiment: str) -> Entry:
        """The entry file `path` of `experiment` in baseline `name`, checked against its place
        and its value files; StoreError naming the file and what to do when it is unusable."""
        from .values import BlobStore, blob_refs

        folder = self.root / name
        remedy = baseline_remedy(name)
        try:
            doc = read_json(path)
        except StoreError as exc:
            raise StoreError(f"{exc}; {remedy}") from None
        try:
            if not isinstance(doc, dict):
                raise ValueError("it is not a JSON object")
            if doc.get("schema") != SCHEMA:
                raise ValueError(f"unknown schema {doc.get('schema')!r:.40}")
            claimed = field_of(doc, "experiment", str)
            if claimed != experiment:
                raise ValueError(f"it holds the entry of {claimed!r:.200}, not of {experiment} as its place says")
            argv = check_argv(doc)
            if folder / entry_path(experiment, argv) != path:
                raise ValueError(f"its arguments {list(argv)!r:.200} belong in {entry_path(experiment, argv)}")
            tags = check_tags(doc)
            record = record_path(path)
            entry = Entry(experiment, argv, tags, field_of(doc, "trial", str), field_of(doc, "trial_id", str),
                          folder / "values", f"baseline '{name}'", check_inputs(doc),
                          record if record.is_file() else None, path, name)
        except ValueError as exc:
            raise StoreError(f"{path}: not a valid baseline entry ({exc}); {remedy}") from None
        values = BlobStore(entry.values_dir)
        missing = sorted({blob for tag in tags.values() for blob in blob_refs(tag["value"]) if blob not in values})
        if missing:
            listed = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            raise StoreError(f"{path}: its tags reference value files missing from {entry.values_dir}: {listed}; "
                             f"{remedy}")
        return entry

    def entries_of(self, name: str, experiment: str) -> list[Path]:
        """Every entry file of `experiment` in baseline `name`, whatever its arguments."""
        folder = (self.root / name / experiment).parent
        if not folder.is_dir():
            return []
        pattern = re.compile(re.escape(Path(experiment).name) + _ENTRY_SUFFIX)
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
        folder = self.root / name
        found: dict[Path, tuple[str, Any]] = {}
        for path in sorted(folder.rglob("*.json")) if folder.is_dir() else ():
            relative = path.relative_to(folder)
            if (relative.parts[0] == "values" or path.name.endswith(".provenance.json")
                    or any(part.startswith(".") for part in relative.parts) or not path.is_file()):
                continue
            try:
                doc = read_json(path)
            except StoreError:
                doc = None
            if doc is None or isinstance(doc, dict) and "experiment" in doc:
                found[path] = (re.sub(_ENTRY_SUFFIX + "$", "", relative.as_posix()), doc)
        return found

    def problems(self, name: str) -> list[str]:
        """What is wrong in baseline `name` that comparing its entries does not report: files that
        are no part of a baseline, records without an entry, and entries that lie in the place of
        another experiment or other arguments (two entries claiming one run). Hidden files are
        left alone; unreadable entries are reported when an experiment uses them."""
        from .values import BlobStore

        folder = self.root / name
        entries = self._entry_docs(name)
        values = BlobStore(folder / "values")
        found = []
        for path in sorted(folder.rglob("*")) if folder.is_dir() else ():
            relative = path.relative_to(folder)
            if any(part.startswith(".") for part in relative.parts) or not path.is_file():
                continue
            if relative.parts[0] == "values" and len(relative.parts) == 2 and path.name in values:
                continue
            if path.name.endswith(".provenance.json") and relative.parts[0] != "values":
                owner = path.with_name(path.name[: -len(".provenance.json")] + ".json")
                if owner not in entries:
                    found.append(f"{path}: a provenance record without its entry {owner.name}; delete it")
            elif path in entries:
                found += self._misplaced(name, path, entries[path][1])
            else:
                found.append(f"{path}: not a file of baseline '{name}' (entries are <experiment>.json, value "
                             f"files values/<sha256>.npy|parquet|pickle); move it out of {folder}")
        return found

    def _misplaced(self, name: str, path: Path, doc: Any) -> list[str]:
        """`path`'s problem when its document `doc` belongs in another place of baseline `name`."""
        if doc is None:
            return []  # unreadable: reported, with what to do, when an experiment uses it
        try:
            claimed, argv = field_of(doc, "experiment", str), check_argv(doc)
        except ValueError:
            return []  # not an entry: reported when an experiment uses it
        expected = self.root / name / entry_path(claimed, argv)
        if expected == path:
            return []
        run = f"{claimed} run with arguments {list(argv)}" if argv else claimed
        if expected.is_file():
            return [f"{path}: holds the entry of {run}, as {expected} does; delete the one you do not want"]
        return [f"{path}: holds the entry of {run}, whose place is {expected}; move it there, or save the "
                f"baseline again with --nw-save-baseline={name}"]

    def check_writable(self, name: str) -> None:
        """StoreError when baseline `name` cannot be saved: its folder, or the folder of baselines, is a file."""
        for path in (self.root, self.root / name):
            if path.exists() and not path.is_dir():
                raise StoreError(f"{path} is a file, where baseline '{name}' needs a folder; move the file away "
                                 "or save under another name")

    def delete_entry(self, path: Path) -> None:
        """Remove an entry file and the provenance record beside it."""
        for target in (path, record_path(path)):
            if target.exists():
                target.unlink()

    def save(self, name: str, trial: Trial, store: TrialStore) -> Path:
        """Write `trial` as the entry of its experiment in baseline `name`, with its value files.

        A damaged entry, record or value file of the experiment is replaced: saving is how the
        user repairs them. StoreError when the baseline's folder cannot be written.
        """
        self.check_writable(name)
        try:
            return self._save(name, trial, store)
        except OSError as exc:
            raise StoreError(f"cannot save {trial.experiment} to baseline '{name}' in {self.root / name}: "
                             f"{exc}") from None

    def _save(self, name: str, trial: Trial, store: TrialStore) -> Path:
        from .values import BlobStore, blob_refs

        folder = self.root / name
        target = folder / entry_path(trial.experiment, trial.argv)
        values_dir = folder / "values"
        for tag in trial.tags.values():
            for blob in blob_refs(tag["value"]):
                if not BlobStore(values_dir).intact(blob):  # missing, or damaged since it was saved
                    copy_atomic(store.values_dir / blob, values_dir / blob)
        tags = {tag: {k: v for k, v in doc.items() if k != "source"} for tag, doc in trial.tags.items()}
        record = store.record_path(trial.id)
        saved_record = record_path(target)
        if record.is_file():
            copy_atomic(record, saved_record)
        elif saved_record.exists():
            saved_record.unlink()  # a record of an older trial would explain the wrong run
        write_json_atomic(target, {
            "schema": SCHEMA,
            "experiment": trial.experiment,
            "argv": list(trial.argv),
            "trial": trial.name,
            "trial_id": trial.id,
            "started": trial.started,
            "python": trial.python,
            "inputs": trial.inputs,
            "tags": tags,
        })
        readme = self.root / "README.md"
        if not readme.exists():
            readme.write_text(_README, encoding="utf-8")
        return target


@dataclass(frozen=True)
class Reference:
    """A resolved ``--nw-baseline`` value: a named baseline, one trial, or each experiment's latest."""

    text: str
    kind: str  # "baseline", "trial" or "latest"
    trial: Trial | None = None

    @property
    def label(self) -> str:
        if self.kind == "baseline":
            return f"baseline '{self.text}'"
        if self.kind == "trial":
            return self.trial.name
        return "the latest earlier trial"


def resolve(text: str, store: TrialStore, baselines: BaselineStore, given: str = "--nw-baseline=") -> Reference:
    """Resolve REF: ``latest``, a baseline name, a trial's short name, id or unique id prefix.

    `given` is how the user wrote it, for messages: ``--nw-baseline=`` or ``baseline=``.
    """
    if text == LATEST:
        return Reference(text, "latest")
    folder = baselines.root / text
    if baselines.exists(text):
        if not baselines.entry_files(text):
            raise ReferenceError_(
                f"{given}{text}: the baseline folder {folder} has no entries. Save the baseline with "
                f"--nw-save-baseline={text}, or delete the empty folder")
        for problem in baselines.problems(text):  # harmless to the comparison, but worth fixing
            if problem not in store.warnings:
                store.warnings.append(problem)
        return Reference(text, "baseline")
    if BASELINE_NAME.match(text) and folder.exists():
        raise ReferenceError_(f"{given}{text}: {folder} is a file, not a baseline folder; move it away, "
                              f"or save the baseline with --nw-save-baseline=NAME under another name")
    found = store.find(text)
    if len(found) == 1:
        return Reference(text, "trial", found[0])
    if len(found) > 1:
        listed = ", ".join(f"{t.name} ({t.id}, {t.experiment})" for t in found[:10])
        raise ReferenceError_(f"{given}{text} is ambiguous: it matches {listed}; give more characters")
    names = baselines.names()
    known = ", ".join(names) if names else f"none yet in {baselines.root}"
    hint = f" (a trial id prefix needs at least {MIN_PREFIX} characters)" if len(text) < MIN_PREFIX else ""
    skipped = ""
    if store.skipped:
        skipped = f" Trial records that cannot be read were skipped: {', '.join(map(str, store.skipped))}"
    raise ReferenceError_(
        f"{given}{text} names no baseline and no trial{hint}. Baselines: {known}. "
        f"Use a baseline name, a trial name such as trial3, a trial id or prefix, or 'latest'; "
        f"create a baseline with --nw-save-baseline=NAME.{skipped}")
