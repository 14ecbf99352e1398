"""Runs one experiment script under noWorkflow capture, in a child process of its own.

Started by `capture.launch` as ``python -c 'from pytest_nwtrials.capture.runner import main;
main()' SPEC.json``. noWorkflow patches builtins process-wide and wipes ``__main__``, so this
code lives in an imported module and the process is used once. The outcome goes to the result
file named in the spec, written atomically; noWorkflow's own exit status means nothing.

noWorkflow is set up, and the trial created and finished, by `capture_setup`, as for notebooks;
the script runs in ``__main__`` by `_collect_provenance` instead of noWorkflow's
``Execution.collect_provenance``, which swallows the script's exception into a message and
crashes on ``sys.exit()`` without a number; ours keeps the exception, normalises the exit code
and records tags before provenance is stored.
"""
from __future__ import annotations

import faulthandler
import io
import json
import os
import re
import sys
import time
import tokenize
import traceback
from datetime import datetime, timezone
from collections.abc import Iterator
from typing import Any

from . import (
    capture_fault, capture_setup, environment, experiment_imports, lifeline, repair_recursion,
    repair_runtime)
from . import recorder as _recorder
from .capture_setup import exit_code_of

__all__ = ["Outcome", "compile_source", "describe_exception", "exit_code_of", "main", "run_script"]


class Outcome:
    """What the script did, filled in while it runs.

    Each change of `stage` is also written to the progress file, if any: when the process dies
    without writing a result, the parent reads there whether the script itself was running.
    """

    def __init__(self, progress_path: str | None = None) -> None:
        self.exit_code = 0
        self.error: dict[str, Any] | None = None
        self.environment: dict[str, Any] = {}
        self.source: bytes | None = None  # the script's bytes, for the digest of the code
        self.trial_id: str | None = None
        self.capture_fault: dict[str, Any] | None = None  # noWorkflow failed, not the script
        self.started = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        self._progress_path = progress_path
        self.stage = "starting"

    @property
    def stage(self) -> str:
        return self._stage

    @stage.setter
    def stage(self, stage: str) -> None:
        self._stage = stage
        if self._progress_path:
            doc = {"stage": stage, "trial_id": self.trial_id, "started": self.started}
            tmp = f"{self._progress_path}.tmp"
            try:
                with open(tmp, "w", encoding="utf-8") as handle:
                    json.dump(doc, handle)
                os.replace(tmp, self._progress_path)
            except OSError:
                pass  # only a help for the report of a crash


def _plugin_frame(filename: str) -> bool:
    """Frames of the capture machinery, hidden from the script's traceback."""
    import noworkflow

    own = (os.path.dirname(os.path.dirname(__file__)), os.path.dirname(noworkflow.__file__))
    return any(filename.startswith(prefix + os.sep) for prefix in own)


def describe_exception(exc: BaseException) -> dict[str, Any]:
    """The script's traceback as Python would print it, without capture frames."""
    repair_recursion.plain_recursion_error(exc)
    tb_exc = traceback.TracebackException.from_exception(exc)
    for chained in _chain(tb_exc):
        kept = [frame for frame in chained.stack if not _plugin_frame(frame.filename)]
        chained.stack = traceback.StackSummary.from_list(kept)
    text = "".join(tb_exc.format())
    location = None
    for frame in reversed(tb_exc.stack):
        location = {"file": frame.filename, "line": frame.lineno}
        break
    if isinstance(exc, SyntaxError) and exc.filename:
        location = {"file": exc.filename, "line": exc.lineno}
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": text,
        "location": location,
    }


_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=]", re.MULTILINE)


def compile_source(path: str) -> None:
    """Decode and compile the script as ``python script.py`` does before running a line of it.

    Raises SyntaxError as Python would (Python's wording for undecodable bytes), so that a
    script that cannot run is reported before noWorkflow, which fails on it less clearly.
    """
    with open(path, "rb") as handle:
        data = handle.read()
    declared = any(_CODING.match(line) for line in data.splitlines()[:2])
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        if declared:  # an unknown encoding in the coding declaration
            problem = str(exc).removeprefix("unknown encoding: ")
            raise SyntaxError(f"encoding problem: {problem}", (path, 1, None, None)) from None
        encoding = "utf-8"  # undecodable bytes in the first two lines: located below
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        if declared:
            message = f"(unicode error) {exc}"
        else:
            message = (f"Non-UTF-8 code starting with '\\x{data[exc.start]:02x}' in file {path} on line "
                       f"{line}, but no encoding declared; see https://peps.python.org/pep-0263/ for details")
        raise SyntaxError(message, (path, line, None, None)) from None
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise SyntaxError("source code cannot contain null bytes", (path, line, None, None))
    compile(text, path, "exec", dont_inherit=True)


def source_compiles(path: str, outcome: Outcome) -> bool:
    """Whether the script can be run; if not, its error goes to `outcome` and stderr as Python
    reports it: file, line, caret and message, without a traceback."""
    try:
        compile_source(path)
    except SyntaxError as exc:
        outcome.error = describe_exception(exc)
        outcome.error.update(message=exc.msg, phase="compile")
    except (OSError, ValueError) as exc:  # the file went away, or is not readable
        outcome.error = {"type": type(exc).__name__, "message": f"can't open file {path!r}: {exc}",
                         "traceback": f"can't open file {path!r}: {exc}\n", "location": None, "phase": "compile"}
    else:
        return True
    outcome.exit_code = 1
    sys.stderr.write(outcome.error["traceback"])
    return False


def _chain(tb_exc: traceback.TracebackException) -> Iterator[traceback.TracebackException]:
    """Each exception of the chain, cutting links to noWorkflow's own control-flow exceptions."""
    seen = set()
    chained: traceback.TracebackException | None = tb_exc
    while chained is not None and id(chained) not in seen:
        seen.add(id(chained))
        for link in ("__cause__", "__context__"):
            linked = getattr(chained, link)
            if linked is not None and linked.exc_type is not None and \
                    linked.exc_type.__module__.startswith("noworkflow."):
                setattr(chained, link, None)
        yield chained
        chained = chained.__cause__ or chained.__context__


def _collect_provenance(execution: Any, outcome: Outcome, spec: dict[str, Any],
                        recorder: _recorder.Recorder) -> None:
    """Our version of ``Execution.collect_provenance`` (see the module docstring)."""
    metascript = execution.metascript
    capture_setup.start_execution(metascript, recorder)
    finder = metascript.definition.finder
    outcome.trial_id = str(metascript.trial_id)

    def run() -> None:
        compiled = metascript.definition.compile(metascript.code, metascript.path, "exec")
        sys.meta_path.insert(0, finder)
        try:
            exec(compiled, metascript.namespace)  # noqa: S102 - running the experiment is the point
        finally:
            if finder in sys.meta_path:
                sys.meta_path.remove(finder)

    run_script(run, metascript.namespace, spec, outcome, recorder)
    outcome.stage = "storing provenance"


def capture(spec: dict[str, Any], outcome: Outcome, recorder: _recorder.Recorder) -> str:
    """Run the script under noWorkflow; return noWorkflow's trial id."""
    import __main__

    script = spec["script"]
    metascript, args = capture_setup.new_metascript(spec, script, "run", recorder.secrets)
    metascript.argv = [script, *spec.get("argv", [])]  # the real arguments: noWorkflow's have secrets masked
    capture_setup.prepare(metascript, recorder.secrets)
    metascript.namespace = __main__.__dict__
    metascript.clear_sys()
    # noWorkflow puts its database folder first on sys.path; the script expects its own folder
    sys.path[0] = os.path.dirname(script)
    # as `python train.py` run in the script's folder: no absolute path of this checkout in values
    sys.argv[0] = os.path.basename(script)
    metascript.clear_namespace()
    # noWorkflow's own `run`, with our `collect_provenance` in the middle (see the module docstring)
    capture_setup.create_trial(metascript, args)
    _collect_provenance(metascript.execution, outcome, spec, recorder)
    capture_setup.finish_trial(metascript, outcome.exit_code)
    return str(metascript.trial_id)


def run_plain(spec: dict[str, Any], outcome: Outcome, recorder: _recorder.Recorder) -> None:
    """Run the script as ``python script.py`` would, without noWorkflow (``--nw-capture=off``).

    Tags, ``nw_tags`` variables, the exit status and library versions are recorded as under
    capture; ``now_tag_variable`` is provided so that scripts using it still run.
    """
    import builtins
    import types

    script = spec["script"]
    module = types.ModuleType("__main__")
    module.__file__ = script
    sys.modules["__main__"] = module
    sys.argv = [os.path.basename(script), *spec.get("argv", [])]
    sys.path[0] = os.path.dirname(script)

    _recorder.provide_plain_tag_variable(builtins, recorder)

    def run() -> None:
        with open(script, "rb") as handle:
            source = handle.read()
        exec(compile(source, script, "exec"), module.__dict__)  # noqa: S102 - running the experiment is the point

    run_script(run, module.__dict__, spec, outcome, recorder)


def run_script(run: Any, namespace: dict[str, Any], spec: dict[str, Any], outcome: Outcome,
               recorder: _recorder.Recorder) -> None:
    """Call `run`, which executes the script in `namespace`; keep its exit status or error, then
    record the environment and the ``nw_tags`` variables it left in `namespace`."""
    outcome.stage = "running"
    threads = repair_runtime.running_threads()
    experiment_imports.LEDGER.start()
    exit_handlers = repair_runtime.ExitHandlers()
    try:
        with exit_handlers:
            run()
    except SystemExit as exc:
        outcome.exit_code, message = exit_code_of(exc.code)
        if message:
            print(message, file=sys.stderr)
    except BaseException as exc:  # the script's own failure, KeyboardInterrupt included
        outcome.exit_code = 1
        outcome.error = describe_exception(exc)
        outcome.capture_fault = capture_fault.noworkflow_fault(exc, spec["script"])
        sys.stderr.write(outcome.error["traceback"])
    # as the interpreter does before it exits, whether the script ended well or not: threads
    # joined, then the script's atexit handlers
    repair_runtime.join_experiment_threads(threads)
    exit_handlers.run()
    experiment_imports.LEDGER.stop()
    outcome.stage = "recording"
    not_imported = experiment_imports.LEDGER.not_the_experiments()
    outcome.environment = environment.collect(not_imported, spec.get("root") or os.path.dirname(spec["script"]))
    outcome.environment.update(environment.experiment_facts(namespace, outcome.source))
    recorder.record_ini_tags(spec.get("ini_tags", []), namespace)


def _read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def main(argv: list[str] | None = None) -> None:
    """Entry point of the child process: run the spec, write the result, exit."""
    spec_path = (argv if argv is not None else sys.argv[1:])[0]
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    lifeline.guard(spec.get("lifeline"))  # ends this process and what the script started with pytest
    faulthandler.enable()  # a crash in native code prints where the script was
    recorder = capture_setup.new_recorder(spec)
    secrets = recorder.secrets
    _recorder.install(recorder)
    outcome = Outcome(spec.get("progress"))
    outcome.source = _read_bytes(spec["script"])  # before the capture, which would record the read
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    trial_id = None
    internal_error = None
    try:
        if not source_compiles(spec["script"], outcome):
            pass  # nothing ran, so there is no trial to capture
        elif spec.get("capture") == "off":
            run_plain(spec, outcome, recorder)
        else:
            trial_id = capture(spec, outcome, recorder)
    except BaseException as exc:  # noWorkflow itself failed: report it, keep what we have
        internal_error = f"noWorkflow failed while {outcome.stage}: {type(exc).__name__}: {exc}"
        outcome.capture_fault = outcome.capture_fault or capture_fault.noworkflow_fault(
            exc, spec["script"], outcome.stage)
        traceback.print_exc()
    # the objects tagged by reference, as the run left them
    not_finished = capture_setup.finish_recorder(recorder)
    internal_error = internal_error or not_finished
    result: dict[str, Any] = {
        "trial_id": trial_id,
        "exit_code": outcome.exit_code,
        "error": outcome.error,
        "internal_error": internal_error,
        "started": started.isoformat(timespec="milliseconds"),
        "duration": round(time.perf_counter() - clock, 4),
        "tags": {name: record.to_json() for name, record in recorder.tags.items()},
        "environment": outcome.environment,
        "notes": recorder.notes(spec.get("ini_tags", [])),
        "capture_fault": outcome.capture_fault,
    }
    # the script's error message and traceback may show a secret (values were masked when tagged)
    result["error"] = secrets.mask_doc(result["error"])
    result["internal_error"] = secrets.mask_doc(internal_error)
    result["capture_fault"] = secrets.mask_doc(outcome.capture_fault)
    for note in result["notes"]:
        print(f"note: {note}", file=sys.stderr)
    capture_setup.write_result(spec["result"], result)
    sys.stdout.flush()
    sys.stderr.flush()
    # raised from here, not __main__: noWorkflow has replaced __main__'s namespace
    sys.exit(0 if internal_error is None else 70)
