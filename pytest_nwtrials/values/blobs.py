"""The content-addressed folder that holds the large parts of tagged values.

A blob is named by the sha256 of its bytes, so identical values are stored once and a blob
never changes once written. Writes are atomic (temp file in the same folder, then
`os.replace`), so concurrent workers writing the same value cannot corrupt it. A file already
there under the name being written is reused only when it is intact (its bytes hash to its
name): a truncated or overwritten one is replaced with the good bytes, never referenced again.
Reading never follows a link out of the folder.

A large value that another store already holds under its name (the local store's values, the
baseline's) is hard-linked rather than written again (`adopt`): a gate whose array matches its
baseline costs a hash of the array, not a write of it. A link is a second name of a file that
is never changed in place (blobs are only ever replaced or removed), so either name can go
without the other losing its bytes.

A blob that is missing or cannot be read raises `BlobError`, naming the file and what to do
(the store's `remedy`): the local store and a baseline folder are repaired differently.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from ..errors import StoreError, short
from ..paths import OutsideError, check_within

BLOB_EXTENSIONS = frozenset({"npy", "npz", "parquet", "pickle", "skops"})
_BLOB_NAME = re.compile(r"[0-9a-f]{64}\.(npy|npz|parquet|pickle|skops)\Z")
DEFAULT_REMEDY = ("run the experiment again to write it anew (for a file of a baseline, save the "
                  "baseline again with --nw-save-baseline=NAME)")


class BlobError(StoreError):
    """A value file is missing or unreadable; the message names it and what to do."""


class BlobStore:
    """Content-addressed folder of value files: `<sha256>.<ext>` (ext in npy, npz, parquet, pickle).

    `remedy` is how error messages tell the user to get a missing or damaged file back. A
    subclass names other kinds of files by content (`EXTENSIONS`, `NAME`, `WHAT`).
    """

    EXTENSIONS = BLOB_EXTENSIONS
    NAME = _BLOB_NAME
    WHAT = "value file"

    def __init__(self, root: str | os.PathLike[str], remedy: str = DEFAULT_REMEDY,
                 linkable: tuple[str | os.PathLike[str], ...] = ()) -> None:
        self.root = Path(root)
        self.remedy = remedy
        self.linkable = tuple(Path(folder) for folder in linkable)  # other folders of blobs `adopt` may link from

    def __repr__(self) -> str:
        return f"BlobStore({str(self.root)!r})"

    def temp_path(self) -> Path:
        """A fresh empty file inside the store (same filesystem), to fill and hand to put_file."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".part")
        os.close(fd)
        return Path(name)

    def put_bytes(self, data: bytes, ext: str) -> str:
        """Store `data`; return its blob name. An intact blob of that name is left untouched."""
        self._check_extension(ext)
        name = f"{hashlib.sha256(data).hexdigest()}.{ext}"
        if not self.intact(name):
            tmp = self.temp_path()
            try:
                tmp.write_bytes(data)
                os.replace(tmp, self.root / name)
            finally:
                tmp.unlink(missing_ok=True)
        return name

    def put_file(self, tmp_path: Path, ext: str, digest: str | None = None) -> str:
        """Move a finished file into the store; return its blob name.

        `digest` is the sha256 of the file's bytes when the caller computed it as it wrote them:
        the file is then not read again, and replaces a blob of that name, which costs a rename
        where checking that blob would read it whole. Without it the file is hashed by streaming.
        """
        self._check_extension(ext)
        tmp_path = Path(tmp_path)
        known = digest is not None
        if digest is None:
            with open(tmp_path, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
        name = f"{digest}.{ext}"
        target = self.path(name)  # os.replace below replaces a link there, never writes through it
        self.root.mkdir(parents=True, exist_ok=True)
        if not known and self.intact(name):
            tmp_path.unlink()
            return name
        try:
            os.replace(tmp_path, target)
        except OSError:
            # Another filesystem: copy next to the target first so the final step stays atomic.
            local = self.temp_path()
            try:
                shutil.copyfile(tmp_path, local)
                os.replace(local, target)
            finally:
                local.unlink(missing_ok=True)
            tmp_path.unlink()
        return name

    def adopt(self, name: str, size: int) -> bool:
        """Make blob `name`, of `size` bytes, present without writing it: True when it is here
        already or could be hard-linked from one of the `linkable` folders; False when it must
        be written. Only a regular file (no link) of that size whose bytes hash to its name is
        taken (reading and hashing it costs less than writing it): a damaged one is not passed
        on, and a file on another filesystem is written instead."""
        target = self.path(name)
        if _regular_of_size(target, size) and self.intact(name):
            return True
        for folder in self.linkable:
            source = folder / name
            if not (_regular_of_size(source, size) and type(self)(folder).intact(name)):
                continue
            tmp = self.temp_path()
            try:
                tmp.unlink()
                os.link(source, tmp)
                os.replace(tmp, target)
                return True
            except OSError:
                continue  # another filesystem, no hard links there: try the next, or write it
            finally:
                tmp.unlink(missing_ok=True)
        return False

    def path(self, name: str) -> Path:
        if not isinstance(name, str) or not self.NAME.match(name):
            raise StoreError(f"{short(name, 80)} is not a blob name (expected "
                             f"'<sha256>.{'|'.join(sorted(self.EXTENSIONS))}')")
        return self.root / name

    def open(self, name: str) -> BinaryIO:
        path = self.path(name)
        if os.path.islink(path):
            check_within(self.root, path, self.WHAT)
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise BlobError(f"blob {name} is missing from {self.root}; {self.remedy}") from None
        except OSError as exc:
            raise self.damaged(name, f"cannot be opened ({exc.strerror or exc})") from None

    def damaged(self, name: str, problem: str) -> BlobError:
        """The error for a blob whose content cannot be read back: its path, `problem`, the remedy."""
        return BlobError(f"{self.root / name}: {problem}; the file is damaged: delete it, then {self.remedy}")

    def intact(self, name: str) -> bool:
        """True when blob `name` exists and holds what its name (the sha256 of its bytes) says."""
        path = self.path(name)
        try:
            if os.path.islink(path):
                check_within(self.root, path, self.WHAT)
            with open(path, "rb") as handle:
                return hashlib.file_digest(handle, "sha256").hexdigest() == name.partition(".")[0]
        except (OSError, OutsideError):
            return False

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.NAME.match(name)) and (self.root / name).is_file()

    def _check_extension(self, ext: str) -> None:
        if ext not in self.EXTENSIONS:
            raise ValueError(f"unknown blob extension {ext!r} for a {self.WHAT}; expected one of {sorted(self.EXTENSIONS)}")


def is_blob_name(name: object) -> bool:
    """Whether `name` is a blob's file name, ``<sha256>.npy|npz|parquet|pickle|skops``."""
    return isinstance(name, str) and bool(_BLOB_NAME.match(name))


def _regular_of_size(path: Path, size: int) -> bool:
    import stat

    try:
        found = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(found.st_mode) and found.st_size == size

