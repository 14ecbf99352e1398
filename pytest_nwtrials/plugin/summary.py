"""The end of a session: the terminal summary, the report files, and baseline entries left unused."""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..render.report_data import change_doc, tag_doc
from .state import SessionState

COUNTED = ("matched", "changed", "new", "failed", "skipped")
REPORT_SCHEMA = 1


def counts(session: SessionState, unused: list[str]) -> dict[str, int]:
    """How many trials ran, by verdict (timeouts and capture errors count as failed), how many
    baseline entries (`unused`) no experiment used, and of --nw-repeat: how many trials were
    repeats of a first run and how many experiments were not reproducible."""
    result = {"run": len(session.outcomes), **{verdict: 0 for verdict in COUNTED}, "missing": len(unused),
              "repeats": 0, "unstable": 0}
    for outcome in session.outcomes.values():
        verdict = "failed" if outcome.verdict in ("timeout", "error") else outcome.verdict
        verdict = "repeats" if verdict == "repeat" else verdict
        if verdict in result:
            result[verdict] += 1
    return result


def repeated(session: SessionState) -> bool:
    """Whether an experiment of this session was run more than once (--nw-repeat)."""
    return any(outcome.verdict == "repeat" or outcome.stability is not None for outcome in session.outcomes.values())


def compared_baseline(session: SessionState) -> str | None:
    reference = session.reference
    return reference.text if reference is not None and reference.kind == "baseline" else None


def baseline_entries_not_run(session: SessionState) -> tuple[list[str], list[str]]:
    """The compared (or saved) baseline's entries that no experiment of this session used, split
    into those missing from this run and those outside it.

    Running a subset on purpose (``pytest experiments/a.py``, a folder, ``testpaths``) must not
    read like a failure, so an entry is missing only when this run would have collected its
    experiment: its path matches ``nw_experiments``, lies under the paths the run collects from,
    and the file is gone (an existing one was collected, so used, or ignored on purpose).
    Deselected items (``-k``, ``-m``) were collected, so their entries are used. Entries of
    experiments run only through the `nw_trial` fixture are outside a run that did not run them.
    """
    name = compared_baseline(session) or session.settings.save_baseline
    if not name:
        return [], []
    used = {t.experiment for t in session.recorded} | session.collected
    used_files = session.used_entries | set(session.saved)
    unused = sorted({experiment for path, experiment in session.baselines.entry_files(name).items()
                     if path not in used_files and experiment not in used})
    roots = collection_roots(session.config)
    missing = [experiment for experiment in unused if _would_collect(session, experiment, roots)]
    return missing, [experiment for experiment in unused if experiment not in missing]


def collection_roots(config: Any) -> list[Path] | None:
    """The absolute paths this run collects from (command-line paths, else ``testpaths``, else
    the invocation folder), or None with ``--pyargs``, whose arguments are no paths."""
    if config.getoption("pyargs", False):
        return None
    base = Path(config.invocation_params.dir)
    return [Path(os.path.abspath(base / str(arg).split("::")[0])) for arg in config.args]


def _would_collect(session: SessionState, experiment: str, roots: list[Path] | None) -> bool:
    from ..settings import matches_experiments

    settings = session.settings
    if not matches_experiments(experiment, settings.experiments):
        return False
    script = Path(os.path.abspath(settings.rootdir / experiment))
    if script.exists():
        return False  # not collected though there: ignored (--ignore, collect_ignore) on purpose
    return roots is None or any(script == root or script.is_relative_to(root) for root in roots)


def terminal_summary(session: SessionState, terminalreporter: Any) -> None:
    notices = session.notices
    if not session.recorded and not notices.shown and not notices.errors:
        return
    from ..printable import printable

    def write(line: str, **markup: bool) -> None:  # names and messages come from stored files
        terminalreporter.write_line(printable(line), **markup)

    terminalreporter.section("nwtrials")
    for outcome in session.outcomes.values():
        trial = outcome.trial
        args = " " + " ".join(trial.argv) if trial.argv else ""
        verdict = f"repeat of {outcome.against}" if outcome.verdict == "repeat" else outcome.verdict
        write(f"{trial.name}  {trial.experiment}{args}  {verdict}  ({trial.duration:.1f} s, {trial.id})")
        for note in outcome.notes:
            write(f"  note: {note}", yellow=True)
    missing, outside = baseline_entries_not_run(session)
    numbers = counts(session, missing)
    line = ", ".join(f"{numbers[key]} {key}" for key in ("run", *COUNTED, "missing"))
    if repeated(session):  # said only when --nw-repeat ran something: the line stays as it was otherwise
        repeats = numbers["repeats"]
        line += f", {numbers['unstable']} unstable ({repeats} {'run was a repeat' if repeats == 1 else 'runs were repeats'})"
    write(line)
    if session.reference is not None:
        write(f"compared with {session.reference.label}")
    if missing:
        write(f"baseline entries no experiment of this session used: {', '.join(missing)} (run them; "
              f"entries of experiments that no longer exist go when the baseline is saved again with "
              f"--nw-save-baseline={compared_baseline(session) or session.settings.save_baseline})")
    if outside:
        from ..compare.stability import listed

        entries = "entry was" if len(outside) == 1 else "entries were"
        what = "not compared" if compared_baseline(session) else "kept as they were"
        write(f"{len(outside)} baseline {entries} outside this run, {what}: {listed(outside)}")
    settings = session.settings
    if settings.save_baseline:
        where = Path(os.path.relpath(session.baselines.root / settings.save_baseline, settings.rootdir))
        entries = "entry" if len(session.saved) == 1 else "entries"
        write(f"saved {len(session.saved)} {entries} to baseline '{settings.save_baseline}' in {where.as_posix()}/")
        from ..store.baseline_entries import saved_with_spread

        banded = saved_with_spread(session.recorded, session.saved, session.baselines.root / settings.save_baseline)
        if banded:
            write(f"with the run-to-run spread of their repeated runs (a later value inside it matches): "
                  f"{', '.join(banded)}")
        if session.pruned:
            write(f"removed entries of experiments that no longer exist: {', '.join(session.pruned)}")
    if session.removed:
        write(f"removed {session.removed} old trial{'s' if session.removed != 1 else ''} from the local store "
              f"(nw_keep = {settings.keep} per experiment)")
    for warning in notices.shown:  # NwTrialsWarning that no filter ignored: said here, not in pytest's summary
        write(f"warning: {warning}", yellow=True)
    for error in notices.errors:  # made errors by a filter (-W error::...NwTrialsWarning) at the session's end
        write(f"error: {error}", red=True)


def build_report(session: SessionState) -> dict[str, Any]:
    """The session as data: what `--nw-json` writes and `--nw-report` renders."""
    unused, outside = baseline_entries_not_run(session)
    experiments = []
    for outcome in session.outcomes.values():
        trial = outcome.trial
        try:
            tags = {name: tag_doc(value) for name, value in trial.values.items()}
        except (ValueError, OSError) as exc:
            tags = {"(unreadable)": str(exc)}
        experiments.append({
            "experiment": trial.experiment, "argv": list(trial.argv), "trial": trial.name,
            "trial_id": trial.id, "verdict": outcome.verdict, "against": outcome.against,
            "message": outcome.message,
            "changes": (outcome.change_docs if outcome.change_docs is not None
                        else [change_doc(c) for c in outcome.changes]),
            "why": list(outcome.why), "notes": list(outcome.notes), "tags": tags,
            "stability": outcome.stability.to_json() if outcome.stability is not None else None,
            **(outcome.pictures or {}),  # "why_folded", "explanations", "code" of a changed trial
        })
    return {
        "schema": REPORT_SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rootdir": str(session.settings.rootdir),
        "baseline": compared_baseline(session),
        "summary": counts(session, unused),
        "unused_baseline_entries": unused,
        "outside_baseline_entries": outside,
        "experiments": experiments,
    }


def write_reports(session: SessionState) -> None:
    """Write ``--nw-json`` and ``--nw-report`` files, atomically, when asked for."""
    from ..files import write_text_atomic

    settings = session.settings
    if not (settings.json_report or settings.html_report):
        return
    data = session.secrets.mask_doc(build_report(session))  # old values a baseline may still hold
    from ..render.html import report_html, report_json

    if settings.json_report:
        write_text_atomic(settings.json_report, report_json(data))
    if settings.html_report:
        write_text_atomic(settings.html_report, report_html(data, session.store))
