"""``--nw-repeat=N``: an experiment run N times in the session, its runs compared with each other.

Every run is a recorded trial. The first is the one gated against the baseline and saved by
``--nw-save-baseline``; its trial keeps the stability of the group (``Trial.stability``). Runs
after the first get a random str hash seed (``PYTHONHASHSEED=random``) unless the user set
PYTHONHASHSEED: the capture fork server forks every run from one process, so without it set
iteration order could never vary between the runs of a session although it varies between plain
``python`` runs. Such a run starts a fresh interpreter instead of a fork (the fork server refuses
requests whose interpreter start-up variables differ from its own). Notebooks start a kernel of
their own for every run and so get a fresh seed anyway.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import stability as verdicts
from .errors import StoreError
from .session import Comparison, GateFailure, TrialSession
from .spread import Stability
from .store import Trial

HASH_SEED = "PYTHONHASHSEED"


def repeat_env(environ: Mapping[str, str] | None = None) -> tuple[tuple[str, str], ...]:
    """What a run after the first sets in its environment: a random hash seed, unless the user
    pinned one (then every run shares it, as the user asked)."""
    environ = os.environ if environ is None else environ
    return () if HASH_SEED in environ else ((HASH_SEED, "random"),)


def repeat_count(session: TrialSession, options: Comparison) -> int:
    """Runs of an experiment: the marker's (or fixture's) repeat, else --nw-repeat / ini nw_repeat."""
    return options.repeat if options.repeat is not None else session.settings.repeat


def run_repeats(session: TrialSession, first: Trial, script: Path, argv: tuple[str, ...], timeout: float | None,
                capture: str | None, repeat: int, options: Comparison, check: bool = True) -> Trial:
    """Run `script` again until it has run `repeat` times, judge the runs and write the verdict onto
    `first` (the finished first run); return its trial, now with ``stability``.

    A run that does not finish fails the item (GateFailure) with its own report: the later runs
    are not needed then (with `check` False the repeats stop and `first` comes back without a
    verdict). With `check`, runs that differ beyond tolerance fail it as not reproducible.
    """
    runs = [first]
    for number in range(2, repeat + 1):
        trial, result = session.run(script, argv, timeout, capture, env=repeat_env())
        outcome = session.outcomes[trial.name]
        outcome.verdict, outcome.against = "repeat", first.name
        runs.append(trial)
        try:
            session.check_run(trial, result, timeout)
        except GateFailure as exc:
            if not check:
                return first
            raise GateFailure(f"{first.experiment}: run {number} of {repeat} failed ({first.name} was run "
                              f"{number - 1} time{'s' if number > 2 else ''} before it):\n{exc}") from None
    judgement = judge(session, runs, options)
    first = _write(session, first, judgement.stability)
    outcome = session.outcomes[first.name]
    outcome.stability = judgement.stability
    outcome.notes.append(verdicts.note(first.experiment, judgement.stability))
    if check and not judgement.stability.covered:
        session.fail(first, "unstable", verdicts.report(first.experiment, judgement))
    return first


def judge(session: TrialSession, runs: list[Trial], options: Comparison) -> verdicts.Judgement:
    """The stability of `runs` under the rules the baseline gate would use for the first run."""
    from .diffing import diff_trials

    first = runs[0]
    rules = session.rules(first, options)
    try:
        values = [trial.values for trial in runs]
    except StoreError as exc:  # names the damaged file and what to do
        session.fail(first, "error", f"{first.experiment}: its {len(runs)} runs cannot be compared: {exc}")
    judgement = verdicts.judge([trial.name for trial in runs], values, rules)
    if judgement.differing is None:
        return judgement
    other = runs[judgement.differing]
    old_record, new_record = _record(session, first), _record(session, other)
    diff = diff_trials(first.name, other.name, values[0], values[judgement.differing], rules,
                       first.inputs, first.argv, other.inputs, other.argv, old_record, new_record)
    spreads = judgement.stability.spreads
    needed = verdicts.needed_tolerances(judgement.unstable, spreads, values,
                                        session.settings.ignore + options.ignore)
    constructs = (verdicts.seed_constructs(diff, other.inputs, new_record.operations)
                  if new_record is not None else ())
    own = [tag for tag in judgement.unstable if tag in rules.tag_tolerances]
    stability = replace(judgement.stability, diverged=tuple(diff.why(identical=True)),
                        proposal=tuple(verdicts.proposal_lines(needed, spreads, own, constructs)))
    return replace(judgement, stability=stability)


def _record(session: TrialSession, trial: Trial) -> Any:
    """The trial's provenance record, None without one (or with --nw-ops=off)."""
    if session.settings.ops == "off":
        return None
    try:
        return trial.record()
    except StoreError as exc:  # names the file and what to do
        session.store.warnings.append(f"{exc}; the runs' operations are not compared")
        return None


def _write(session: TrialSession, first: Trial, stability: Stability) -> Trial:
    """`first` with its stability, written to its record in the store (a pytest-xdist worker
    sends it to the controller instead) and kept by the session in place of the old one."""
    updated = replace(first, stability=stability.to_json())
    try:
        updated = session.writer.rewrite(updated)
    except (StoreError, OSError) as exc:
        session.store.warnings.append(f"{first.experiment}: the stability of its runs was not stored in "
                                      f"{first.name} ({exc})")
    session.recorded[:] = [updated if trial.name == first.name else trial for trial in session.recorded]
    session.outcomes[first.name].trial = updated
    return updated
