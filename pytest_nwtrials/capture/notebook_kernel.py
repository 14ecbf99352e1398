"""The capture kernel as Jupyter sees it: its kernelspec, the client that tells it which cell it
runs, and what to say when it does not start."""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from . import lifeline
from .kernel_boot import SPEC_ENV

KERNEL_MODULE = "pytest_nwtrials.capture.kernel"
# the same name as in `capture.kernel`, which is not imported here: it imports ipykernel
META_KEY = "nwtrials"
TRACEBACK_LINES = 40  # lines of the kernel's last traceback quoted when it does not start


class NotebookError(Exception):
    """A notebook that cannot be run as it is: unreadable, not nbformat 4, or its kernel is missing."""


def kernel_spec(kernel: str | None, notebook: Path, spec_path: Path) -> tuple[Any, str, str]:
    """Our kernel's spec, its Python and a name for messages: the capture kernel on this Python,
    or on the interpreter (argv[0]) of the kernelspec named `kernel`, with that spec's environment."""
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel

    python, env, name = sys.executable, {}, "this Python"
    if kernel:
        specs = KernelSpecManager()
        try:
            named = specs.get_kernel_spec(kernel)
        except NoSuchKernel:
            available = ", ".join(sorted(specs.find_kernel_specs())) or "none"
            raise NotebookError(
                f"{notebook}: no Jupyter kernel named {kernel!r} (--nw-kernel / nw_kernel); "
                f"kernels available: {available}. Pick one of them (`jupyter kernelspec list`), "
                f"or install one with `python -m ipykernel install --user --name {kernel}`") from None
        if (named.language or "").lower() != "python" or not named.argv:
            raise NotebookError(
                f"{notebook}: kernel {kernel!r} runs {named.language or 'an unknown language'}; "
                "notebooks are captured by a Python kernel")
        python, env, name = named.argv[0], dict(named.env or {}), f"kernel {kernel!r}"
    env[SPEC_ENV] = str(spec_path)
    env.setdefault("PYTHONIOENCODING", "utf-8")
    # IPython's history would go to one shared sqlite file in the user's home
    argv = [python, "-m", KERNEL_MODULE, "-f", "{connection_file}", "--HistoryManager.hist_file=:memory:"]
    if lifeline.pass_fds():
        # the lifeline ends the kernel's whole group when pytest is gone; ipykernel's own check
        # would end the kernel alone, leaving what the cells started running, and could come first
        argv.append("--IPKernelApp.parent_handle=0")
    return KernelSpec(
        argv=argv,
        display_name=f"pytest-nwtrials capture ({name})",
        language="python",
        env=env,
        interrupt_mode="signal",
    ), python, name


def classes() -> tuple[type, type, type]:
    """Our kernel client, spec manager and kernel manager (jupyter_client imported on first use)."""
    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import Any as AnyTrait
    from traitlets import Dict

    class CellClient(AsyncKernelClient):
        """Sends with each execute request which notebook cell it is, for the capture kernel."""

        request = Dict()

        def execute(self, code, silent=False, store_history=True, user_expressions=None,
                    allow_stdin=None, stop_on_error=True):
            content = {
                "code": code, "silent": silent, "store_history": store_history,
                "user_expressions": user_expressions or {},
                "allow_stdin": self.allow_stdin if allow_stdin is None else allow_stdin,
                "stop_on_error": stop_on_error,
            }
            msg = self.session.msg("execute_request", content, metadata={META_KEY: dict(self.request)})
            self.shell_channel.send(msg)
            return msg["header"]["msg_id"]

    class OneKernel(KernelSpecManager):
        """A spec manager that knows only the capture kernel's spec."""

        spec = AnyTrait()

        def get_kernel_spec(self, kernel_name, *args, **kwargs):
            return self.spec

    return CellClient, OneKernel, AsyncKernelManager


def start_failure(notebook: Path, kernel_name: str, python: str, log_path: Path, exc: Exception) -> str:
    """Why the kernel did not start: the driver's error, and the kernel's last traceback or output."""
    output = log_path.read_text(encoding="utf-8", errors="replace").strip()
    shown = kernel_traceback(output) or "\n".join(output.splitlines()[-15:])
    hint = ""
    if "No module named" in shown:
        hint = (f"\nThe capture kernel needs pytest-nwtrials, noworkflow and ipykernel installed for {python}.")
    return (f"{notebook}: the capture kernel ({kernel_name}, {python}) did not start: {exc}"
            + (f"\n{shown}" if shown else "") + hint)


_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line \d+')


def kernel_traceback(output: str) -> str | None:
    """The last traceback in the kernel's output, from the first frame of this plugin on (the
    frames of Python's and ipykernel's start-up machinery before it say nothing), or None."""
    head = "Traceback (most recent call last):"
    if head not in output:
        return None
    lines = output[output.rindex(head):].splitlines()
    frames = [i for i, line in enumerate(lines) if _FRAME.match(line)]
    own = [i for i in frames if (match := _FRAME.match(lines[i])) and "pytest_nwtrials" in match.group("file")]
    if own and own[0] != frames[0]:
        lines = [lines[0], "  ...", *lines[own[0]:]]
    if len(lines) > TRACEBACK_LINES:
        lines = lines[:2] + ["  ..."] + lines[-(TRACEBACK_LINES - 3):]
    return "\n".join(lines)
