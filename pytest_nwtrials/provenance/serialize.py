"""The comparable value noWorkflow stores for each evaluation of a trial.

The capture runner installs `serialize` as noWorkflow's serializer, so it runs for every
evaluation of the experiment: it must be fast, must never raise, and must give the same text
for the same value in two runs (no memory addresses, no set order, no truncated reprs):

    None, bool, int, float, complex, short str    repr(value)
    short list/tuple/dict/set of those            repr-like, items serialized, sets sorted
    long str/bytes, long containers               "list(len=100000, digest=...)"
    numpy arrays                                  "ndarray(shape=(2800, 6), dtype=float64, digest=...)"
    pandas DataFrame / Series / Index             "DataFrame(shape=(2800, 6), digest=...)"
    functions, classes, modules                   "<function pkg.mod.name>", "<class 'x'>", "<module x>"
    anything else                                 its repr when short and stable, else "<module.Type digest=...>"

A digest is the first 12 hex digits of SHA-256. Large values are digested from a sample to
keep the cost bounded (see `ARRAY_FULL_BYTES` and `CONTAINER_FULL_ITEMS`): an array beyond
1 MiB hashes its shape, dtype, a strided sample of about 128 Ki elements and its sum, so a
change in a few elements of a huge array can be missed by the slice diff. The tagged value
itself is still compared exactly, so such a change fails the trial; only the *why* is blurred.

numpy and pandas are never imported here: an object is recognised as an array or frame only
when its library is already in `sys.modules`.
"""
from __future__ import annotations

import hashlib
import re
import sys
import types
from typing import Any

__all__ = ["serialize", "normalize_repr"]

SHORT_TEXT = 200  # chars of a str (or of a repr) shown as is
SHORT_BYTES = 64
SHORT_ITEMS = 20  # items of a container shown as is
SHORT_CONTAINER_TEXT = 400
CONTAINER_FULL_ITEMS = 10_000  # containers up to this length digest every item
CONTAINER_SAMPLE_ITEMS = 2_000  # longer ones digest a strided sample (plus the length)
ARRAY_FULL_BYTES = 1 << 20  # arrays up to 1 MiB hash all their bytes
ARRAY_SAMPLE_ITEMS = 1 << 17
FRAME_FULL_CELLS = 100_000
MAX_DEPTH = 4
_BIG_INT = 1 << 4096

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_MODULE_FROM = re.compile(r"<module '([^']*)' (?:from '[^']*'|\(built-in\)|\(frozen\)|\(namespace\)[^>]*)>")
_LONG_REPR = 2_000


def serialize(value: Any) -> str:
    """The comparable text of `value`; never raises (falls back to "<module.Type>")."""
    try:
        kind = type(value)
        if kind is float or kind is bool or value is None or kind is complex:
            return repr(value)
        if kind is int:
            return repr(value) if -_BIG_INT < value < _BIG_INT else _digested("int", value.bit_length(), _sha(hex(value)))
        if kind is str and len(value) <= SHORT_TEXT:
            return repr(value)
        return _serialize(value, kind, 0)
    except Exception:  # a broken repr, a dying object: keep capture going
        return _type_marker(value)


def normalize_repr(text: str | None) -> str:
    """Make a stored repr comparable across runs: drop memory addresses and module paths.

    Applied when reading a trial, so trials recorded with noWorkflow's default serializer
    (plain repr) compare too; it leaves the output of `serialize` unchanged.
    """
    if text is None:
        return ""
    if " at 0x" in text:
        text = _ADDRESS.sub("", text)
    if "<module '" in text:
        text = _MODULE_FROM.sub(r"<module \1>", text)
    if len(text) > _LONG_REPR:  # a repr of a huge value: keep it comparable, not its bulk
        text = f"repr(len={len(text)}, digest={_sha(text)})"
    return text


def _serialize(value: Any, kind: type, depth: int) -> str:
    if kind is str:
        return repr(value) if len(value) <= SHORT_TEXT else _digested("str", len(value), _sha(value))
    if kind is bytes or kind is bytearray:
        if len(value) <= SHORT_BYTES:
            return repr(value)
        return _digested(kind.__name__, len(value), _sha_bytes(value if len(value) <= ARRAY_FULL_BYTES else _sample_bytes(value)))
    if kind in _CONTAINERS:
        return _container(value, kind, depth)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if isinstance(value, numpy.ndarray):
            return _array(value, numpy)
        if isinstance(value, numpy.generic):
            return repr(value)
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, _pandas_types(pandas)):
        return _frame(value, pandas)
    if isinstance(value, type):
        return normalize_repr(repr(value))
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
        module = getattr(value, "__module__", None)
        module = module if isinstance(module, str) and module != "builtins" else ""
        name = getattr(value, "__qualname__", None) or getattr(value, "__name__", "?")
        prefix = "built-in function" if isinstance(value, types.BuiltinFunctionType) else "function"
        return f"<{prefix} {module + '.' if module else ''}{name}>"
    if isinstance(value, types.ModuleType):
        return f"<module {value.__name__}>"
    return _other(value, kind)


def _container(value: Any, kind: type, depth: int) -> str:
    size = len(value)
    if depth >= MAX_DEPTH:
        return f"{kind.__name__}(len={size})"
    if kind is dict:
        items = list(value.items()) if size <= CONTAINER_FULL_ITEMS else _sample(list(value.items()))
        parts = [f"{_item(k, depth)}: {_item(v, depth)}" for k, v in items]
    else:
        items = value if size <= CONTAINER_FULL_ITEMS else _sample(list(value))
        parts = [_item(item, depth) for item in items]
        if kind is set or kind is frozenset:
            parts.sort()  # set order moves with PYTHONHASHSEED
    if size <= SHORT_ITEMS:
        text = _short_container(kind, parts)
        if len(text) <= SHORT_CONTAINER_TEXT:
            return text
    return _digested(kind.__name__, size, _sha("\x1e".join(parts)))


def _short_container(kind: type, parts: list[str]) -> str:
    body = ", ".join(parts)
    if kind is list:
        return f"[{body}]"
    if kind is tuple:
        return f"({body},)" if len(parts) == 1 else f"({body})"
    if kind is dict:
        return f"{{{body}}}"
    if not parts:
        return f"{kind.__name__}()"
    return f"{{{body}}}" if kind is set else f"frozenset({{{body}}})"


def _item(value: Any, depth: int) -> str:
    kind = type(value)
    if kind is float or kind is bool or value is None or kind is complex or (kind is int and -_BIG_INT < value < _BIG_INT):
        return repr(value)
    try:
        return _serialize(value, kind, depth + 1)
    except Exception:
        return _type_marker(value)


def _array(value: Any, numpy: Any) -> str:
    shape = value.shape
    dtype = value.dtype
    head = f"ndarray(shape={shape!r}, dtype={dtype}"
    if dtype.hasobject:
        flat = value.ravel()
        items = flat if flat.size <= CONTAINER_FULL_ITEMS else _sample(flat)
        return f"{head}, digest={_sha(chr(0x1e).join(_item(item, 1) for item in items))})"
    if value.nbytes <= ARRAY_FULL_BYTES:
        digest = hashlib.sha256(value.tobytes())
    else:
        # no copy of a large array: a view when it is contiguous, else the iterator's sample
        flat = value.reshape(-1) if value.flags.c_contiguous else None
        step = -(-value.size // ARRAY_SAMPLE_ITEMS)
        digest = hashlib.sha256((flat if flat is not None else value.flat)[::step].tobytes())
        if dtype.kind in "biufc":
            with numpy.errstate(all="ignore"):
                total = value.sum(dtype=numpy.complex128 if dtype.kind == "c" else numpy.float64)
            digest.update(repr(total).encode())
    return f"{head}, digest={digest.hexdigest()[:12]})"


def _pandas_types(pandas: Any) -> tuple[type, ...]:
    # pandas may be in sys.modules half imported: its names are then missing
    names = ("DataFrame", "Series", "Index")
    return tuple(t for t in (getattr(pandas, n, None) for n in names) if isinstance(t, type))


def _frame(value: Any, pandas: Any) -> str:
    """DataFrame, Series, Index: shape plus a digest of labels, dtypes and (sampled) rows."""
    rows = len(value)
    width = value.shape[1] if value.ndim == 2 else 1
    step = max(1, -(-(rows * width) // FRAME_FULL_CELLS))
    digest = hashlib.sha256()
    if isinstance(value, pandas.Index):
        parts = [value[::step]]
    else:
        sample = value.iloc[::step] if step > 1 else value
        parts = [sample.index]
        if value.ndim == 2:
            digest.update(repr([str(c) for c in value.columns]).encode())
            parts += [sample.iloc[:, i] for i in range(width)]
        else:
            digest.update(repr(str(value.name)).encode())
            parts.append(sample)
    for part in parts:
        digest.update(_frame_part(part, pandas))
    return f"{type(value).__name__}(shape={value.shape!r}, digest={digest.hexdigest()[:12]})"


def _frame_part(part: Any, pandas: Any) -> bytes:
    dtype = part.dtype
    head = str(dtype).encode() + b"\x1f"
    if isinstance(part, pandas.RangeIndex):
        return head + repr(part).encode()
    if getattr(dtype, "kind", "O") in "biufcmM" and not getattr(dtype, "hasobject", True):
        return head + part.to_numpy().tobytes()  # plain numpy data: no copy but the sample's
    try:  # text columns: joining is several times faster than pandas' own hashing
        return head + "\x1e".join(part.to_numpy()).encode("utf-8", "surrogatepass")
    except TypeError:
        pass
    try:
        return head + pandas.util.hash_pandas_object(part, index=False).to_numpy().tobytes()
    except TypeError:  # unhashable cells (lists, dicts)
        return head + "\x1e".join(_item(v, 1) for v in part).encode()


def _other(value: Any, kind: type) -> str:
    text = _repr(value)
    if text is None:
        return _type_marker(value)
    text = normalize_repr(text)
    if len(text) <= SHORT_TEXT and "\n" not in text:
        return text
    return f"<{_type_name(kind)} digest={_sha(text)}>"


def _repr(value: Any) -> str | None:
    """repr(value), bypassing noWorkflow's instrumented __repr__ of classes of the script."""
    try:
        method = object.__getattribute__(value, "__repr__")
        original = getattr(method, "original_def", None)
        return original(value) if original is not None else repr(value)
    except Exception:
        return None


def _type_marker(value: Any) -> str:
    try:
        return f"<{_type_name(type(value))}>"
    except Exception:
        return "<object>"


def _type_name(kind: type) -> str:
    module = getattr(kind, "__module__", None)
    name = getattr(kind, "__qualname__", None) or getattr(kind, "__name__", "object")
    return f"{module}.{name}" if isinstance(module, str) and module != "builtins" else str(name)


def _digested(kind: str, size: int, digest: str) -> str:
    label = "bits" if kind == "int" else "len"
    return f"{kind}({label}={size}, digest={digest})"


def _sample(items: Any) -> Any:
    step = -(-len(items) // CONTAINER_SAMPLE_ITEMS)
    return items[::step]


def _sample_bytes(data: bytes | bytearray) -> bytes:
    step = -(-len(data) // ARRAY_FULL_BYTES)
    return bytes(data[::step])


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _sha_bytes(data: Any) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


_CONTAINERS = frozenset({list, tuple, dict, set, frozenset})
