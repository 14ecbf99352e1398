"""Tagged values as JSON documents plus content-addressed blob files.

`encode` turns any Python value into a JSON-able document (baselines are committed JSON, so
the format is meant to be read in a code review); large payloads go to a `BlobStore` as
`.npy` (arrays), `.parquet` (frames and series) or `.pickle` (anything else). `decode` reverses
it exactly. Plain data stays plain JSON; everything else is a dict with one reserved key,
`"__nw__"`, naming its kind:

    None, bool, int, str, finite float   themselves
    list, dict with str keys             themselves (items encoded)
    float nan/inf                        {"__nw__": "float", "value": "nan" | "inf" | "-inf"}
    int of 3000+ digits                  {"__nw__": "int", "hex": "0x..."}
    complex                              {"__nw__": "complex", "real": f, "imag": f}
    bytes                                {"__nw__": "bytes", "base64": "..."}
    tuple / set / frozenset              {"__nw__": "tuple" | "set" | "frozenset", "items": [...]}
    other dicts                          {"__nw__": "dict", "items": [[key, value], ...]}
    numpy scalar                         {"__nw__": "numpy", "dtype": "float32", "value": ...}
    ndarray                              {"__nw__": "ndarray", "dtype", "shape", "blob" | "data" | "items"}
    DataFrame / Series                   {"__nw__": "frame" | "series", "blob": "<sha>.parquet", ...}
    scipy.sparse matrix / array          {"__nw__": "sparse", "type", "format", "dtype", "shape", "nnz",
                                          "blob": "<sha>.npz"} (values/sparse.py)
    anything else                        {"__nw__": "object", "type", "size", "digest", "blob", "note"}
    an estimator (has get_params)        the same, plus "model": its class, params and fitted state
                                         (values/models.py)

With `secrets` (`redaction.Secrets`), `encode` masks them in the value first
(`values.redaction.scrub`); an object whose pickle still holds one is stored as its summary
only (no blob), with a note saying why.

numpy, pandas and scipy are imported only when one of their objects is met, so importing this
module stays cheap (a gate whose values all match what is stored decodes none of them). What
the per-type encoders share with this one (`TAG`, `OpaqueValue`, `Summary`, the encoder they
are handed) is in values/types.py, which imports none of them: the dispatch runs one way.
"""

from __future__ import annotations

import base64
import json
import math
import sys
from typing import Any

from ..errors import StoreError
from ..redaction import Secrets
from .blobs import BlobStore
from .redaction import Withheld
from .types import (
    TAG, NotPlain, OpaqueValue, Summary, as_opaque, float_word, pickle_summary, qualified_type_name, safe_repr)

__all__ = [
    "BlobStore", "Encoder", "NotPlain", "OpaqueValue", "Summary", "TAG", "as_opaque", "blob_refs", "decode", "encode",
    "qualified_type_name", "safe_repr", "summarize", "value_digest",
]


# ---------------------------------------------------------------------------------------------
# encode


class Encoder:
    """Walks a value and writes blobs; `plain_only` refuses opaque objects (object arrays, labels).

    `secrets`: pickles holding one of them are not written (see the module docstring).
    `model_files`: models also get a skops file (values/models.py), which only baselines keep.
    """

    def __init__(self, blobs: BlobStore, *, plain_only: bool = False, secrets: Secrets | None = None,
                 hits: set[str] | None = None, model_files: bool = False) -> None:
        self.blobs = blobs
        self.plain_only = plain_only
        self.secrets = secrets
        self.hits = hits if hits is not None else set()  # whose secrets kept a pickle out
        self.model_files = model_files
        self.in_model = False  # inside a model summary: objects are type and digest, no pickle
        self._open: set[int] = set()  # ids of containers being encoded, to stop at cycles

    def plain(self) -> Encoder:
        return self if self.plain_only else Encoder(self.blobs, plain_only=True, secrets=self.secrets, hits=self.hits)

    def inside_model(self) -> Encoder:
        """The encoder of a model summary's parts: the model's own pickle holds their objects."""
        inner = Encoder(self.blobs, secrets=self.secrets, hits=self.hits)
        inner.in_model = True
        return inner

    def encode(self, value: Any) -> Any:
        kind = type(value)
        if value is None or kind is bool or kind is str:
            return value
        if kind is Withheld:
            return self.opaque(value.value, value.note, keep=False)
        if kind is int:
            # json refuses to write ints past ~4300 digits (a CPython limit); hex has no limit.
            return value if value.bit_length() < 10_000 else {TAG: "int", "hex": hex(value)}
        if kind is float:
            return value if math.isfinite(value) else {TAG: "float", "value": float_word(value)}
        if kind is complex:
            return {TAG: "complex", "real": self.encode(value.real), "imag": self.encode(value.imag)}
        if kind is bytes:
            return {TAG: "bytes", "base64": base64.b64encode(value).decode("ascii")}
        if kind in (list, tuple, dict, set, frozenset):
            return self._container(value)
        np = sys.modules.get("numpy")  # a numpy value exists only once numpy was imported
        if np is not None and isinstance(value, np.generic):
            from . import arrays as values_numpy

            doc = values_numpy.encode_scalar(value)
            return doc if doc is not None else self.opaque(value)
        if np is not None and kind is np.ndarray:
            from . import arrays as values_numpy

            return values_numpy.encode_array(value, self)
        pd = sys.modules.get("pandas")
        if pd is not None and kind in (pd.DataFrame, pd.Series):
            from . import frames as values_frames

            return values_frames.encode_pandas(value, self, _decode_label)
        if "scipy.sparse" in sys.modules:
            from . import sparse as values_sparse

            if values_sparse.is_sparse(value):
                return values_sparse.encode_sparse(value, self)
        if not self.plain_only:
            from . import models as values_models

            if values_models.is_estimator(value):
                return values_models.encode_model(value, self)
        return self.opaque(value)

    def _container(self, value: Any) -> Any:
        if id(value) in self._open:
            raise _Cycle
        self._open.add(id(value))
        try:
            if type(value) is list:
                return [self.encode(v) for v in value]
            if type(value) is dict:
                if TAG not in value and all(type(k) is str for k in value):
                    return {k: self.encode(v) for k, v in value.items()}
                return {TAG: "dict", "items": [[self.encode(k), self.encode(v)] for k, v in value.items()]}
            items = [self.encode(v) for v in value]
            if type(value) is not tuple:
                # Sets have no order; sort by the encoded form so documents are stable across runs.
                items.sort(key=_sort_key)
            return {TAG: type(value).__name__, "items": items}
        finally:
            self._open.discard(id(value))

    def opaque(self, value: Any, note: str = "", *, keep: bool = True) -> dict[str, Any]:
        """The summary of `value`, with its pickle as a blob unless `keep` is false or the pickle
        holds a secret."""
        if self.plain_only:
            raise NotPlain(type(value).__qualname__)
        keep = keep and not self.in_model
        summary, data = pickle_summary(value)
        if keep and data is not None and self.secrets and self.secrets.found_in(data):
            keep, note = False, "held a secret; only its summary is stored"
            self.hits.add("a secret inside an object")
        blob = self.blobs.put_bytes(data, "pickle") if data is not None and keep else None
        return {
            TAG: "object",
            "type": summary.type,
            "size": summary.size,
            "digest": summary.digest,
            "blob": blob,
            "note": note or summary.note,
        }


class _Cycle(Exception):
    pass


def encode(value: Any, blobs: BlobStore, secrets: Secrets | None = None, hits: set[str] | None = None,
           *, model_files: bool = False) -> Any:
    """Encode `value` as a JSON-able document (json.dumps accepts it with allow_nan=False).

    Never raises for a value: what cannot be encoded structurally is kept as an opaque object.
    `secrets` are masked first (see the module docstring); where they were found goes to `hits`.
    """
    hits = hits if hits is not None else set()
    if secrets:
        value = secrets.scrub(value, hits)
    encoder = Encoder(blobs, secrets=secrets, hits=hits, model_files=model_files)
    try:
        return encoder.encode(value)
    except (_Cycle, RecursionError):
        # Self-referencing or absurdly deep containers: pickle copes with both.
        return Encoder(blobs, secrets=secrets, hits=hits).opaque(value)


def _decode_label(doc: Any) -> Any:
    """A frame's label back from its document, for the read-back check at encode time."""
    return decode(doc, None)


def _sort_key(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True)


# ---------------------------------------------------------------------------------------------
# decode


def decode(doc: Any, blobs: BlobStore | None, *, allow_pickle: bool = False) -> Any:
    """Rebuild the value of a document. Opaque objects come back as `OpaqueValue` unless
    `allow_pickle` is set (pickles run code: only for blobs you trust).

    A document that is not one raises `store.StoreError` (a ValueError); a value file that is
    missing or damaged raises `values.blobs.BlobError` (a StoreError), naming the file.
    """
    from .decode import decode_document

    try:
        return decode_document(doc, blobs, allow_pickle)
    except RecursionError:
        raise StoreError("value document nested too deeply to decode") from None


def blob_refs(doc: Any, *, include_pickles: bool = False) -> set[str]:
    """Blob names a document references (baselines copy these; pickles stay local by default)."""
    found: set[str] = set()
    stack = [doc]
    while stack:
        item = stack.pop()
        if type(item) is list:
            stack.extend(item)
        elif type(item) is dict:
            tag = item.get(TAG)
            blob = item.get("blob") if tag is not None else None
            if isinstance(blob, str) and (include_pickles or tag != "object"):
                found.add(blob)
            if tag == "object" and "model" in item:
                from .models import model_file_refs

                found.update(model_file_refs(item))
            stack.extend(item.values())
    return found


# ---------------------------------------------------------------------------------------------
# summaries and digests (in values/summary.py, loaded on first use)


def value_digest(value: Any) -> str:
    """Stable sha256 of a value's content (not of its storage format), for summaries."""
    from .summary import digest

    return digest(value)


def summarize(value: Any, width: int = 80) -> str:
    """One-line human summary for reports, at most `width` characters."""
    from .summary import summary_text

    text = summary_text(value, width)
    return text if len(text) <= width else text[: max(width - 3, 1)] + "..."
