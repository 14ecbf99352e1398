"""Files that are written whole or not at all, and JSON that is read or refused by name.

Every file of the store and of baselines is written through a temporary file beside it and
`os.replace`, so a reader sees all of it or none, whatever stops the writer.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from .errors import StoreError


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` through a temporary file beside it, so readers see all of it or none."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` as UTF-8 to `path` atomically (see `write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike[str], doc: Any) -> None:
    """Write `doc` as JSON atomically; a document JSON refuses raises before anything is written."""
    write_text_atomic(path, json.dumps(doc, indent=1, allow_nan=False) + "\n")


def copy_atomic(source: Path, target: Path) -> None:
    """Copy a file so that `target` is either absent or whole."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_json(path: Path) -> Any:
    """Load a JSON file, turning every way it can be broken into a StoreError naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise StoreError(f"{path}: cannot be read as JSON ({exc})") from None
    except RecursionError:
        raise StoreError(f"{path}: cannot be read as JSON (nested too deeply)") from None
