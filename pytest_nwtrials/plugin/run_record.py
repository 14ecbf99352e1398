"""What a run under capture leaves in the store: its provenance record (operations, tag slices,
data files, the experiment's code), read from its noWorkflow database once secrets are masked in
it, and that database compressed when ini ``nw_keep_database`` asks for it.

A problem with either is a warning in `warnings` (the store's), never a lost trial: the trial is
recorded without what could not be kept.
"""
from __future__ import annotations

import io
import json
import sqlite3
import tokenize
from dataclasses import replace
from pathlib import Path

from ..capture.launch import RunResult
from ..files import write_bytes_atomic
from ..redaction import Secrets
from ..store import archive, layout

SOURCES_LIMIT = 256 * 1024  # bytes of code kept per record, at most: beyond it, none


def redacted(db: Path, experiment: str, trial_id: str, secrets: Secrets, warnings: list[str]) -> bool:
    """Mask secrets in the capture's noWorkflow database; False (with a warning) when it
    cannot be read or still holds one, and is not to be used."""
    if not db.is_file():
        return True  # nothing to mask; reading it reports what is missing
    try:
        if archive.redact(db, secrets):
            return True
        reason = "it holds a secret that could not be masked"
    except (sqlite3.Error, OSError) as exc:
        reason = f"secrets could not be masked in it ({exc})"
    warnings.append(f"{experiment}: noWorkflow database of trial {trial_id} not kept: {reason}")
    return False


def keep_database(db: Path, staged: Path, experiment: str, trial_id: str, warnings: list[str]) -> str:
    """Compress the capture's noWorkflow database into the run's staging folder; its path
    relative to the store, once the trial is added."""
    name = archive.archive_name(trial_id)
    try:
        write_bytes_atomic(staged / name, archive.pack(db))
    except OSError as exc:
        warnings.append(f"{experiment}: noWorkflow database of trial {trial_id} not kept: {exc}")
        return ""
    return name


def record_provenance(db: Path, staged: Path, script: Path, experiment: str, trial_id: str, result: RunResult,
                      rootdir: Path, secrets: Secrets, warnings: list[str]) -> tuple[dict | None, str]:
    """Keep the trial's operations, tag slices and code, compressed (`store/records.py`); return
    its data files with their hashes, and the name of its record file ("" when none was kept).

    A capture whose database cannot be read still yields a trial, without provenance.
    """
    from ..compare.explain import read_files, read_record
    from ..provenance.reader import ProvenanceError
    from ..store.records import write_record

    try:
        record = read_record(db, trial_id, result.tags, rootdir)
        files = read_files(db, trial_id, rootdir, record.slices)
        record = replace(record, sources=experiment_sources(script, result.environment.get("source"), secrets))
    except (ProvenanceError, sqlite3.Error) as exc:
        warnings.append(f"{experiment}: provenance of trial {trial_id} not recorded: {exc}")
        return None, ""
    try:
        name = write_record(staged / layout.RECORDS, record)
    except (OSError, ValueError) as exc:  # the trial itself may still fit: it is written next
        warnings.append(f"{experiment}: provenance of trial {trial_id} not recorded: {exc}")
        return None, ""
    files.pop(experiment, None)  # its own source: a change there is explained by the slices
    return files, name


def experiment_sources(script: Path, digest: object, secrets: Secrets,
                       limit: int = SOURCES_LIMIT) -> dict[str, str]:
    """The experiment's own code as it ran, by the names its operations give their file (the
    script's name: it runs in its folder; ``<notebook>#cell<n>`` for a notebook's code cell,
    without the leading blank lines IPython drops, so that an operation's line indexes it), with
    `secrets` masked.

    Kept only when the file still has the `digest` the capture recorded (a file edited during
    the run is not the code that ran) and the code is at most `limit` bytes (a generated script
    would weigh on every record); else nothing, and no warning: the code is context for a
    report, not something a comparison needs.
    """
    from ..capture.environment import source_digest
    from ..capture.kernel_cells import code_cells, leading_blank_lines

    if not isinstance(digest, str):
        return {}
    notebook = script.suffix == ".ipynb"
    try:
        if not notebook and script.stat().st_size > limit:
            return {}
        data = script.read_bytes()  # a notebook's outputs may be large: only its code counts
        if not notebook:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)  # as Python reads it
            sources = {script.name: data.decode(encoding)} if source_digest(data) == digest else {}
        else:
            cells = code_cells(json.loads(data.decode("utf-8")))
            code = "\n\n".join(source for _, source in cells)
            # as IPython runs a cell, without its leading blank lines: the lines of its operations
            sources = {f"{script.name}#cell{number}": "".join(source.splitlines(True)[leading_blank_lines(source):])
                       for number, source in cells}
            sources = sources if source_digest(code) == digest else {}
    except (OSError, ValueError, LookupError, SyntaxError, AttributeError, TypeError):  # unreadable, not a notebook
        return {}
    masked = {name: secrets.mask_text(text) for name, text in sources.items()}
    return masked if sum(len(text.encode("utf-8")) for text in masked.values()) <= limit else {}
