"""Saving a baseline at the session's end (``--nw-save-baseline=NAME``): the finished trials
of the session become its entries; a group of repeated runs is saved as its first run."""
from __future__ import annotations

from ..store.trial_store import StoreError
from .state import SessionState


def save_baseline(state: SessionState, name: str) -> bool:
    """Save each finished trial of the session into baseline `name`; False when one was not
    saved (said as a warning, and the session fails)."""
    complete = True
    for trial in state.recorded:
        if trial.status == "finished" and state.outcomes[trial.name].verdict != "repeat":
            try:
                state.saved.append(state.baselines.save(name, trial, state.store))
            except StoreError as exc:
                state.warn(f"{exc}; not saved")
                complete = False
    return complete
