"""The optional dependencies, installed by extras, and the error that names the extra to install.

A core install records, compares and browses trials of any value but two kinds: pandas
DataFrames and Series are stored as Parquet, which needs pyarrow (the ``frames`` extra), and
plots need matplotlib (the ``plots`` extra). The modules that use them call `require` where they
first import them, so a missing extra is one line saying what to install, not a traceback.
"""
from __future__ import annotations

import importlib
from types import ModuleType

PACKAGE = "pytest-nwtrials"
# extra -> the top-level modules it provides (the ``models`` extra's skops is optional where it
# is used: values/models.py keeps a model's summary without it)
EXTRAS = {
    "frames": ("pyarrow",),
    "plots": ("matplotlib",),
    "models": ("skops",),
}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def install_hint(extra: str) -> str:
    """The command that installs `extra`: ``pip install 'pytest-nwtrials[frames]'``."""
    return f"pip install '{PACKAGE}[{extra}]'"


def require(module: str, extra: str, what: str) -> ModuleType:
    """`module`, imported; `MissingExtra` naming `extra` when it cannot be imported.

    `what` is what needs it, as the start of a sentence: "Plotting tags".
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = module.partition(".")[0]
        if exc.name is not None and exc.name.partition(".")[0] != missing:
            raise  # the module is there but one of its own imports failed: that error says more
        raise MissingExtra(f"{what} needs {missing}, from the '{extra}' extra: {install_hint(extra)}",
                           name=missing) from None
