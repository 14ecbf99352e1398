"""Repairs to the run around the experiment's code under noWorkflow: namespace, files,
processes and threads.

See `repairs` for when they are applied. File accesses on directories (``tempfile``) are
repaired where files are recorded, in `file_access.not_a_file_access`.
"""
from __future__ import annotations

import atexit
import builtins
import contextlib
import sys
import threading
import traceback
from importlib.machinery import SourceFileLoader
from collections.abc import Iterator
from typing import Any


def install(metascript: Any) -> None:
    """Apply the runtime repairs (idempotent: process-level patches once per process)."""
    main_module_as_python_sets_it(metascript)


def main_module_as_python_sets_it(metascript: Any) -> None:
    """Give the script's namespace the module attributes ``python script.py`` gives ``__main__``.

    Fault: ``Metascript.clear_namespace`` leaves ``__name__``, ``__file__`` and ``__builtins__``
    only. Symptom: ``multiprocessing`` with the spawn or forkserver start method fails in the
    parent with "AttributeError: module '__main__' has no attribute '__spec__'"
    (`multiprocessing.spawn.get_preparation_data` reads it), and code that reads ``__package__``
    or ``__loader__`` fails the same way. Repair: after noWorkflow clears the namespace, set
    ``__spec__`` and ``__package__`` to None and ``__loader__`` to a source loader, as Python
    does for a script. A spawned child then re-runs the script as ``__mp_main__`` from
    ``__file__`` (as it does without capture) and finds the functions defined in it, which
    pickle by reference to ``__main__``. Measured: ``get_context("spawn").Pool(2).map(f,
    range(4))`` returns ``[0, 1, 4, 9]`` under fine and coarse capture, as under plain Python; the
    children run the script without capture, so the trial records the parent's calls and the
    values they return, not what the children did. Notebooks are left as Jupyter leaves them:
    there a function defined in a cell cannot be found by a spawned child either.
    """
    clear = metascript.clear_namespace
    if getattr(clear, "repaired", False):
        return

    def clear_namespace(erase: bool = True) -> None:
        clear(erase)
        metascript.namespace.update({
            "__spec__": None,
            "__package__": None,
            "__loader__": SourceFileLoader("__main__", metascript.path),
        })

    clear_namespace.repaired = True  # type: ignore[attr-defined]
    metascript.clear_namespace = clear_namespace


def running_threads() -> set[threading.Thread]:
    """The threads alive now: those `join_experiment_threads` leaves alone (the capture's own)."""
    return set(threading.enumerate())


def join_experiment_threads(existing: set[threading.Thread]) -> None:
    """Wait for the non-daemon threads the experiment started, as the interpreter does at exit.

    Fault: the capture recorded the result as soon as the experiment's last line ran. Symptom:
    a tag set by a non-daemon thread that ends after the last line was missing (under plain
    Python the interpreter joins such threads before it exits, see ``threading._shutdown``).
    Repair: join every non-daemon thread started since `existing` was taken, again until none
    is left (a thread may start another), before the trial is recorded. A thread that never
    ends makes the item time out, as it makes ``python script.py`` hang. Daemon threads are
    not waited for, as Python does not wait for them.
    """
    current = threading.current_thread()
    while True:
        pending = [thread for thread in threading.enumerate()
                   if thread not in existing and thread is not current and not thread.daemon]
        if not pending:
            return
        for thread in pending:
            thread.join()


class ExitHandlers:
    """The ``atexit`` handlers the experiment registers, run when its code ends.

    Under ``python script.py`` the interpreter runs them at exit, after joining threads; the
    capture process ends without running them (it is a fork server's child, ended with
    ``os._exit``), so a handler that wrote a results file or tagged a value did nothing.
    While the experiment runs, ``atexit.register`` and ``atexit.unregister`` keep its handlers
    here; `run` calls them as the interpreter does, last registered first, an exception printed
    as "Exception ignored in atexit callback" and the next handler run. Handlers registered
    before the experiment started (by the capture process) are left to it.
    """

    def __init__(self) -> None:
        self.registered: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = []
        self._originals: tuple[Any, Any] | None = None

    def __enter__(self) -> ExitHandlers:
        self._originals = (atexit.register, atexit.unregister)

        def register(func: Any, /, *args: Any, **kwargs: Any) -> Any:
            self.registered.append((func, args, kwargs))
            return func

        def unregister(func: Any) -> None:
            self.registered[:] = [entry for entry in self.registered if entry[0] != func]

        atexit.register, atexit.unregister = register, unregister
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._originals is not None:
            atexit.register, atexit.unregister = self._originals

    def run(self) -> None:
        """Call the handlers, last registered first, as the interpreter does at exit."""
        while self.registered:
            func, args, kwargs = self.registered.pop()
            try:
                with _called_from_outside():
                    func(*args, **kwargs)
            except BaseException:  # noqa: BLE001 - as the interpreter: reported, and the next runs
                print(f"Exception ignored in atexit callback: {func!r}", file=sys.stderr)
                traceback.print_exc()


@contextlib.contextmanager
def _called_from_outside() -> Iterator[None]:
    """Let a function of the experiment be called after its last line, outside any of its calls.

    noWorkflow (2.1.3) takes a call of a rewritten function that its own code did not make for
    a call back from a library, and reads the library call in progress from the innermost
    activation (``activation.dependencies[-2]``); after the script's last line there is none,
    and the call failed with ``IndexError: list index out of range``. Here the innermost
    activation is given an empty call in progress while the function runs: its parameters are
    recorded without dependencies, which is all that is known of such a call.
    """
    collector = getattr(builtins, "__noworkflow__", None)
    activation = getattr(collector, "last_activation", None)
    if activation is None or not getattr(activation, "active", False):
        yield
        return
    from noworkflow.now.collection.prov_execution.structures import DependencyAware

    outside = [DependencyAware(), DependencyAware()]
    activation.dependencies.extend(outside)
    try:
        yield
    finally:
        activation.dependencies[:] = [d for d in activation.dependencies if all(d is not o for o in outside)]
