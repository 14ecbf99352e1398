"""Experiment files as pytest collectors, and the one item each yields."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..capture.launch import RunResult
from ..printable import printable
from ..settings import AUTO, FULL
from ..store.record_fields import no_provenance_note
from ..store.trial_store import Trial
from .auto import check_rerun, first_run, full_capture_reason
from .marker import Comparison, GateFailure, comparison_from_marker
from .session import SESSION_KEY, TrialSession


class ExperimentFile(pytest.File):
    """A script matched by ``nw_experiments``: one item that runs it under capture."""

    def collect(self) -> Iterator[ExperimentItem]:
        session = self.config.stash[SESSION_KEY]
        session.collected.add(session.experiment_name(self.path))  # its baseline entry is not unused
        yield ExperimentItem.from_parent(self, name="experiment")


def add_properties(node: pytest.Item, trial: Trial) -> None:
    """JUnit XML properties: the trial, and each scalar tag as ``nw_tag_<name>``.

    pytest escapes property values for XML but not names, and a tag name may hold any character:
    names and strings go through `printable`, so the XML file parses whatever was tagged.
    """
    node.user_properties.append(("nw_trial", printable(trial.name)))
    node.user_properties.append(("nw_trial_id", printable(trial.id)))
    if trial.fallback:
        node.user_properties.append(("nw_capture_fallback", printable(trial.fallback)))
    for name, doc in trial.tags.items():  # scalars are stored inline: no value file is read
        value = doc.get("value") if isinstance(doc, dict) else None
        if isinstance(value, (bool, int, float, str)) and not (isinstance(value, str) and len(value) > 200):
            shown = printable(value) if isinstance(value, str) else value
            node.user_properties.append((f"nw_tag_{printable(name)}", shown))


class ExperimentItem(pytest.Item):
    """Runs the experiment in a child process under noWorkflow, records the trial, gates it."""

    def runtest(self) -> None:
        from .repeats import repeat_count, repeat_group

        session = self.config.stash[SESSION_KEY]
        if self.path.suffix == ".ipynb":
            self._check_language(session.settings.other_kernels)
        options = comparison_from_marker(self)
        if (options.capture or session.settings.capture) == AUTO:
            reason = full_capture_reason(session.settings, repeat_count(session, options), self.path)
            if reason is None:
                return self._run_auto(session, options)
            self.add_report_section("call", "nwtrials", f"captured in full under --nw-capture=auto: {reason}")
        trial, result = session.run(self.path, capture=options.capture)
        self._show(session, trial, result)
        session.check_run(trial, result)
        # the repeats of a run recorded with coarse capture after a fallback go straight to coarse
        capture = trial.capture if trial.fallback else options.capture
        trial = repeat_group(self, session, trial, self.path, (), None, capture, options)
        if session.reference is not None:
            self.user_properties.append(("nw_baseline", printable(session.reference.label)))
            session.compare(trial, session.reference, options)

    def _run_auto(self, session: TrialSession, options: Comparison) -> None:
        """``--nw-capture=auto`` on a gate: without capture first, under fine capture when that
        run differs from the baseline or fails (see plugin/auto.py)."""
        reference = session.reference
        assert reference is not None  # auto runs without capture first only on a gate
        self.user_properties.append(("nw_baseline", printable(reference.label)))
        trial, first = first_run(session, self.path, options)
        if trial is not None:
            self._show(session, trial, first.pending.result)
            note = no_provenance_note(trial)
            if note:
                self.add_report_section("call", "nwtrials", note)
            return
        trial, result = session.run(self.path, capture=FULL)
        self._show(session, trial, result)
        check_rerun(session, first, trial, result, options,
                    lambda: session.compare(trial, reference, options))

    def _show(self, session: TrialSession, trial: Trial, result: RunResult) -> None:
        """The run's output as report sections, its trial as JUnit properties."""
        if result.stdout:
            self.add_report_section("call", "stdout", result.stdout)
        if result.stderr:
            self.add_report_section("call", "stderr", result.stderr)
        add_properties(self, trial)
        if trial.fallback:  # shown with -rA as well as on failure, and in JUnit XML
            self.add_report_section("call", "nwtrials", trial.fallback)
            self.add_report_section("call", "noWorkflow traceback", session.outcomes[trial.name].fallback_traceback)

    def _check_language(self, other_kernels: str) -> None:
        """Skip or fail (ini nw_other_kernels) a notebook whose kernel runs another language than Python."""
        from ..capture.notebook_limits import other_language

        why = other_language(self.path)
        if why is None:
            return
        if other_kernels == "skip":
            pytest.skip(why)
        raise GateFailure(f"{self.config.stash[SESSION_KEY].experiment_name(self.path)}: {why}")

    # returns what pytest's does, `str | TerminalRepr`, a type pytest does not export
    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None):
        if isinstance(excinfo.value, GateFailure):
            return printable(excinfo.value)  # the report quotes names and values from stored files
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        # a committed file name can hold control characters too (pytest prints node ids as they are)
        return self.path, None, printable(f"experiment {self.config.stash[SESSION_KEY].experiment_name(self.path)}")
