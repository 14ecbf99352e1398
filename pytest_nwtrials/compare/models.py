"""Models compared by what they are: class, hyperparameters, fitted state (values/models.py).

Hyperparameters (`get_params`) and fitted attributes (names ending in ``_``) are walked by the
diff engine itself, so they get its tolerances, path rules and array summaries. A change of a
hyperparameter that is a plain value is one `Kind.HYPERPARAMETER` change at ``model['max_depth']``,
reported as ``model: max_depth: None -> 5`` (None -> 5 is a new value of the parameter, not a
"type change"); one of ``coef_`` is reported at ``model['coef_']`` with the array engine's
summary. A change of class is one `Kind.CLASS_CHANGED` change showing both estimators.

The model's pickle digest is not compared: two fits that agree in every parameter and fitted
attribute are the same model, whatever private caches their pickles hold.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..values.codec import Summary
from ..values.models import state_of
from .changes import Change, Kind, Walker
from .rules import child_path

HYPERPARAMETER = "hyperparameter"
FITTED = "fitted attribute (set by fit)"
PLAIN = (type(None), bool, int, float, str)  # hyperparameters shown as their own repr


def compare_models(differ: Walker, old: Any, new: Any, path: str) -> None:
    """Add the differences between two models (stored summaries or live estimators)."""
    before, after = state_of(old), state_of(new)
    if before.type != after.type:
        differ.add(path, Kind.CLASS_CHANGED, Summary(before.text or before.type), Summary(after.text or after.type),
                   class_detail(before, after))
        return
    start = len(differ.changes)
    differ.compare_mapping(before.params, after.params, path)
    plain = {child_path(path, k): (v, after.params[k]) for k, v in before.params.items()
             if k in after.params and type(v) in PLAIN and type(after.params[k]) in PLAIN}
    differ.changes[start:] = [_hyperparameter(change, plain) for change in differ.changes[start:]]
    start = len(differ.changes)
    differ.compare_mapping(before.fitted, after.fitted, path)
    differ.changes[start:] = [_labelled(change, FITTED) for change in differ.changes[start:]]


HEADLINE_ROOM = 60  # what a report's headline leaves both values, about, after a short path


def class_detail(before: Any, after: Any) -> str:
    """The detail of a change of class: the qualified class names, so no name is ever cut, and
    each estimator whole on a line of its own when both would not fit in the headline."""
    detail = [f"baseline class: {before.type}", f"new class: {after.type}"]
    old_text, new_text = before.text or before.type, after.text or after.type
    if len(old_text) + len(new_text) > HEADLINE_ROOM:
        detail = [f"baseline: {old_text}", f"new: {new_text}", *detail]
    return "\n".join(detail)


def _hyperparameter(change: Change, plain: dict[str, tuple[Any, Any]]) -> Change:
    """A change of a plain hyperparameter as one `Kind.HYPERPARAMETER` change with both values
    as written in Python; any other change labelled as a hyperparameter's."""
    values = plain.get(change.path)
    if values is None or change.kind not in (Kind.CHANGED, Kind.TYPE_CHANGED):
        return _labelled(change, HYPERPARAMETER)
    old, new = values
    return replace(change, kind=Kind.HYPERPARAMETER, old=Summary(repr(old)), new=Summary(repr(new)),
                   detail=HYPERPARAMETER)


def _labelled(change: Change, what: str) -> Change:
    """A change of a model's own parameter or attribute says which of the two it is; changes
    further down (inside a nested estimator) were labelled by its own comparison."""
    if change.detail.startswith((HYPERPARAMETER, FITTED)) or change.kind in (Kind.HYPERPARAMETER, Kind.CLASS_CHANGED):
        return change
    return replace(change, detail=what + (": " + change.detail if change.detail else ""))
