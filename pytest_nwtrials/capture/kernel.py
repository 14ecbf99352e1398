"""The capture kernel: an IPython kernel whose whole session is recorded as one noWorkflow trial.

Started by `capture.notebook` as ``python -m pytest_nwtrials.capture.kernel -f CONNECTION_FILE``
with the capture spec (a JSON file) named by the environment variable ``NWTRIALS_KERNEL_SPEC``:
``{"notebook", "argv", "provenance_dir", "blobs_dir", "name", "capture", "ini_tags", "root",
"result"}``.

Each cell is run the way IPython runs it (magics and ``!shell`` are turned into plain Python by
``shell.transform_cell`` first), except that the cell's syntax tree is rewritten by noWorkflow's
AST rewriter as a code block of type ``cell`` (what upstream noWorkflow's own kernel does), so
every operation of the transformed code is recorded. Provenance is stored after each cell; the
trial is finished, and the result file written, when the driver sends an execute request whose
metadata holds ``{"nwtrials": {"finish": true}}``, or at shutdown if it never did.

The driver names the cell it sends in the request metadata: ``{"nwtrials": {"cell": 7,
"may_raise": false}}``; cells are numbered from 1 over all cells of the notebook, markdown
included, the way editors number them.

Inside magics: the statement of ``%time`` / ``%%time`` runs once and is captured like the rest
of the cell; the statement of ``%timeit`` runs many times and is not captured (only the magic
call and its text are), which also keeps the store from growing with every repetition.
"""
from __future__ import annotations

import builtins
import importlib
import importlib.util
import inspect
import json
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import wraps
from typing import Any

from ipykernel.ipkernel import IPythonKernel

from .. import __version__
from . import capture_fault, environment, experiment_imports, file_access, lifeline, repair_runtime, repairs
from . import recorder as _recorder
from ..files import write_json_atomic
from .runner import CAPTURE_OPTIONS

SPEC_ENV = "NWTRIALS_KERNEL_SPEC"
META_KEY = "nwtrials"

# names the rewritten cell code keeps in the user namespace (see noWorkflow's transformer_stmt)
_REWRITER_GLOBALS = ("__now_activation__", "__now_result__")


@dataclass
class Cell:
    """One executed cell, as the kernel saw it."""

    index: int | None  # 1-based over all cells of the notebook; None when the driver did not say
    execution_count: int
    source: str
    may_raise: bool = False
    filename: str | None = None  # the name IPython compiled it under
    line_offset: int = 0  # leading blank lines IPython dropped before compiling
    started: float = field(default_factory=time.perf_counter)
    duration: float = 0.0
    status: str = "running"  # ok, error, expected-error
    error: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"cell {self.index}" if self.index is not None else f"In [{self.execution_count}]"

    @property
    def key(self) -> str:
        """How results and provenance name the cell: its number, or its execution count."""
        return str(self.index) if self.index is not None else f"In[{self.execution_count}]"

    def to_json(self) -> dict[str, Any]:
        doc = {"execution_count": self.execution_count, "status": self.status,
               "duration": round(self.duration, 4)}
        if self.error is not None:
            doc["error"] = {"type": self.error["type"], "message": self.error["message"]}
        return doc


def _leading_blank_lines(source: str) -> int:
    """How many lines IPython's `leading_empty_lines` cleanup removes from the top of a cell."""
    lines = source.splitlines()
    for number, line in enumerate(lines):
        if line and not line.isspace():
            return number
    return 0


def _package_dir(name: str) -> str | None:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec else []
    return os.path.join(locations[0], "") if locations else None


class NotebookCapture:
    """One noWorkflow trial over the kernel session: its metascript, tags and executed cells."""

    def __init__(self, shell: Any, spec: dict[str, Any]) -> None:
        self.shell = shell
        self.spec = spec
        self.notebook = spec["notebook"]
        self.secrets = environment.secrets_of(spec)
        self.recorder = _recorder.Recorder(spec["blobs_dir"], self.secrets)
        self.cells: list[Cell] = []
        self.cell_tags: dict[str, int | None] = {}
        self.current: Cell | None = None
        self.error: dict[str, Any] | None = None
        self.internal_error: str | None = None
        self.metascript: Any = None
        self.trial_id: str | None = None
        self.started: datetime | None = None
        self.clock = 0.0
        self.finished = False
        self._parse_next: Cell | None = None
        self._files: dict[str, Cell] = {}
        self._modules_before: set[str] = set()
        self._threads: set[Any] = set()
        self._main: Any = None
        self._code = ""  # the code cells' sources, read when the trial starts
        # frames of noWorkflow and of this plugin: hidden from tracebacks and from IPython's
        # look-ups of "the caller's frame"
        self._own_dirs = tuple(d for d in map(_package_dir, ("noworkflow", "pytest_nwtrials")) if d)
        self.environment: dict[str, Any] = {}
        self.capture_fault: dict[str, Any] | None = None  # noWorkflow failed, not a cell's code

    # -- the trial ----------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.metascript is not None and not self.finished and self.internal_error is None

    def start(self) -> None:
        """Create the trial and install capture into the shell (once, before the first cell)."""
        if self.started is not None:
            return
        self.started = datetime.now(timezone.utc)
        self.clock = time.perf_counter()
        _recorder.install(self.recorder)
        try:
            self._start_trial()
        except Exception as exc:  # noWorkflow failed: the cells still run, the trial is reported broken
            self.internal_error = f"noWorkflow failed while starting the trial: {type(exc).__name__}: {exc}"
            traceback.print_exc()

    def _start_trial(self) -> None:
        import argparse

        from noworkflow.now.cmd.cmd_run import Run
        from noworkflow.now.collection.metadata import Metascript
        from noworkflow.now.persistence.models import Argument, Trial
        from noworkflow.now.utils import io as now_io

        from ..provenance_serialize import serialize

        now_io.verbose = False
        parser = argparse.ArgumentParser(prog="now")
        Run().create_parser(parser.add_subparsers())
        argv = ["run", "--dir", self.spec["provenance_dir"], "--name", self.spec["name"]]
        argv += CAPTURE_OPTIONS[self.spec.get("capture", "fine")]
        args = parser.parse_args([*argv, self.notebook])
        metascript = Metascript().read_cmd_args(args, cmd=f"notebook {self.notebook}")
        # as the script runner does: the notebook's name, not the kernel's connection file
        sys.argv = [os.path.basename(self.notebook), *self.spec.get("argv", [])]
        metascript.namespace = self.shell.user_ns
        metascript.definition.first = False  # every cell is a "cell" block, none the "script"
        # comparable values (array digests, no memory addresses), and no secrets, as for scripts
        environment.hide_secrets(metascript, serialize, self.secrets)
        environment.skip_compositions(metascript)
        file_access.record_files_as_opened(metascript)
        repairs.install(metascript)
        metascript.trial_id = Trial.create(*metascript.create_trial_args())
        metascript.bypass_modules = True  # as for scripts: see runner._collect_provenance
        metascript.create_arguments(args)
        Argument.store(metascript.arguments_store, True)
        metascript.deployment.collect_provenance()
        metascript.execution.configure()
        self.metascript = metascript
        self.trial_id = str(metascript.trial_id)
        self._install_builtins()
        # the notebook itself is the trial's main code block (id 1, kept by noWorkflow's store)
        self._code = self._code_of_notebook()
        _, main_id = metascript.definition.create_code_block(self._code, self.notebook, "notebook", False, False)
        metascript.main_id = main_id
        collector = metascript.execution.collector
        self._main = collector.start_script("__main__", main_id, False)
        self._save()
        # IPython imports these only to show a traceback; imported now, they are not taken for
        # libraries the notebook used
        for name in ("stack_data", "pygments.formatters", "pygments.lexers"):
            try:
                importlib.import_module(name)
            except ImportError:
                pass
        # what the kernel and capture imported so far is not the notebook's environment
        self._modules_before = set(sys.modules)
        self._threads = repair_runtime.running_threads()
        experiment_imports.LEDGER.start()

    def _code_of_notebook(self) -> str:
        """The code cells' sources: what the notebook's code hash (noWorkflow's version tag) covers."""
        try:
            with open(self.notebook, encoding="utf-8") as handle:
                doc = json.load(handle)
            sources = [cell.get("source", "") for cell in doc.get("cells", []) if cell.get("cell_type") == "code"]
        except (OSError, ValueError, AttributeError):
            return ""
        return "\n\n".join(s if isinstance(s, str) else "".join(s) for s in sources)

    def _install_builtins(self) -> None:
        """Tags from noWorkflow's builtins go to our recorder too; IPython's `open` yields to capture's."""
        capture = self
        recorder = self.recorder
        original_variable = builtins.now_tag_variable
        original_cell = builtins.now_tag_cell

        def now_tag_variable(var_name, value):
            result = original_variable(var_name, value)
            recorder.record(str(var_name), value, source="now_tag_variable")
            return result

        def now_tag_cell(tag):
            result = original_cell(tag)
            cell = capture.current
            capture.cell_tags[str(tag)] = cell.index if cell is not None else None
            return result

        builtins.now_tag_variable = now_tag_variable
        builtins.now_tag_cell = now_tag_cell
        # IPython 8+ puts its own `open` into the user namespace, which would hide capture's
        self.shell.user_ns["open"] = builtins.open

    def _save(self) -> None:
        """Store what was collected so far (noWorkflow's partial store, as upstream `now_save`)."""
        metascript = self.metascript
        metascript.deployment.store_provenance()
        metascript.definition.store_provenance()
        metascript.execution.collector.store(partial=True)

    # -- cells ----------------------------------------------------------------------------------

    def before_cell(self, source: str, index: int | None, may_raise: bool) -> Cell | None:
        self.start()
        cell = Cell(index, self.shell.execution_count, source, may_raise,
                    line_offset=_leading_blank_lines(source))
        self.cells.append(cell)
        self.shell.last_execution_result = None  # set again by IPython for this cell
        self.current = cell
        if self.active:
            self._parse_next = cell
            collector = self.metascript.execution.collector
            collector.ipcell = cell.execution_count - 1  # noWorkflow numbers Out[] by it
            finder = self.metascript.definition.finder
            if finder not in sys.meta_path:
                sys.meta_path.insert(0, finder)
        return cell

    def after_cell(self, cell: Cell, result: Any) -> None:
        cell.duration = time.perf_counter() - cell.started
        self._parse_next = None
        self.current = None
        exc = None
        if result is not None:
            exc = result.error_before_exec if result.error_before_exec is not None else result.error_in_exec
        if exc is not None:
            cell.error = self.describe_error(exc, cell)
            cell.status = "expected-error" if cell.may_raise else "error"
            if not cell.may_raise and self.error is None:
                self.error = cell.error
                self.capture_fault = capture_fault.noworkflow_fault(exc, self._cell_line)
        else:
            cell.status = "ok"
        if self.active:
            finder = self.metascript.definition.finder
            if finder in sys.meta_path:
                sys.meta_path.remove(finder)
            self._flush_written_files()
            try:
                self._save()
            except Exception as exc:  # the database refused: report it, stop capturing
                self.internal_error = f"noWorkflow failed while storing {cell.label}: {type(exc).__name__}: {exc}"
                traceback.print_exc()

    def _flush_written_files(self) -> None:
        """Flush files the cell wrote without closing them, so that the next cells can read them.

        noWorkflow keeps every file opened for writing referenced until the trial ends, so
        ``open(p, "w").write(text)`` is not flushed when the file object is dropped, as it is
        without capture; within one cell that difference remains.
        """
        collector = self.metascript.execution.collector
        for handle in list(getattr(collector, "open_write_files", {}).values()):
            try:
                if not handle.closed:
                    handle.flush()
            except (OSError, ValueError):
                pass

    def ast_parse(self, original: Any, source: str, filename: str = "<unknown>", symbol: str = "exec"):
        """IPython's `compile.ast_parse`, rewritten by noWorkflow for the cell being run.

        Only armed parses are rewritten: the cell itself (armed by `before_cell`) and the
        statement of ``%time`` (armed by its wrapper). Other parses, ``%timeit``'s among them,
        get IPython's plain tree.
        """
        cell, self._parse_next = self._parse_next, None
        if cell is None or not self.active:
            return original(source, filename, symbol)
        from ast import PyCF_ONLY_AST

        # the names of the cell's code block in provenance: "<notebook>#cell7", and
        # "<notebook>#cell7:%time" for the statement of a %time in it
        if cell.filename is None:
            cell.filename = filename
            self._files[filename] = cell
            name = f"{self.notebook}#cell{cell.key}"
        else:
            name = f"{self.notebook}#cell{cell.key}:%time"
        try:
            tree = self.metascript.definition.parse("cell", source, name, symbol)[0]
        except SyntaxError:  # raised again by IPython's parser, under the name IPython shows
            return original(source, filename, symbol)
        return compile(tree, filename, symbol, self.shell.compile.flags | PyCF_ONLY_AST, 1)

    def arm_nested(self) -> None:
        """Have the next parse (the statement of a timing magic) rewritten as part of this cell."""
        if self.current is not None and self.current.filename is not None:
            self._parse_next = self.current

    # -- errors ----------------------------------------------------------------------------------

    def is_capture_frame(self, filename: str) -> bool:
        return bool(self._own_dirs) and filename.startswith(self._own_dirs)

    def _cell_line(self, filename: str, line: int) -> str | None:
        """A cell's frame named as ``train.ipynb, cell 3, line 2``, for `capture_fault`."""
        owner = self._files.get(filename)
        if owner is None:
            return None
        return f"{os.path.basename(self.notebook)}, {owner.label}, line {line + owner.line_offset}"

    def describe_error(self, exc: BaseException, cell: Cell) -> dict[str, Any]:
        """The cell's exception with its traceback pointing into the notebook, not at temp files."""
        tb_exc = traceback.TracebackException.from_exception(exc)
        chained, seen = tb_exc, set()
        while chained is not None and id(chained) not in seen:
            seen.add(id(chained))
            frames = list(chained.stack)
            # IPython's own `run_code` frame comes before the cell's
            while frames and frames[0].filename not in self._files and \
                    frames[0].filename.endswith(os.path.join("IPython", "core", "interactiveshell.py")):
                frames.pop(0)
            frames = [f for f in frames if not self.is_capture_frame(f.filename)]
            chained.stack = traceback.StackSummary.from_list(frames)
            for link in ("__cause__", "__context__"):  # noWorkflow's own control-flow exceptions
                linked = getattr(chained, link)
                if linked is not None and (linked.exc_type.__module__ or "").startswith("noworkflow."):
                    setattr(chained, link, None)
            chained = chained.__cause__ or chained.__context__
        if isinstance(exc, SyntaxError):  # the cell did not start: where it went wrong is all there is
            text = "".join(tb_exc.format_exception_only())
        else:
            text = "".join(tb_exc.format())
        location = None
        for frame in reversed(tb_exc.stack):
            owner = self._files.get(frame.filename)
            if owner is not None:
                location = {"file": self.notebook, "line": (frame.lineno or 0) + owner.line_offset,
                            "cell": owner.index}
                break
        if isinstance(exc, SyntaxError) and exc.filename in self._files:
            owner = self._files[exc.filename]
            location = {"file": self.notebook, "line": (exc.lineno or 0) + owner.line_offset, "cell": owner.index}
        if location is None:
            location = {"file": self.notebook, "line": None, "cell": cell.index}
        return {
            "type": type(exc).__name__,
            "message": exc.msg if isinstance(exc, SyntaxError) else str(exc),
            "traceback": self._point_into_notebook(text),
            "location": location,
            "cell": cell.index,
            "execution_count": cell.execution_count,
            "source": cell.source,
        }

    def _point_into_notebook(self, text: str) -> str:
        """``File "/tmp/ipykernel_1/123.py", line 3`` -> ``File "nb.ipynb", cell 7, line 3``."""
        name = os.path.basename(self.notebook)

        def replace(match: re.Match) -> str:
            owner = self._files.get(match.group(1))
            if owner is None:
                return match.group(0)
            return f'File "{name}", {owner.label}, line {int(match.group(2)) + owner.line_offset}'

        return re.sub(r'File "([^"]+)", line (\d+)', replace, text)

    # -- the end ----------------------------------------------------------------------------------

    def finish(self) -> dict[str, Any]:
        """Close the trial (finished, or unfinished after an unexpected error) and write the result."""
        if self.finished:
            return self._result()
        self.start()
        if self.metascript is not None and self.internal_error is None:
            try:
                self._finish_trial()
            except Exception as exc:
                self.internal_error = f"noWorkflow failed while finishing the trial: {type(exc).__name__}: {exc}"
                self.capture_fault = self.capture_fault or capture_fault.noworkflow_fault(
                    exc, self._cell_line, "finishing the trial")
                traceback.print_exc()
        self.finished = True
        _recorder.install(None)
        doc = self._result()
        try:
            write_json_atomic(self.spec["result"], doc)
        except (TypeError, ValueError) as exc:  # a tag produced a document JSON refuses
            doc["tags"] = {}
            doc["internal_error"] = f"could not write the tagged values: {exc}"
            write_json_atomic(self.spec["result"], doc)
        return doc

    def _finish_trial(self) -> None:
        from noworkflow.now.persistence import content
        from noworkflow.now.persistence.models import Tag, Trial

        metascript = self.metascript
        namespace = self.shell.user_ns
        # as for scripts: threads the cells started end first, then the imports are counted
        repair_runtime.join_experiment_threads(self._threads)
        experiment_imports.LEDGER.stop()
        for name in self.spec.get("ini_tags", []):
            if name in namespace and name not in self.recorder.tags:
                self.recorder.record(name, namespace[name], source="nw_tags")
        # submodules the kernel loads on demand (IPython.core.*, ...) belong to packages it had
        tops = {name.partition(".")[0] for name in self._modules_before}
        before = self._modules_before | {name for name in sys.modules if name.partition(".")[0] in tops}
        before |= experiment_imports.LEDGER.not_the_experiments()
        self.environment = environment.collect(before, self.spec.get("root") or os.path.dirname(self.notebook))
        self.environment.update(environment.experiment_facts(namespace, self._code or None))
        collector = metascript.execution.collector
        collector.close_activation(self._main, None, None)
        metascript.deployment.store_provenance()
        metascript.definition.store_provenance()
        collector.store(partial=False, status="unfinished" if self.error else "finished")
        Tag.create_automatic_tag(*metascript.create_automatic_tag_args())
        Trial.set_user_based_on_env(metascript.trial_id)
        content.commit_content(metascript.message or f"Trial {metascript.trial_id}")

    def _result(self) -> dict[str, Any]:
        """The result file's document; a cell's error may show a secret, which is masked (values
        were masked when tagged)."""
        mask = self.secrets.mask_doc
        return {
            "trial_id": self.trial_id,
            "exit_code": 1 if self.error else 0,
            "error": mask(self.error),
            "internal_error": mask(self.internal_error),
            "started": self.started.isoformat(timespec="milliseconds") if self.started else None,
            "duration": round(time.perf_counter() - self.clock, 4) if self.started else 0.0,
            "tags": {name: record.to_json() for name, record in self.recorder.tags.items()},
            "environment": self.environment,
            "notes": self.recorder.notes(self.spec.get("ini_tags", [])),
            "capture_fault": mask(self.capture_fault),
            "notebook": {
                "path": self.notebook,
                "cells": mask({c.key: c.to_json() for c in self.cells}),
                "cell_tags": mask(self.cell_tags, keys=True),
            },
        }


def _wrap_magic(shell: Any, name: str, around: Any) -> None:
    """Replace the line/cell magic `name` by one that runs the original inside `around`."""
    original = shell.find_magic(name)
    if original is None:
        return

    @wraps(original)
    def magic(line="", cell=None, local_ns=None):
        with around():
            if cell is None:
                return original(line, local_ns=local_ns)
            return original(line, cell, local_ns=local_ns)

    shell.register_magic_function(magic, "line_cell", name)


class CaptureKernel(IPythonKernel):
    """IPython kernel that records the session as one noWorkflow trial (see the module docstring)."""

    implementation = "pytest-nwtrials"
    implementation_version = __version__

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.capture = NotebookCapture(self.shell, _read_spec())
        self._hook_shell()

    def _hook_shell(self) -> None:
        from contextlib import contextmanager

        shell, capture = self.shell, self.capture
        compiler = shell.compile
        original_parse = compiler.ast_parse
        compiler.ast_parse = lambda source, filename="<unknown>", symbol="exec": \
            capture.ast_parse(original_parse, source, filename, symbol)

        # Under capture the cell calls magics through noWorkflow's collector, so "the caller's
        # frame" IPython looks up for `local_ns` and `{var}` expansion is the collector's: skip it.
        def user_frame(frame):
            while frame is not None and capture.is_capture_frame(frame.f_code.co_filename):
                frame = frame.f_back
            return frame

        def get_local_scope(stack_depth):
            frame = user_frame(sys._getframe(stack_depth + 1))
            return frame.f_locals if frame is not None else shell.user_ns

        default_formatter = inspect.signature(shell.var_expand).parameters["formatter"].default

        def var_expand(cmd, depth=0, formatter=default_formatter):
            ns = shell.user_ns.copy()
            try:
                frame = user_frame(sys._getframe(depth + 1))
            except ValueError:
                frame = None
            if frame is not None:
                ns.update(frame.f_locals)
            try:
                return formatter.vformat(cmd, args=[], kwargs=ns)
            except Exception:
                return cmd

        shell.get_local_scope = get_local_scope
        shell.var_expand = var_expand

        @contextmanager
        def timed_once():
            # the statement becomes part of the cell's provenance; the rewritten code it runs
            # reassigns the rewriter's globals, which the rest of the cell still needs
            saved = {name: shell.user_ns.get(name) for name in _REWRITER_GLOBALS}
            capture.arm_nested()
            try:
                yield
            finally:
                capture._parse_next = None
                shell.user_ns.update(saved)

        @contextmanager
        def timed_repeatedly():
            # run below an inactive activation: functions of the notebook called by the timed
            # statement are not recorded once per repetition
            if not capture.active:
                yield
                return
            collector = capture.metascript.execution.collector
            saved = collector.last_activation
            collector.dry_activation(saved)
            try:
                yield
            finally:
                collector.last_activation = saved

        _wrap_magic(shell, "time", timed_once)
        _wrap_magic(shell, "timeit", timed_repeatedly)

    async def do_execute(self, code, silent, store_history=True, user_expressions=None,
                         allow_stdin=False, *, cell_meta=None, cell_id=None):
        request = (cell_meta or {}).get(META_KEY) or {}
        if request.get("finish"):
            self.capture.finish()
            return {"status": "ok", "execution_count": self.shell.execution_count - 1,
                    "payload": [], "user_expressions": {}}
        if silent or not store_history or self.capture.finished:
            return await super().do_execute(code, silent, store_history, user_expressions, allow_stdin,
                                            cell_meta=cell_meta, cell_id=cell_id)
        cell = self.capture.before_cell(code, request.get("cell"), bool(request.get("may_raise")))
        try:
            return await super().do_execute(code, silent, store_history, user_expressions, allow_stdin,
                                            cell_meta=cell_meta, cell_id=cell_id)
        finally:
            self.capture.after_cell(cell, self.shell.last_execution_result)

    async def do_shutdown(self, restart):
        if self.capture.started is not None and not self.capture.finished:
            self.capture.finish()  # the driver never asked: the trial ends with the session
        return super().do_shutdown(restart)


def _read_spec() -> dict[str, Any]:
    with open(os.environ[SPEC_ENV], encoding="utf-8") as handle:
        return json.load(handle)


def main() -> None:
    from ipykernel.kernelapp import IPKernelApp

    # before the kernel starts: it ends with pytest, and so does every process a cell started
    lifeline.guard(_read_spec().get("lifeline"))
    IPKernelApp.launch_instance(kernel_class=CaptureKernel)


if __name__ == "__main__":
    # run from the imported module, so that the kernel's classes and functions are named
    # pytest_nwtrials.capture.kernel.* in provenance, not __main__.*
    from pytest_nwtrials.capture.kernel import main as _main

    _main()
