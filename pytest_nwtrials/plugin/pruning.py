"""Pruning at the session's end: baseline entries of experiments that no longer exist, once the
baseline is saved again, and the local store's old trials beyond ``nw_keep``."""
from __future__ import annotations

from ..settings import matches_experiments
from ..store.trial_store import StoreError
from .state import SessionState


def prune_dead_entries(state: SessionState, name: str) -> list[str]:
    """After saving baseline `name`: remove entries whose experiment no longer exists or matches
    nw_experiments.

    Entries of experiments that still exist but were not run (deselected, or run only by
    `nw_trial` in tests not selected) are kept: a partial run must not shrink a baseline. The
    experiment is named by the entry's place in the baseline folder, never by what the file says,
    and `delete_entry` deletes only inside that folder.
    """
    settings = state.settings
    recorded = {t.experiment for t in state.recorded}
    pruned = []
    try:
        for path, experiment in state.baselines.entry_files(name).items():
            script = settings.rootdir / experiment
            matches = matches_experiments(experiment, settings.experiments)
            if not script.exists() or (not matches and experiment not in recorded):
                state.baselines.delete_entry(name, path)
                pruned.append(experiment)
    except (StoreError, OSError) as exc:
        state.warn(f"entries of experiments that no longer exist not removed from baseline '{name}': {exc}")
    return sorted(set(pruned))


def remove_old_trials(state: SessionState) -> None:
    """Keep the newest ``nw_keep`` trials of each experiment (all with ``nw_keep = 0``), and
    reclaim what interrupted runs left in the store, when this session recorded a trial."""
    from ..store.gc import collect_garbage

    if not state.recorded:
        return
    try:
        result = collect_garbage(state.store, state.settings.keep)
    except (OSError, ValueError) as exc:
        state.warn(f"old trials not removed ({exc})")
        return
    state.store.warnings.extend(w for w in result.warnings if w not in state.store.warnings)
    state.removed = len(result.removed)
