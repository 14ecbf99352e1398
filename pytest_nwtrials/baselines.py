"""Named baselines on disk, and resolving a ``--nw-baseline`` reference to what a trial is compared with.

A baseline is a folder meant to be committed: ``<baselines_dir>/<NAME>/`` holds one JSON entry per
experiment, at the experiment's own relative path plus ``.json`` (``experiments/train.py.json``),
and ``values/`` with the array and frame files those entries reference. Entries hold no absolute
paths and no pickles: opaque objects are kept as their summary.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .store import SCHEMA, StoreError, Trial, TrialStore, copy_atomic, read_json, write_json_atomic

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
        doc = read_json(path)
        try:
            if doc["schema"] != SCHEMA or doc["experiment"] != experiment:
                raise ValueError("schema or experiment does not match its file name")
            record = record_path(path)
            return Entry(experiment, tuple(doc["argv"]), dict(doc["tags"]), str(doc["trial"]),
                         str(doc["trial_id"]), self.root / name / "values", f"baseline '{name}'",
                         dict(doc.get("inputs") or {}), record if record.is_file() else None, path)
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(
                f"{path}: not a valid baseline entry ({exc}); restore it from version control "
                f"or save the baseline again with --nw-save-baseline={name}") from None

    def entries_of(self, name: str, experiment: str) -> list[Path]:
        """Every entry file of `experiment` in baseline `name`, whatever its arguments."""
        folder = (self.root / name / experiment).parent
        if not folder.is_dir():
            return []
        pattern = re.compile(re.escape(Path(experiment).name) + _ENTRY_SUFFIX)
        return sorted(p for p in folder.iterdir() if pattern.fullmatch(p.name))

    def entry_files(self, name: str) -> dict[Path, str]:
        """Every entry file of baseline `name` and the experiment it belongs to."""
        folder = self.root / name
        found: dict[Path, str] = {}
        for path in sorted(folder.rglob("*.json")) if folder.is_dir() else ():
            relative = path.relative_to(folder)
            if relative.parts[0] == "values" or path.name.endswith(".provenance.json"):
                continue
            experiment = re.sub(_ENTRY_SUFFIX + "$", "", relative.as_posix())
            found[path] = experiment
        return found

    def delete_entry(self, path: Path) -> None:
        """Remove an entry file and the provenance record beside it."""
        for target in (path, record_path(path)):
            if target.exists():
                target.unlink()

    def save(self, name: str, trial: Trial, store: TrialStore) -> Path:
        """Write `trial` as the entry of its experiment in baseline `name`, with its value files."""
        from .values import blob_refs

        folder = self.root / name
        target = folder / entry_path(trial.experiment, trial.argv)
        values_dir = folder / "values"
        for tag in trial.tags.values():
            for blob in blob_refs(tag["value"]):
                if not (values_dir / blob).exists():
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
    if baselines.exists(text):
        return Reference(text, "baseline")
    found = store.find(text)
    if len(found) == 1:
        return Reference(text, "trial", found[0])
    if len(found) > 1:
        listed = ", ".join(f"{t.name} ({t.id}, {t.experiment})" for t in found[:10])
        raise ReferenceError_(f"{given}{text} is ambiguous: it matches {listed}; give more characters")
    names = baselines.names()
    known = ", ".join(names) if names else f"none yet in {baselines.root}"
    hint = f" (a trial id prefix needs at least {MIN_PREFIX} characters)" if len(text) < MIN_PREFIX else ""
    raise ReferenceError_(
        f"{given}{text} names no baseline and no trial{hint}. Baselines: {known}. "
        f"Use a baseline name, a trial name such as trial3, a trial id or prefix, or 'latest'; "
        f"create a baseline with --nw-save-baseline=NAME")
