"""Gating a trial: its run checked, its values compared with what its reference names (a
baseline entry, an earlier trial), and the item or test failed with a report when they differ."""
from __future__ import annotations

from typing import Any, NoReturn

import pytest

from ..capture.launch import RunResult
from ..printable import printable
from ..render import failure as report
from ..store.baseline_entries import records_of
from ..store.baselines import Entry, entry_from_trial
from ..store.record_fields import stored_alike
from ..store.references import Reference
from ..store.trial_store import StoreError, Trial
from .marker import Comparison, GateFailure
from .state import SessionState


def check_run(state: SessionState, trial: Trial, result: RunResult, timeout: float | None = None) -> None:
    """Fail when the run did not finish, or (under --nw-ops=strict) a notebook's saved outputs
    came from another order than its cells'."""
    if trial.status != "finished":
        fail(state, trial, trial.status, report.run_failure(trial.experiment, trial, result,
                                                            timeout or state.settings.timeout))
    notebook = getattr(result, "notebook", None)  # only a notebook's run order fails under strict
    if notebook is not None and notebook.out_of_order and state.settings.ops == "strict":
        fail(state, trial, "failed", "\n".join([f"{trial.experiment}: {notebook.out_of_order}",
                                                "(--nw-ops=strict fails a notebook whose saved "
                                                "outputs came from another order)"]))


def fail(state: SessionState, trial: Trial, verdict: str, message: str, **details: Any) -> NoReturn:
    """Record the outcome and fail the item (or test) with `message`."""
    outcome = state.outcomes[trial.name]
    if trial.fallback:  # the failure is of the run recorded, which was not the first one
        message = f"{trial.experiment}: {trial.fallback}\n{message}"
    message = state.secrets.mask_text(message)  # values read from older records may hold one
    outcome.verdict, outcome.message = verdict, message
    for key, value in details.items():
        setattr(outcome, key, value)
    raise GateFailure(message)


def entry_for(state: SessionState, trial: Trial, reference: Reference) -> Entry:
    """What `trial` is compared with under `reference`; skips or fails when there is none."""
    other = reference.trial
    if reference.kind == "trial" and other is not None:
        if (other.experiment, other.argv) != (trial.experiment, trial.argv):
            state.outcomes[trial.name].verdict = "skipped"
            pytest.skip(printable(f"baseline {other.name} is a trial of {other.experiment}, "
                                  f"not of {trial.experiment}"))
        return entry_from_trial(other, state.store)
    if reference.kind == "latest":
        earlier = state.store.latest(trial.experiment, trial.argv, before=state.first_number)
        if earlier is None:
            fail(state, trial, "new", report.no_earlier_trial(trial.experiment, str(state.store.root)))
        return entry_from_trial(earlier, state.store)
    try:
        entry = state.baselines.entry(reference.text, trial.experiment, trial.argv)
    except StoreError as exc:
        fail(state, trial, "error", str(exc))
    if entry is None:
        fail(state, trial, "new", report.missing_entry(trial.experiment, trial.argv, reference.text))
    if entry.path is not None:  # always, for an entry of a named baseline
        state.used_entries.add(entry.path)
    return entry


def compare(state: SessionState, trial: Trial, reference: Reference, options: Comparison = Comparison()) -> None:
    """Fail with a report when `trial` differs from its baseline: values beyond tolerance,
    other arguments, or (with ``--nw-ops=strict``) another operation sequence."""
    from ..compare.bands import matched_note
    from ..compare.diffing import diff_trials
    from ..compare.pictures import pictures
    from ..render.slices import folded

    entry = entry_for(state, trial, reference)
    same = stored_alike(entry, trial)  # equal without decoding: left out of the diff
    try:
        old, new = entry.values(same), trial.values_except(same)
    except StoreError as exc:  # names the damaged file and what to do
        fail(state, trial, "error", f"{trial.experiment} cannot be compared with {entry.label}: {exc}")
    settings = state.settings
    old_record, new_record = _records(state, entry, trial)
    against = label(entry)
    diff = diff_trials(against, trial.name, old, new, rules(state, trial, options), entry.inputs, entry.argv,
                       trial.inputs, trial.argv, old_record, new_record,
                       operations=settings.ops == "strict", spreads=entry.spread)
    outcome = state.outcomes[trial.name]
    outcome.against = against
    if diff.empty:
        outcome.verdict = "matched"
        if diff.within:  # said even though it passes: the values did move
            outcome.notes.append(matched_note(trial.experiment, diff.within))
        return
    name = reference.text if reference.kind == "baseline" else None
    # files the experiment wrote differently are a consequence: shown with -v
    outputs = state.config.get_verbosity() > 0
    reported = bool(settings.html_report or settings.json_report)
    lines = diff.why(outputs=outputs, fold=reported)  # folded: with what the text leaves out, for the reports
    if old_record is None and settings.ops != "off":
        lines.append(f"  ({entry.label} has no provenance record, so the operations cannot be compared)")
    why = folded(lines)
    if reported:
        outcome.pictures = pictures(diff, outputs=outputs, lines=lines)
    fail(state, trial, "changed",
         report.values_changed(trial.experiment, trial, against, diff.value_lines(),
                               len(diff.tags), name, why, bool(diff.operations), diff.tags),
         changes=diff.values, why=tuple(why))


def label(entry: Entry) -> str:
    """How reports name what a trial was compared with."""
    return entry.label if entry.label == entry.trial else f"{entry.label} (recorded in {entry.trial})"


def rules(state: SessionState, trial: Trial, options: Comparison = Comparison()) -> Any:
    """The tolerances and ignored paths `trial` is compared under (`compare.Rules`): against
    its baseline, and against the other runs of its group under --nw-repeat."""
    from ..compare.engine import Rules, Tolerance

    settings = state.settings
    # narrowest wins: tag(rtol=) > nw_tolerances pattern > marker or fixture > --nw-rtol > built-in
    return Rules(
        default=Tolerance(settings.rtol if options.rtol is None else options.rtol,
                          settings.atol if options.atol is None else options.atol),
        patterns=settings.tolerances,
        ignore=settings.ignore + options.ignore,
        tag_tolerances={name: Tolerance(doc.get("rtol"), doc.get("atol"))
                        for name, doc in trial.tags.items() if "rtol" in doc or "atol" in doc},
    )


def _records(state: SessionState, entry: Entry, trial: Trial) -> tuple[Any, Any]:
    """The provenance records of both sides, or None for a side that has none (or with --nw-ops=off)."""
    if state.settings.ops == "off":
        return None, None
    old, new, problems = records_of(entry, trial)
    for problem in problems:
        state.warn(problem)
    return old, new
