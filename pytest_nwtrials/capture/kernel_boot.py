"""How a capture kernel starts before it knows its notebook, and how it then takes one on.

Kernels are started ahead of need (`notebook_warm`), so at launch a kernel knows only how to
start: ``boot.json``, beside the spec file named by ``NWTRIALS_KERNEL_SPEC``, holds
``{"lifeline": ..., "preload": bool}``. With ``preload`` it imports, before it answers, what
creating a trial imports (the fork server's list for scripts) and writes an empty trial database
to copy, so that a notebook under capture does not wait for noWorkflow. The driver
writes the spec file, the run's capture spec (`launch.capture_spec` plus ``"notebook"``), before
it sends the start request; the kernel reads it then, takes on the changes of pytest's
environment since it started (``"environ"``), and takes the notebook's folder as its working
directory and as the first entry of ``sys.path``: what a kernel launched then, in that folder, has.
"""
from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from typing import Any

SPEC_ENV = "NWTRIALS_KERNEL_SPEC"
BOOT_FILE = "boot.json"  # beside the spec file: the kernel may start before the spec is written
TEMPLATE_DIR = "template"  # beside the spec file: the empty trial database made while starting
# IPython imports these only to show a traceback: imported before the notebook runs, they are not
# taken for libraries the notebook used
TRACEBACK_MODULES = ("stack_data", "pygments.formatters", "pygments.lexers")


def read_boot() -> dict[str, Any]:
    return _read(_beside_spec(BOOT_FILE))


def read_spec() -> dict[str, Any]:
    return _read(os.environ[SPEC_ENV])


def _read(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def preload(noworkflow: bool) -> None:
    """Import what showing a traceback imports; with `noworkflow`, what creating a trial imports
    (and configure SQLAlchemy's mappers, as the fork server does), and write the empty database."""
    import_traceback_modules()
    if not noworkflow:
        return
    from .forkserver import PRELOAD

    for name in PRELOAD:
        with contextlib.suppress(Exception):  # imported again when the trial starts, which reports it
            importlib.import_module(name)
    with contextlib.suppress(Exception):
        importlib.import_module("sqlalchemy.orm").configure_mappers()
        from .provenance_db import create_database

        create_database(_beside_spec(TEMPLATE_DIR))


def import_traceback_modules() -> None:
    for name in TRACEBACK_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def template_database() -> str | None:
    """The folder of the empty trial database made while the kernel started, if there is one."""
    folder = _beside_spec(TEMPLATE_DIR)
    return folder if os.path.isdir(folder) else None


def _beside_spec(name: str) -> str:
    return os.path.join(os.path.dirname(os.environ[SPEC_ENV]), name)


def take_notebook() -> dict[str, Any]:
    """The run's capture spec; the kernel moves into the notebook's folder (see the module docstring)."""
    spec = read_spec()
    changes = spec.get("environ") or {}
    os.environ.update(changes.get("set") or {})
    for name in changes.get("unset") or ():
        os.environ.pop(name, None)
    launched = os.getcwd()
    folder = os.path.dirname(os.path.abspath(spec["notebook"]))
    os.chdir(folder)
    if sys.path and sys.path[0] == launched:  # ``python -m`` put the launch folder first
        sys.path[0] = folder
    return spec
