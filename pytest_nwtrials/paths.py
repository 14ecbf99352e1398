"""Paths read from committed or stored files, kept inside their folder.

Trial records, baseline entries and reports name files by relative paths that anyone who can
commit to the repository can edit. Every such path goes through `inside` before anything is
read, written or deleted through it: it must be relative, free of ``..``, and stay inside its
folder once symbolic links are resolved, so a crafted record or a folder replaced by a link
never reaches a file outside the project.
"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from .errors import StoreError, short


class OutsideError(StoreError):
    """A path that would leave its folder: absolute, with ``..``, or through a symbolic link."""


def inside(folder: Path, relative: str | os.PathLike[str], what: str = "a path") -> Path:
    """`folder / relative`, checked to stay inside `folder`; OutsideError naming it otherwise.

    `relative` must be a relative POSIX path without ``..`` or empty parts, and no symbolic
    link on the way from `folder` may lead out of `folder` (links inside it are allowed).
    """
    text = os.fspath(relative)
    parts = PurePosixPath(text).parts
    if (not text or "\\" in text or "\0" in text or PurePosixPath(text).is_absolute()
            or any(part in ("..", ".") for part in text.split("/")) or not parts):
        raise OutsideError(f"{what} {short(text, 120)} is not a relative path inside {folder}")
    target = Path(folder, *parts)
    check_within(folder, target, what)
    return target


def check_within(folder: Path, target: Path, what: str = "a path") -> None:
    """OutsideError when `target`, with its links resolved, is not `folder` or below it."""
    real_folder = Path(os.path.realpath(folder))
    real_target = Path(os.path.realpath(target))
    if real_target != real_folder and real_folder not in real_target.parents:
        raise OutsideError(f"{what} {target} leads outside {folder} (to {real_target}); remove the link "
                           f"or the file that names it")

