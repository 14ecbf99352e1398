"""The gate's messages: why an experiment item failed, and what to run next.

Plain text in, lines out; no pytest and no terminal writer in here.
"""
from __future__ import annotations

from collections.abc import Sequence

from ..capture.launch import RunResult
from ..store.trial_store import Trial

STDERR_TAIL = 20


def _tail(text: str, lines: int = STDERR_TAIL) -> list[str]:
    kept = text.rstrip().splitlines()
    if len(kept) > lines:
        return [f"... ({len(kept) - lines} earlier lines in the captured stderr)"] + kept[-lines:]
    return kept


def run_failure(experiment: str, trial: Trial, result: RunResult, timeout: float) -> str:
    """Why the run itself failed: the script raised, exited non-zero, crashed, hung, or capture broke."""
    where = f"({trial.name}, noWorkflow trial {trial.id})" if result.trial_id else f"({trial.name})"
    stopped = getattr(getattr(result, "notebook", None), "stopped", None)  # a notebook says which cell
    if result.timed_out and stopped:
        head, _, hint = stopped.partition("\n")
        return f"{experiment} {head} {where}" + (f"\n{hint}" if hint else "")
    if result.timed_out:
        return (f"{experiment} timed out after {timeout:g} s and was stopped, with the processes it "
                f"started {where}.\nIf it needs longer, raise --nw-timeout or ini nw_timeout.")
    if result.internal_error:
        lines = [f"{experiment}: capture failed {where}: {result.internal_error}"]
        lines += _tail(result.stderr)
        return "\n".join(lines)
    if result.ended:
        return _ended(experiment, where, result)
    if result.error:
        error = result.error
        if error.get("phase") == "compile":  # nothing ran: Python's own short report
            line = (error.get("location") or {}).get("line")
            at = f" (line {line})" if line else ""
            head = f"{experiment} does not compile{at}: {error['type']}: {error['message']} {where}"
            return "\n".join([head, "", error["traceback"].rstrip()])
        lines = [f"{experiment} raised {error['type']}: {error['message']} {where}"]
        if error.get("cell"):  # a notebook: the failing cell and its source, as nbmake shows it
            lines += ["", f"cell {error['cell']}:"] + ["    " + line for line in str(error.get("source", "")).splitlines()]
        return "\n".join([*lines, "", error["traceback"].rstrip()])
    lines = [f"{experiment} exited with status {result.exit_code} {where}"]
    if stopped:
        lines.append(stopped[0].upper() + stopped[1:] + ".")
    if result.stderr.strip():
        lines += ["", "stderr:"] + _tail(result.stderr)
    return "\n".join(lines)


def _ended(experiment: str, where: str, result: RunResult) -> str:
    """The script ended its process without returning: a signal, a crash, ``os._exit``."""
    location = (result.error or {}).get("location") or {}
    at = f" at line {location['line']}" if location.get("line") else ""
    lines = [f"{experiment} {result.ended}{at} {where}",
             "Its tags and provenance were not recorded: the process ended before the script returned."]
    if (result.error or {}).get("type") == "SIGKILL":
        lines.append("SIGKILL comes from another process or from the system, often when memory runs out.")
    if result.stderr.strip():
        lines += ["", "stderr:"] + _tail(result.stderr)
    return "\n".join(lines)


def store_write_failed(experiment: str, path: str, exc: OSError) -> str:
    """A trial ran but could not be written to the local store (disk full, no permission)."""
    reason = exc.strerror or str(exc)
    return (f"{experiment} ran, but its trial could not be written to {path}: {reason}.\n"
            f"Nothing was recorded. Free space on that disk or make the folder writable "
            f"(ini nw_store chooses another one), then run pytest again.")


def accept_hint(baseline_label: str, baseline_name: str | None) -> str:
    """The command that would make the new values the baseline."""
    if baseline_name:
        return f"To accept the new values, run: pytest --nw-save-baseline={baseline_name}"
    return f"To keep the new values as a baseline, run: pytest --nw-save-baseline=NAME (compared with {baseline_label})"


def values_changed(experiment: str, trial: Trial, against: str, change_lines: Sequence[str],
                   tags: int, baseline_name: str | None, why: Sequence[str] = (),
                   ops_changed: bool = False, changed: Sequence[str] = ()) -> str:
    """The report of a trial that moved: which tags, against what, why, how to accept."""
    if tags:
        noun = "tagged value differs" if tags == 1 else "tagged values differ"
        head = f"{experiment}: {tags} {noun} from {against}; new trial: {trial.name}"
    elif ops_changed:
        head = (f"{experiment}: every tagged value matches {against}, but the operations that "
                f"produced them changed; new trial: {trial.name}")
    else:
        head = f"{experiment}: the trial ran with other arguments than {against}; new trial: {trial.name}"
    lines = [head, *change_lines, *end_state_lines(trial, changed)]
    if why:
        lines += ["", "Why it changed:", *why]
    return "\n".join([*lines, "", accept_hint(against, baseline_name)])


def end_state_lines(trial: Trial, names: Sequence[str]) -> list[str]:
    """Which of the changed tags `names` were kept in their state at the end of the run (objects
    such as models, tagged by reference), not as they were when tagged."""
    from ..capture.recorder import END_OF_RUN

    kept = [name for name in names if (trial.tags.get(name) or {}).get("state") == END_OF_RUN]
    if not kept:
        return []
    return [f"  ({', '.join(kept)}: state at the end of the run, not when tagged)"]


def missing_entry(experiment: str, argv: Sequence[str], baseline_name: str) -> str:
    run = f" run with arguments {list(argv)}" if argv else ""
    return (f"{experiment}{run} is not in baseline '{baseline_name}'.\n"
            f"To add it, run: pytest --nw-save-baseline={baseline_name}")


def no_earlier_trial(experiment: str, store: str) -> str:
    return (f"{experiment} has no earlier finished trial in {store} to compare with "
            f"(--nw-baseline=latest). Run it once without --nw-baseline first, or save a "
            f"baseline with --nw-save-baseline=NAME.")
