"""Which modules the experiment imported, as opposed to what capture and recording imported.

Fault: the library list was every module loaded between the start and the end of the run.
Recording a tag loads the value encoders on first use (numpy for any tag; pyarrow and
cloudpickle for a data frame), and with them their dependencies; a notebook's kernel loads
more between cells. Symptom: an experiment that imported only ``json`` listed numpy; one that
tagged a data frame listed pyarrow and cloudpickle, which it never imported. Preloading the
encoders before the run instead would hide them when the experiment does import them (numpy is
then already loaded), and would add to each warm fork server's start what they cost to import
(measured: numpy 0.29 s, pyarrow with numpy 0.26 s, pandas 0.93 s), for experiments that tag no
array as well.

Repair: `ImportLedger` notes the modules first loaded while our own code runs (`ours`, around
recording a tag) and every top-level name asked of ``__import__`` while the experiment runs,
except by packages loaded before it started (the kernel, IPython, capture itself). A module loaded during the run counts as the experiment's unless it was first loaded
by our code and never asked for by the experiment: an experiment that tags an array and then
imports numpy itself still lists numpy. The snapshot is taken when the experiment's code ends
(`stop`), before the ``nw_tags`` variables are recorded. Measured cost: an import statement
takes 0.9 µs instead of 0.09 µs while the ledger watches, a few milliseconds for all the
import statements run when pandas is first imported.
"""
from __future__ import annotations

import builtins
import contextlib
import sys
import threading
from typing import Any, Iterator


class ImportLedger:
    """Tells the experiment's imports from ours, over one run (see the module docstring)."""

    def __init__(self) -> None:
        self.before: set[str] = set()
        self.after: set[str] | None = None
        self.requested: set[str] = set()  # top-level names the experiment imported
        self.loaded_by_us: set[str] = set()  # modules our code loaded first
        self._loaded_tops: set[str] = set()
        self._ours = threading.local()
        self._original: Any = None
        self._wrapper = self._import  # one bound method, to tell it from a later replacement

    def start(self) -> None:
        """Begin the run: what is loaded now is not the experiment's."""
        self.before = set(sys.modules)
        self._loaded_tops = {name.partition(".")[0] for name in self.before} - {"__main__"}
        self.after = None
        if self._original is None:
            self._original = builtins.__import__
            builtins.__import__ = self._wrapper

    def stop(self) -> None:
        """The experiment's code has ended: take the snapshot, stop watching imports."""
        if self.after is None:
            self.after = set(sys.modules)
        if self._original is not None:
            if builtins.__import__ is self._wrapper:
                builtins.__import__ = self._original
                self._original = None

    def _import(self, name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0):
        if level == 0 and self.after is None and not getattr(self._ours, "depth", 0) \
                and not self._from_loaded_package(globals):
            self.requested.add(name.partition(".")[0])
        return (self._original or _builtin_import)(name, globals, locals, fromlist, level)

    def _from_loaded_package(self, globals: Any) -> bool:
        """Whether the import statement is in a package loaded before the run (the kernel, IPython,
        capture), not in the experiment or a library it loaded: IPython's display formatter, for
        one, imports numpy on the first result it shows."""
        importer = globals.get("__name__") if isinstance(globals, dict) else None
        if not isinstance(importer, str) or importer == "__main__":
            return False
        return importer.partition(".")[0] in self._loaded_tops

    @contextlib.contextmanager
    def ours(self) -> Iterator[None]:
        """A block of capture or recording code: the modules it loads first are not the experiment's."""
        depth = getattr(self._ours, "depth", 0)
        loaded = set(sys.modules) if depth == 0 else None
        self._ours.depth = depth + 1
        try:
            yield
        finally:
            self._ours.depth = depth
            if loaded is not None:
                self.loaded_by_us.update(set(sys.modules) - loaded)

    def not_the_experiments(self) -> set[str]:
        """Module names to leave out of the library list: loaded before the run, after the
        experiment's code ended, or by our code and never imported by the experiment."""
        after = self.after if self.after is not None else set(sys.modules)
        ours = {name for name in self.loaded_by_us if name.partition(".")[0] not in self.requested}
        return self.before | ours | (set(sys.modules) - after)


_builtin_import = builtins.__import__
LEDGER = ImportLedger()


def ours() -> contextlib.AbstractContextManager:
    """`ImportLedger.ours` of the process's ledger."""
    return LEDGER.ours()
