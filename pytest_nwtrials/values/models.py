"""Models as models: objects with scikit-learn's estimator API, stored and shown by what they are.

A tagged object with `get_params` (a scikit-learn estimator, or anything following its API) is
still kept as an opaque object (its pickle in the local store), and its document gets a
`"model"` summary that baselines keep and the diff engine compares without unpickling:

    "model": {"class": "sklearn.linear_model._logistic.LogisticRegression",
              "text": "LogisticRegression(C=0.5)",          # the estimator's own repr
              "params": {name: value document, ...},       # get_params(deep=False); nested
                                                           # estimators are model documents too
              "fitted": {name: value document, ...},       # attributes named `name_` (fitted state)
              "file": "<sha256>.skops"}                    # the model itself, in skops' format

Fitted attributes follow scikit-learn's convention (public attributes ending in ``_`` are set by
`fit`); arrays among them are `.npy` files, compared with the array engine. Objects inside the
summary that are not plain data (a tree's node storage, a callable) are kept as type and digest
only: the model's own pickle already holds them. A fitted attribute holding many estimators (a
forest's trees) is one such entry for them all (`estimators_summary`).

The skops file is written when skops is installed (the ``models`` extra) and the run saves a
baseline (`Encoder.model_files`): writing one costs 10 to 30 times what the rest of the
encoding does, and only baselines keep it. skops' format loads without running code, and
refuses types that are not on its trusted list, so a baseline may keep the model itself and
`load_model_file` may give it back without ``allow_pickle``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import StoreError
from .types import TAG, OpaqueValue, ValueEncoder, pickle_summary, qualified_type_name, safe_repr

if TYPE_CHECKING:
    from .blobs import BlobStore

MODELS_EXTRA = "pip install 'pytest-nwtrials[models]'"


@dataclass(frozen=True, eq=False)
class ModelValue(OpaqueValue):
    """A stored model: its opaque summary plus class, hyperparameters and fitted state.

    Equality stays that of `OpaqueValue` (type and pickle digest); the diff engine compares
    `params` and `fitted` instead (compare/models.py).
    """

    text: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    fitted: dict[str, Any] = field(default_factory=dict)
    file: str | None = None


@dataclass(frozen=True)
class ModelState:
    """What the diff engine compares of a model, from a live estimator or a stored one."""

    type: str
    text: str
    params: dict[str, Any]
    fitted: dict[str, Any]


def is_estimator(value: Any) -> bool:
    """Whether `value` follows scikit-learn's estimator API (an instance with `get_params`)."""
    return not isinstance(value, type) and callable(getattr(type(value), "get_params", None))


def is_model(value: Any) -> bool:
    """A stored model summary or a live estimator."""
    return isinstance(value, ModelValue) or (not isinstance(value, OpaqueValue) and is_estimator(value))


def params_of(estimator: Any) -> dict[str, Any]:
    """`get_params(deep=False)`: nested estimators stay estimators, compared recursively."""
    params = estimator.get_params(deep=False)
    if not isinstance(params, dict):
        raise TypeError(f"get_params() returned {type(params).__name__}, not a dict")
    return {str(k): v for k, v in params.items()}


def fitted_of(estimator: Any) -> dict[str, Any]:
    """The fitted attributes: public instance attributes whose names end in ``_``."""
    try:
        attributes = vars(estimator)
    except TypeError:  # __slots__ classes have no __dict__
        return {}
    return {k: v for k, v in sorted(attributes.items()) if k.endswith("_") and not k.startswith("_")}


def model_text(estimator: Any) -> str:
    """The estimator's repr on one line (scikit-learn's shows the parameters that differ from
    their defaults), e.g. ``RandomForestClassifier(max_depth=5)``."""
    return re.sub(r"\s+", " ", safe_repr(estimator, 2000)).replace("( ", "(").strip()


def state_of(value: Any) -> ModelState:
    """The comparable state of a stored model or a live estimator."""
    if isinstance(value, ModelValue):
        return ModelState(value.type, value.text, value.params, value.fitted)
    fitted = {k: estimators_summary(v) or v for k, v in fitted_of(value).items()}
    return ModelState(qualified_type_name(value), model_text(value), params_of(value), fitted)


def estimators_summary(value: Any) -> OpaqueValue | None:
    """One summary for a fitted attribute that holds many estimators (a forest's `estimators_`,
    a list or an object array of trees): their class, how many, one digest of them all. None
    for anything else.

    A forest of 100 trees would otherwise be 100 model summaries with a pickle each, costing a
    hundred times what the forest's own pickle costs, and a change of `max_depth` would report
    every tree; the trees' fitted state is the forest's, compared through its other attributes.
    """
    items = _estimator_items(value)
    if not items:
        return None
    classes = sorted({qualified_type_name(item) for item in items})
    kind = "list" if isinstance(value, list) else qualified_type_name(value)
    summary = pickle_summary(value)[0]
    return OpaqueValue(f"{kind} of {len(items)} {' | '.join(classes)}", summary.size, summary.digest, summary.note)


def _estimator_items(value: Any) -> list[Any]:
    if type(value) in (list, tuple):
        items = list(value)
    elif type(value).__name__ == "ndarray" and getattr(value, "dtype", None) is not None and value.dtype.kind == "O":
        items = list(value.ravel())
    else:
        return []
    return items if len(items) > 1 and all(is_estimator(item) for item in items) else []


# ---------------------------------------------------------------------------------------------
# encode and decode


def encode_model(value: Any, encoder: ValueEncoder) -> dict[str, Any]:
    """The object document of an estimator with its `"model"` summary (see the module docstring).

    An estimator whose `get_params` fails is stored as a plain opaque object.
    """
    inner = encoder.inside_model()
    try:
        summary: dict[str, Any] = {
            "class": qualified_type_name(value),
            "text": model_text(value),
            "params": {k: inner.encode(v) for k, v in params_of(value).items()},
            "fitted": {k: _encode_fitted(v, inner) for k, v in fitted_of(value).items()},
        }
    except Exception as exc:  # get_params runs the estimator's own code
        return encoder.opaque(value, f"model summary unavailable ({safe_repr(exc)})")
    if encoder.secrets:  # the summary is committed JSON: a secret in a parameter is masked
        masked = encoder.secrets.mask_doc(summary)
        if masked != summary:
            summary = masked
            encoder.hits.add("a secret inside an object")
    doc = encoder.opaque(value)
    if encoder.model_files and not encoder.in_model and doc.get("blob"):
        # only where the pickle is kept: a model that held a secret keeps no file either
        file, note = _skops_file(value, encoder)
        if file:
            summary["file"] = file
        elif note and not doc["note"]:
            doc["note"] = note
    doc["model"] = summary
    return doc


def _encode_fitted(value: Any, inner: ValueEncoder) -> Any:
    many = estimators_summary(value)
    if many is None:
        return inner.encode(value)
    return {TAG: "object", "type": many.type, "size": many.size, "digest": many.digest, "blob": None,
            "note": many.note}


def _skops_file(value: Any, encoder: ValueEncoder) -> tuple[str | None, str]:
    try:
        import skops.io as sio
    except ImportError:
        return None, ""  # the models extra is optional: the summary and the pickle remain
    try:
        data = sio.dumps(value)
    except Exception as exc:  # a type skops cannot write
        return None, f"no skops model file ({safe_repr(exc, 120)})"
    if encoder.secrets and encoder.secrets.found_in(data):
        encoder.hits.add("a secret inside an object")
        return None, "held a secret; no skops model file is stored"
    return encoder.blobs.put_bytes(data, "skops"), ""


def decode_model(doc: dict[str, Any], summary: OpaqueValue, sub: Any) -> ModelValue:
    """The `ModelValue` of an object document with a `"model"` summary; `sub` decodes its parts."""
    model = doc["model"]
    params, fitted, file = model.get("params", {}), model.get("fitted", {}), model.get("file")
    ok = (isinstance(model.get("class"), str) and isinstance(model.get("text", ""), str)
          and isinstance(params, dict) and isinstance(fitted, dict) and isinstance(file, (str, type(None))))
    if not ok:
        raise StoreError(f"malformed 'model' summary in an object value document: {safe_repr(model)}")
    return ModelValue(summary.type, summary.size, summary.digest, summary.note, text=model.get("text", ""),
                      params={k: sub(v) for k, v in params.items()},
                      fitted={k: sub(v) for k, v in fitted.items()}, file=file)


def model_file_refs(doc: dict[str, Any]) -> list[str]:
    """The skops file an object document references (baselines copy it: it runs no code)."""
    model = doc.get("model") if doc.get(TAG) == "object" else None
    file = model.get("file") if isinstance(model, dict) else None
    return [file] if isinstance(file, str) else []


class UntrustedModelError(StoreError):
    """A model file names types that are not trusted; the message names them and what to do."""


def load_model_file(value: ModelValue, blobs: BlobStore, trusted: Iterable[str] = ()) -> Any:
    """The estimator in `value`'s skops file, loaded without running code from the file.

    Every type the file names must be on skops' default trusted list or in `trusted`;
    otherwise `UntrustedModelError` names the others. skops missing: an ImportError naming the
    extra. A `value` without a model file is a ValueError.
    """
    file = value.file
    if file is None:
        raise ValueError(f"the stored {value.type} has no model file")
    try:
        import skops.io as sio
    except ImportError:
        raise ImportError(f"loading the model file of a {value.type} needs skops: {MODELS_EXTRA}") from None
    with blobs.open(file) as handle:
        data = handle.read()
    trusted = sorted(set(trusted))
    try:
        untrusted = [t for t in sio.get_untrusted_types(data=data) if t not in trusted]
    except Exception as exc:  # not a skops file, or a damaged one
        raise blobs.damaged(file, f"is not a readable skops model file ({safe_repr(exc, 120)})") from None
    if untrusted:
        names = ", ".join(untrusted)
        raise UntrustedModelError(
            f"the model file {blobs.root / file} of a {value.type} names types that are not trusted: "
            f"{names}. Loading it would make them; if you trust this file, name them: "
            f"load_trial(..., trusted={untrusted!r}) (or allow_pickle=True for a trial of your own store)")
    try:
        return sio.loads(data, trusted=trusted or None)
    except Exception as exc:
        raise blobs.damaged(file, f"cannot be loaded as a model ({safe_repr(exc, 160)})") from None


def load_models(values: dict[str, Any], blobs: BlobStore | None, trusted: Iterable[str] | None) -> dict[str, Any]:
    """`values` with each top-level stored model that has a model file replaced by the estimator.

    `trusted` None: the types skops trusts by default; a model whose file names others (or any
    model, when skops is not installed) stays its summary, with a note and an
    `UntrustedModelWarning` saying why. `trusted` given: those
    types are trusted too, and a file naming still others raises `UntrustedModelError`.
    """
    if blobs is None:
        return values
    loaded = {}
    for name, value in values.items():
        if isinstance(value, ModelValue) and value.file:
            try:
                value = load_model_file(value, blobs, trusted or ())
            except (UntrustedModelError, ImportError) as exc:  # ImportError: skops is missing
                if trusted is not None:
                    raise
                warnings.warn(UntrustedModelWarning(f"tag {name!r}: {exc}"), stacklevel=3)
                value = replace(value, note=str(exc))
        loaded[name] = value
    return loaded


class UntrustedModelWarning(UserWarning):
    """A model file was not loaded because it names types that are not trusted."""
