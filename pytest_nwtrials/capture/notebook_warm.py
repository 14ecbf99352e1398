"""Capture kernels started ahead of need: the next notebook's kernel starts while this one runs.

A capture kernel takes about a second to start and, under capture, about another to import
noWorkflow (`kernel_boot.preload`). `prepare` starts the kernels of the notebooks about to run
(the pytest side names them: the running item's and the next one's), so that when a notebook's
turn comes its kernel has done both; `take` hands a notebook the oldest waiting kernel that fits
it, or starts one then. Each kernel serves one notebook and ends with it: every notebook still
gets a process of its own, so nothing one leaves (variables, imported modules, patched builtins,
threads) reaches the next.

A waiting kernel has a temporary folder of its own (connection file and local sockets, spec
file, log), leads its own process group and holds pytest's lifeline (`capture.lifeline`): it
ends when pytest is gone, however pytest ends; `shutdown` (at pytest_unconfigure, and at exit)
ends those still waiting. A kernel fits a notebook when it runs the same kernelspec, preloaded
noWorkflow exactly when the run captures with it (a run with capture off must not find
noWorkflow's modules imported, and report them as the notebook's), and was started with the
values pytest has now of the variables read while a kernel starts (`STARTUP_PREFIXES`). Other
variables pytest set, changed or removed since (PYTEST_CURRENT_TEST, at least) are passed in the
spec and applied by the kernel before the trial starts (`kernel_boot.take_notebook`).
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import string
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import lifeline
from .kernel_boot import BOOT_FILE
from .launch import kill_group
from .capture_setup import CAPTURE_OPTIONS
from .notebook_kernel import NotebookError, kernel_spec, start_failure

# variables read while a kernel starts, by Python, the loader, IPython or Jupyter: a kernel started
# with other values cannot take on new ones
STARTUP_PREFIXES = ("PYTHON", "LD_", "IPYTHON", "JUPYTER", "JPY_")


@dataclass(frozen=True)
class Kind:
    """What a kernel must be to run a notebook: its kernelspec (None: this Python), and whether
    it preloads noWorkflow (for the modes that capture with it: fine and coarse)."""

    kernel: str | None
    preload: bool

    @classmethod
    def of(cls, kernel: str | None, capture: str) -> Kind:
        # any other mode runs, at least first, without noWorkflow
        return cls(kernel, capture in CAPTURE_OPTIONS)


class WarmKernel:
    """A capture kernel started for a notebook not yet given (see the module docstring)."""

    def __init__(self, kind: Kind, notebook: Path) -> None:
        """Start it; `notebook` is named by the errors: NotebookError for a kernelspec that is
        missing or not Python, or a kernel that could not be started at all."""
        self.kind = kind
        self.owner = os.getpid()
        self.environ = dict(os.environ)
        self.folder = Path(tempfile.mkdtemp(prefix="nwtrials-nb-"))
        try:
            self.spec, self.python, self.name = kernel_spec(kind.kernel, notebook, self.spec_path)
            (self.folder / BOOT_FILE).write_text(json.dumps({"lifeline": lifeline.share(), "preload": kind.preload}),
                                                 encoding="utf-8")
            self.connection_file = self._connection_file()
            self.cmd = [part.replace("{connection_file}", self.connection_file) for part in self.spec.argv]
            self.process = self._launch(notebook)
        except BaseException:
            self.remove_folder()
            raise

    @property
    def spec_path(self) -> Path:
        return self.folder / "spec.json"

    @property
    def result_path(self) -> Path:
        return self.folder / "result.json"

    @property
    def log_path(self) -> Path:
        return self.folder / "kernel.log"

    def _connection_file(self) -> str:
        from jupyter_client.connect import write_connection_file

        # local sockets in the kernel's own folder: no TCP ports, nothing written beside the notebook
        path, _ = write_connection_file(str(self.folder / "kernel.json"), ip=str(self.folder / "kernel"),
                                        transport="ipc", key=uuid.uuid4().hex.encode())
        return path

    def _launch(self, notebook: Path) -> subprocess.Popen:
        """Start the kernel as jupyter_client would: pytest's environment and the kernelspec's (its
        ``${VAR}`` filled in), in a session of its own; its output goes to the log file."""
        from jupyter_client.launcher import launch_kernel

        env = dict(self.environ)
        env.update({key: string.Template(value).safe_substitute(self.environ)
                    for key, value in (self.spec.env or {}).items()})
        env.pop("PYTHONEXECUTABLE", None)  # as jupyter_client: it would point the kernel elsewhere
        with open(self.log_path, "wb") as log:
            try:
                # its own folder as working directory: no module of the project's can stand in for
                # one the kernel imports while it starts (`kernel_boot` moves it to the notebook's)
                return launch_kernel(self.cmd, stdout=log.fileno(), stderr=log.fileno(), env=env, cwd=str(self.folder),
                                     pass_fds=lifeline.pass_fds())
            except OSError as exc:
                raise NotebookError(start_failure(notebook, self.name, self.python, self.log_path, exc)) from None

    def fits(self, kind: Kind) -> bool:
        return (self.owner == os.getpid() and kind == self.kind and self.process.poll() is None
                and _startup_vars(os.environ) == _startup_vars(self.environ))

    def environ_changes(self) -> dict[str, Any]:
        """How pytest's environment changed since the kernel started, for the kernel to apply:
        ``{"set": {name: value}, "unset": [name]}``; the kernelspec's own variables stay as set."""
        own = set(self.spec.env or {})
        return {"set": {name: value for name, value in os.environ.items()
                        if self.environ.get(name) != value and name not in own},
                "unset": sorted(name for name in self.environ if name not in os.environ and name not in own)}

    def provisioner(self, km: Any) -> Any:
        """A provisioner that hands kernel manager `km` this kernel instead of launching one."""
        return _provisioner_class()(kernel_id=str(uuid.uuid4()), kernel_spec=self.spec, parent=km, warm=self)

    def discard(self) -> None:
        """End the kernel, unused, and remove its folder."""
        if self.owner == os.getpid() and self.process.returncode is None:
            kill_group(self.process.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        self.remove_folder()

    def remove_folder(self) -> None:
        if self.owner == os.getpid():
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> WarmKernel:
        return self

    def __exit__(self, *exc: object) -> None:
        """After its notebook: the run has ended the kernel, unless it failed before it could."""
        if self.process.returncode is None and self.process.poll() is None:
            self.discard()
        self.remove_folder()


_provisioner: type | None = None


def _provisioner_class() -> type:
    """jupyter_client's local provisioner, adopting a `WarmKernel` (jupyter_client imported on first use)."""
    global _provisioner
    if _provisioner is None:
        from jupyter_client.provisioning import LocalProvisioner
        from traitlets import Any as AnyTrait

        class WarmProvisioner(LocalProvisioner):
            """Connects the kernel manager to a running `WarmKernel`; signals, kill and wait as usual."""

            warm = AnyTrait()

            async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
                km = self.parent
                assert km is not None  # a provisioner is made by its kernel manager
                km.connection_file = self.warm.connection_file
                km.load_connection_file()
                self.connection_info = km.get_connection_info()
                kwargs.pop("extra_arguments", None)
                return {**kwargs, "cmd": list(self.warm.cmd)}

            async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
                self.process = self.warm.process
                # launched in a session of its own: it leads its process group
                self.pid = self.pgid = self.process.pid
                self.cwd = str(self.warm.folder)
                return self.connection_info

        _provisioner = WarmProvisioner
    return _provisioner


# -- the kernels of this pytest process -----------------------------------------------------------

_waiting: list[WarmKernel] = []


def prepare(wanted: list[tuple[Kind, Path]]) -> None:
    """Have a kernel waiting for each notebook in `wanted` (its kind, and its path for messages),
    in order; kernels waiting for none of them are ended. A kernel that cannot start is left to
    `take`, which starts it again and reports why."""
    _forget_forked()
    left, kept = list(_waiting), []
    for kind, notebook in wanted:
        match = next((warm for warm in left if warm.fits(kind)), None)
        if match is not None:
            left.remove(match)
            kept.append(match)
            continue
        try:
            kept.append(WarmKernel(kind, notebook))
        except (NotebookError, OSError):
            continue
        atexit.unregister(shutdown)
        atexit.register(shutdown)
    for warm in left:
        warm.discard()
    _waiting[:] = kept


def take(kind: Kind, notebook: Path) -> WarmKernel:
    """The oldest waiting kernel that fits `kind`, else one started now (NotebookError if it cannot be)."""
    _forget_forked()
    for warm in list(_waiting):
        if warm.fits(kind):
            _waiting.remove(warm)
            return warm
        if warm.process.poll() is not None:  # it died waiting: a new one tells why, if it dies too
            _waiting.remove(warm)
            warm.discard()
    return WarmKernel(kind, notebook)


def shutdown() -> None:
    """End the kernels still waiting (at pytest_unconfigure and at exit)."""
    _forget_forked()
    while _waiting:
        _waiting.pop().discard()


def _startup_vars(env: Any) -> dict[str, str]:
    return {name: value for name, value in env.items() if name.startswith(STARTUP_PREFIXES)}


def _forget_forked() -> None:
    """In a fork of the pytest process the waiting kernels are the parent's: leave them to it."""
    if any(warm.owner != os.getpid() for warm in _waiting):
        _waiting.clear()
