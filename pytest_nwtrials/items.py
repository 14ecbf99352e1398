"""Experiment files as pytest collectors, and the one item each yields."""
from __future__ import annotations

import pytest

from .session import SESSION_KEY, GateFailure, comparison_from_marker


class ExperimentFile(pytest.File):
    """A script matched by ``nw_experiments``: one item that runs it under capture."""

    def collect(self):
        yield ExperimentItem.from_parent(self, name="experiment")


class ExperimentItem(pytest.Item):
    """Runs the experiment in a child process under noWorkflow, records the trial, gates it."""

    def runtest(self) -> None:
        session = self.config.stash[SESSION_KEY]
        trial, result = session.run(self.path)
        if result.stdout:
            self.add_report_section("call", "stdout", result.stdout)
        if result.stderr:
            self.add_report_section("call", "stderr", result.stderr)
        self.user_properties.append(("nw_trial", trial.name))
        session.check_run(trial, result)
        if session.reference is not None:
            session.compare(trial, session.reference, comparison_from_marker(self))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, GateFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"experiment {self.config.stash[SESSION_KEY].experiment_name(self.path)}"
