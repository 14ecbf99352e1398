"""noWorkflow's notebook API (``noworkflow.now.tagging.var_tagging``) over the local trial store.

noWorkflow's comparison notebooks call ``resume_trials()``, ``trial_diff(a, b)``,
``trial_intersection_diff(a, b)``, ``var_tag_values(name)``, ``var_tag_plot(name)`` and
``backward_deps(name)``; there they read a ``shelve`` file ("ops") that ``store_operations``
filled and noWorkflow's own database. Here the same calls read the trials pytest recorded, so
such a notebook runs against the store by changing its import line to::

    from pytest_nwtrials.noworkflow import backward_deps, global_backward_deps, \\
        store_operations, resume_trials, trial_diff, trial_intersection_diff, var_tag_plot, var_tag_values

Names, arguments and return shapes are noWorkflow's where they make sense; the values are the
store's at full fidelity (not noWorkflow's "complex data type" for any text over 20 characters),
and what noWorkflow only displays (a diff, a plot) is returned as an object that renders itself
in Jupyter. A trial is named by its id (what `resume_trials` returns), its short name
(``trial3``), a unique id prefix of 4 or more characters, or the last 5 characters of its id
(noWorkflow's ``short_trial_id``). Every function takes `store`: a store folder or the
project folder holding one; by default the project's at the working directory, as in `api`.

Inside a running experiment (a trial notebook whose import line was changed too),
`backward_deps` reads the running trial's slice from noWorkflow's database, `store_operations`
keeps its dictionary with the trial as the tag ``operations``, and `resume_trials` lists the
running trial last.
"""
from __future__ import annotations

import builtins
import html
from dataclasses import fields, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from . import api
from .capture import recorder as _recorder
from .compare.diffing import TrialDiff
from .provenance.reader import Op
from .store.trial_store import Trial, TrialStore

if TYPE_CHECKING:
    import pandas
    from matplotlib.figure import Figure

__all__ = ["backward_deps", "global_backward_deps", "resume_trials", "store_operations", "trial_diff",
           "trial_intersection_diff", "var_tag_plot", "var_tag_values"]

SHORT_ID = 5  # noWorkflow's short_trial_id: the last characters of the trial id
PLOTTED_TRIALS = 30  # noWorkflow's var_tag_plot shows the last 30 trials
OPERATIONS_TAG = "operations"  # the tag `store_operations` records in a running trial
_LIVE_HINT = "pass trial= to read a finished trial from the store"
# what noWorkflow's dictionaries leave out: how a value was reached, not a value the experiment
# made (attribute look-ups, literals, parameters, definitions), and the functions, classes and
# modules a call names
_UNSHOWN_KINDS = frozenset({"attribute", "literal", "param", "function_def", "class_def", "ipython", "notebook"})
_UNSHOWN_VALUES = ("<module ", "<function ", "<class ", "<built-in ", "<bound method ", "<method ")


class TrialIds(list):
    """The ids `resume_trials` returns: a plain list, shown in Jupyter as the table of trials."""

    def __init__(self, trials: list[Trial], running: str | None = None) -> None:
        super().__init__([t.id for t in trials] + ([running] if running else []))
        self.trials = trials
        self.running = running

    def _repr_html_(self) -> str:
        rows = [(t.id, t.name, t.experiment, t.status, t.started or "", ", ".join(t.tags)) for t in self.trials]
        if self.running:
            rows.append((self.running, "", "", "running", "", ""))
        cells = "".join(f"<tr><td>{i}</td><td>{html.escape(row[0])}</td><td>{html.escape(row[0][-SHORT_ID:])}</td>"
                        + "".join(f"<td>{html.escape(cell)}</td>" for cell in row[1:]) + "</tr>"
                        for i, row in enumerate(rows))
        head = "".join(f"<th>{c}</th>" for c in ("", "trial_id", "short_trial_id", "name", "experiment",
                                                  "status", "started", "tags"))
        return f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>"


class NotebookTrialDiff(TrialDiff):
    """`trial_diff`'s result: our `TrialDiff`, shown whole (values are not cut to a width)."""

    def __repr__(self) -> str:
        return self.text(outputs=True)

    whole = True

    def _html_value(self, value: Any) -> str:
        return f"<pre>{html.escape(full_text(value))}</pre>"


@lru_cache(maxsize=1)
def _whole_frame_class() -> type:
    import pandas as pd

    class WholeFrame(pd.DataFrame):
        """A DataFrame whose cells are shown whole: pandas cuts text cells at 50 characters."""

        @property
        def _constructor(self) -> type:
            return WholeFrame

        def _repr_html_(self) -> str | None:
            with pd.option_context("display.max_colwidth", None):
                return super()._repr_html_()

        def __repr__(self) -> str:  # every column too, wrapped to the width rather than left out
            with pd.option_context("display.max_colwidth", None, "display.max_columns", None):
                return super().__repr__()

    return WholeFrame


def whole(frame: pandas.DataFrame) -> pandas.DataFrame:
    """`frame` as a DataFrame that Jupyter and print show with every cell whole."""
    return _whole_frame_class()(frame)


def full_text(value: Any) -> str:
    """A value's summary at any length: what a report shows, without the width cut."""
    from .values.codec import summarize

    return summarize(value, width=1_000_000)


def short_id(trial: Trial) -> str:
    return trial.id[-SHORT_ID:]


def resume_trials(experiment: str | None = None, *, store: api.StoreLike = None) -> TrialIds:
    """The ids of the store's trials, oldest first (of `experiment`, a path or glob, when given);
    inside a running experiment, the running trial's id last, as noWorkflow lists it once
    `store_operations` kept it.

    noWorkflow returns the ids of the trials whose operations `store_operations` kept; the
    store keeps every trial's, so every trial is listed. ValueError when there are none.
    """
    running = running_trial_id()
    try:
        st = api.open_store(store)
    except LookupError:
        if running is None or store is not None:
            raise
        return TrialIds([], running)  # the first run of a project: no store until it ends
    trials = [t for t in api.select(st, experiment) if t.id != running] if st.trials() else []
    if not trials and running is None:
        raise ValueError(f"no trials in {st.root} yet; run pytest on the experiments first")
    return TrialIds(trials, running)


def running_trial_id() -> str | None:
    """The id of the trial running in this process (under noWorkflow capture), else None."""
    if _recorder.active() is None:
        return None
    running = getattr(getattr(builtins, "__noworkflow__", None), "trial_id", None)
    return str(running) if running is not None else None


def find_trial(ref: Any, st: TrialStore) -> Trial:
    """The trial `ref` names (a Trial, id, short name, id prefix or noWorkflow's short id)."""
    if isinstance(ref, Trial):
        return ref
    if not isinstance(ref, str):
        raise TypeError(f"a trial is named by its id or short name (a string), not {type(ref).__name__}: "
                        f"{ref!r:.60}; resume_trials() lists the ids")
    found = st.find(ref)
    if not found and len(ref) == SHORT_ID:
        found = [t for t in st.trials() if t.id.endswith(ref)]
    if len(found) == 1:
        return found[0]
    if found:
        raise LookupError(f"trial {ref!r} is ambiguous in {st.root}: {', '.join(t.name for t in found)}; "
                          "give the whole id")
    raise LookupError(f"no trial {ref!r} in {st.root}; resume_trials() lists the ids of its trials")


def var_tag_values(tag_name: str, experiment: str | None = None, *,
                   store: api.StoreLike = None) -> pandas.DataFrame:
    """One row per trial that tagged `tag_name`, oldest first: noWorkflow's columns trial_id,
    short_trial_id, tag, value, then the store's name, experiment, started and status.

    Numbers stay numbers (noWorkflow gives every value as a string); any other value is its
    whole summary (a model with its class and hyperparameters). LookupError, listing the tags
    there are, when no trial tagged it (noWorkflow raises ValueError).
    """
    import pandas as pd

    st = api.open_store(store)
    where = f"{st.root}" + (f" (experiment {experiment!r})" if experiment else "")
    rows = [(t.id, short_id(t), tag_name, _cell(t, tag_name), t.name, t.experiment, t.started, t.status)
            for t in api.with_tag(tag_name, api.select(st, experiment), where)]
    frame = pd.DataFrame(rows, columns=["trial_id", "short_trial_id", "tag", "value", "name", "experiment",
                                        "started", "status"])
    frame["started"] = pd.to_datetime(frame["started"], utc=True, format="ISO8601")
    return whole(frame)


def _cell(trial: Trial, tag: str) -> Any:
    try:
        value = api.tag_value(trial, tag)
    except ValueError as exc:  # a missing or damaged value file: said in its row, as api.values does
        return f"<unreadable: {exc}>"
    cell = api.table_cell(value)
    return cell if isinstance(cell, (bool, int, float)) else full_text(value)


def var_tag_plot(tag_name: str, experiment: str | None = None, *, store: api.StoreLike = None) -> Figure:
    """A bar chart of `tag_name` in the last 30 trials that tagged it, one bar per trial labelled
    with its short id, as noWorkflow draws it; returned (it shows itself in Jupyter), not shown.

    Numeric arrays are drawn as their mean; any other value raises ValueError naming the tag.
    """
    st = api.open_store(store)
    where = f"{st.root}" + (f" (experiment {experiment!r})" if experiment else "")
    trials = api.with_tag(tag_name, api.select(st, experiment), where)[-PLOTTED_TRIALS:]
    heights = [api.plottable(tag_name, api.tag_value(t, tag_name), t.name)[0] for t in trials]
    figure = api._figure_class()(figsize=(6.4, 4.8), layout="constrained")
    ax = figure.add_subplot()
    ax.bar([short_id(t) for t in trials], heights)
    ax.set_title(f"{tag_name} values")
    ax.tick_params(axis="x", labelrotation=90)
    return figure


def backward_deps(var_name: str, glanularity_level: bool | None = False, trial: Any = None, *,
                  store: api.StoreLike = None) -> dict[int, tuple[str, str]]:
    """The operations the last tagging of `var_name` depends on, as noWorkflow shapes them:
    ``{n: (code, value), ..., 1: (code, value), 0: (the tagged call, its value)}``, key 0 the
    latest, iterated from the earliest; values are the operations' recorded values, whole.

    From `trial` (an id or name), else, inside a running notebook item, from the running trial
    (read from noWorkflow's database as the cells store it; a running script's operations are
    stored only when it ends), else from the latest trial in the store with a slice of
    `var_name`. `glanularity_level` is kept for noWorkflow's calls: the store's slices always
    hold the operations inside the experiment's own functions.
    """
    return _deps(var_name, glanularity_level, trial, store, union=False)


def global_backward_deps(var_name: str, glanularity_level: bool | None = False, trial: Any = None, *,
                         store: api.StoreLike = None) -> dict[int, tuple[str, str]]:
    """`backward_deps` of every tagging of `var_name` in the trial, not only the last one (read
    from the trial's noWorkflow database in the store)."""
    return _deps(var_name, glanularity_level, trial, store, union=True)


def _deps(name: str, level: bool | None, trial: Any, store: api.StoreLike, union: bool) -> dict[int, tuple[str, str]]:
    if trial is None and _recorder.active() is not None:
        return _live_deps(name, union)
    st = api.open_store(store)
    chosen = find_trial(trial, st) if trial is not None else _latest_with_slice(name, st)
    try:
        found = chosen.slice(name, union=union)
    except KeyError:
        from .store.record_fields import no_provenance_note

        why = no_provenance_note(chosen)
        if why:  # recorded without capture on purpose: the slice was never made
            raise LookupError(f"{why}; run it with --nw-capture=fine for its slices") from None
        known = ", ".join(sorted(chosen.tags)) or "none"
        untagged = ("; the slice of a variable that was not tagged is read from noWorkflow's database: set "
                    "nw_keep_database = true in the ini and run the experiment again"
                    if union and name not in chosen.tags and not chosen.provenance else "")
        raise LookupError(f"{chosen.name} has no provenance slice of {name!r}; its tags: {known}{untagged}") from None
    return ops_dict(found.ops)


def _latest_with_slice(name: str, st: TrialStore) -> Trial:
    trials = api.with_tag(name, st.trials(), str(st.root))
    for candidate in reversed(trials):
        record = candidate.record()
        if record is not None and name in record.slices:
            return candidate
    raise LookupError(f"no trial in {st.root} has a provenance slice of {name!r} (they ran with "
                      "--nw-capture=off, matched their baseline under --nw-capture=auto, or their records "
                      "were removed); run the experiment with capture")


def _live_deps(name: str, union: bool) -> dict[int, tuple[str, str]]:
    """The running trial's slice, read from the database noWorkflow is writing: a notebook's
    operations are stored there as its cells run, a script's only when it ends."""
    running = running_trial_id()
    call = f"{'global_' if union else ''}backward_deps({name!r})"
    if running is None:
        raise LookupError(f"{call} in a run without noWorkflow capture (--nw-capture=off) has no operations "
                          f"to read; {_LIVE_HINT}")
    from pathlib import Path

    from noworkflow.now.persistence import relational

    from .provenance.reader import ProvenanceError, read_slices

    try:
        found = read_slices(Path(relational.engine.url.database), running, [name], union=union)
    except ProvenanceError:
        found = {}
    if name not in found:
        raise LookupError(f"{call}: noWorkflow has stored no operation of {name!r} in the running trial (it "
                          f"stores a notebook's operations as its cells run, a script's when it ends); "
                          f"{_LIVE_HINT}")
    return ops_dict(found[name].ops)


def ops_dict(ops: tuple[Op, ...] | list[Op]) -> dict[int, tuple[str, str]]:
    """Operations (in execution order) as noWorkflow's dict: those noWorkflow does not show
    (`shown`) and repeats of the previous operation are left out, as noWorkflow leaves them out."""
    kept: list[tuple[str, str]] = []
    for op in ops:
        pair = (op.code, op.value)
        if shown(op) and (not kept or kept[-1] != pair):
            kept.append(pair)
    last = len(kept) - 1
    return {last - i: pair for i, pair in enumerate(kept)}


def store_operations(trial: str, ops_dict: dict) -> None:
    """Keep `ops_dict` with the running trial, as its tag ``operations``.

    noWorkflow writes it into a ``shelve`` file in the working directory; the store already
    keeps every trial's slices (`backward_deps(name, trial=...)` reads them), and a trial once
    recorded is not rewritten, so outside a running experiment this raises instead of dropping
    the dictionary, and a `trial` other than the running one is refused.
    """
    active = _recorder.active()
    if active is None:
        raise RuntimeError("store_operations keeps operations with the running trial, and no experiment is "
                           "running here; the store already keeps the slices of every recorded trial: "
                           "backward_deps(name, trial=ID) reads them")
    running = running_trial_id()
    if running is not None and str(trial) != running:
        raise ValueError(f"store_operations({trial!r}, ...) names another trial than the running one "
                         f"({running}); pass __noworkflow__.trial_id")
    if not isinstance(ops_dict, dict):
        raise TypeError(f"store_operations takes the dict backward_deps returns, not {type(ops_dict).__name__}")
    active.record(OPERATIONS_TAG, ops_dict, source="tag")
    print(f"Dictionary stored with the trial, as its tag {OPERATIONS_TAG!r}.")


def trial_diff(trial_a: Any, trial_b: Any, raw: bool = False, *,
               store: api.StoreLike = None) -> NotebookTrialDiff | tuple[dict, dict]:
    """What differs from trial `trial_a` to `trial_b`: values, inputs, the slices of changed tags
    and the whole operation sequences, as the gate reports it; renders as HTML in Jupyter.

    noWorkflow displays a line diff of the stored dictionaries and returns None; with `raw` it
    returns both dictionaries, and here both trials' operation sequences in that shape.
    """
    from .compare.diffing import diff_trials, provenance_notes
    from .compare.engine import Rules

    st = api.open_store(store)
    old, new = find_trial(trial_a, st), find_trial(trial_b, st)
    old_record, new_record = old.record(), new.record()
    if raw:
        old_ops, new_ops = (ops_dict(r.operations if r is not None else ()) for r in (old_record, new_record))
        return old_ops, new_ops
    diff = diff_trials(old.name, new.name, old.values, new.values, Rules(), old.inputs, old.argv,
                       new.inputs, new.argv, old_record, new_record, operations=True)
    diff = replace(diff, notes=provenance_notes(old, new))
    return NotebookTrialDiff(**{f.name: getattr(diff, f.name) for f in fields(diff) if f.init})


def trial_intersection_diff(trial_a: Any, trial_b: Any, *, store: api.StoreLike = None) -> pandas.DataFrame:
    """The tags and slice operations both trials have, side by side: columns key, then one per
    trial named by its short id (noWorkflow's), then source ("tag" or "operation") and changed.

    Tags come first (values whole: numbers as numbers, others as their summary), then every
    operation of the trials' slices whose code both trials ran, in `trial_a`'s order, with its
    last value in each.
    """
    import pandas as pd

    st = api.open_store(store)
    a, b = find_trial(trial_a, st), find_trial(trial_b, st)
    col_a, col_b = (short_id(a), short_id(b)) if short_id(a) != short_id(b) else (a.name, b.name + " ")
    rows = [(name, _cell(a, name), _cell(b, name), "tag") for name in sorted(set(a.tags) & set(b.tags))]
    ops_a, ops_b = _slice_values(a), _slice_values(b)
    rows += [(code, ops_a[code], ops_b[code], "operation") for code in ops_a if code in ops_b]
    frame = pd.DataFrame(rows, columns=["key", col_a, col_b, "source"])
    frame["changed"] = [x != y for x, y in zip(frame[col_a], frame[col_b])]
    return whole(frame)


def _slice_values(trial: Trial) -> dict[str, str]:
    """Each operation of the trial's slices by code, with its last value, in execution order."""
    record = trial.record()
    if record is None:
        return {}
    position = {op: i for i, op in enumerate(record.operations)}
    ops = sorted({op for found in record.slices.values() for op in found.ops},
                 key=lambda op: position.get(op, len(position)))
    return {op.code: op.value for op in ops if shown(op)}


def shown(op: Op) -> bool:
    """Whether noWorkflow's dictionaries would show the operation (see _UNSHOWN_KINDS)."""
    return op.kind not in _UNSHOWN_KINDS and op.code != op.value and not op.value.startswith(_UNSHOWN_VALUES)
