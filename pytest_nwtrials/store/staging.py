"""The store's lock, and the private folders of the sessions recording into it.

Two pytest sessions may record into one store at once (two CI jobs sharing a checkout, a
developer and a watcher). Each session stages the files of a running trial (value files written
by the capture process, the provenance record, the compressed noWorkflow database) in a folder
of its own inside the store, ``tmp/<session>/run<N>/``, on the store's filesystem. Adding the
trial moves them into place and writes the trial record while holding the store lock (``lock``);
garbage collection holds the same lock while it decides what to delete and deletes it. So pruning
by one session never removes a file that a trial of another session is about to reference, and
a value file in ``values/`` that no trial record references belongs to nobody.

A session holds a lock on ``tmp/<session>.lock`` for as long as it runs. The kernel releases it
when the process ends, however it ends (SIGKILL included), so a session folder whose lock can be
taken belongs to a dead session and may be reclaimed. The trials a session has recorded are
listed in its folder (``pinned.json``): garbage collection by another session leaves them alone
while it runs, so the session can still save them to a baseline and report them at its end.

The locks are filelock's (``flock`` on POSIX): held by an open file, never left behind by a
crashed holder, and independent per open file even within one process, which a hand-rolled lock
file (a pid written into a file, checked for liveness) does not give.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import StoreError
from ..files import write_json_atomic
from .layout import LOCK, PINNED, RUN_PREFIX, SESSION_LOCK_SUFFIX, STAGED

# Waiting this long for the store lock means its holder is stuck (stopped, or on a hung disk).
LOCK_TIMEOUT = 600.0


def store_lock(root: Path) -> FileLock:
    """The lock held while a trial is added and while garbage is collected (reentrant)."""
    return FileLock(root / LOCK, timeout=LOCK_TIMEOUT)


class LockedOut(StoreError):
    """The store lock could not be taken in time."""


def acquire(lock: FileLock) -> FileLock:
    """`lock`, acquired; LockedOut naming its file when another process holds it too long."""
    try:
        lock.acquire()
    except Timeout:
        raise LockedOut(f"{lock.lock_file}: another process has held the store lock for over "
                        f"{LOCK_TIMEOUT:.0f} s; stop it, or wait for it to finish") from None
    return lock


class SessionFolder:
    """This process's private folder ``tmp/<name>/``, alive while it holds ``tmp/<name>.lock``.

    Create it while holding the store lock: garbage collection probes session locks only under
    that lock, so it never sees a lock file that exists but is not yet held.
    """

    def __init__(self, tmp_dir: Path) -> None:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self.name = uuid.uuid4().hex
        self.lock = FileLock(tmp_dir / f"{self.name}{SESSION_LOCK_SUFFIX}", timeout=0)
        self.lock.acquire()  # a fresh name: nobody else holds it
        self.root = tmp_dir / self.name
        self.root.mkdir()
        self.pinned: list[str] = []
        self._runs = 0

    def stage(self) -> Path:
        """A fresh folder for the files of one run: values/, records/ and provenance/."""
        self._runs += 1
        folder = self.root / f"{RUN_PREFIX}{self._runs}"
        for name in STAGED:
            (folder / name).mkdir(parents=True, exist_ok=True)
        return folder

    def pin(self, trial_name: str) -> None:
        """Note that this session recorded `trial_name`: others' garbage collection keeps it."""
        self.pinned.append(trial_name)
        write_json_atomic(self.root / PINNED, self.pinned)

    def close(self) -> None:
        """Remove the folder and give up the lock: the folder first, so that a lock that can be
        taken never guards files still in use."""
        shutil.rmtree(self.root, ignore_errors=True)
        Path(self.lock.lock_file).unlink(missing_ok=True)
        self.lock.release()


@dataclass
class Survey:
    """The session folders of a store: trials pinned by live sessions, leftovers of dead ones."""

    pinned: set[str] = field(default_factory=set)
    dead: list[Path] = field(default_factory=list)  # folders and lock files of dead sessions
    warnings: list[str] = field(default_factory=list)


def survey(tmp_dir: Path, own: str | None) -> Survey:
    """Which sessions under `tmp_dir` are alive (their pins) and which are dead (their files).

    A session is probed by trying its lock without waiting; only existing lock files are tried,
    so none is created. `own` is this process's session, neither probed nor pinned: its own
    garbage collection runs at its end.
    """
    found = Survey()
    if not tmp_dir.is_dir():
        return found
    names = sorted({entry.name.removesuffix(SESSION_LOCK_SUFFIX) for entry in tmp_dir.iterdir()})
    for name in names:
        if name == own:
            continue
        folder, lock_path = tmp_dir / name, tmp_dir / f"{name}{SESSION_LOCK_SUFFIX}"
        if not _is_session_name(name):
            continue
        if not os.path.lexists(lock_path):  # a session creates its lock before its folder
            found.dead.append(folder)
            continue
        if lock_path.is_symlink() or not lock_path.is_file():
            continue  # nothing a session makes: left alone
        lock = FileLock(lock_path, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            found.pinned.update(_pins(folder, found.warnings))
            continue
        except OSError:
            continue
        lock.release()  # dead: nobody can take it again but another collector, which finds the same
        found.dead.extend(path for path in (folder, lock_path) if os.path.lexists(path))
    return found


def _is_session_name(name: str) -> bool:
    """Whether `name` is one a session gives its folder (32 hex digits); other files are left alone."""
    return len(name) == 32 and all(c in "0123456789abcdef" for c in name)


def _pins(folder: Path, warnings: list[str]) -> list[str]:
    path = folder / PINNED
    try:
        pins = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        warnings.append(f"{path}: cannot be read ({exc}); the trials of that running session are not protected")
        return []
    return [pin for pin in pins if isinstance(pin, str)] if isinstance(pins, list) else []
