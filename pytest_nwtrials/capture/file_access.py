"""Record each file the experiment opens under the path it names and with the mode it was opened in.

noWorkflow's `open` wrapper stores ``str(name)``, so ``open(b"data.csv")`` (and every file
`shelve` opens through `dbm.dumb`) is recorded as ``"b'data.csv'"``, a path that does not exist:
its content after the access is never hashed. It also keeps the mode only when it is the sole
positional argument, so ``Path.write_text`` (which calls ``io.open(path, "w", -1, ...)``) is
recorded as a read. Both are fixed here, in what noWorkflow records; the experiment's own
`open` calls get exactly the arguments it gave.

Directories and paths relative to a directory descriptor are not recorded (`not_a_file_access`):
noWorkflow hashes what it records by reading the path, which fails for a directory (the
experiment's ``os.open(folder)`` then raises IsADirectoryError, and so does storing the trial)
and reads the wrong file for ``os.open(name, dir_fd=fd)``, which names a file in another folder.
Measured: ``tempfile.TemporaryDirectory()`` (its cleanup, ``shutil.rmtree``, opens the folder and
each entry that way) failed every trial with "IsADirectoryError ... while storing provenance".
"""
from __future__ import annotations

import os
from typing import Any

# io.open's parameters after the file, in order
_OPEN_PARAMETERS = ("mode", "buffering", "encoding", "errors", "newline", "closefd", "opener")


def path_name(name: Any) -> Any:
    """The path a bytes file name names, as text; other names (str, PathLike, a descriptor) as given."""
    if not isinstance(name, bytes):
        return name
    text = os.fsdecode(name)
    try:
        text.encode("utf-8")  # undecodable bytes become surrogates, which SQLite cannot store
    except UnicodeEncodeError:
        return name
    return text


def not_a_file_access(name: Any, kwargs: dict[str, Any]) -> bool:
    """Whether an open call is not a file access noWorkflow can record: a directory (opened by
    ``os.open``, as `shutil.rmtree` and `os.fwalk` do) or a name relative to ``dir_fd``."""
    if kwargs.get("dir_fd") is not None:
        return True
    if isinstance(name, int):
        return False
    try:
        return os.path.isdir(name)
    except (TypeError, ValueError):  # not a path: open itself says what is wrong with it
        return False


def record_files_as_opened(metascript: Any) -> None:
    """Set up a noWorkflow trial (before `Execution.configure`) to record bytes paths as the
    paths they name and every `open` call's mode."""
    store = metascript.file_accesses_store
    add_object = store.add_object

    def add_access(trial_id: Any, name: Any, *rest: Any) -> Any:
        return add_object(trial_id, path_name(name), *rest)

    store.add_object = add_access
    collector = metascript.execution.collector
    new_open = collector.new_open

    def wrap_open(old_open: Any, osopen: bool = False) -> Any:
        recording_open = new_open(old_open, osopen)
        adjust = not osopen and getattr(old_open, "__module__", None) in ("io", "_io")

        def open(file: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: A001 - it replaces open
            if not_a_file_access(file, kwargs):
                return old_open(file, *args, **kwargs)
            if not adjust:  # os.open and codecs.open take other arguments
                return recording_open(file, *args, **kwargs)
            if 1 < len(args) <= len(_OPEN_PARAMETERS) and not set(_OPEN_PARAMETERS[:len(args)]) & set(kwargs):
                # noWorkflow reads the mode only from a sole positional argument, or from keywords
                kwargs.update(zip(_OPEN_PARAMETERS, args))
                args = ()
            return recording_open(file, *args, **kwargs)

        return open

    collector.new_open = wrap_open
