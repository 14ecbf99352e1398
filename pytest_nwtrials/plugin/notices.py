"""The plugin's warnings: `NwTrialsWarning`, which ``-W`` and ``filterwarnings`` reach.

The pure core (the store, garbage collection, provenance reading) cannot warn through pytest:
it keeps its warnings as text in lists (`TrialStore.warnings`). `Notices` turns each new one
into an `NwTrialsWarning` under the warning filters in force where it is emitted: at the end of
the call of the item or test that caused it, else at the session's end. A filter that ignores
it drops it; one that makes it an error raises it (failing that item, or the session at its
end); the others are kept to be shown once, as ``warning: ...`` lines of the terminal summary's
nwtrials section, rather than again in pytest's warnings summary.
"""
from __future__ import annotations

import warnings

import pytest


class NwTrialsWarning(pytest.PytestWarning):
    """A problem pytest-nwtrials worked around: a damaged file skipped, provenance not kept,
    a baseline entry not saved, old trials not removed."""


class Notices:
    """The warnings of one session: taken from `sources` (lists the core appends text to) as
    they grow, each warned once."""

    def __init__(self, sources: list[list[str]]) -> None:
        self.sources = sources
        self.seen: set[str] = set()
        self.shown: list[str] = []  # warned and neither ignored nor an error: for the terminal summary
        self.errors: list[str] = []  # made errors by a filter at the session's end

    def _new(self) -> list[str]:
        new = []
        for source in self.sources:
            for message in source:
                if message not in self.seen:
                    self.seen.add(message)
                    new.append(message)
        return new

    def emit(self) -> None:
        """Warn every new message as an `NwTrialsWarning`; one that a filter makes an error is raised."""
        messages = self._new()
        if not messages:
            return
        with warnings.catch_warnings(record=True) as caught:  # the filters in force stay in force
            for number, message in enumerate(messages):
                try:
                    warnings.warn_explicit(NwTrialsWarning(message), NwTrialsWarning, "pytest-nwtrials", 0,
                                           module="pytest_nwtrials")
                except NwTrialsWarning:
                    self.seen.difference_update(messages[number + 1:])  # warned next time
                    self._keep(caught)
                    raise
        self._keep(caught)

    def emit_at_end(self) -> bool:
        """`emit` at the session's end, where a warning made an error cannot fail an item: it is
        kept in `errors` instead. True when one was."""
        errors = len(self.errors)
        while True:
            try:
                self.emit()
                break
            except NwTrialsWarning as exc:
                self.errors.append(str(exc))
        return len(self.errors) > errors

    def receive(self, messages: list[str]) -> None:
        """Warnings a pytest-xdist worker emitted under the same filters, to be shown here."""
        for message in messages:
            if message not in self.shown:
                self.seen.add(message)
                self.shown.append(message)

    def _keep(self, caught: list[warnings.WarningMessage]) -> None:
        for record in caught:
            message = str(record.message)
            if issubclass(record.category, NwTrialsWarning) and message not in self.shown:
                self.shown.append(message)
