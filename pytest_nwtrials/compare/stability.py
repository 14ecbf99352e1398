"""The stability verdict of an experiment run N times in one session (``--nw-repeat=N``).

The first run is compared with every later one under the same `compare.Rules` the baseline gate
uses: when none differs beyond tolerance the runs are *covered*; otherwise the report lists the
unstable tags with their spread (`spread.measure`), the first operation where the runs diverged
(the slice diff of the first run against the first run that differs) and a proposal: the
tolerance that would have covered the observed spread, and the seed to set. No pytest in here.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .spread import PathSpread, Stability, StabilityVerdict, measure

SHOWN_PATHS = 8  # spreads listed per tag in a report; the rest are counted


@dataclass(frozen=True)
class Judgement:
    """What N runs showed, with what the report needs beyond the stored `Stability`."""

    stability: Stability
    unstable: tuple[str, ...]  # tags that differ beyond tolerance in some run
    differing: int | None  # the index of the first run that differs beyond tolerance


def judge(names: Sequence[str], values: Sequence[Mapping[str, Any]], rules: Any) -> Judgement:
    """Compare run 1's values (`values[0]`) with every later run's under `rules`; the spread of
    every path that differs at all, ignored paths left out."""
    from .engine import diff_tags, split_path

    spreads = {path: spread for path, spread in measure(values).items() if not rules.ignored(path)}
    unstable: set[str] = set()
    differing = None
    for k in range(1, len(values)):
        changes = diff_tags(values[0], values[k], rules)
        if changes and differing is None:
            differing = k
        unstable.update(split_path(change.path)[0] for change in changes)
    stability = Stability(len(values), tuple(names), spreads, covered=differing is None)
    return Judgement(stability, tuple(sorted(unstable)), differing)


def seed_constructs(diff: Any, facts: Mapping[str, Any] | None, operations: Sequence[Any]) -> tuple[Any, ...]:
    """The unseeded constructs (`variation.Construct`) behind the root of the first unstable tag's
    slice diff (`diff` is a `diffing.TrialDiff` of the first run against a differing one; `facts`
    and `operations` are that run's); () when the slices name no root."""
    from .rootcause import explain
    from .variation import unseeded

    for sliced in diff.slices:
        explanation = explain(sliced.old, sliced.new, sliced.changes)
        if explanation is None or explanation.change is None or explanation.change.index_new is None:
            return ()
        return unseeded(sliced.new, explanation.change.index_new, facts, operations)
    return ()


def round_up(value: float) -> float:
    """`value` rounded up to one significant digit: 0.0123 -> 0.02 (a tolerance that covers it)."""
    if not value > 0 or not math.isfinite(value):
        return 0.0
    mantissa, exponent = f"{value:.0e}".split("e")  # the nearest one-digit number, in text: no
    digit, power = int(mantissa), int(exponent)      # division that underflows for 5e-324
    if float(f"{digit}e{power}") < value:  # it rounded down: 0.0123 -> 1e-02, so 2e-02
        digit += 1
    if digit >= 10:
        digit, power = 1, power + 1
    rounded = float(f"{digit}e{power}")
    return rounded if math.isfinite(rounded) else value  # beyond the largest float: itself covers it


def number_text(value: float) -> str:
    """A tolerance as people write it: 2e-3, 0.5, 30."""
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:g}"
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def needed_tolerances(tags: Sequence[str], spreads: Mapping[str, PathSpread],
                      values: Sequence[Mapping[str, Any]], ignore: Sequence[str] = ()
                      ) -> dict[str, tuple[float | None, float | None] | None]:
    """Per tag: the (rtol, atol) that would have let every run match the first, or None when no
    tolerance does (a string, a shape, a type differs). Checked with the diff engine itself, so
    an array whose small elements moved gets an atol as well as an rtol."""
    found: dict[str, tuple[float | None, float | None] | None] = {}
    for tag in tags:
        group = [s for path, s in spreads.items() if path == tag or path.startswith(tag + "[")]
        if not group or any(not s.numeric for s in group):
            found[tag] = None
            continue
        relative = [s.relative for s in group if s.relative is not None]
        rtol = round_up(max(relative)) if relative else None
        unscaled = [s.deviation for s in group if s.relative is None and s.deviation is not None]
        atol = round_up(max(unscaled)) if unscaled else None
        # the rtol proposed applies to each element's own first value, the measured one to the
        # largest: an element near 0 may need an atol too
        candidates = [(rtol or None, atol or None), (round_up(rtol * 1.01) if rtol else None, atol or None),
                      (rtol or None, round_up(max(s.deviation or 0.0 for s in group)) or None)]
        found[tag] = next((c for c in candidates if _covers(tag, c, values, ignore)), None)
    return found


def _covers(tag: str, tolerance: tuple[float | None, float | None], values: Sequence[Mapping[str, Any]],
            ignore: Sequence[str]) -> bool:
    from .engine import Rules, Tolerance, diff_tags

    rules = Rules(ignore=ignore, tag_tolerances={tag: Tolerance(*tolerance)})
    first = {tag: values[0][tag]} if tag in values[0] else {}
    return all(not diff_tags(first, {tag: run[tag]} if tag in run else {}, rules) for run in values[1:])


def _settings(tolerance: tuple[float | None, float | None]) -> list[str]:
    return [f"{name}={number_text(value)}" for name, value in zip(("rtol", "atol"), tolerance) if value]


def proposal_lines(needed: Mapping[str, tuple[float | None, float | None] | None],
                   spreads: Mapping[str, PathSpread], own: Sequence[str], constructs: Sequence[Any]) -> list[str]:
    """The tolerance that would have covered the spread (an ``nw_tolerances`` ini line per tag and
    the marker form), what no tolerance covers, and the seed to set: each of `constructs`
    (`variation.Construct`) says what to do. `own` are tags that set their own tolerance in
    ``tag(...)``, which wins over the ini and the marker."""
    covered = {tag: tolerance for tag, tolerance in needed.items() if tolerance is not None}
    lines = []
    if covered:
        lines += ["Tolerance that would have covered the spread of these runs:",
                  "  ini:     nw_tolerances ="]
        lines += [f"               {tag}: {' '.join(_settings(tolerance))}" for tag, tolerance in covered.items()]
        widest = (max(t[0] or 0.0 for t in covered.values()), max(t[1] or 0.0 for t in covered.values()))
        lines.append(f"  marker:  @pytest.mark.nw({', '.join(_settings(widest))})  (every tag of the experiment)")
        lines += [f"  {tag} sets its own tolerance in tag(...), which wins: give it "
                  f"{', '.join(_settings(covered[tag]))} there" for tag in own if tag in covered]
    uncovered = [tag for tag, tolerance in needed.items() if tolerance is None]
    if uncovered:
        lines.append(f"No tolerance covers {', '.join(uncovered)}: the runs must give the same value.")
    if constructs:
        lines.append("Seed to set:")
        lines += [f"  {construct.seed}" for construct in constructs]
    else:
        lines.append("Seed to set: seed the random generator the operation above draws from "
                     "(numpy.random.default_rng(SEED), random.seed(SEED), random_state=SEED), or make its "
                     "order fixed (sorted(...) over a set); set PYTHONHASHSEED when str hashing decides it.")
    return lines


def spread_lines(tag: str, spreads: Mapping[str, PathSpread]) -> list[str]:
    """One line per path of `tag` whose runs differ, at most SHOWN_PATHS of them."""
    paths = sorted(path for path in spreads if path == tag or path.startswith(tag + "["))
    lines = [f"  {path}: {spread_text(spreads[path])}" for path in paths[:SHOWN_PATHS]]
    if len(paths) > SHOWN_PATHS:
        lines.append(f"  ... and {len(paths) - SHOWN_PATHS} more paths of {tag}")
    return lines


def spread_text(spread: PathSpread) -> str:
    if not spread.numeric:
        return f"{spread.detail} (not a number: no tolerance covers it)"
    parts = []
    if spread.low is not None:
        parts.append(f"min {spread.low:.6g}, max {spread.high:.6g}")
    if spread.relative is not None:
        parts.append(f"relative spread {spread.relative:.2g}")
    parts.append(f"largest deviation from the first run {spread.deviation:.3g}")
    return ", ".join(parts)


def report(experiment: str, verdict: Judgement) -> str:
    """The failure report of an experiment whose runs differ beyond tolerance."""
    stability = verdict.stability
    runs = stability.trials
    lines = [f"{experiment} is not reproducible: {stability.runs} runs gave different values "
             f"({', '.join(runs)})", "Unstable tags (min, max and spread across the runs):"]
    for tag in verdict.unstable:
        lines += spread_lines(tag, stability.spreads) or [f"  {tag}: differs between runs"]
    within = sorted({path.split("[", 1)[0] for path in stability.spreads} - set(verdict.unstable))
    if within:
        lines.append(f"Varied within tolerance: {', '.join(within)}")
    if verdict.differing is not None:
        other = runs[verdict.differing]
        lines += ["", f"Where the runs diverged ({other} against {runs[0]}):"]
        lines += list(stability.diverged) or ["  (no provenance of both runs: their operations cannot be compared)"]
        lines += ["", *stability.proposal, "",
                  f"Each run is a recorded trial: `nwtrials diff {runs[0]} {other}` compares them."]
    return "\n".join(lines)


def note(experiment: str, stability: Stability) -> str:
    """The summary's line about a group of runs."""
    paths = listed(sorted(stability.spreads), 4)
    match stability.verdict:
        case StabilityVerdict.STABLE:
            return f"{experiment}: stable across {stability.runs} runs"
        case StabilityVerdict.VARIED:
            return f"{experiment}: varied across {stability.runs} runs within tolerance ({paths})"
        case StabilityVerdict.NOT_REPRODUCIBLE:
            return f"{experiment}: not reproducible across {stability.runs} runs ({paths})"


def listed(paths: Sequence[str], limit: int = 5) -> str:
    """Paths for a one-line note: the first `limit`, then how many more."""
    more = len(paths) - limit
    return ", ".join(paths[:limit]) + (f" and {more} more" if more > 0 else "")
