"""noWorkflow's database of one trial, kept compressed in the local store when asked.

Each capture writes a fresh noWorkflow project in a temporary folder. Once the plugin has read
what it needs (the operations, the tag slices, the files: the provenance record that everything
else reads, see `store/records.py`), the database is dropped, or with ini ``nw_keep_database``
compressed into ``provenance/<trial id>.sqlite.gz``: about 40 KB for a trial whose database
takes 500 KB, mostly the empty pages of noWorkflow's schema. One file per trial means removing a trial removes its
provenance, concurrent captures never share a database, and a trial's provenance can be moved
between machines (pytest-xdist workers send it to the controller) as bytes.

noWorkflow's ``content/`` folder (copies of every file the experiment read or wrote) is not
kept: the trial record holds the hash of each file, which is what comparisons use.

Before anything reads it, `redact` masks secrets in every text of the database; the capture
process masks what it hands noWorkflow, and this is the check that nothing got past it.
"""
from __future__ import annotations

import contextlib
import gzip
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..redaction import Secrets
from .layout import PROVENANCE

SUFFIX = ".sqlite.gz"


def database_in(project: Path) -> Path:
    """Where noWorkflow keeps the database of a project folder."""
    return project / ".noworkflow" / "db.sqlite"


def archive_name(trial_id: str) -> str:
    """The store-relative path of a trial's compressed database."""
    return f"{PROVENANCE}/{trial_id}{SUFFIX}"


def redact(db: Path, secrets: Secrets) -> bool:
    """Mask `secrets` in every text column of the database `db`, in place; False when its file
    still holds one afterwards (in a binary column), and must not be kept.

    The database is rebuilt (VACUUM) when something was masked, or when its file held a secret
    in a deleted row: SQLite keeps deleted data in free pages until then.
    """
    if not secrets:
        return True
    forms = [form for form, _ in secrets.forms]

    def holds(*texts: object) -> bool:  # called for every row: plain loops, no generators
        for text in texts:
            if type(text) is str:
                for form in forms:
                    if form in text:
                        return True
        return False

    def mask(text: str | bytes | int | float | None) -> str | bytes | int | float | None:
        return secrets.mask_text(text) if type(text) is str else text  # numbers and binary stay

    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.create_function("nwtrials_holds", -1, holds, deterministic=True)
        conn.create_function("nwtrials_mask", 1, mask, deterministic=True)
        masked = 0
        tables = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").fetchall()]
        for table in tables:
            columns = [_quoted(row[1]) for row in conn.execute(f"PRAGMA table_info({_quoted(table)})")]
            # one pass over each table (SQLite passes a function at most 127 arguments)
            for start in range(0, len(columns), 100):
                part = columns[start:start + 100]
                assignments = ", ".join(f"{c} = nwtrials_mask({c})" for c in part)
                masked += conn.execute(f"UPDATE {_quoted(table)} SET {assignments} "
                                       f"WHERE nwtrials_holds({', '.join(part)})").rowcount
        conn.commit()
        # SQLite keeps text as UTF-8
        if masked or secrets.found_in(db.read_bytes(), ("utf-8",)):
            conn.execute("VACUUM")
    return not secrets.found_in(db.read_bytes(), ("utf-8",))


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def pack(db: Path) -> bytes:
    """The compressed bytes of a database file."""
    with open(db, "rb") as handle:
        return gzip.compress(handle.read(), compresslevel=6)


@contextlib.contextmanager
def opened(store_root: Path, provenance: str) -> Iterator[Path]:
    """A readable noWorkflow database for a trial's ``provenance`` field, unpacked into a
    temporary file for the duration of the block. Raises LookupError when there is none."""
    from ..paths import OutsideError, inside

    try:
        path = inside(store_root, provenance, "provenance database") if provenance else None
    except OutsideError as exc:
        raise LookupError(str(exc)) from None
    if path is None or not path.is_file():
        raise LookupError(f"no provenance database at {path}" if path else "no provenance database")
    with tempfile.TemporaryDirectory(prefix="nwtrials-db-") as tmp:
        db = Path(tmp, "db.sqlite")
        try:
            with gzip.open(path, "rb") as source, open(db, "wb") as target:
                shutil.copyfileobj(source, target)
        except (OSError, EOFError) as exc:
            raise LookupError(f"{path}: not a readable provenance archive ({exc}); delete it") from None
        yield db
