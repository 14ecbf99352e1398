"""How a capture process writes noWorkflow's database: without waiting for the disk.

noWorkflow creates its schema (about 70 tables and indexes, each statement its own transaction)
in a fresh ``db.sqlite`` for every trial, and SQLite syncs the file to disk at each commit: most
of a small experiment's capture cost on an ordinary disk. The database of a capture is a file
in a temporary folder that the parent reads only after the capture process has ended, when the
operating system holds every page written; a sync adds nothing that a lost trial would need,
since a machine that crashes loses the pytest run too.
"""
from __future__ import annotations

_installed = False


def unsynced_writes() -> None:
    """Make every SQLite connection this process opens through SQLAlchemy skip the syncs
    (``PRAGMA synchronous=OFF``); call it before noWorkflow connects. Idempotent."""
    global _installed
    if _installed:
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.listen(Engine, "connect", _no_sync)
    _installed = True


def _no_sync(dbapi_connection, _record) -> None:
    if type(dbapi_connection).__module__.startswith("sqlite3"):  # only SQLite knows this pragma
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA synchronous=OFF")
        finally:
            cursor.close()
