"""Recording a run: the trial of a launched run added to the store (or, on a pytest-xdist
worker, to its staging store) and to the session's outcomes, with the notes of its run."""
from __future__ import annotations

from dataclasses import replace

from ..render import failure as report
from ..store.trial_store import StoreError, Trial
from .marker import GateFailure
from .state import Outcome, Pending, SessionState


def record(state: SessionState, pending: Pending, capture: str | None = None) -> Trial:
    """Add the trial of a launched run to the store (with `capture` as its recorded capture
    mode, when given) and to the session's outcomes; its name is set then."""
    result, staged, fallback, secrets = pending.result, pending.staged, pending.fallback, state.secrets
    experiment = pending.trial.experiment
    unnamed = replace(pending.trial, capture=capture or pending.trial.capture, values_dir=None)
    try:
        trial = state.writer.add(unnamed, staged=staged)
    except OSError as exc:  # a full disk, a folder without write permission
        raise GateFailure(report.store_write_failed(experiment, str(state.writer.trials_dir), exc)) from None
    except StoreError as exc:
        raise GateFailure(f"{experiment} ran, but its trial was not recorded: {exc}") from None
    state.recorded.append(trial)
    outcome = state.outcomes[trial.name] = Outcome(trial, "recorded")
    if fallback is not None:
        outcome.notes.append(f"{experiment}: {trial.fallback}")
        outcome.fallback_traceback = secrets.mask_text(fallback.traceback)
    outcome.notes.extend(f"{experiment}: {note}" for note in result.notes)
    notebook = getattr(result, "notebook", None)
    if notebook is not None and notebook.out_of_order:
        outcome.notes.append(f"{experiment}: {notebook.out_of_order}")
    return trial
