"""Resolving a ``--nw-baseline`` reference to what a trial is compared with: a named baseline,
one trial, or each experiment's latest earlier trial."""
from __future__ import annotations

from dataclasses import dataclass

from .baselines import BASELINE_NAME, LATEST, BaselineStore
from .trial_store import Trial, TrialStore

MIN_PREFIX = 4


class ReferenceError_(Exception):
    """A ``--nw-baseline`` reference that names nothing, or more than one thing."""


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
            return self.trial.name if self.trial is not None else self.text
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
