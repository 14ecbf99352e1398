"""Models compared by what they are: class, hyperparameters, fitted state (values_models.py).

Hyperparameters (`get_params`) and fitted attributes (names ending in ``_``) are walked by the
diff engine itself, so they get its tolerances, path rules and array summaries: a change of
``max_depth`` is reported at ``model.max_depth``, one of ``coef_`` at ``model.coef_`` with the
array engine's summary. A change of class is one type change showing both estimators.

The model's pickle digest is not compared: two fits that agree in every parameter and fitted
attribute are the same model, whatever private caches their pickles hold.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .values import Summary
from .values_models import state_of

if TYPE_CHECKING:
    from .compare import Differ

HYPERPARAMETER = "hyperparameter"
FITTED = "fitted attribute (set by fit)"


def compare_models(differ: Differ, old: Any, new: Any, path: str) -> None:
    """Add the differences between two models (stored summaries or live estimators)."""
    from .compare import Kind

    before, after = state_of(old), state_of(new)
    if before.type != after.type:
        differ.add(path, Kind.TYPE_CHANGED, *_class_change(before, after))
        return
    for what, old_part, new_part in ((HYPERPARAMETER, before.params, after.params),
                                     (FITTED, before.fitted, after.fitted)):
        start = len(differ.changes)
        differ.compare_mapping(old_part, new_part, path)
        differ.changes[start:] = [_labelled(change, what) for change in differ.changes[start:]]


HEADLINE_ROOM = 60  # what a report's headline leaves both values, about, after a short path


def _class_change(before: Any, after: Any) -> tuple[Summary, Summary, str]:
    """Old, new and detail of a change of class: both estimators in the headline when they fit
    in it, else their class names there and each estimator whole on a line of its own; the
    qualified class names in the detail, so no name is ever cut."""
    old_text, new_text = before.text or before.type, after.text or after.type
    detail = [f"baseline class: {before.type}", f"new class: {after.type}"]
    if len(old_text) + len(new_text) > HEADLINE_ROOM:
        detail = [f"baseline: {old_text}", f"new: {new_text}", *detail]
        old_text, new_text = before.type.rpartition(".")[2], after.type.rpartition(".")[2]
    return Summary(old_text), Summary(new_text), "\n".join(detail)


def _labelled(change: Any, what: str) -> Any:
    """A change of a model's own parameter or attribute says which of the two it is; changes
    further down (inside a nested estimator) were labelled by its own comparison."""
    if change.detail.startswith((HYPERPARAMETER, FITTED)):
        return change
    return replace(change, detail=what + (": " + change.detail if change.detail else ""))
