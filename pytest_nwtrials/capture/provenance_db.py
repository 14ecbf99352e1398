"""A trial's noWorkflow database, written without waiting for the disk.

The database lives in a temporary folder that the pytest process reads, compresses into the store
and deletes as soon as the run ends (`TrialSession.run`): it never has to survive a crash of the
system, only of the capture process, which SQLite guarantees without flushing to disk. noWorkflow
waits for the disk nonetheless: creating its 22 tables and 50 indexes is one SQLite transaction,
and one flush, per statement (Python's sqlite3 opens no transaction around DDL), and storing
provenance after each cell commits about ten times more. On an ordinary ext4 disk that is over a
second per trial, longer than running a small notebook. Written here with ``synchronous = OFF``,
the file has the same bytes; noWorkflow then finds it and skips its own creation, and its own
connection to the file (`relax`) waits no more either. Both the script runner and the notebook
kernel do so; a kernel started ahead of need makes one while it waits (`kernel_boot.preload`)
and each trial then starts from a copy. Only noWorkflow's engine is relaxed: an experiment's own
SQLite databases keep SQLite's defaults.
"""
from __future__ import annotations

import os
import shutil
from typing import Any

# noWorkflow's names: persistence.config.PROVENANCE_DIRNAME, relational_database.DB_FILENAME
PROVENANCE_DIRNAME = ".noworkflow"
DB_FILENAME = "db.sqlite"


def create_database(provenance_dir: str, template: str | None = None) -> bool:
    """Write noWorkflow's empty database into `provenance_dir` unless one is there; True if written.

    `template` is a folder where this wrote one before: it is copied, if it is there. A failure
    leaves no file behind and is not raised: noWorkflow then creates the database itself, as it
    would without this, and reports what stops it.
    """
    from noworkflow.now.persistence import relational
    from sqlalchemy import create_engine

    folder = os.path.join(provenance_dir, PROVENANCE_DIRNAME)
    path = os.path.join(folder, DB_FILENAME)
    if os.path.exists(path):
        return False
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return False
    made = os.path.join(template, PROVENANCE_DIRNAME, DB_FILENAME) if template else None
    if made and os.path.isfile(made):
        try:
            shutil.copyfile(made, path)
            return True
        except OSError:
            _remove(path)
    engine = create_engine("sqlite:///" + path)
    relax(engine)
    try:
        relational.base.metadata.create_all(engine)
        written = True
    except Exception:  # noWorkflow meets the same problem and names it
        written = False
    engine.dispose()
    if not written:
        _remove(path)
    return written


def relax(engine: Any) -> None:
    """Have the connections `engine` opens from now on commit without waiting for the disk.

    Neither setting is stored in the file; connections of other engines, the notebook's own
    among them, keep SQLite's defaults.
    """
    from sqlalchemy import event

    def no_waits(connection: Any, _record: Any) -> None:
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("PRAGMA journal_mode = MEMORY")

    event.listen(engine, "connect", no_waits)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
