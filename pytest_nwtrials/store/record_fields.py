"""Checking the fields of records read from disk: trial records and baseline entries.

Records are written by this package, so a field of the wrong type means the file was damaged or
edited by hand; it is caught here, where the file is known, rather than deep inside a comparison.
"""
from __future__ import annotations

from typing import Any

from ..errors import StoreError, short

_MISSING = object()


def json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def field_of(doc: dict[str, Any], key: str, kinds: type | tuple[type, ...], default: Any = _MISSING,
             within: str = "") -> Any:
    """``doc[key]``, checked to be of `kinds` (never a bool where a number is wanted); ValueError if not.

    `within` names the enclosing field in messages (``'inputs.python' is a number, ...``).
    """
    name = f"{within}.{key}" if within else key
    if key not in doc:
        if default is _MISSING:
            raise ValueError(f"it has no {name!r}")
        return default
    value = doc[key]
    wanted = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, wanted) or (isinstance(value, bool) and bool not in wanted):
        names = " or ".join(dict.fromkeys(json_type(kind()) for kind in wanted))
        raise ValueError(f"{name!r} is {_a(json_type(value))}, not {_a(names)}")
    return value


def _a(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def check_argv(doc: dict[str, Any]) -> tuple[str, ...]:
    argv = field_of(doc, "argv", list)
    if not all(isinstance(arg, str) for arg in argv):
        raise ValueError("'argv' holds something other than strings")
    return tuple(argv)


def check_tags(doc: dict[str, Any]) -> dict[str, Any]:
    """The tags of a record: each an object with the value document under "value"."""
    tags = field_of(doc, "tags", dict)
    for name, tag in tags.items():
        if not isinstance(tag, dict) or "value" not in tag:
            raise ValueError(f"'tags.{name}' is not an object with a 'value'"[:200])
    return dict(tags)


_INPUT_MAPPINGS = ("libraries", "modules", "cell_tags")


def check_inputs(doc: dict[str, Any]) -> dict[str, Any]:
    """What a trial depended on, in the shape `explain.input_changes` reads."""
    inputs = field_of(doc, "inputs", (dict, type(None)), None) or {}
    for key in _INPUT_MAPPINGS:
        field_of(inputs, key, dict, {}, within="inputs")
    files = field_of(inputs, "files", (dict, type(None)), None, within="inputs") or {}
    for path, seen in files.items():
        if not (isinstance(seen, dict) and all(isinstance(seen.get(kind), (str, type(None)))
                                               for kind in ("read", "written"))):
            raise ValueError(f"'inputs.files' {short(path)} is not an object of 'read' and 'written' hashes")
        tags = seen.get("tags", [])
        if not (isinstance(tags, list) and all(isinstance(tag, str) for tag in tags)):
            raise ValueError(f"'inputs.files' {short(path)} has 'tags' that are not an array of names")
    field_of(inputs, "python", (str, type(None)), None, within="inputs")
    return dict(inputs)


NO_PROVENANCE = {
    "auto": ("it ran without capture under --nw-capture=auto: its values matched its baseline, so no "
             "provenance was needed (a run whose values differ is rerun under fine capture and explained)"),
    "off": "it ran with --nw-capture=off: values and versions only",
}


def no_provenance_note(trial: Any) -> str | None:
    """Why `trial` (a `store.Trial`) has no provenance, when it was recorded without it on purpose."""
    reason = NO_PROVENANCE.get(trial.capture) if not trial.has_provenance else None
    return f"{trial.name} has no provenance: {reason}" if reason else None


def stored_alike(old: Any, new: Any) -> frozenset[str]:
    """The tags two records (trials or baseline entries: `tags` and `values_dir`) store as the
    same document, with the old side's value files intact: the same value under any tolerance,
    so a comparison need not decode them (a large array is named by the digest of its bytes:
    equal names, equal arrays). A document holding a NaN never equals another, and is decoded;
    so is one whose old value file is damaged, which decoding then reports."""
    from ..values.codec import blob_refs

    alike = []
    for name, tag in new.tags.items():
        other = old.tags.get(name)
        if not (isinstance(tag, dict) and isinstance(other, dict) and "value" in tag
                and tag["value"] == other.get("value")):
            continue
        if all(_same_file(old.values_dir, new.values_dir, blob)
               for blob in blob_refs(tag["value"], include_pickles=True)):
            alike.append(name)
    return frozenset(alike)


def _same_file(old_dir: Any, new_dir: Any, blob: str) -> bool:
    """Whether value file `blob` of the old side holds what its name says, as the new side's
    does (written from the run's bytes): the same file (linked from it when the run stored the
    value), or a file of the same size whose bytes hash to its name."""
    import os

    from ..values.blobs import BlobStore

    try:
        before, after = os.stat(old_dir / blob), os.stat(new_dir / blob)
    except (OSError, TypeError):
        return False
    if (before.st_ino, before.st_dev) == (after.st_ino, after.st_dev):
        return True
    return before.st_size == after.st_size and BlobStore(old_dir).intact(blob)


def decode_tag(name: str, tag: dict[str, Any], blobs: Any, where: str, remedy: str, *,
               allow_pickle: bool = False) -> Any:
    """Decode one tag of a record at `where`; a damaged document becomes a StoreError saying `remedy`.

    Errors in a value file (`values.blobs.BlobError`) already name that file and what to do.
    """
    from ..extras import MissingExtra
    from ..values.blobs import BlobError
    from ..values.codec import decode

    try:
        return decode(tag["value"], blobs, allow_pickle=allow_pickle)
    except BlobError:
        raise
    except MissingExtra as exc:  # the record is fine: an extra is not installed
        raise StoreError(f"{where}: tag {name!r}: {exc}") from None
    except StoreError as exc:
        raise StoreError(f"{where}: tag {name!r} cannot be decoded: {exc}; {remedy}") from None
