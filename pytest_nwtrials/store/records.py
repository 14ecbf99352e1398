"""Provenance records: what they hold, how they are read, and how the local store keeps them
(compressed, named by their content, shared by trials).

A trial's `ProvenanceRecord` keeps its operation sequence and the slice of every tag. On disk
each distinct operation is stored once in a table and sequences are lists of row numbers, so a
loop's repeated operations and the slices (subsets of the sequence) cost little; a tag tagged
more than once also keeps the slice of all its taggings ("unions"), which noWorkflow's
`global_backward_deps` shows. It also keeps the experiment's own code as it ran ("sources": a
script's text, a notebook's code cells), by the file names its operations give, so that a report
can show the code of two trials side by side. compare/explain.py reads records out of noWorkflow's database and compares
them; everything that reads one from a file (a trial, a baseline entry) goes through `load_record`.

The local store keeps a record as compact JSON compressed with gzip, in
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import StoreError, short
from ..files import read_json
from ..provenance.graph import CONTROL, DATA, MUTATION, STATE
from ..provenance.reader import Op, Slice
from ..values.blobs import BlobStore

EXTENSION = "json.gz"
_NAME = re.compile(r"[0-9a-f]{64}\.json\.gz\Z")

# 2 added each slice's "edges" and "site"; records of schema 1 are still read. The optional
# "unions" (slices of all taggings) and "sources" (the code) need no new schema: readers that
# predate them ignore them.
SCHEMA = 2
_READABLE = (1, 2)
_COLUMNS = ["kind", "code", "file", "line", "value"]
_EDGE_KINDS = (DATA, MUTATION, STATE, CONTROL)  # stored as their index here


@dataclass(frozen=True)
class ProvenanceRecord:
    """A trial's operations in execution order, each tag's slice (of its last tagging), the
    slice of all taggings of each tag tagged more than once, and the experiment's code.

    `sources` maps a file name as the operations spell it (`Op.file`: ``train.py``, or
    ``train.ipynb#cell4`` for a notebook's cell) to its code as it ran, secrets masked; empty
    when the code was not kept (edited during the run, too large, or an older record).
    """

    operations: tuple[Op, ...]
    slices: dict[str, Slice]
    unions: dict[str, Slice] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        table: list[list[Any]] = []
        rows: dict[Op, int] = {}

        def row(op: Op) -> int:
            if op not in rows:
                rows[op] = len(table)
                table.append([op.kind, op.code, op.file, op.line, op.value])
            return rows[op]

        operations = [row(op) for op in self.operations]
        slices = {tag: _slice_json(s, [row(op) for op in s.ops]) for tag, s in self.slices.items()}
        unions = {tag: _slice_json(s, [row(op) for op in s.ops]) for tag, s in self.unions.items()}
        return {"schema": SCHEMA, "columns": _COLUMNS, "table": table,
                "operations": operations, "slices": slices, **({"unions": unions} if unions else {}),
                **({"sources": dict(self.sources)} if self.sources else {})}

    @classmethod
    def from_json(cls, doc: Any) -> ProvenanceRecord:
        """Rebuild a record; `StoreError` (a ValueError) when the document is not one."""
        try:
            if doc["schema"] not in _READABLE or type(doc["schema"]) is not int:
                raise ValueError(f"unknown provenance schema {doc['schema']!r:.40}")
            table = [_op(row) for row in _list(doc["table"])]
            operations = tuple(_pick(table, i) for i in _list(doc["operations"]))
            slices = _slices(doc["slices"], table)
            unions = _slices(doc.get("unions", {}), table)
            sources = _sources(doc.get("sources", {}))
        except (AttributeError, KeyError, TypeError, IndexError, ValueError) as exc:
            raise StoreError(f"not a provenance record ({type(exc).__name__}: {exc})") from None
        return cls(operations, slices, unions, sources)


def _sources(doc: Any) -> dict[str, str]:
    """The stored code by file name: an object of strings to strings."""
    if type(doc) is not dict:
        raise TypeError(f"'sources' is not an object of file names to code ({type(doc).__name__})")
    for file, code in doc.items():
        if type(code) is not str:
            raise TypeError(f"'sources' of {short(file)} is not text ({type(code).__name__})")
    return dict(doc)


def _slices(doc: Any, table: list[Op]) -> dict[str, Slice]:
    slices = {}
    for tag, s in doc.items():
        ops = tuple(_pick(table, i) for i in _list(s["ops"]))
        slices[str(tag)] = Slice(str(tag), ops, _int(s["events"]), _int(s.get("dropped", 0)),
                                 _edges(s.get("edges"), len(ops)), _site(s.get("site")))
    return slices


def _slice_json(s: Slice, rows: list[int]) -> dict[str, Any]:
    doc: dict[str, Any] = {"events": s.events, "dropped": s.dropped, "ops": rows}
    if s.edges is not None:  # flat pairs per op: index of the earlier op, number of its kind
        doc["edges"] = [[n for index, kind in deps for n in (index, _EDGE_KINDS.index(kind))]
                        for deps in s.edges]
    if s.site is not None:
        doc["site"] = [s.site[0], s.site[1]]
    return doc


def _edges(doc: Any, count: int) -> tuple[tuple[tuple[int, str], ...], ...] | None:
    """A slice's stored edges: one flat list of (index, kind number) pairs per op, each index
    of an earlier op; None when the slice has none (a record of schema 1)."""
    if doc is None:
        return None
    rows = _list(doc)
    if len(rows) != count:
        raise ValueError(f"{len(rows)} lists of edges for {count} operations")
    edges = []
    for position, row in enumerate(rows):
        flat = [_int(n) for n in _list(row)]
        if len(flat) % 2:
            raise ValueError(f"the edges of operation {position} are not pairs")
        deps = []
        for index, kind in zip(flat[::2], flat[1::2]):
            if not 0 <= index < position or not 0 <= kind < len(_EDGE_KINDS):
                raise ValueError(f"operation {position} has an edge ({index}, {kind}) to no earlier operation")
            deps.append((index, _EDGE_KINDS[kind]))
        edges.append(tuple(deps))
    return tuple(edges)


def _site(doc: Any) -> tuple[str, int] | None:
    if doc is None:
        return None
    file, line = _list(doc)
    if type(file) is not str:
        raise TypeError(f"the site's file is a {type(file).__name__}")
    return file, _int(line)


def _list(value: Any) -> list[Any]:
    if type(value) is not list:
        raise TypeError(f"expected an array, got {type(value).__name__}")
    return value


def _int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _op(row: Any) -> Op:
    kind, code, file, line, value = _list(row)
    if not all(type(text) is str for text in (kind, code, file, value)):
        raise TypeError(f"operation {row!r:.80} has a field that is not a string")
    return Op(kind, code, file, _int(line), value)


def _pick(table: list[Op], index: Any) -> Op:
    """Row `index` of the operation table; no negative indexes, which Python would accept."""
    if not 0 <= _int(index) < len(table):
        raise IndexError(f"operation {index} is not in the table of {len(table)}")
    return table[index]


def load_record(path: Path, remedy: str, trial_id: str | None = None) -> ProvenanceRecord:
    """Read the record file at `path`; a StoreError naming it and saying `remedy` when unusable.

    With `trial_id`, a record that names another trial (records saved in a baseline name theirs)
    is refused: it would explain the differences with the wrong run.
    """
    try:
        doc = read_record_doc(path)
        other = doc.get("trial_id", trial_id) if isinstance(doc, dict) and trial_id is not None else trial_id
        if other != trial_id:
            raise StoreError(f"it is the record of trial {str(other)[:80]}, not of trial {trial_id} that its entry "
                             "was saved from")
        return ProvenanceRecord.from_json(doc)
    except StoreError as exc:
        text = str(exc)
        raise StoreError(f"{text if text.startswith(str(path)) else f'{path}: {text}'}; {remedy}") from None



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

