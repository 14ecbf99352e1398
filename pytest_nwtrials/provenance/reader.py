"""Reads a finished trial out of noWorkflow's database into plain records.

Three things come out of a trial: the ordered operations of the experiment (`read_operations`),
the provenance slice of every tagged value (`read_slices`), and the data files it read and
wrote (`read_file_accesses`). `serialize` is what the capture runner installs as noWorkflow's
serializer, so that every operation's value is comparable across trials. How tags are found
and slices walked is described in `provenance/graph.py`; diffs of slices are in `slices`.
"""
from __future__ import annotations

import ast
import os
import re
import sqlite3
import sys
import sysconfig
from contextlib import closing
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from .graph import NOT_OPERATIONS, ProvenanceError, TrialGraph, connect
from .serialize import normalize_repr, serialize

__all__ = [
    "FileAccess", "Op", "ProvenanceError", "Slice", "normalize_code", "read_file_accesses",
    "read_operations", "read_slices", "serialize",
]

_OWN_VALUE = re.compile(r"<(?:function|module) '?pytest_nwtrials\b")


@dataclass(frozen=True)
class Op:
    """One evaluated operation of a trial, comparable across trials."""

    kind: str  # code_component.type: name, literal, call, attribute, subscript, add, ...
    code: str  # the source text of the operation
    file: str  # the script, relative to the trial's working directory; "" if unknown
    line: int
    value: str  # `serialize`d (or normalised repr) value

    def key(self) -> tuple[str, str, str]:
        """What comparisons use: kind, code and value, not where the code is.

        The line and file are left out so that a comment or a blank line above an operation
        does not make it a different one; the code is compared by its syntax tree
        (`normalize_code`), so `x*f` and `x * f` are the same operation.
        """
        return (self.kind, normalize_code(self.code), self.value)


@dataclass(frozen=True)
class Slice:
    """The operations a tagged value depends on, in execution order."""

    tag: str
    ops: tuple[Op, ...]
    events: int  # how often the name was tagged in the trial
    dropped: int = 0  # earliest operations left out by the `limit` of `read_slices`
    # per op, its direct dependencies in this slice: (index of an earlier op, edge kind, one of
    # provenance/graph.py's DATA, MUTATION, STATE, CONTROL); None in records that predate edges
    edges: tuple[tuple[tuple[int, str], ...], ...] | None = None
    site: tuple[str, int] | None = None  # (file, line) of the tag call of the last event


@dataclass(frozen=True)
class FileAccess:
    path: str  # relative to the project root when inside it, else absolute
    mode: str
    hash_before: str | None  # SHA-1 of the content, None when the file did not exist
    hash_after: str | None
    # the operation of the script that opened it (code, file, line): the call of `open`,
    # `pd.read_csv`, or of the script's own function that did; a slice holding it depends on the file
    opened_by: tuple[str, str, int] | None = field(default=None, compare=False)


@lru_cache(maxsize=1 << 16)
def normalize_code(code: str) -> str:
    """Source text in a canonical form: unparsed syntax tree when it parses, else spaces squeezed."""
    try:
        return ast.unparse(ast.parse(code.strip(), mode="eval"))
    except Exception:  # not an expression (a `for` target list, a parameter, ...)
        return " ".join(code.split())


def read_operations(db_path: Path, trial_id: str) -> list[Op]:
    """Every operation of the trial in execution order (checkpoint, then id)."""
    with closing(connect(db_path)) as conn:
        graph = TrialGraph(conn, trial_id, Path(db_path))
        marks = ", ".join("?" * len(NOT_OPERATIONS))
        rows = conn.execute(
            "SELECT e.code_component_id, e.repr FROM evaluation e"
            " JOIN code_component cc ON cc.trial_id = e.trial_id AND cc.id = e.code_component_id"
            f" WHERE e.trial_id = ? AND cc.type NOT IN ({marks}) ORDER BY e.checkpoint, e.id",  # noqa: S608
            (trial_id, *sorted(NOT_OPERATIONS)),
        )
        return [_op(graph, component, value) for component, value in rows]


def read_slices(db_path: Path, trial_id: str, tags: Iterable[str] | None = None, *,
                union: bool = False, limit: int = 100_000) -> dict[str, Slice]:
    """The provenance slice of each tag name: of its last tagging event, or of all with `union`.

    Names come from the trial's tag calls; `tags` restricts them. A requested name with no tag
    call but a module-level variable of that name (ini `nw_tags`) gets the slice of the
    variable's last assignment, as one event. Names found nowhere are left out. A slice keeps
    the latest `limit` operations and counts the others in `dropped`.
    """
    with closing(connect(db_path)) as conn:
        graph = TrialGraph(conn, trial_id, Path(db_path))
        events = graph.tag_events()
        names = list(events) if tags is None else list(dict.fromkeys(tags))
        slices = {}
        sites = {value: call for call, (_name, value) in graph.tag_calls().items()}
        for name in names:
            starts = events.get(name)
            count = len(starts or ())
            if not starts:
                variable = graph.last_module_assignment(name)
                if variable is None:
                    continue
                starts, count = [variable], 1
            edges = graph.backward_edges(starts if union else starts[-1:])
            keep, ops = _ops(graph, edges)
            dropped = max(0, len(ops) - limit)
            site = graph.component_of(sites.get(starts[-1], starts[-1]))
            slices[name] = Slice(name, tuple(ops[dropped:]), count, dropped,
                                 _slice_edges(keep[dropped:], edges),
                                 (graph.file_of(site), graph.components.get(site, ("", "", -1, None))[2]))
        return slices


def read_file_accesses(db_path: Path, trial_id: str, root: Path) -> list[FileAccess]:
    """The data files the trial opened, in order, without the noise of the interpreter.

    Dropped: pseudo-files (/proc, /sys, /dev), the Python installation (stdlib,
    site-packages), noWorkflow's own store (`.noworkflow`), and the files written by `tag()`
    itself (the value store). A file outside `root` is kept only when the script names it:
    its path appears in a value the script computed (a literal, an argument), which keeps
    `/data/train.csv` and drops a library's cache or config file. Every access is listed (a
    file read twice appears twice); a file whose content changed under a read mode is reported
    with mode "w" (noWorkflow records "r" for `Path.write_text` unless `capture.file_access`
    set the capture up). Paths opened as bytes are recorded by the capture as the text they name.
    """
    root = Path(root).resolve()
    with closing(connect(db_path)) as conn:
        graph = TrialGraph(conn, trial_id, Path(db_path))
        taggers = set(graph.tag_calls())
        rows = conn.execute(
            "SELECT name, mode, content_hash_before, content_hash_after, activation_id"
            " FROM file_access WHERE trial_id = ? ORDER BY checkpoint, id",
            (trial_id,),
        ).fetchall()
        openers = _openers(graph, {row[4] for row in rows})
        accesses = []
        for name, mode, before, after, activation in rows:
            if activation in taggers or not name:
                continue
            path = Path(graph.cwd, str(name)) if graph.cwd else Path(str(name))
            path = Path(os.path.normpath(path))
            if _is_environment_file(path):
                continue
            if path.is_relative_to(root):
                shown = path.relative_to(root).as_posix()
            elif _named_by_script(conn, trial_id, str(name)):
                shown = path.as_posix()
            else:
                continue
            mode = str(mode or "")
            if before != after and after is not None and not any(c in mode for c in "wax+"):
                # noWorkflow keeps mode "r" when open() gets more than one positional
                # argument (Path.write_text does): a file whose content changed was written
                mode = "w"
            accesses.append(FileAccess(shown, mode, before, after, openers.get(activation)))
        return accesses


def _openers(graph: TrialGraph, activations: set[int]) -> dict[int, tuple[str, str, int]]:
    """The operation (code, file, line) of each activation that opened a file; an activation is
    the evaluation of the call it runs, already in the loaded graph."""
    openers = {}
    for activation in activations:
        if activation in graph.evaluations:
            component = graph.component_of(activation)
            code, _kind, line, _container = graph.components.get(component, ("", "", -1, None))
            openers[activation] = (code, graph.file_of(component), line)
    return openers


# ---------------------------------------------------------------------------------------------


def _ops(graph: TrialGraph, ids: Iterable[int]) -> tuple[list[int], list[Op]]:
    """The operations of these evaluations, in execution order, without noise; and their ids."""
    keep = graph.in_order(ids)
    values = graph.values(keep)
    kept, ops = [], []
    for eid in keep:
        value = values.get(eid)
        if value is not None and _OWN_VALUE.match(value):
            continue  # the plugin's own module and functions
        kept.append(eid)
        ops.append(_op(graph, graph.component_of(eid), value))
    return kept, ops


def _slice_edges(kept: list[int], edges: dict[int, set[tuple[int, str]]]) -> tuple[tuple[tuple[int, str], ...], ...]:
    """Each kept evaluation's dependencies as indexes into `kept`, earlier ones only, sorted."""
    index = {eid: n for n, eid in enumerate(kept)}
    return tuple(
        tuple(sorted({(index[dep], kind) for dep, kind in edges.get(eid, ()) if index.get(dep, n) < n}))
        for n, eid in enumerate(kept))


def _op(graph: TrialGraph, component: int, value: str | None) -> Op:
    name, kind, line, _container = graph.components.get(component, ("", "", -1, None))
    return Op(kind, name, graph.file_of(component), line, normalize_repr(value))


def _is_environment_file(path: Path) -> bool:
    text = path.as_posix()
    if text.startswith(("/proc/", "/sys/", "/dev/")):
        return True
    parts = path.parts
    if "site-packages" in parts or "dist-packages" in parts or ".noworkflow" in parts:
        return True
    return any(text == prefix or text.startswith(prefix + "/") for prefix in _python_prefixes())


@lru_cache(maxsize=1)
def _python_prefixes() -> tuple[str, ...]:
    """The standard library and package folders of this interpreter and of its base install."""
    paths = set()
    for variables in ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            path = sysconfig.get_paths(vars=variables).get(key)
            if path:
                paths.add(Path(path).resolve().as_posix())
    return tuple(sorted(paths))


def _named_by_script(conn: sqlite3.Connection, trial_id: str, name: str) -> bool:
    """Whether a value of the script spells `name`, as text or as a bytes literal (``b'/d/\\xc3\\xa9.csv'``)."""
    spellings = {name, repr(os.fsencode(name))[2:-1]}
    return any(conn.execute(
        "SELECT 1 FROM evaluation WHERE trial_id = ? AND instr(repr, ?) > 0 LIMIT 1", (trial_id, spelling)
    ).fetchone() is not None for spelling in spellings)
