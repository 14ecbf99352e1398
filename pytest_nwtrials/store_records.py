"""Provenance records in the local store: compressed, named by their content, shared by trials.

A trial's record (`explain.ProvenanceRecord`: its operation table, its operation sequence as
row numbers, the slice of each tag) is kept as compact JSON compressed with gzip, in
``records/<sha256>.json.gz``, named by the sha256 of the file's bytes as value files are. Reruns
of an experiment whose operations and values repeat share one file, a file never changes once
written, and one already there is reused only when intact. The trial record names its file
(``"record"``); garbage collection removes a file once no trial names it.

This record is all that explanations and browsing read, so noWorkflow's whole database is no
longer kept by default (ini ``nw_keep_database`` keeps it). Trials written before this layout
have ``records/<trial id>.json`` (plain JSON) and ``provenance/<id>.sqlite.gz``; both are still
read as they are, never rewritten.
"""
from __future__ import annotations

import gzip
import json
import re
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import StoreError, short
from .files import read_json
from .values_blobs import BlobStore

if TYPE_CHECKING:
    from .explain import ProvenanceRecord
    from .provenance import Slice
    from .store import Trial

EXTENSION = "json.gz"
_NAME = re.compile(r"[0-9a-f]{64}\.json\.gz\Z")


class RecordFiles(BlobStore):
    """The content-addressed folder of compressed provenance records (``records/``)."""

    EXTENSIONS = frozenset({EXTENSION})
    NAME = _NAME
    WHAT = "provenance record"


def is_record_name(name: object) -> bool:
    """Whether `name` is a compressed record's file name, ``<sha256>.json.gz``."""
    return isinstance(name, str) and bool(_NAME.match(name))


def check_record_name(name: str) -> str:
    """A trial record's ``record`` field: empty, or a compressed record's name, never a path;
    ValueError otherwise."""
    if name and not is_record_name(name):
        raise ValueError(f"'record' {short(name)} is not the name of a compressed provenance record "
                         "('<sha256>.json.gz')")
    return name


def record_file(root: Path, trial: Trial) -> Path:
    """Where the provenance record of `trial` is kept in the store at `root` (it may not exist):
    its compressed file, or for a trial written before those, ``records/<trial id>.json``."""
    return root / "records" / (trial.record_name or f"{trial.id}.json")


def move_record_in(records: Path, name: str, staged: Path, check_names: bool) -> None:
    """Move the staged record file `name` (from the folder `staged`) into the folder `records`.

    The capture's own file was named from the bytes it wrote and replaces one of that name; with
    `check_names` (a file sent by a pytest-xdist worker) it is hashed first, and one already
    there is reused only when intact.
    """
    source = staged / name
    if name and source.is_file() and not source.is_symlink():
        RecordFiles(records).put_file(source, EXTENSION, digest=None if check_names else name.partition(".")[0])


def encode(doc: dict[str, Any]) -> bytes:
    """A record document as the bytes of its file: the same document gives the same bytes
    (no time stamp in the gzip header), so identical records share a name."""
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def decode(data: bytes) -> Any:
    """The document of a compressed record's bytes; ValueError (or OSError) when damaged."""
    return json.loads(gzip.decompress(data).decode("utf-8"))


def write_record(folder: Path, record: ProvenanceRecord) -> str:
    """Keep `record` in the records folder `folder`; its file name there."""
    return RecordFiles(folder).put_bytes(encode(record.to_json()), EXTENSION)


def read_record_doc(path: Path) -> Any:
    """The document of a record file, compressed (``.json.gz``) or not (older trials, baselines);
    a StoreError naming the file when it cannot be read."""
    if not path.name.endswith(".gz"):
        return read_json(path)
    try:
        return decode(path.read_bytes())
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError) as exc:
        raise StoreError(f"{path}: cannot be read as a compressed provenance record ({exc})") from None
    except RecursionError:
        raise StoreError(f"{path}: cannot be read as a compressed provenance record (nested too deeply)") from None


def trial_slice(trial: Trial, tag: str, union: bool) -> Slice:
    """The slice of `tag` in `trial`: of its last tagging, or with `union` of all its taggings.

    The union comes from the record; a tag tagged once has one slice for both. A trial whose
    record predates unions reads it from its noWorkflow database, when that was kept. KeyError
    when there is no such slice, LookupError when the database is needed and missing.
    """
    record = trial.record()
    found = record.slices if record is not None else {}
    if union and record is not None:
        found = {**{t: s for t, s in found.items() if s.events <= 1}, **record.unions}
    if union and tag not in found and trial.provenance and trial.store_root is not None:
        from .provenance import read_slices
        from .provenance_archive import opened

        with opened(trial.store_root, trial.provenance) as db:
            found = read_slices(db, trial.id, [tag], union=True)
    if tag not in found:
        raise KeyError(f"{trial.name} has no provenance slice for tag {tag!r}")
    return found[tag]
