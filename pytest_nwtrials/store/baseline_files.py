"""The files of a baseline folder: listing them without following links, and saving into the
folder so that an interrupted save leaves each entry old or new, whole.

A baseline entry is two files, ``train.py.json`` and ``train.py.provenance.json``, and the value
files it references; no single rename replaces them together. So a save first stages every file
it will write in a fresh folder beside the baseline folders (``<baselines>/.saving-<pid>-<random>/``:
the same filesystem, so the renames out of it are atomic, and its own ``.gitignore`` keeps git
from adding it), then writes there a journal listing the renames and deletions, and only then
carries them out: value files, the record, the entry last. Whoever next saves or reads that
baseline and finds a journal carries it out first (roll forward), so a save killed half way is
completed before anyone compares with it; a staging folder without a journal is a save stopped
before it changed anything, and is removed once its process is gone. A save holds a lock inside
its staging folder while it runs (the store's kind, see store/staging.py: the kernel releases it
when the process ends, however it ends), so "gone" is told by taking that lock, never by a pid
that another host or a later process may share. Nothing temporary is ever written inside a
baseline's folder.

The staging folders are files like any other under the folder of baselines: every path a journal
names is checked to stay inside its baseline's folder or its staging folder (`paths.inside`).
"""
from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path, PurePosixPath

from filelock import FileLock, Timeout

from ..errors import StoreError, short
from ..files import read_json, write_json_atomic
from ..paths import check_within, inside
from .layout import GITIGNORE, JOURNAL, MAKING_PREFIX, SAVE_GITIGNORE, SAVE_LOCK, SAVING_PREFIX

_REPLACE, _DELETE = "replace", "delete"


class Staging:
    """The files one save of baseline `name` will put in its folder, and the files it will delete.

    Nothing touches the baseline's folder before `commit`; `discard` forgets a save that failed
    before it.
    """

    def __init__(self, root: Path, name: str, folder: Path) -> None:
        self.name = name
        self.folder = folder  # the baseline's folder, checked by the caller
        root.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{secrets.token_hex(4)}"
        # made under another name and renamed once locked: a folder that `finish_interrupted`
        # can see always has its lock held while its save runs
        making = root / f"{MAKING_PREFIX}{name}"
        making.mkdir()
        check_within(root, making, "the staging folder of a save")
        (making / GITIGNORE).write_text(SAVE_GITIGNORE, encoding="utf-8")
        self.lock = FileLock(making / SAVE_LOCK, timeout=0)
        self.lock.acquire()
        self.path = root / f"{SAVING_PREFIX}{name}"
        os.replace(making, self.path)
        self.ops: list[list[str]] = []

    def stage_bytes(self, data: bytes, staged: str) -> Path:
        """Write `data` to the staged file `staged` (a plain file name), flushed to disk."""
        path = inside(self.path, staged, "a staged file")
        with open(path, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return path

    def stage_copy(self, source: Path, staged: str) -> Path:
        """Copy `source` to the staged file `staged`, flushed to disk."""
        path = inside(self.path, staged, "a staged file")
        shutil.copyfile(source, path)
        with open(path, "rb+") as handle:
            os.fsync(handle.fileno())
        return path

    def replace(self, staged: str, target: str) -> None:
        """On commit, move the staged file `staged` to `target` (relative to the baseline's folder)."""
        self.ops.append([_REPLACE, staged, target])

    def delete(self, target: str) -> None:
        """On commit, delete `target` (relative to the baseline's folder) if it exists."""
        self.ops.append([_DELETE, target])

    def commit(self) -> None:
        """Write the journal, then carry it out; once the journal is written, the save happens."""
        write_json_atomic(self.path / JOURNAL, {"baseline": self.name, "ops": self.ops})
        _carry_out(self.folder, self.path, self.ops)
        self.discard()

    def discard(self) -> None:
        _remove(self.path)
        self.lock.release()


def finish_interrupted(root: Path, name: str, folder: Path) -> None:
    """Complete every save of baseline `name` that was interrupted after writing its journal, and
    remove the staging folders of saves stopped before that; StoreError naming a journal that
    cannot be carried out."""
    if not root.is_dir():
        return
    for path in sorted(root.iterdir()):
        if path.is_symlink() or not path.is_dir():
            continue
        if path.name.startswith(MAKING_PREFIX):  # a save killed while making its folder
            if (path / SAVE_LOCK).is_file() and not _running(path):
                _remove(path)
            continue
        if not path.name.startswith(SAVING_PREFIX):
            continue
        journal = path / JOURNAL
        if journal.is_file() and not journal.is_symlink():
            ops = _read_journal(journal, name)
            if ops is not None:
                _carry_out(folder, path, ops)
                _remove(path)
        elif not journal.exists() and not _running(path):
            _remove(path)


def _read_journal(journal: Path, name: str) -> list[list[str]] | None:
    """The operations of `journal` when it is a save of baseline `name`, None for another baseline."""
    doc = read_json(journal)  # written atomically: unreadable only when edited by hand
    try:
        if not isinstance(doc, dict) or not isinstance(doc.get("ops"), list):
            raise ValueError("it is not a journal of a save")
        if doc.get("baseline") != name:
            return None
        for op in doc["ops"]:
            if not (isinstance(op, list) and all(isinstance(part, str) for part in op)
                    and (op[:1] == [_REPLACE] and len(op) == 3 or op[:1] == [_DELETE] and len(op) == 2)):
                raise ValueError(f"{short(op)} is not an operation of a save")
    except ValueError as exc:
        raise StoreError(f"{journal}: cannot complete the interrupted save of baseline '{name}' ({exc}); "
                         f"delete {journal.parent}, then check the baseline with git") from None
    return doc["ops"]


def _carry_out(folder: Path, staging: Path, ops: list[list[str]]) -> None:
    """Do each operation once: a staged file already moved was moved by an earlier attempt."""
    for op in ops:
        target = inside(folder, op[-1], "a file named by the journal of a save")
        if op[0] == _DELETE:
            target.unlink(missing_ok=True)
            continue
        source = inside(staging, op[1], "a staged file named by the journal of a save")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, target)
        except FileNotFoundError:
            if source.exists() or not target.exists():
                raise


def _remove(staging: Path) -> None:
    """Remove a staging folder: its journal first (the save is then over), its `.gitignore` last
    (until then git ignores what is left)."""
    try:
        (staging / JOURNAL).unlink(missing_ok=True)
        for path in staging.iterdir():
            if path.name == GITIGNORE:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        (staging / GITIGNORE).unlink(missing_ok=True)
        staging.rmdir()
    except FileNotFoundError:  # another process completing the same save removed it first
        pass


def _running(staging: Path) -> bool:
    """Whether a save may still be writing into `staging`: its lock is held."""
    lock_file = staging / SAVE_LOCK
    if lock_file.is_symlink() or not lock_file.is_file():
        return False  # a folder of this version always has its lock: nothing saves into this one
    lock = FileLock(lock_file, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return True
    except OSError:  # cannot be probed (another user's file): leave it alone
        return True
    lock.release()
    return False


# -- reading a baseline folder without following links out of it -------------------------------

def walk(folder: Path) -> list[Path]:
    """Every file under `folder`, sorted, never entering a link to a folder (its target, when inside
    `folder`, is listed in its own place). A link to a file is listed: the caller has checked with
    `links` that none leads outside. Built on `os.walk` rather than `Path.rglob`, whose handling
    of links differs between Python versions and which would list a link to a folder as a path."""
    found = [Path(parent, name) for parent, _, files in os.walk(folder) for name in files]
    return sorted(path for path in found if path.is_file())


def links(folder: Path) -> list[Path]:
    """Every symbolic link under `folder` (to a file, a folder or nothing), none of them followed."""
    return [Path(parent, name) for parent, folders, files in os.walk(folder)
            for name in folders + files if Path(parent, name).is_symlink()]


def hidden(relative: PurePosixPath) -> bool:
    """Whether a path inside a baseline is hidden (a part starts with a dot): such files are left alone."""
    return any(part.startswith(".") for part in relative.parts)


def lexically_in(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or below it as written, links not resolved."""
    path, folder = Path(os.path.normpath(path.absolute())), Path(os.path.normpath(folder.absolute()))
    return path == folder or folder in path.parents
