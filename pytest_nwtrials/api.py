"""Browsing recorded trials from Python: loading a trial or a baseline, comparing two trials, a
table of trials, a tag's values across trials, a plot, and pruning old trials from the local store.

The package's public functions (`pytest_nwtrials.load_trial`, ``trial_diff``, ``list_trials``,
...) are these, imported on first use. pandas, numpy and matplotlib are imported inside the
functions, so ``import pytest_nwtrials`` stays cheap and an experiment's own imports are what
capture sees. A `store` argument is a store folder, the project folder holding one, or a
`TrialStore`; by default the store of the project at the working directory: ini ``nw_store``
(default ``.nwtrials``) at the rootdir pytest would use there (see store/project.py), else the
nearest ``.nwtrials`` at or above it. Experiments are named by their path relative to the rootdir
(``experiments/train.py``) or a glob pattern on it (``*/train.py``).

Plots are made without pyplot: no backend is chosen, no window opens and nothing accumulates in
pyplot's figure list. The returned figure renders itself as PNG in Jupyter; `fig.savefig(path)`
writes it. A tag is plotted when its values are real numbers (bools as 0 and 1) or numeric
arrays (scipy.sparse ones included), which are plotted as their mean; any other value raises a `ValueError` naming the tag,
the trial and the type.
"""
from __future__ import annotations

import math
import os
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence, Union, cast

from .extras import require
from .printable import printable
from .settings import matches_experiments
from .store import gc as store_gc
from .store.gc import GcResult
from .store.layout import BASELINES_DIR, STORE_DIR, is_store
from .store.project import baselines_beside, default_baselines, default_store, store_in
from .store.trial_store import Trial, TrialStore

if TYPE_CHECKING:
    import pandas
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .compare.diffing import TrialDiff

__all__ = ["GcResult", "collect_garbage", "list_trials", "load_baseline", "load_trial", "open_store", "plot",
           "plot_trials", "trial_diff", "values"]

StoreLike = Union[str, "os.PathLike[str]", TrialStore, None]
TRIAL_COLUMNS = ["name", "id", "experiment", "argv", "status", "started", "duration", "tags"]
VALUE_COLUMNS = ["name", "id", "experiment", "argv", "started", "status", "value"]
SPREAD_COLUMNS = ["spread_low", "spread_high", "spread_relative"]
SUMMARY_WIDTH = 80


def open_store(store: StoreLike = None) -> TrialStore:
    """The local store at `store` (by default the project's, see the module's docstring);
    LookupError, saying what to do, when there is none."""
    if isinstance(store, TrialStore):
        return store
    if store is None:
        return TrialStore(default_store())
    path = Path(store)
    for candidate in (path, store_in(path), path / STORE_DIR):
        if candidate is not None and is_store(candidate):
            return TrialStore(candidate)
    raise LookupError(f"no trial store at {path} (a {STORE_DIR} folder with trials/ in it); "
                      "run pytest on the experiments first, or give the right folder")


def load_trial(ref: str, *, store: str | os.PathLike[str] | None = None, allow_pickle: bool = False,
               trusted: Sequence[str] | None = None) -> Trial:
    """`pytest_nwtrials.load_trial`: a recorded trial by short name, id or unique id prefix."""
    from dataclasses import replace

    st = open_store(store)
    found = st.find(ref)
    if not found:
        raise LookupError(f"no trial {ref!r} in {st.root}")
    if len(found) > 1:
        raise LookupError(f"trial reference {ref!r} is ambiguous in {st.root}: " + ", ".join(t.name for t in found))
    return replace(found[0], allow_pickle=allow_pickle, load_models=True,
                   trusted=None if trusted is None else tuple(trusted))


def trial_diff(old: Trial | str, new: Trial | str, *, rtol: float | None = None, atol: float | None = None,
               operations: bool = False, store: str | os.PathLike[str] | None = None) -> TrialDiff:
    """`pytest_nwtrials.trial_diff`: how trial `new` differs from trial `old`."""
    from .compare.diffing import diff_trials
    from .compare.engine import Rules, Tolerance

    old_trial = old if not isinstance(old, str) else load_trial(old, store=store)
    new_trial = new if not isinstance(new, str) else load_trial(new, store=store)
    rules = Rules(default=Tolerance(rtol, atol))
    return diff_trials(old_trial.name, new_trial.name, old_trial.values, new_trial.values, rules,
                       old_trial.inputs, old_trial.argv, new_trial.inputs, new_trial.argv,
                       old_trial.record(), new_trial.record(), operations=operations)


def select(store: TrialStore, experiment: str | None = None) -> list[Trial]:
    """The store's trials, oldest first, of `experiment` (a path or glob) when given."""
    trials = store.trials()
    if experiment is None:
        return trials
    chosen = [t for t in trials if t.experiment == experiment or matches_experiments(t.experiment, [experiment])]
    if not chosen:
        known = ", ".join(sorted({t.experiment for t in trials})) or "none yet"
        raise LookupError(f"no trials of experiment {experiment!r} in {store.root}; experiments: {known}")
    return chosen


def with_tag(tag: str, trials: list[Trial], where: str) -> list[Trial]:
    """The trials that tagged `tag`; LookupError listing the tags there are when none did."""
    having = [t for t in trials if tag in t.tags]
    if not having:
        known = sorted({name for t in trials for name in t.tags})
        listed = ", ".join(known) if known else "none"
        raise LookupError(f"no trial in {where} tagged {tag!r}; tags: {listed}")
    return having


def started_at(trial: Trial) -> datetime | None:
    """The trial's start time; None when it was not recorded or cannot be read."""
    try:
        return datetime.fromisoformat(trial.started) if trial.started else None
    except ValueError:
        return None


def tag_value(trial: Trial, tag: str) -> Any:
    """One decoded tag of `trial` (without decoding the others)."""
    from .values.codec import BlobStore, decode

    blobs = BlobStore(trial.values_dir) if trial.values_dir is not None else None
    return decode(trial.tags[tag]["value"], blobs, allow_pickle=False)


def table_cell(value: Any, width: int = SUMMARY_WIDTH) -> Any:
    """A scalar as a Python number (or bool); a model as its repr, whole (what noWorkflow's
    saved output shows: ``RandomForestClassifier(max_depth=5)``); anything else as its one-line
    summary."""
    import numpy as np

    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if type(value) in (bool, int, float):
        return value
    from .values.codec import summarize
    from .values.models import ModelValue

    if isinstance(value, ModelValue) and value.text:
        return value.text

    return summarize(value, width)


def list_trials(experiment: str | None = None, *, store: StoreLike = None) -> pandas.DataFrame:
    """One row per trial, oldest first: name, id, experiment, argv, status, started, duration, tags.

    `started` is a UTC datetime; `tags` the list of tag names. An empty store gives an empty table.
    """
    import pandas as pd

    rows = [{"name": t.name, "id": t.id, "experiment": t.experiment, "argv": list(t.argv),
             "status": t.status, "started": t.started, "duration": t.duration, "tags": list(t.tags)}
            for t in select(open_store(store), experiment)]
    frame = pd.DataFrame(rows, columns=TRIAL_COLUMNS)
    frame["started"] = pd.to_datetime(frame["started"], utc=True, format="ISO8601")
    frame["duration"] = frame["duration"].astype(float)
    return frame


def values(tag: str, experiment: str | None = None, *, store: StoreLike = None) -> pandas.DataFrame:
    """One row per trial that tagged `tag`, oldest first: name, id, experiment, argv, started, status,
    value, spread_low, spread_high, spread_relative.

    Scalars are numbers; other values (arrays, dicts, strings, frames) their one-line summary.
    The spread columns hold the run-to-run spread of the tag recorded by the first run of a
    group run with ``--nw-repeat`` (lowest and highest value seen, of any element for an array,
    and the largest deviation relative to the first run's value); NaN for a trial run once, for
    a tag that did not vary between the runs, and for one whose runs differed in something other
    than a number. LookupError when no trial tagged it.
    """
    import pandas as pd

    st = open_store(store)
    where = f"{st.root}" + (f" (experiment {experiment!r})" if experiment else "")
    rows = []
    for trial in with_tag(tag, select(st, experiment), where):
        try:
            cell = table_cell(tag_value(trial, tag))
        except ValueError as exc:  # a missing or damaged value file: say so in its row
            cell = f"<unreadable: {exc}>"
        rows.append({"name": trial.name, "id": trial.id, "experiment": trial.experiment,
                     "argv": list(trial.argv), "started": trial.started, "status": trial.status,
                     "value": cell, **spread_cells(trial, tag)})
    frame = pd.DataFrame(rows, columns=VALUE_COLUMNS + SPREAD_COLUMNS).astype({c: float for c in SPREAD_COLUMNS})
    frame["started"] = pd.to_datetime(frame["started"], utc=True, format="ISO8601")
    return frame


def spread_cells(trial: Trial, tag: str) -> dict[str, float]:
    """The spread columns of `trial`'s row for `tag`: its recorded run-to-run spread, else NaN."""
    from .compare.spread import Stability

    cells = dict.fromkeys(SPREAD_COLUMNS, math.nan)
    if trial.stability is None:
        return cells
    try:
        spread = Stability.from_json(trial.stability).spreads.get(tag)
    except ValueError:  # a damaged record: `nwtrials show` says what is wrong with it
        return cells
    if spread is not None and spread.numeric:
        for column, number in zip(SPREAD_COLUMNS, (spread.low, spread.high, spread.relative)):
            cells[column] = math.nan if number is None else number
    return cells


def plottable(tag: str, value: Any, where: str) -> tuple[float, bool]:
    """`value` as a number to plot, and whether it is an array's mean; ValueError if it is neither."""
    import numpy as np

    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        return float(value), False
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return (float(value.mean()) if value.size else math.nan), True
    from .values.sparse import is_sparse, sparse_mean

    if is_sparse(value) and value.dtype.kind in "biuf":
        return sparse_mean(value), True  # the mean of every element, without densifying
    kind = f"array of {value.dtype}" if isinstance(value, np.ndarray) else _type_name(value)
    raise ValueError(f"tag {tag!r} of {where} is a {kind}, which cannot be plotted: "
                     "plot takes numbers, and numeric arrays (dense or scipy.sparse) as their mean")


def _type_name(value: Any) -> str:
    from .values.codec import OpaqueValue

    return value.type if isinstance(value, OpaqueValue) else type(value).__name__


@lru_cache(maxsize=1)
def _figure_class() -> type:
    require("matplotlib", "plots", "Plotting tags")
    from matplotlib.figure import Figure

    class TagPlot(Figure):
        """A figure that shows itself as PNG in Jupyter without pyplot."""

        def _repr_png_(self) -> bytes:
            return figure_png(self)

    return TagPlot


def figure_png(figure: Figure, dpi: int = 100) -> bytes:
    """The figure rendered as PNG bytes."""
    from io import BytesIO

    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def plot_trials(tag: str, trials: list[Trial], *, title: str,
                marks: dict[tuple[str, tuple[str, ...]], float] | None = None,
                mark_label: str = "", ax: Axes | None = None) -> Figure:
    """Plot `tag` over `trials` (all having it), one line per experiment and argv: against start
    time, each point named, when the names fit between the points; else against the trials'
    order, named by the ticks (render/trial_axis.py says why).

    `marks` are horizontal reference lines by (experiment, argv), drawn in their line's colour.
    """
    require("matplotlib", "plots", "Plotting tags")
    from .render import trial_axis

    lines: dict[tuple[str, tuple[str, ...]], list[tuple[datetime, float, str]]] = {}
    mean = False
    for trial in trials:
        when = started_at(trial)
        if when is None:
            continue
        number, of_array = plottable(tag, tag_value(trial, tag), trial.name)
        mean = mean or of_array
        lines.setdefault((trial.experiment, trial.argv), []).append((when, number, printable(trial.name)))
    if not lines:
        raise ValueError(f"no trial with tag {tag!r} has a recorded start time to plot against")
    if ax is None:
        figure = _figure_class()(figsize=(7, 3.6), layout="constrained")
        ax = figure.add_subplot()
    figure = cast("Figure", ax.figure)  # the figure of a given axes, which may be a subfigure
    started = sorted({(when, name) for points in lines.values() for when, _, name in points})
    in_time = trial_axis.names_fit_in_time(started, trial_axis.axes_width(ax))
    order = {point: index for index, point in enumerate(started)}
    for (experiment, argv), points in lines.items():
        points.sort()
        label = printable(experiment + (" " + " ".join(argv) if argv else ""))  # drawn text: no controls
        # datetimes, which matplotlib's stubs do not list, or places in the order
        xs: list[Any] = [when if in_time else order[(when, name)] for when, _, name in points]
        drawn = ax.plot(xs, [p[1] for p in points], marker="o", label=label)[0]
        if in_time:
            for x, (_, number, name) in zip(xs, points):
                trial_axis.name_beside(ax, name, x, number)
        if marks and (experiment, argv) in marks:
            ax.axhline(marks[(experiment, argv)], color=drawn.get_color(), linestyle="--",
                       linewidth=1, label=f"{mark_label} ({label})")
    if in_time:
        trial_axis.time_axis(ax)
    else:
        trial_axis.order_axis(ax, [name for _, name in started], started[0][0], started[-1][0])
    ax.set_ylabel(printable(f"{tag} (mean)" if mean else tag))
    ax.set_title(printable(title))
    ax.legend(fontsize=8)
    return figure


def plot(tag: str, experiment: str | None = None, *, store: StoreLike = None, baseline: str | None = None,
         baselines: str | os.PathLike[str] | None = None, ax: Axes | None = None) -> Figure:
    """`tag` across trials in time order, one line per experiment (and argv); returns the figure.

    With `baseline=NAME`, the baseline's value of the tag is a dashed line per experiment; the
    baselines folder is `baselines`, by default the one of the store's project (ini
    ``nw_baselines_dir``, else ``nw-baselines`` next to the store). Numeric arrays
    are plotted as their mean; any other value raises ValueError. With `ax`, draws into it.
    """
    st = open_store(store)
    where = f"{st.root}" + (f" (experiment {experiment!r})" if experiment else "")
    trials = with_tag(tag, select(st, experiment), where)
    marks = None
    if baseline is not None:
        folder, project = (Path(baselines), None) if baselines else baselines_beside(st.root)
        marks = baseline_marks(tag, baseline, trials, folder, project=project)
    title = f"{tag} across trials" + (f" of {experiment}" if experiment else "")
    return plot_trials(tag, trials, title=title, marks=marks, mark_label=f"baseline '{baseline}'", ax=ax)


def baseline_marks(tag: str, name: str, trials: list[Trial], folder: Path,
                   project: Path | None = None) -> dict[tuple[str, tuple[str, ...]], float]:
    """The baseline's value of `tag` for each (experiment, argv) of `trials` that has one."""
    from .store.baselines import BaselineStore
    from .values.codec import BlobStore, decode

    baselines = BaselineStore(folder, project)
    if not baselines.exists(name):
        known = ", ".join(baselines.names()) or "none"
        raise LookupError(f"no baseline {name!r} in {folder}; baselines: {known}")
    marks = {}
    for key in {(t.experiment, t.argv) for t in trials}:
        entry = baselines.entry(name, *key)
        if entry is not None and tag in entry.tags:
            value = decode(entry.tags[tag]["value"], BlobStore(entry.values_dir))
            marks[key] = plottable(tag, value, f"baseline '{name}'")[0]
    if not marks:
        raise LookupError(f"baseline {name!r} has no value of tag {tag!r} for "
                          + ", ".join(sorted({t.experiment for t in trials})))
    return marks


def load_baseline(name: str, experiment: str, argv: Sequence[str] = (), *, baselines: str | os.PathLike[str] | None = None,
                  trusted: Sequence[str] | None = None) -> dict[str, Any]:
    """The tagged values of `experiment` (run with `argv`) in baseline `name`, decoded.

    Baselines keep no pickles: an object is its summary, except a model saved with its skops
    file, which comes back as the estimator under the rule of `load_trial`'s `trusted` (the
    file runs no code on load). `baselines` is the folder, by default the project's at the working
    directory (ini ``nw_baselines_dir``, else ``nw-baselines`` next to the nearest store or in the
    working directory).
    """
    from .store.baselines import BaselineStore
    from .store.record_fields import decode_tag
    from .values.models import load_models

    if baselines is not None:
        folder, project = Path(baselines), Path(baselines).parent
    else:
        folder, project = default_baselines() or (Path.cwd() / BASELINES_DIR, Path.cwd())
    store = BaselineStore(folder, project)
    if not store.exists(name):
        known = ", ".join(store.names()) or "none"
        raise LookupError(f"no baseline {name!r} in {folder}; baselines: {known}")
    entry = store.entry(name, experiment, tuple(map(str, argv)))
    if entry is None:
        raise LookupError(f"baseline {name!r} has no entry for {experiment}; run pytest --nw-save-baseline={name}")
    blobs = entry.blobs()
    values = {tag: decode_tag(tag, doc, blobs, entry.where, entry.remedy) for tag, doc in entry.tags.items()}
    return load_models(values, blobs, None if trusted is None else tuple(trusted))


def collect_garbage(keep: int, *, store: StoreLike = None, dry_run: bool = False) -> GcResult:
    """Keep the last `keep` trials of each experiment; remove the older ones from the store.

    Removes their ``trials/`` files, their compressed noWorkflow databases in ``provenance/``
    when kept, and the provenance records and value files no remaining trial references (reruns
    share them); each trial's record
    first, so that an interrupted run leaves only unreferenced files behind. Also reclaims what
    killed or timed-out runs left (see `store/gc.py`). Safe while pytest runs record into the
    store: it holds the store lock, and keeps the trials of sessions still running.
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    return store_gc.collect_garbage(open_store(store), keep, dry_run=dry_run)
