"""Masking secrets inside a tagged value before it is encoded.

`scrub` mirrors what `values.encode` keeps structurally: strings and bytes, plain containers
(dict keys included), numpy str/bytes scalars, numpy arrays of str, bytes or objects, pandas
frames, series and indexes (values, labels, names, categories); a pandas index tagged by itself
is masked too, before the encoder pickles it. What it cannot mask there (a
structured array, a category that would collide with another once masked) comes back as
`Withheld`, which the encoder stores as a summary without data. Any other object is pickled by
the encoder, which then searches the pickle for the secrets (`values.Encoder.opaque`).

A value holding no secret is returned as is (not copied); a changed one is a copy.
"""
from __future__ import annotations

import pickle
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# `redaction.Secrets` builds on these and on `scrub`; this module does not import it, so that the
# two depend one way
REDACTED = "<redacted>"
# the encodings a secret is searched for in bytes: numpy keeps str arrays as UCS-4
ENCODINGS = ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")


class Secrets(Protocol):
    """What `scrub` asks of `redaction.Secrets`: the forms of the secrets and how to mask them."""

    @property
    def forms(self) -> tuple[tuple[str, str], ...]: ...

    def mask_text(self, text: str, hits: set[str] | None = None) -> str: ...

    def mask_bytes(self, data: bytes, hits: set[str] | None = None) -> bytes: ...

    def found_in(self, data: bytes, encodings: Sequence[str] = ENCODINGS) -> bool: ...

# numpy kinds whose bytes may be text: str, bytes, structured records, and bytes seen as numbers
_TEXT_KINDS = "USV"


@dataclass(frozen=True)
class Withheld:
    """A value that held a secret which could not be masked in place: stored as its summary."""

    value: Any
    note: str


class _Unmaskable(Exception):
    """Masking would change the value's structure (two labels become equal)."""


def scrub(value: Any, secrets: Secrets, hits: set[str] | None = None) -> Any:
    """`value` with `secrets` masked (see the module docstring); sources found go to `hits`."""
    scrubber = _Scrubber(secrets, hits if hits is not None else set())
    try:
        return scrubber.scrub(value)
    except (RecursionError, _Cycle):
        return value  # the encoder keeps such a value as a pickle, which it searches


class _Cycle(Exception):
    pass


class _Scrubber:
    def __init__(self, secrets: Secrets, hits: set[str]) -> None:
        self.secrets = secrets
        self.hits = hits
        self._open: set[int] = set()

    def text(self, text: str) -> str:
        return self.secrets.mask_text(text, self.hits)

    def scrub(self, value: Any) -> Any:
        kind = type(value)
        if kind is str:
            return self.text(value)
        if kind is bytes:
            return self.secrets.mask_bytes(value, self.hits)
        if kind in (list, tuple, dict, set, frozenset):
            return self._container(value)
        np = sys.modules.get("numpy")
        if np is not None:
            if kind is np.str_:
                masked = self.text(str(value))
                return value if masked == value else np.str_(masked)
            if kind is np.bytes_:
                masked_bytes = self.secrets.mask_bytes(bytes(value), self.hits)
                return value if masked_bytes == value else np.bytes_(masked_bytes)
            if kind is np.ndarray:
                return self._array(value, np)
            if isinstance(value, np.void) and self.secrets.found_in(value.tobytes()):
                return self._withheld(value)
        pd = sys.modules.get("pandas")
        if pd is not None and (kind in (pd.DataFrame, pd.Series) or isinstance(value, pd.Index)):
            try:
                if isinstance(value, pd.Index):
                    return self._index(value, pd)  # kept as a pickle: of the masked index
                return self._pandas(value, pd)
            except _Unmaskable:
                return self._withheld(value)
        return value

    def _withheld(self, value: Any) -> Withheld:
        self.hits.add("a secret that could not be masked in place")
        return Withheld(value, "held a secret that could not be masked in place; only its summary is stored")

    def _container(self, value: Any) -> Any:
        if id(value) in self._open:
            raise _Cycle
        self._open.add(id(value))
        try:
            if type(value) is dict:
                items = [(self.scrub(k), self.scrub(v)) for k, v in value.items()]
                changed = any(k is not k0 or v is not v0 for (k, v), (k0, v0) in zip(items, value.items()))
                if not changed:
                    return value
                result = dict(items)
                if len(result) != len(value):  # two keys became one
                    return self._withheld(value)
                return result
            items = [self.scrub(item) for item in value]
            if all(new is old for new, old in zip(items, value)):
                return value
            result = type(value)(items)
            if type(value) in (set, frozenset) and len(result) != len(value):
                return self._withheld(value)
            return result
        finally:
            self._open.discard(id(value))

    # -- numpy ---------------------------------------------------------------------------------

    def _array(self, arr: Any, np: Any) -> Any:
        kind = arr.dtype.kind
        if kind == "O":
            return self._objects(arr, np)
        text_like = kind in _TEXT_KINDS or (kind in "iu" and arr.dtype.itemsize == 1)
        # numpy keeps str arrays as UCS-4: a large one is searched in that encoding alone
        encodings = ("utf-32-le", "utf-32-be") if kind == "U" else ENCODINGS
        if not text_like or not self.secrets.found_in(arr.tobytes(), encodings):
            return arr
        masked: list[str] | list[bytes]
        if kind == "U":
            masked = [self.text(s) for s in arr.ravel().tolist()]
        elif kind == "S":
            masked = [self.secrets.mask_bytes(b, self.hits) for b in arr.ravel().tolist()]
        else:  # records or raw bytes: no element to mask
            return self._withheld(arr)
        new = np.array(masked, dtype=kind)
        if new.dtype.itemsize <= arr.dtype.itemsize:
            new = new.astype(arr.dtype)  # keep the width when the masked strings fit
        new = new.reshape(arr.shape)
        return new if not self.secrets.found_in(new.tobytes()) else self._withheld(arr)

    def _objects(self, arr: Any, np: Any) -> Any:
        flat = arr.ravel()
        if self._no_secret_in_strings(flat):
            return arr
        items = [self.scrub(item) for item in flat]
        if all(new is old for new, old in zip(items, flat)):
            return arr
        result = np.empty(len(items), dtype=object)
        for i, item in enumerate(items):
            result[i] = item  # one by one: a list element must stay one object
        return result.reshape(arr.shape)

    # -- pandas --------------------------------------------------------------------------------

    def _pandas(self, value: Any, pd: Any) -> Any:
        index = self._index(value.index, pd)
        if isinstance(value, pd.Series):
            values = self._column(value, pd)
            name = self.scrub(value.name)
            if values is value and index is value.index and name is value.name:
                return value
            return pd.Series(values.array, index=index, name=name, dtype=values.dtype, copy=False)
        columns = self._index(value.columns, pd)
        old_columns = [value.iloc[:, i] for i in range(value.shape[1])]
        new_columns = [self._column(column, pd) for column in old_columns]
        changed = [i for i, (new, old) in enumerate(zip(new_columns, old_columns)) if new is not old]
        if index is value.index and columns is value.columns and not changed:
            return value
        result = value.copy(deep=False)
        for i in changed:
            # by position (labels may repeat); a series keeps an object column's dtype, where
            # an array of strings would become a `str` column
            result.isetitem(i, new_columns[i])
        result.index, result.columns = index, columns
        return result

    def _column(self, series: Any, pd: Any) -> Any:
        """The series with its values masked (the same series when nothing changed)."""
        dtype = series.dtype
        if dtype == object:
            arr = series.to_numpy()
            masked = self._objects(arr, sys.modules["numpy"])
            return series if masked is arr else pd.Series(masked, index=series.index, name=series.name,
                                                          dtype=object, copy=False)
        if isinstance(dtype, pd.CategoricalDtype):
            categories = self._index(dtype.categories, pd)
            return series if categories is dtype.categories else series.cat.rename_categories(categories)
        if pd.api.types.is_string_dtype(dtype):
            masked = series
            for form, source in self.secrets.forms:
                if masked.str.contains(form, regex=False, na=False).any():
                    masked = masked.str.replace(form, REDACTED, regex=False)
                    self.hits.add(source)
            return masked
        if _holds_no_text(dtype, pd):
            return series
        # another extension type (lists, structs): search its pickle, mask nothing in place
        if self.secrets.found_in(pickle.dumps(series, protocol=5)):
            raise _Unmaskable
        return series

    def _index(self, index: Any, pd: Any) -> Any:
        """The index with its labels and names masked (the same index when nothing changed)."""
        names = [self.scrub(name) for name in index.names]
        named = all(new is old for new, old in zip(names, index.names))
        if isinstance(index, pd.MultiIndex):
            levels = [self._index(level, pd) for level in index.levels]
            if named and all(new is old for new, old in zip(levels, index.levels)):
                return index
            try:
                return index.set_levels(levels, verify_integrity=True).set_names(names)
            except ValueError:
                raise _Unmaskable from None
        result = index
        if isinstance(index, pd.CategoricalIndex):
            categories = self._index(index.categories, pd)
            if categories is not index.categories:
                result = index.rename_categories(categories)
        elif not _holds_no_text(index.dtype, pd) and not self._no_secret_in_labels(index, pd):
            labels = index.tolist()
            masked = [self.scrub(label) for label in labels]
            if any(new is not old for new, old in zip(masked, labels)):
                result = pd.Index(masked, dtype=index.dtype, name=index.name)
                if index.is_unique and not result.is_unique:
                    raise _Unmaskable
        if not named:
            result = result.set_names(names)
        return result


    def _no_secret_in_labels(self, index: Any, pd: Any) -> bool:
        """`_no_secret_in_strings` for an index; pandas string labels are searched by pandas."""
        if index.dtype != object and pd.api.types.is_string_dtype(index.dtype):
            labels = pd.Series(index, copy=False)
            return not any(labels.str.contains(form, regex=False, na=False).any() for form, _ in self.secrets.forms)
        return self._no_secret_in_strings(index.to_numpy())

    def _no_secret_in_strings(self, items: Any) -> bool:
        """True when `items` are all strings and none holds a secret: the common case of a
        large column of text, decided without looking at each item in Python."""
        try:
            joined = "\0".join(items)
        except TypeError:  # not all strings: each item is looked at
            return False
        return not any(form in joined for form, _ in self.secrets.forms)


def _holds_no_text(dtype: Any, pd: Any) -> bool:
    """Numbers, booleans, dates and periods: no text to search."""
    api = pd.api.types
    if isinstance(dtype, (pd.PeriodDtype, pd.DatetimeTZDtype)):
        return True
    if isinstance(dtype, pd.IntervalDtype):
        return dtype.subtype is None or api.is_numeric_dtype(dtype.subtype) or \
            api.is_datetime64_any_dtype(dtype.subtype)
    return (api.is_numeric_dtype(dtype) or api.is_bool_dtype(dtype) or api.is_datetime64_any_dtype(dtype)
            or api.is_timedelta64_dtype(dtype))
