"""Value documents back to values (`values.decode`): one function per kind of document.

Opaque objects come back as `OpaqueValue` (or `values.models.ModelValue`) unless `allow_pickle`
is set; a model's summary is always decoded without unpickling anything.
"""

from __future__ import annotations

import base64
import math
import pickle
from typing import Any

from ..errors import StoreError
from ..extras import MissingExtra
from .blobs import BlobError, BlobStore
from .types import TAG, OpaqueValue, safe_repr

_FLOAT_WORDS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def decode_document(doc: Any, blobs: BlobStore | None, allow_pickle: bool) -> Any:
    """`values.decode` without its guard against documents nested too deeply."""
    kind = type(doc)
    if doc is None or kind in (bool, int, float, str):
        return doc
    if kind is list:
        return [decode_document(d, blobs, allow_pickle) for d in doc]
    if kind is not dict:
        raise StoreError(f"not a value document: {safe_repr(doc)}")
    tag = doc.get(TAG)
    if tag is None:
        return {k: decode_document(v, blobs, allow_pickle) for k, v in doc.items()}
    try:
        return _decode_tagged(tag, doc, blobs, allow_pickle)
    except (StoreError, MissingExtra):  # MissingExtra: the document is fine, pyarrow is not installed
        raise
    except Exception as exc:  # numpy, pandas and pyarrow raise many kinds for documents they refuse
        raise StoreError(f"malformed {safe_repr(tag)} value document ({safe_repr(exc)}): {safe_repr(doc)}") from None


def _decode_tagged(tag: str, doc: dict[str, Any], blobs: BlobStore | None, allow_pickle: bool) -> Any:
    def sub(d: Any) -> Any:
        return decode_document(d, blobs, allow_pickle)

    if tag == "float":
        return _FLOAT_WORDS[doc["value"]]
    if tag == "int":
        return int(doc["hex"], 16)
    if tag == "complex":
        return complex(sub(doc["real"]), sub(doc["imag"]))
    if tag == "bytes":
        return base64.b64decode(doc["base64"])
    if tag == "tuple":
        return tuple(sub(d) for d in doc["items"])
    if tag in ("set", "frozenset"):
        items = (sub(d) for d in doc["items"])
        return set(items) if tag == "set" else frozenset(items)
    if tag == "dict":
        return {sub(k): sub(v) for k, v in doc["items"]}
    if tag in ("numpy", "ndarray"):
        from . import arrays as values_numpy

        if tag == "numpy":
            return values_numpy.decode_scalar(doc)
        return values_numpy.decode_array(doc, blobs, sub)
    if tag in ("frame", "series"):
        from . import frames as values_frames

        return values_frames.decode_pandas(doc, _need(blobs, doc), _decode_plain)
    if tag == "sparse":
        from . import sparse as values_sparse

        return values_sparse.decode_sparse(doc, blobs)
    if tag == "object":
        return _decode_object(doc, blobs, allow_pickle)
    raise StoreError(f"unknown value kind {safe_repr(tag)} in document (written by a newer version?)")


def _decode_object(doc: dict[str, Any], blobs: BlobStore | None, allow_pickle: bool) -> Any:
    if allow_pickle and doc.get("blob"):
        store = _need(blobs, doc)
        with store.open(doc["blob"]) as f:
            try:
                return pickle.load(f)
            except Exception as exc:  # a class that moved or no longer exists, a damaged file, ...
                raise BlobError(f"{store.root / doc['blob']}: cannot load the pickled {safe_repr(doc.get('type'))} "
                                f"({safe_repr(exc)}); it needs the code that pickled it, or the file is "
                                "damaged") from None
    fields = (doc["type"], doc.get("size"), doc.get("digest"), doc.get("note", ""))
    kinds: tuple[type | tuple[type, ...], ...] = (str, (int, type(None)), (str, type(None)), str)
    if not all(isinstance(v, k) and type(v) is not bool for v, k in zip(fields, kinds)):
        raise StoreError(f"malformed 'object' value document (a field has the wrong type): {safe_repr(doc)}")
    if isinstance(doc.get("model"), dict):
        from .models import decode_model

        return decode_model(doc, OpaqueValue(*fields), lambda d: decode_document(d, blobs, False))
    return OpaqueValue(*fields)


def _decode_plain(doc: Any) -> Any:
    """A plain value document (a frame's label) needs no blob store and holds no pickle."""
    return decode_document(doc, None, False)


def _need(blobs: BlobStore | None, doc: dict[str, Any]) -> BlobStore:
    if blobs is None:
        raise StoreError(f"decoding {safe_repr(doc.get('blob'))} needs a blob store, and none was given")
    return blobs
