"""``--nw-repeat=N``: an experiment run N times in the session, its runs compared with each other.

Every run is a recorded trial. The first is the one gated against the baseline and saved by
``--nw-save-baseline``; its trial keeps the stability of the group (``Trial.stability``). Runs
after the first get a str hash seed of their own unless the user set PYTHONHASHSEED: the
capture fork server forks every run from one process, so otherwise set iteration order could
never vary between the runs of a session although it varies between plain ``python`` runs. Run
k of each group is forked by a warm process of its own started with ``PYTHONHASHSEED=random``
(`capture.forkserver`, slot k-1), which costs a preload once per session rather than a fresh
interpreter per run. Notebooks start a kernel of their own for every run and so get a fresh
seed anyway.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..compare import stability as verdicts
from ..compare.spread import Stability
from ..errors import StoreError
from ..store.trial_store import Trial
from .marker import Comparison, GateFailure
from .session import TrialSession

HASH_SEED = "PYTHONHASHSEED"


def repeat_launch(number: int, environ: Mapping[str, str] | None = None
                  ) -> tuple[tuple[tuple[str, str], ...], int | None]:
    """How run `number` (2 or more) of a group starts: what it sets in its environment and the
    fork server slot that forks it. A random hash seed, from a warm process of its own (or a
    fresh interpreter beyond `forkserver.SEEDED_SLOTS`), unless the user pinned the seed: then
    every run shares it, as the user asked, and the usual warm process forks it."""
    from ..capture.forkserver import SEEDED_ENV, SEEDED_SLOTS

    environ = os.environ if environ is None else environ
    if HASH_SEED in environ:
        return (), 0
    return tuple(SEEDED_ENV.items()), (number - 1 if number - 1 <= SEEDED_SLOTS else None)


def repeat_count(session: TrialSession, options: Comparison) -> int:
    """Runs of an experiment: the marker's (or fixture's) repeat, else --nw-repeat / ini nw_repeat."""
    return options.repeat if options.repeat is not None else session.settings.repeat


def repeat_group(node: Any, session: TrialSession, first: Trial, script: Path, argv: tuple[str, ...],
                 timeout: float | None, capture: str | None, options: Comparison, check: bool = True) -> Trial:
    """`first` run again as often as the item's (or test's) repeat count says (`run_repeats`), with
    the JUnit properties ``nw_runs`` and ``nw_stable`` on `node` however that ends; `first`
    itself when the experiment runs once."""
    count = repeat_count(session, options)
    if count <= 1:
        return first
    try:
        return run_repeats(session, first, script, argv, timeout, capture, count, options, check)
    finally:
        stability = session.outcomes[first.name].stability
        node.user_properties.append(("nw_runs", count))
        if stability is not None:
            node.user_properties.append(("nw_stable", "true" if stability.stable else "false"))


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
        env, slot = repeat_launch(number)
        trial, result = session.run(script, argv, timeout, capture, env=env, fork_slot=slot)
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
        if session.settings.save_baseline and session.reference is None:
            # saving accepts the values, and these runs' spread is saved beside them: said, not failed
            outcome.notes.append(f"{first.experiment}: saved with the run-to-run spread of its {repeat} runs; "
                                 "to make it reproducible instead: " + _seed_hint(judgement.stability))
        elif _within_recorded_band(session, runs, options):
            outcome.notes.append(f"{first.experiment}: its {repeat} runs varied within the recorded run-to-run "
                                 "spread of its baseline")
        else:
            session.fail(first, "unstable", verdicts.report(first.experiment, judgement))
    return first


def _seed_hint(stability: Stability) -> str:
    """The proposal's seed line, or what to look for when none was found."""
    lines = list(stability.proposal)
    start = next((n for n, line in enumerate(lines) if line.startswith("Seed to set:")), None)
    if start is None:
        return "seed what the runs draw from (nwtrials show on the first run says where they diverged)"
    seeds = [lines[start].split(":", 1)[1].strip()] + [line.strip() for line in lines[start + 1:]]
    return "; ".join(seed for seed in seeds if seed)


def _within_recorded_band(session: TrialSession, runs: list[Trial], options: Comparison) -> bool:
    """Whether every run matches the baseline entry of a saved baseline within the run-to-run
    spread recorded there: the variation was seen and accepted when the baseline was saved."""
    from ..compare.bands import apply_bands
    from ..compare.engine import diff_tags

    reference = session.reference
    if reference is None or reference.kind != "baseline":
        return False
    first = runs[0]
    try:
        entry = session.baselines.entry(reference.text, first.experiment, first.argv)
        if entry is None or not entry.spread:
            return False
        saved = entry.values()
    except StoreError:
        return False  # the comparison with the baseline reports the damaged file
    rules = session.rules(first, options)
    return all(not apply_bands(diff_tags(saved, run.values, rules), saved, run.values, entry.spread, rules).changes
               for run in runs)


def judge(session: TrialSession, runs: list[Trial], options: Comparison) -> verdicts.Judgement:
    """The stability of `runs` under the rules the baseline gate would use for the first run."""
    from ..compare.diffing import diff_trials
    from ..compare.pictures import pictures
    from ..render.slices import folded

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
    settings = session.settings
    reported = bool(settings.html_report or settings.json_report)
    lines = diff.why(identical=True, fold=reported)  # folded: with what the text leaves out, for the reports
    if reported:  # the report draws where the runs diverged
        outcome = session.outcomes.get(first.name)
        if outcome is not None:
            outcome.pictures = {**pictures(diff, identical=True, lines=lines), "why_title": "Where the runs diverged"}
    stability = replace(judgement.stability, diverged=tuple(folded(lines)),
                        proposal=tuple(verdicts.proposal_lines(needed, spreads, own, constructs)))
    return replace(judgement, stability=stability)


def _record(session: TrialSession, trial: Trial) -> Any:
    """The trial's provenance record, None without one (or with --nw-ops=off)."""
    if session.settings.ops == "off":
        return None
    try:
        return trial.record()
    except StoreError as exc:  # names the file and what to do
        session.warn(f"{exc}; the runs' operations are not compared")
        return None


def _write(session: TrialSession, first: Trial, stability: Stability) -> Trial:
    """`first` with its stability, written to its record in the store (a pytest-xdist worker
    sends it to the controller instead) and kept by the session in place of the old one."""
    updated = replace(first, stability=stability.to_json())
    try:
        updated = session.writer.rewrite(updated)
    except (StoreError, OSError) as exc:
        session.warn(f"{first.experiment}: the stability of its runs was not stored in {first.name} ({exc})")
    session.recorded[:] = [updated if trial.name == first.name else trial for trial in session.recorded]
    session.outcomes[first.name].trial = updated
    return updated
