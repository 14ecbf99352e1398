"""``--nw-capture=auto`` (the default): a gate pays for provenance only when it explains something.

A gate run under auto first runs the experiment without capture, as plain Python. When every
value matches the baseline the item passes and that run is the trial recorded, without
provenance (its record says ``capture: auto``). When a value differs or the run fails, the
experiment runs again under fine capture: that run is the trial recorded, compared and explained,
exactly as under ``--nw-capture=fine``. The first run is not kept as a trial of its own: it
carries no provenance to browse, and what it showed goes into the report. When the two runs
disagree with each other (one matches, the other does not; their values differ), the report says
so as evidence that the experiment varies from run to run, never as the cause of a change.

Some runs capture in full from the start (`full_capture_reason`): a baseline being saved,
``--nw-ops=strict``, a run with no baseline to compare with, repeated runs, an experiment that
uses noWorkflow itself, and runs from the `nw_trial` fixture, whose comparison comes after the
run.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..capture.launch import RunResult
from ..errors import StoreError
from ..render import failure as report
from ..settings import AUTO, Settings
from ..store.baselines import LATEST, Entry, entry_from_trial
from ..store.record_fields import stored_alike
from ..store.references import Reference
from ..store.trial_store import Trial
from .marker import Comparison, GateFailure
from .session import TrialSession
from .state import Pending


def full_capture_reason(settings: Settings, repeat: int = 1, script: Path | None = None) -> str | None:
    """Why a run under auto captures in full from the start; None when it may run without
    capture first (a gate with a baseline to compare with). `script` is the experiment: one
    that uses noWorkflow itself runs as it was written to, under capture."""
    if settings.save_baseline:
        return "a baseline is saved with full provenance: later gates explain their differences against it"
    if settings.ops == "strict":
        return "--nw-ops=strict compares operation sequences, which only full capture records"
    if settings.baseline is None:
        return ("with no baseline to compare with, the trial is captured in full: a later gate may "
                "need to explain a difference against it")
    if settings.baseline == LATEST:
        return ("--nw-baseline=latest makes this trial the baseline of the next run, which may need to "
                "explain a difference against it")
    if repeat > 1:
        return "repeated runs are compared operation by operation to find where they diverge"
    if script is not None and uses_noworkflow(script):
        return (f"{script.name} uses noWorkflow itself (`__noworkflow__` or an import of noworkflow), "
                "which exists only under capture")
    return None


# `__noworkflow__`, or a statement importing the package (`import noworkflow`, `from noworkflow.now
# ...`; in a notebook's JSON a source line starts with a quote), not this plugin's module of the
# same name (`from pytest_nwtrials import noworkflow` runs without capture)
_NOWORKFLOW = re.compile(r'__noworkflow__|^\s*"?(?:from|import)\s+noworkflow\b', re.MULTILINE)


def uses_noworkflow(script: Path) -> bool:
    """Whether the experiment's text names noWorkflow's runtime: run without capture it would
    fail where its author's runs did not. A notebook's JSON is read as text; unreadable is no."""
    try:
        return _NOWORKFLOW.search(script.read_text(encoding="utf-8", errors="replace")) is not None
    except OSError:
        return False


def may_skip_capture(settings: Settings) -> bool:
    """Whether runs of this session may start without capture (auto on a gate), so the warm
    capture process is not needed before an experiment actually differs."""
    return settings.capture == "off" or (settings.capture == AUTO and full_capture_reason(settings) is None)


@dataclass(frozen=True)
class FirstRun:
    """The run without capture, kept for the report of its rerun when it did not match."""

    pending: Pending
    diff: Any = None  # diffing.TrialDiff against the baseline, when it finished and could be compared
    label: str = ""  # what it was compared with
    identical: bool = False  # every value stored as the baseline stores it: matched without decoding

    @property
    def matched(self) -> bool:
        return self.identical or (self.diff is not None and self.diff.empty)


def first_run(session: TrialSession, script: Path, options: Comparison) -> tuple[Trial | None, FirstRun]:
    """Run `script` without capture; when its values match the baseline, record it as a matched
    trial (``capture: auto``, no provenance) and return it. Otherwise nothing is recorded and the
    trial is None: the experiment is to run again under fine capture (see `check_rerun`).

    A run that timed out is recorded and failed as it is: under capture it would take longer still.
    """
    pending = session.launch(script, capture="off")
    if pending.result.timed_out:
        session.check_run(session.record(pending, capture=AUTO), pending.result)
    first = FirstRun(pending)
    if pending.trial.status == "finished" and session.reference is not None:  # a gate has one
        first = _compared(session, pending, session.reference, options)
    if not first.matched:
        return None, first
    trial = session.record(pending, capture=AUTO)
    outcome = session.outcomes[trial.name]
    outcome.verdict, outcome.against = "matched", first.label
    if first.diff is not None and first.diff.within:
        from ..compare.bands import matched_note

        outcome.notes.append(matched_note(trial.experiment, first.diff.within))
    return trial, first


def check_rerun(session: TrialSession, first: FirstRun, trial: Trial, result: RunResult, options: Comparison,
                compare: Callable[[], None]) -> None:
    """Gate `trial`, the rerun under fine capture of a `first` run that did not match: check its
    run, then `compare` it with the baseline, as under fine capture. How the two runs disagree is
    added to its report. A rerun that matches while the first run did not fails with the first
    run's report: the gate saw a difference, and the runs disagreeing is evidence of run-to-run
    variation (or of capture changing what the experiment does), not an explanation."""
    try:
        try:
            session.check_run(trial, result)
            compare()
        except GateFailure as exc:
            evidence = disagreement(session, first, trial, options)
            if not evidence:
                raise
            outcome = session.outcomes[trial.name]
            outcome.message = f"{exc}\n\n{evidence}"
            raise GateFailure(outcome.message) from None
        evidence = disagreement(session, first, trial, options)
    finally:
        session.discard(first.pending)
    experiment, against = trial.experiment, session.outcomes[trial.name].against
    if first.diff is not None:
        head = (f"{experiment}: its run without capture differed from {against}; its rerun under fine "
                f"capture ({trial.name}) matched it. The run without capture:")
        session.fail(trial, "changed", "\n".join([head, *first.diff.value_lines(), "", evidence]),
                     changes=first.diff.values)
    failure = report.run_failure(experiment, first.pending.trial, first.pending.result, session.settings.timeout)
    session.fail(trial, "failed", f"{experiment}: its run without capture failed; its rerun under fine capture "
                                  f"({trial.name}) finished and matched {against}.\n{failure}\n\n{evidence}")


def disagreement(session: TrialSession, first: FirstRun, trial: Trial, options: Comparison) -> str:
    """How the run without capture and its rerun under fine capture disagree, as evidence of
    run-to-run variation; "" when they agree (both failed, or the same values within tolerance)."""
    from ..compare.engine import diff_tags
    from ..render.text import format_changes

    before, after = first.pending.trial, trial
    if before.status != "finished" and after.status != "finished":
        return ""
    if before.status != after.status:
        lines = [f"The run without capture {_ended(before)}; the run under fine capture ({trial.name}) {_ended(after)}."]
    else:
        try:
            changes = diff_tags(before.values, after.values, session.rules(trial, options))
        except StoreError:
            return ""
        if not changes:
            return ""
        lines = [f"The run without capture and its rerun under fine capture ({trial.name}) gave different values:",
                 *format_changes(changes, limit=5)]
    lines.append("Two runs of the same code disagreeing is evidence that the experiment varies from run to run "
                 "(or that capture changes what it does), not the cause of a change; to see where runs diverge, "
                 "run it with --nw-repeat=3.")
    return "\n".join(lines)


def _ended(trial: Trial) -> str:
    if trial.status == "finished":
        return "finished"
    error = trial.error or {}
    return f"failed ({error['type']}: {error.get('message', '')})" if error.get("type") else f"ended {trial.status}"


def _compared(session: TrialSession, pending: Pending, reference: Reference, options: Comparison) -> FirstRun:
    """The first run with its difference from the baseline; without one when it cannot be
    compared quietly (no entry, a damaged file): the rerun under capture then reports why.

    When every value is stored as the baseline stores it (a large array under the digest of
    its bytes) and the arguments are the same, it matched: nothing is decoded, and neither
    numpy nor the comparison engine is loaded for it."""
    trial = pending.trial
    entry = _entry(session, trial, reference)
    if entry is None:
        return FirstRun(pending)
    # compared here, or by the rerun when it cannot be here
    if reference.kind == "baseline" and entry.path is not None:
        session.used_entries.add(entry.path)
    label = session.label(entry)
    same = stored_alike(entry, trial)  # equal without decoding: left out of the diff
    if same == set(entry.tags) == set(trial.tags) and tuple(entry.argv) == tuple(trial.argv):
        return FirstRun(pending, label=label, identical=True)
    from ..compare.diffing import diff_trials

    try:
        old, new = entry.values(same), trial.values_except(same)
    except StoreError:
        return FirstRun(pending)
    diff = diff_trials(label, "the run without capture", old, new, session.rules(trial, options),
                       entry.inputs, entry.argv, trial.inputs, trial.argv, None, None, spreads=entry.spread)
    return FirstRun(pending, diff, label)


def _entry(session: TrialSession, trial: Trial, reference: Reference) -> Entry | None:
    """What `trial` is compared with, as `TrialSession.entry_for` finds it, without failing or
    skipping: None when there is nothing to compare with."""
    try:
        other = reference.trial
        if reference.kind == "trial" and other is not None:
            if (other.experiment, other.argv) != (trial.experiment, trial.argv):
                return None
            return entry_from_trial(other, session.store)
        if reference.kind == "latest":
            earlier = session.store.latest(trial.experiment, trial.argv, before=session.first_number)
            return entry_from_trial(earlier, session.store) if earlier is not None else None
        return session.baselines.entry(reference.text, trial.experiment, trial.argv)
    except StoreError:
        return None
