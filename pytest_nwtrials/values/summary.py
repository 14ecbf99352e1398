"""Summaries and content digests of values, for reports (behind `values.summarize` and
`values.value_digest`)."""

from __future__ import annotations

import hashlib
import re
import sys
from typing import Any

import numpy as np

from .types import OpaqueValue, Summary, as_opaque


class _Cycle(Exception):
    """A container that holds itself: digested through its pickle instead."""


def digest(value: Any) -> str:
    """See `values.value_digest`."""
    if isinstance(value, OpaqueValue):
        return value.digest or _type_only_digest(value.type)
    h = hashlib.sha256()
    try:
        _feed(h, value, set())
    except (_Cycle, RecursionError):
        summary = as_opaque(value)
        return summary.digest or _type_only_digest(summary.type)
    return h.hexdigest()


def _type_only_digest(type_name: str) -> str:
    return hashlib.sha256(f"unpicklable:{type_name}".encode()).hexdigest()


def _feed(h: Any, value: Any, open_ids: set[int]) -> None:
    kind = type(value)
    if value is None or kind is bool:
        h.update(b"N" if value is None else (b"T" if value else b"F"))
    elif kind is int:
        h.update(b"i%x;" % value)  # hex: decimal conversion of huge ints is refused
    elif kind is float:
        h.update(b"f" + value.hex().encode())
    elif kind is complex:
        h.update(b"c" + value.real.hex().encode() + b"," + value.imag.hex().encode())
    elif kind is str or kind is bytes:
        data = value.encode("utf-8", "surrogatepass") if kind is str else value
        h.update(b"s" if kind is str else b"y")
        h.update(b"%d;" % len(data) + data)
    elif kind in (list, tuple, dict, set, frozenset):
        if id(value) in open_ids:
            raise _Cycle
        open_ids.add(id(value))
        h.update(b"%s%d;" % (kind.__name__.encode(), len(value)))
        if kind is dict:
            for k, v in value.items():
                _feed(h, k, open_ids)
                _feed(h, v, open_ids)
        elif kind in (set, frozenset):
            for d in sorted(digest(v) for v in value):
                h.update(d.encode())
        else:
            for v in value:
                _feed(h, v, open_ids)
        open_ids.discard(id(value))
    elif isinstance(value, np.generic) and not value.dtype.hasobject:
        h.update(b"g" + value.dtype.str.encode() + np.asarray(value).tobytes())
    elif kind is np.ndarray and value.dtype.kind != "O":
        if value.dtype.byteorder in "<>":  # non-native byte order: same values, same digest
            value = value.astype(value.dtype.newbyteorder("="))
        h.update(b"a%s%s;" % (value.dtype.str.encode(), str(value.shape).encode()))
        h.update(np.ascontiguousarray(value).reshape(-1).view(np.uint8))
    elif kind is np.ndarray:
        h.update(b"o%s;" % str(value.shape).encode())
        for v in value.ravel():
            _feed(h, v, open_ids)
    elif _is_pandas(value):
        from . import frames as values_frames

        h.update(values_frames.digest_pandas(value, digest).encode())
    elif _is_sparse(value):
        from . import sparse as values_sparse

        h.update(values_sparse.digest_bytes(value))
    else:
        summary = as_opaque(value)
        h.update(b"p" + (summary.digest or _type_only_digest(summary.type)).encode())


def _is_pandas(value: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, (pd.DataFrame, pd.Series))


def _is_sparse(value: Any) -> bool:
    if "scipy.sparse" not in sys.modules:
        return False
    from .sparse import is_sparse

    return is_sparse(value)


def summary_text(value: Any, width: int) -> str:
    """See `values.summarize` (which trims the result to `width`)."""
    kind = type(value)
    if isinstance(value, Summary):
        return str(value)
    if isinstance(value, OpaqueValue):
        return _model_text(value, width) or _opaque_text(value, width)
    if kind is int and value.bit_length() >= 10_000:
        return f"<int of {value.bit_length()} bits>"  # repr() refuses ints past ~4300 digits
    if value is None or kind in (bool, int, float, complex, str, bytes):
        return repr(value)
    if isinstance(value, np.generic) or kind is np.ndarray:
        from . import arrays as values_numpy

        if kind is np.ndarray:
            return values_numpy.array_text(value, width, digest)
        return values_numpy.scalar_text(value)
    if _is_pandas(value):
        from . import frames as values_frames

        return values_frames.pandas_text(value, width, digest(value))
    if kind in (list, tuple, dict, set, frozenset):
        return _container_text(value, width)
    if _is_sparse(value):
        from . import sparse as values_sparse

        return values_sparse.sparse_text(value, width, digest)
    if "pytest_nwtrials.values.models" in sys.modules or hasattr(kind, "get_params"):
        from .models import is_estimator, model_text

        if is_estimator(value):
            return model_text(value)
    return _opaque_text(as_opaque(value), width)


def _container_text(value: Any, width: int) -> str:
    # Items only get the room that is left, so a million-item list (or one that contains
    # itself) stops as soon as the summary is full.
    if type(value) in (set, frozenset) and not value:
        return f"{type(value).__name__}()"
    brackets: dict[type, tuple[str, str]] = {list: ("[", "]"), tuple: ("(", ")"), dict: ("{", "}"), set: ("{", "}")}
    opening, closing = brackets.get(type(value), ("frozenset({", "})"))
    text = opening
    for i, item in enumerate(value.items() if type(value) is dict else value):
        room = width - len(text)
        if room <= 0:
            return text
        if type(value) is dict:
            key = summary_text(item[0], room)
            part = f"{key}: {summary_text(item[1], room - len(key) - 2)}"
        else:
            part = summary_text(item, room)
        text += (", " if i else "") + part
    if type(value) is tuple and len(value) == 1:
        text += ","
    return text + closing


def _model_text(summary: OpaqueValue, width: int) -> str:
    """A stored model's own repr, ``RandomForestClassifier(max_depth=5)``, or
    ``RandomForestClassifier(...)`` when that is longer than `width`; "" for other objects."""
    text = getattr(summary, "text", "")
    return text if len(text) <= width or "(" not in text else text.partition("(")[0] + "(...)"


DOTTED = re.compile(r"[\w.]+\.(\w+)")  # a qualified name, its last part the group: list of 9 sklearn...Tree -> list of 9 Tree


def _opaque_text(summary: OpaqueValue, width: int) -> str:
    """The type name whole, and the digest that tells two objects apart: parts that do not fit
    in `width` are left out (the size first), never cut in the middle."""
    if summary.digest is None:
        return f"<object {summary.type}, not picklable>"
    digest = summary.digest[:8]
    short = DOTTED.sub(lambda match: match.group(1), summary.type)
    forms = (f"<object {summary.type}, {summary.size} bytes, digest={digest}>",
             f"<object {summary.type}, digest={digest}>",
             f"<{summary.type} {digest}>",
             f"<{short} {digest}>")
    return next((form for form in forms if len(form) <= width), forms[-1])
