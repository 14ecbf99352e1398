"""What every value encoder shares: the reserved key, the summary of an opaque object, the
plain-only refusal, and the shape of the encoder the per-type encoders are handed.

`values` dispatches to the per-type encoders (values/arrays.py, values/frames.py, values/sparse.py,
values/models.py) and they call back into the encoder they are given; they import this module,
never `values`, so the dispatch runs one way. Nothing here imports numpy, pandas or scipy.
"""

from __future__ import annotations

import hashlib
import math
import pickle
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    from ..redaction import Secrets
    from .blobs import BlobStore

__all__ = [
    "PICKLE_PROTOCOL", "TAG", "DecodeItem", "NotPlain", "OpaqueValue", "Summary", "ValueEncoder", "as_opaque",
    "float_word", "pickle_summary", "qualified_type_name", "safe_repr",
]

TAG = "__nw__"
# Fixed, not pickle.DEFAULT_PROTOCOL, so an object's digest does not move with the Python version.
PICKLE_PROTOCOL = 5
_NOTE_REPR_LIMIT = 200

# Decodes one nested value document (a label, an element of an object array): handed to the
# per-type decoders by `values/decode.py`, which owns the dispatch over kinds.
DecodeItem = Callable[[Any], Any]


@dataclass(frozen=True, eq=False)
class OpaqueValue:
    """An object kept only as a pickle (or not at all): what baselines keep and compare.

    Two are equal when type and digest are equal; objects that cannot be pickled have digest
    None and so compare by type alone.
    """

    type: str
    size: int | None
    digest: str | None
    note: str = ""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OpaqueValue):
            return NotImplemented
        return (self.type, self.digest) == (other.type, other.digest)

    def __hash__(self) -> int:
        return hash((self.type, self.digest))


class Summary(str):
    """A display string standing in for a large value; `summarize` shows it unquoted."""

    __slots__ = ()


class NotPlain(Exception):
    """Raised by a plain-only encoder where a value would have to become an opaque object."""


class ValueEncoder(Protocol):
    """The encoder a per-type encoder is handed (`values.Encoder`): it encodes the parts it
    meets, writes blobs and keeps what cannot be encoded structurally as an opaque object."""

    blobs: BlobStore
    secrets: Secrets | None
    hits: set[str]  # whose secrets kept a pickle out
    model_files: bool  # models also get a skops file (baselines only)
    in_model: bool  # inside a model summary: objects are type and digest, no pickle

    def encode(self, value: Any) -> Any: ...

    def plain(self) -> ValueEncoder:
        """The encoder that refuses opaque objects (`NotPlain`): labels, object arrays."""
        ...

    def inside_model(self) -> ValueEncoder:
        """The encoder of a model summary's parts."""
        ...

    def opaque(self, value: Any, note: str = "", *, keep: bool = True) -> dict[str, Any]: ...


def float_word(x: float) -> str:
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def pickle_summary(value: Any) -> tuple[OpaqueValue, bytes | None]:
    """The opaque summary of `value` and its pickle bytes (None when it cannot be pickled)."""
    type_name = qualified_type_name(value)
    try:
        data = pickle.dumps(value, protocol=PICKLE_PROTOCOL)
    except Exception as exc:  # any exception: pickling runs arbitrary user code
        note = f"not picklable ({safe_repr(exc)}); repr: {safe_repr(value)}"
        return OpaqueValue(type_name, None, None, note), None
    return OpaqueValue(type_name, len(data), hashlib.sha256(data).hexdigest()), data


def as_opaque(value: Any) -> OpaqueValue:
    """The summary a value gets when it is stored as an opaque object."""
    return value if isinstance(value, OpaqueValue) else pickle_summary(value)[0]


def qualified_type_name(value: Any) -> str:
    kind = type(value)
    module = getattr(kind, "__module__", None) or "?"
    name = getattr(kind, "__qualname__", None) or getattr(kind, "__name__", "?")
    return str(name) if module == "builtins" else f"{module}.{name}"


def safe_repr(value: Any, limit: int = _NOTE_REPR_LIMIT) -> str:
    """repr() that never raises and is at most `limit` characters."""
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<{qualified_type_name(value)} object; repr() raised {type(exc).__name__}>"
    if not isinstance(text, str):
        text = f"<{qualified_type_name(value)} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
