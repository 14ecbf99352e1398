"""What a session of experiment runs holds: its stores, its trials and their outcomes.

`SessionState` is the data every job of the session reads and grows (running, recording,
gating, saving, pruning, the xdist controller and worker, the summary); `TrialSession` in
plugin/session.py is the coordinator that adds the jobs as methods. No job module imports another
one's coordinator: they all meet here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ..capture.launch import RunResult
from ..compare.spread import Stability
from ..printable import printable
from ..redaction import Secrets
from ..settings import AUTO, FULL, Settings
from ..store.baselines import BaselineStore
from ..store.references import Reference, ReferenceError_, resolve
from ..store.trial_store import StoreError, Trial, TrialStore
from .notices import Notices

if TYPE_CHECKING:
    from ..capture.fallback import Fallback


def full_or(capture: str) -> str:
    """The capture a run gets: auto means full capture unless `auto.first_run` ran it without
    capture first."""
    return FULL if capture == AUTO else capture


@dataclass
class Outcome:
    """How one trial of this session fared; feeds the summary, JUnit properties and reports."""

    trial: Trial
    verdict: str  # recorded, matched, changed, new, failed, timeout, error, skipped
    against: str | None = None
    message: str | None = None
    changes: tuple = ()
    why: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)  # worth saying even when it passes
    change_docs: list[dict] | None = None  # the changes as report data, when sent by a worker
    stability: Stability | None = None  # of the first run of a group run with --nw-repeat
    fallback_traceback: str = ""  # noWorkflow's failure under fine capture, when it fell back
    pictures: dict | None = None  # a changed trial's graphs, code and whole why-lines (compare/pictures.py), for reports


@dataclass(frozen=True)
class Pending:
    """A run that `plugin.running.launch` made and that is not recorded yet."""

    trial: Trial  # unnamed; its values are read from `staged`
    result: RunResult
    staged: Path  # its files, moved into the store when it is recorded
    fallback: Fallback | None = None  # when fine capture fell back to coarse


class SessionState:
    """The session's stores, references, recorded trials and outcomes.

    `writer` is where this session's trials are written: the local store, or on a pytest-xdist
    worker a private staging store whose trials are sent to the controller (see plugin/workers.py).
    """

    def __init__(self, config: pytest.Config, settings: Settings, writer: TrialStore | None = None,
                 is_worker: bool = False) -> None:
        self.config = config
        self.settings = settings
        self.store = TrialStore(settings.store)  # earlier trials are read from here
        self.baselines = BaselineStore(settings.baselines_dir, project=settings.rootdir)
        self.is_worker = is_worker
        self.writer: TrialStore = writer if writer is not None else self.store
        try:
            self.first_number = self.store.next_number()
        except StoreError as exc:  # a folder of the store is a link leading outside it
            raise pytest.UsageError(str(exc)) from None
        self.recorded: list[Trial] = []
        self.outcomes: dict[str, Outcome] = {}  # by trial name
        self.used_entries: set[Path] = set()
        self.collected: set[str] = set()  # experiments collected as items
        self.saved: list[Path] = []
        self.pruned: list[str] = []
        self.removed = 0  # old trials removed from the store at the end (nw_keep)
        # the stores' warnings (and those sent by workers), turned into NwTrialsWarning
        sources = [self.store.warnings] + ([self.writer.warnings] if self.writer is not self.store else [])
        self.notices = Notices(sources)
        self.reference = self.resolve(settings.baseline) if settings.baseline else None
        # what is masked in trials and messages: grows with the secret arguments of each run
        self.secrets = Secrets.from_environment(os.environ, settings.env_redact)
        if settings.save_baseline:
            try:
                self.baselines.check_writable(settings.save_baseline)
            except StoreError as exc:
                raise pytest.UsageError(printable(f"--nw-save-baseline={settings.save_baseline}: {exc}")) from None

    def resolve(self, text: str, given: str = "--nw-baseline=") -> Reference:
        """Resolve a reference; an unusable one is a usage error naming what exists."""
        try:
            return resolve(text, self.store, self.baselines, given)
        except (ReferenceError_, StoreError) as exc:
            raise pytest.UsageError(printable(exc)) from None  # it lists stored names

    def experiment_name(self, script: Path) -> str:
        """The experiment's path relative to the rootdir, with forward slashes."""
        return Path(os.path.relpath(script, self.settings.rootdir)).as_posix()

    def warn(self, message: str) -> None:
        """Say `message` as an NwTrialsWarning (see plugin/notices.py), when warnings are next shown."""
        self.store.warnings.append(message)

