"""noWorkflow's database of one trial, kept compressed in the local store.

Each capture writes a fresh noWorkflow project in a temporary folder. Once the plugin has read
what it needs (the operations, the tag slices, the files), the database is compressed into
``provenance/<trial id>.sqlite.gz``: about 40 KB for a trial whose database takes 500 KB, mostly
the empty pages of noWorkflow's schema. One file per trial means removing a trial removes its
provenance, concurrent captures never share a database, and a trial's provenance can be moved
between machines (pytest-xdist workers send it to the controller) as bytes.

noWorkflow's ``content/`` folder (copies of every file the experiment read or wrote) is not
kept: the trial record holds the hash of each file, which is what comparisons use.
"""
from __future__ import annotations

import contextlib
import gzip
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

SUFFIX = ".sqlite.gz"


def database_in(project: Path) -> Path:
    """Where noWorkflow keeps the database of a project folder."""
    return project / ".noworkflow" / "db.sqlite"


def archive_name(trial_id: str) -> str:
    """The store-relative path of a trial's compressed database."""
    return f"provenance/{trial_id}{SUFFIX}"


def pack(db: Path) -> bytes:
    """The compressed bytes of a database file."""
    with open(db, "rb") as handle:
        return gzip.compress(handle.read(), compresslevel=6)


@contextlib.contextmanager
def opened(store_root: Path, provenance: str) -> Iterator[Path]:
    """A readable noWorkflow database for a trial's ``provenance`` field, unpacked into a
    temporary file for the duration of the block. Raises LookupError when there is none."""
    from .paths import OutsideError, inside

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
