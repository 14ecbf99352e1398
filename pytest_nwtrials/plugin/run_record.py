"""What a run under capture leaves in the store: its provenance record (operations, tag slices,
data files), read from its noWorkflow database once secrets are masked in it, and that database
compressed when ini ``nw_keep_database`` asks for it.

A problem with either is a warning in `warnings` (the store's), never a lost trial: the trial is
recorded without what could not be kept.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from ..capture.launch import RunResult
from ..files import write_bytes_atomic
from ..redaction import Secrets
from ..store import archive, layout


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


def record_provenance(db: Path, staged: Path, experiment: str, trial_id: str, result: RunResult,
                      rootdir: Path, warnings: list[str]) -> tuple[dict | None, str]:
    """Keep the trial's operations and tag slices, compressed (`store/records.py`); return its data
    files with their hashes, and the name of its record file ("" when none was kept).

    A capture whose database cannot be read still yields a trial, without provenance.
    """
    from ..compare.explain import read_files, read_record
    from ..provenance.reader import ProvenanceError
    from ..store.records import write_record

    try:
        record = read_record(db, trial_id, result.tags, rootdir)
        files = read_files(db, trial_id, rootdir, record.slices)
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
