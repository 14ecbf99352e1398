"""Which local store and which folder of baselines a project uses: one rule for pytest, the
`nwtrials` command and the Python API.

ini ``nw_store`` and ``nw_baselines_dir`` name folders relative to the rootdir, which must stay
inside it (`configured_folder`, what settings.py resolves them with). pytest knows its rootdir;
the command and the API, which run without pytest, find it as pytest does when started in the
working directory with no arguments (``locate_config`` in ``_pytest/config/findpaths.py``):
from that folder up, the first folder holding, in this order,

1. ``pytest.toml`` or ``.pytest.toml`` (its ``[pytest]`` table), ``pytest.ini`` or
   ``.pytest.ini``: each is the configuration even when empty;
2. ``pyproject.toml`` with a ``[tool.pytest]`` or ``[tool.pytest.ini_options]`` table;
3. ``tox.ini`` with a ``[pytest]`` section, ``setup.cfg`` with ``[tool:pytest]``;

and, when no folder has one, the nearest ``pyproject.toml`` (with no settings). Its folder is the
rootdir. pytest's own options that move it (``--rootdir``, ``-c``, ``-o``) are not seen here:
``--store`` and ``--baselines`` name the folders then. Without any configuration file, the store
is the nearest ``.nwtrials`` at or above the working directory.

pytest is not imported here (the store is pure core): ``.ini`` and ``.cfg`` files are read with
iniconfig, the parser pytest itself uses, and TOML with the standard library's tomllib.
"""
from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..paths import OutsideError, check_within
from .layout import BASELINES_DIR, BASELINES_KEY, STORE_DIR, STORE_KEY, is_store


class ConfigError(ValueError):
    """A configuration file or folder setting the store cannot be found with; the message says which."""


def configured_folder(rootdir: Path, key: str, raw: Any, default: str) -> Path:
    """The folder of ini `key` (``nw_store`` or ``nw_baselines_dir``) with value `raw` (empty:
    `default`), relative to `rootdir` and resolved; ConfigError when it leads outside the rootdir.

    The plugin writes and deletes in these folders, so a committed ``../`` path, absolute path or
    symbolic link must not point them at files outside the project.
    """
    given = str(raw).strip() if raw is not None else ""
    path = rootdir / (given or default)
    try:
        check_within(rootdir, path, f"ini {key}")
    except OutsideError:
        setting = f"ini {key} = {given}" if given else str(path)
        which = "" if given else f", the folder of ini {key}"
        raise ConfigError(
            f"{setting} leads outside the rootdir {rootdir} (to {path.resolve()}){which}: the plugin writes "
            f"and deletes files there, so it must be a folder inside the project; change the setting or "
            f"remove the link") from None
    return path.resolve()


@dataclass(frozen=True)
class Project:
    """A rootdir and the pytest settings of its configuration file."""

    rootdir: Path
    config: Path  # the file pytest reads its settings from
    ini: Mapping[str, Any]

    @property
    def store(self) -> Path:
        return configured_folder(self.rootdir, STORE_KEY, self.ini.get(STORE_KEY), STORE_DIR)

    @property
    def baselines(self) -> Path:
        return configured_folder(self.rootdir, BASELINES_KEY, self.ini.get(BASELINES_KEY), BASELINES_DIR)

    def source(self, key: str) -> str:
        """Where the folder of `key` comes from, for messages."""
        if self.ini.get(key):
            return f"ini {key} = {str(self.ini[key]).strip()} in {self.config}"
        return f"the default of ini {key} for the rootdir of {self.config}"


def _ini_section(path: Path, *sections: str, always: bool = False) -> dict[str, Any] | None:
    import iniconfig

    try:
        ini = iniconfig.IniConfig(str(path))
    except (iniconfig.ParseError, OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read as pytest's configuration ({exc})") from None
    for section in sections:
        if section in ini:
            return dict(ini[section].items())
    return {} if always else None


def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read as pytest's configuration ({exc})") from None


def _pyproject(path: Path) -> dict[str, Any] | None:
    tool = _toml(path).get("tool")
    table = tool.get("pytest") if isinstance(tool, dict) else None
    if not isinstance(table, dict):
        return None
    native = {key: value for key, value in table.items() if key != "ini_options"}
    if native:
        return native
    ini_options = table.get("ini_options")
    return dict(ini_options) if isinstance(ini_options, dict) else None


def _pytest_toml(path: Path) -> dict[str, Any]:
    table = _toml(path).get("pytest")
    return dict(table) if isinstance(table, dict) else {}


# pytest's configuration files in its order of precedence within a folder; each reader gives the
# settings, or None when the file holds no pytest configuration
CONFIG_FILES: dict[str, Callable[[Path], dict[str, Any] | None]] = {
    "pytest.toml": _pytest_toml,
    ".pytest.toml": _pytest_toml,
    "pytest.ini": lambda path: _ini_section(path, "pytest", always=True),
    ".pytest.ini": lambda path: _ini_section(path, "pytest", always=True),
    "pyproject.toml": _pyproject,
    "tox.ini": lambda path: _ini_section(path, "pytest"),
    "setup.cfg": lambda path: _ini_section(path, "tool:pytest"),
}


def _project_at(folder: Path) -> Project | None:
    """The project whose configuration file is in `folder`, by pytest's order; None when none is."""
    for name, read in CONFIG_FILES.items():
        path = folder / name
        if path.is_file():
            ini = read(path)
            if ini is not None:
                return Project(folder, path, ini)
    return None


def find_project(start: Path | None = None) -> Project | None:
    """The project pytest would use started in `start` (default: the working directory), found by
    its configuration file; None when there is none. ConfigError when that file cannot be read."""
    here = Path(os.path.abspath(start or Path.cwd()))
    first_pyproject = None
    for folder in (here, *here.parents):
        project = _project_at(folder)
        if project is not None:
            return project
        if first_pyproject is None and (folder / "pyproject.toml").is_file():
            first_pyproject = folder / "pyproject.toml"
    return Project(first_pyproject.parent, first_pyproject, {}) if first_pyproject is not None else None


def nearest(start: Path, name: str, accept: Callable[[Path], bool]) -> Path | None:
    """The nearest `name` at `start` or above it that `accept` takes."""
    here = Path(os.path.abspath(start))
    for folder in (here, *here.parents):
        if accept(folder / name):
            return folder / name
    return None


def default_store(start: Path | None = None) -> Path:
    """The store of the project at `start` (default: the working directory): its ini's ``nw_store``
    at its rootdir or, without a configuration file, the nearest ``.nwtrials`` at or above `start`.
    LookupError saying where it looked and what to do when there is none yet."""
    here = Path(os.path.abspath(start or Path.cwd()))
    project = find_project(here)
    if project is None:
        found = nearest(here, STORE_DIR, is_store)
        if found is None:
            raise LookupError(f"no trial store ({STORE_DIR}) found in {here} or above it; "
                              "run pytest on the experiments first")
        return found
    store = project.store
    if not is_store(store):
        raise LookupError(f"no trial store at {store} ({project.source(STORE_KEY)}); "
                          "run pytest on the experiments first")
    return store


def store_in(folder: Path) -> Path | None:
    """The store of the project whose rootdir is `folder`, when its configuration file is right
    there (a folder given for a store may be the project's)."""
    project = _project_at(Path(os.path.abspath(folder)))
    return project.store if project is not None else None


def default_baselines(start: Path | None = None) -> tuple[Path, Path] | None:
    """The folder of baselines of the project at `start` (default: the working directory) and the
    rootdir it must stay in: its ini's ``nw_baselines_dir`` or, without a configuration file,
    ``nw-baselines`` next to the nearest store, else the nearest ``nw-baselines``; None when none
    is found."""
    here = Path(os.path.abspath(start or Path.cwd()))
    project = find_project(here)
    if project is not None:
        return project.baselines, project.rootdir
    found = nearest(here, STORE_DIR, is_store) or nearest(here, BASELINES_DIR, Path.is_dir)
    if found is None:
        return None
    return found.parent / BASELINES_DIR, found.parent


def baselines_beside(store: Path) -> tuple[Path, Path]:
    """The folder of baselines that goes with the store `store`, and the rootdir it must stay in:
    that of the project whose configuration names this store, else ``nw-baselines`` next to it."""
    try:
        project = find_project(store)
        if project is not None and project.store == Path(store).resolve():
            return project.baselines, project.rootdir
    except ConfigError:
        pass  # a store named by hand: its neighbour, as before configurations were read here
    return store.parent / BASELINES_DIR, store.parent
