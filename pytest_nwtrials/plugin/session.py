"""The session's coordinator: one `TrialSession`, registered as a plugin by `plugin.start_session`.

Items, the `nw_trial` fixture, ``--nw-capture=auto`` and ``--nw-repeat`` reach it through
``config.stash[SESSION_KEY]``. It holds the session's state (plugin/state.py) and hands each
job to its module: running (plugin/running.py), recording (plugin/recording.py), gating
(plugin/gating.py), saving baselines (plugin/saving.py), pruning (plugin/pruning.py), and the
session's end (plugin/summary.py). Its hooks say the warnings of the stores as `NwTrialsWarning`
(plugin/notices.py) and end the session.
"""
from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from ..capture.launch import RunResult
from ..store.baselines import Entry
from ..store.references import Reference
from ..store.trial_store import Trial
from . import gating, pruning, recording, running, saving, summary
from .marker import Comparison
from .state import Pending, SessionState

SESSION_KEY = pytest.StashKey["TrialSession"]()


class TrialSession(SessionState):
    """The session's state with its jobs as methods, and the hooks that end the session."""

    # -- running and recording ------------------------------------------------------------
    def run(self, script: Path, argv: tuple[str, ...] = (), timeout: float | None = None,
            capture: str | None = None, env: tuple[tuple[str, str], ...] = (),
            fork_slot: int | None = 0) -> tuple[Trial, RunResult]:
        """Run `script` under capture and record the trial in the local store (see
        `plugin.running.launch`)."""
        pending = self.launch(script, argv, timeout, capture, env, fork_slot)
        return self.record(pending), pending.result

    def launch(self, script: Path, argv: tuple[str, ...] = (), timeout: float | None = None,
               capture: str | None = None, env: tuple[tuple[str, str], ...] = (),
               fork_slot: int | None = 0) -> Pending:
        return running.launch(self, script, argv, timeout, capture, env, fork_slot)

    def record(self, pending: Pending, capture: str | None = None) -> Trial:
        return recording.record(self, pending, capture)

    def discard(self, pending: Pending) -> None:
        running.discard(self, pending)

    # -- gating -----------------------------------------------------------------------------
    def check_run(self, trial: Trial, result: RunResult, timeout: float | None = None) -> None:
        gating.check_run(self, trial, result, timeout)

    def fail(self, trial: Trial, verdict: str, message: str, **details: Any) -> NoReturn:
        gating.fail(self, trial, verdict, message, **details)

    def entry_for(self, trial: Trial, reference: Reference) -> Entry:
        return gating.entry_for(self, trial, reference)

    def compare(self, trial: Trial, reference: Reference, options: Comparison = Comparison()) -> None:
        gating.compare(self, trial, reference, options)

    @staticmethod
    def label(entry: Entry) -> str:
        return gating.label(entry)

    def rules(self, trial: Trial, options: Comparison = Comparison()) -> Any:
        return gating.rules(self, trial, options)

    # -- hooks ------------------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        """Warn what went wrong around the call's runs in the item's (or test's) own context: a
        warning that a filter makes an error fails it."""
        try:
            return (yield)
        finally:
            self.notices.emit()

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.is_worker:  # the controller records, saves and reports (workers.Worker sends the trials)
            return
        name = self.settings.save_baseline
        if name:
            if not saving.save_baseline(self, name):
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
            self.pruned = pruning.prune_dead_entries(self, name)
        summary.write_reports(self)  # before pruning, which may remove an older trial of this session
        pruning.remove_old_trials(self)
        self.store.close()
        if self.notices.emit_at_end():  # a filter made one an error: the session fails
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_unconfigure(self) -> None:
        self.store.close()  # when the session did not reach its end

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        summary.terminal_summary(self, terminalreporter)
