"""pytest-nwtrials: experiments as pytest items, recorded as trials, gated against a baseline.

This module is what experiment code and notebooks import. It imports neither pytest nor
noWorkflow, so an experiment runs as a plain script too: outside a capture, `tag` returns its
value and records nothing.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, TypeVar

from .capture import recorder as _recorder

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .compare.diffing import TrialDiff
    from .store.trial_store import Trial

__all__ = ["tag", "load_trial", "load_baseline", "trial_diff", "list_trials", "tag_values", "plot"]
__version__ = "0.1.0"

T = TypeVar("T")


def tag(name: str, value: T, *, rtol: float | None = None, atol: float | None = None) -> T:
    """Record `value` under `name` in the current trial and return it unchanged.

    `rtol` and `atol` set this tag's tolerance when it is compared with a baseline; they win over
    every tolerance set elsewhere. A name tagged several times keeps its last value.
    """
    _recorder.check_tag_name(name)
    rtol = _recorder.check_tolerance("rtol", rtol)
    atol = _recorder.check_tolerance("atol", atol)
    active = _recorder.active()
    if active is not None:
        active.record(name, value, rtol=rtol, atol=atol)
    return value


def load_trial(ref: str, *, store: str | os.PathLike[str] | None = None, allow_pickle: bool = False,
               trusted: Sequence[str] | None = None) -> Trial:
    """Load a recorded trial by short name (``trial3``), id or unique id prefix (4+ characters).

    `store` is the local store folder (or the project folder holding it); by default the store
    of the project at the working directory: ini ``nw_store`` at its rootdir, else the nearest
    ``.nwtrials`` at or above the working directory. Opaque objects (a fitted model) come back
    as their summary unless `allow_pickle` is set: unpickling runs code, so only do it for
    trials you trust.
    A scikit-learn model recorded with skops installed (the ``models`` extra) comes back as the
    estimator without `allow_pickle`, loaded from its skops file, which runs no code: when every
    type the file names is one skops trusts by default or is listed in `trusted` (a file naming
    others stays a summary with a warning; with `trusted` given, it raises, naming them).
    """
    from . import api

    return api.load_trial(ref, store=store, allow_pickle=allow_pickle, trusted=trusted)


def trial_diff(old: Trial | str, new: Trial | str, *, rtol: float | None = None, atol: float | None = None,
               operations: bool = False, store: str | os.PathLike[str] | None = None) -> TrialDiff:
    """How trial `new` differs from trial `old` (trials or references for `load_trial`).

    Values are compared with the given tolerances (default rtol=1e-7), inputs and the slices of
    changed tags always, whole operation sequences with `operations`. The result prints as text
    and renders as HTML in Jupyter.
    """
    from . import api

    return api.trial_diff(old, new, rtol=rtol, atol=atol, operations=operations, store=store)


# Loading and browsing trials: `api` (the store, pandas, numpy and matplotlib) is imported on
# first use, so that importing this package, as pytest does for the plugin, stays light; nothing
# api imports imports this package back. The table of a tag's values is exported as
# `tag_values`: the name `values` is the subpackage of value encoders, pytest_nwtrials.values.
_API = {"list_trials": "list_trials", "load_baseline": "load_baseline", "plot": "plot", "tag_values": "values"}


def __getattr__(name: str):
    if name in _API:
        from . import api

        return getattr(api, _API[name])
    if name == "NwTrialsWarning":  # for -W and filterwarnings; imports pytest only when named
        from .plugin.notices import NwTrialsWarning

        return NwTrialsWarning
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
