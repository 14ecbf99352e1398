"""The trial of a capture kernel: one noWorkflow trial over the whole kernel session.

`kernel.CaptureKernel` hands each cell to `NotebookCapture`, which sets noWorkflow up the way the
script runner does (`capture_setup`), rewrites the cells it is armed for, stores provenance after
each cell and writes the result file when the trial ends (see `kernel` for the protocol).
"""
from __future__ import annotations

import builtins
import os
import sys
import time
from datetime import datetime, timezone
from typing import Any

from . import capture_fault, capture_setup, environment, experiment_imports, kernel_boot, repair_runtime
from . import recorder as _recorder
from .kernel_cells import (
    OUTPUT_FAILED, Cell, Exit, code_of_notebook, exit_of_system_exit, flush_written_files,
    install_plain_builtins, internal_failure, leading_blank_lines, package_dir)
from .kernel_errors import describe_cell_error, point_into_notebook


class NotebookCapture:
    """One noWorkflow trial over the kernel session: its metascript, tags and executed cells."""

    def __init__(self, shell: Any, spec: dict[str, Any]) -> None:
        self.shell = shell
        self.spec = spec
        self.notebook = spec["notebook"]
        self.recorder = capture_setup.new_recorder(spec)
        self.secrets = self.recorder.secrets
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
        self._own_dirs = tuple(d for d in map(package_dir, ("noworkflow", "pytest_nwtrials")) if d)
        self._ipython_dir = package_dir("IPython")
        self.environment: dict[str, Any] = {}
        self.exit: Exit | None = None  # the notebook ended the session (exit(), sys.exit())
        self._shown: BaseException | None = None  # an exception IPython showed while the cell ran
        self.plain = spec.get("capture") == "off"  # no noWorkflow: tags, status and versions only
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
        if self.plain:
            self._start_plain()
            return
        try:
            self._start_trial()
        except Exception as exc:  # noWorkflow failed: the cells still run, the trial is reported broken
            self.internal_error = self._failure("starting the trial", exc)

    def _start_plain(self) -> None:
        """``--nw-capture=off``: the cells run as in Jupyter; tags and library versions are still recorded."""
        sys.argv = [os.path.basename(self.notebook), *self.spec.get("argv", [])]
        install_plain_builtins(self.recorder, self.cell_tags, lambda: self.current)
        self._code = code_of_notebook(self.notebook)
        self._forget_kernel_modules()

    def _forget_kernel_modules(self) -> None:
        """What the kernel and capture imported so far is not the notebook's environment."""
        kernel_boot.import_traceback_modules()  # done while the kernel started, unless it failed
        self._modules_before = set(sys.modules)
        self._threads = repair_runtime.running_threads()
        experiment_imports.LEDGER.start()

    def _start_trial(self) -> None:
        # else noWorkflow's, over a second slower; a copy of the one made while the kernel started
        metascript, args = capture_setup.new_metascript(self.spec, self.notebook, "notebook", self.secrets,
                                                        kernel_boot.template_database())
        # as the script runner does: the notebook's name, not the kernel's connection file
        sys.argv = [os.path.basename(self.notebook), *self.spec.get("argv", [])]
        metascript.namespace = self.shell.user_ns
        metascript.definition.first = False  # every cell is a "cell" block, none the "script"
        capture_setup.prepare(metascript, self.secrets)
        capture_setup.create_trial(metascript, args)
        capture_setup.start_execution(metascript, self.recorder)
        self.metascript = metascript
        self.trial_id = str(metascript.trial_id)
        self._install_builtins()
        # the notebook itself is the trial's main code block (id 1, kept by noWorkflow's store)
        self._code = code_of_notebook(self.notebook)
        _, main_id = metascript.definition.create_code_block(self._code, self.notebook, "notebook", False, False)
        metascript.main_id = main_id
        collector = metascript.execution.collector
        self._main = collector.start_script("__main__", main_id, False)
        self._save()
        self._forget_kernel_modules()

    def _install_builtins(self) -> None:
        """``now_tag_cell`` names the running cell too; IPython's `open` yields to capture's."""
        capture = self
        original_cell = getattr(builtins, "now_tag_cell")  # installed by noWorkflow's `configure`

        def now_tag_cell(tag: Any) -> Any:
            result = original_cell(tag)
            cell = capture.current
            capture.cell_tags[str(tag)] = cell.index if cell is not None else None
            return result

        setattr(builtins, "now_tag_cell", now_tag_cell)
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
                    line_offset=leading_blank_lines(source))
        self.cells.append(cell)
        self._shown = None
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
        output_failed = exc is None and self._shown is not None
        if output_failed:  # the cell ran, but showing one of its outputs raised
            exc, self._shown = self._shown, None
        if isinstance(exc, SystemExit):  # as a script's sys.exit(): the status decides, not an error
            cell.status = "exit"
            self.exit = exit_of_system_exit(exc, cell)
            if self.exit.message:
                print(self.exit.message, file=sys.stderr)
        elif exc is not None:
            cell.error = self.describe_error(exc, cell, output_failed)
            if output_failed:
                cell.error["traceback"] = f"{OUTPUT_FAILED}\n{cell.error['traceback']}"
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
            flush_written_files(self.metascript.execution.collector)
            try:
                self._save()
            except Exception as exc:  # the database refused: report it, stop capturing
                self.internal_error = self._failure(f"storing {cell.label}", exc)

    def shown_error(self, exc: BaseException | None) -> None:
        """IPython showed `exc` as an error output of the running cell (see `kernel_shell.hook_shell`)."""
        if self.current is not None and exc is not None:
            self._shown = exc

    def _failure(self, doing: str, exc: BaseException) -> str:
        """`internal_failure`, with the notebook's frames named by cell as in a cell's traceback."""
        return point_into_notebook(internal_failure(doing, exc, self._own_dirs), self._files, self.notebook)

    def fail_inside(self, doing: str, exc: BaseException) -> None:
        """Capture's own code failed around a cell: report the first such failure, with its traceback."""
        if self.internal_error is None:
            self.internal_error = self._failure(doing, exc)

    def ask_exit(self) -> None:
        """``exit()`` / ``quit()`` in a cell: the session ends after this cell, as in Jupyter, where the
        kernel shuts down; here it stays up to store the trial (with status 0, as ``exit()`` in a script)."""
        if getattr(self.shell, "keepkernel_on_exit", False):  # exit(keep_kernel=True): Jupyter keeps going
            return
        cell = self.current
        # one object answers to both names; the cell's source tells which it called
        name = "quit" if cell is not None and "quit(" in cell.source and "exit(" not in cell.source else "exit"
        self.exit = Exit(cell.index if cell is not None else None, f"{name}()", 0)

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
        return compile(tree, filename, symbol, self.shell.compile.flags | PyCF_ONLY_AST, dont_inherit=True)

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

    def describe_error(self, exc: BaseException, cell: Cell, in_output: bool = False) -> dict[str, Any]:
        """The cell's exception with its traceback pointing into the notebook, not at temp files;
        for an output that failed to show (`in_output`), without IPython's display frames either."""
        ipython = self._ipython_dir if in_output else None

        def hidden(filename: str) -> bool:
            return self.is_capture_frame(filename) or (ipython is not None and filename.startswith(ipython))
        return describe_cell_error(exc, cell, self._files, hidden, self.notebook)

    # -- the end ----------------------------------------------------------------------------------

    def finish(self) -> dict[str, Any]:
        """Close the trial (finished, or unfinished after an unexpected error) and write the result."""
        if self.finished:
            return self._result()
        self.start()
        if self.plain:
            self._record_environment()
        elif self.metascript is not None and self.internal_error is None:
            try:
                self._finish_trial()
            except Exception as exc:
                self.internal_error = self._failure("finishing the trial", exc)
                self.capture_fault = self.capture_fault or capture_fault.noworkflow_fault(
                    exc, self._cell_line, "finishing the trial")
        self.finished = True
        # the objects tagged by reference, as the notebook left them
        not_finished = capture_setup.finish_recorder(self.recorder)
        self.internal_error = self.internal_error or not_finished
        doc = self._result()
        capture_setup.write_result(self.spec["result"], doc)
        return doc

    def _finish_trial(self) -> None:
        self._record_environment()
        collector = self.metascript.execution.collector
        capture_setup.finish_trial(self.metascript, self.exit_code,
                                   before_store=lambda: collector.close_activation(self._main, None, None))

    def _record_environment(self) -> None:
        """The ``nw_tags`` variables the notebook left, and the libraries it imported."""
        namespace = self.shell.user_ns
        # as for scripts: threads the cells started end first, then the imports are counted
        repair_runtime.join_experiment_threads(self._threads)
        experiment_imports.LEDGER.stop()
        self.recorder.record_ini_tags(self.spec.get("ini_tags", []), namespace)
        # submodules the kernel loads on demand (IPython.core.*, ...) belong to packages it had
        tops = {name.partition(".")[0] for name in self._modules_before}
        before = self._modules_before | {name for name in sys.modules if name.partition(".")[0] in tops}
        before |= experiment_imports.LEDGER.not_the_experiments()
        self.environment = environment.collect(before, self.spec.get("root") or os.path.dirname(self.notebook))
        self.environment.update(environment.experiment_facts(namespace, self._code or None))

    @property
    def exit_code(self) -> int:
        """The notebook's exit status, as a script's: 1 after an unexpected error, else its ``sys.exit``'s."""
        return 1 if self.error else (self.exit.exit_code if self.exit else 0)

    def _result(self) -> dict[str, Any]:
        """The result file's document; a cell's error may show a secret, which is masked (values
        were masked when tagged)."""
        mask = self.secrets.mask_doc
        return {
            "trial_id": self.trial_id,
            "exit_code": self.exit_code,
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
                "exit": self.exit.to_json() if self.exit else None,
            },
        }
