"""How a run sets noWorkflow up and ends its trial: one way for scripts and notebooks.

The script runner (`runner.capture`) and the notebook kernel (`kernel.NotebookCapture`) both go
through here, in this order:

1. `new_recorder`: the run's secrets and tag recorder, installed for ``tag()``;
2. `new_metascript`: noWorkflow's database (written without waiting for the disk), its command
   line (options of `CAPTURE_OPTIONS`, arguments with secrets masked) and its metascript;
3. `prepare`: values serialized comparably and without secrets, no composition table, files
   recorded as opened, and every repair of `repairs` (the recursion limit among them);
4. `create_trial`: the trial row, its arguments and the deployment (environment) rows;
5. `start_execution`: noWorkflow's builtins (``open``, ``now_tag_variable``, ...) installed, with
   ``now_tag_variable`` checked by the rule of ``tag()`` and recorded as a tag too;
6. `finish_trial`: provenance stored with the status noWorkflow gives a script (``unfinished``
   after an error or a non-zero exit), the automatic tag, the user, the content commit;
7. `finish_recorder` and `write_result`: the objects tagged by reference, then the result file.

What differs between the two is where the code runs (``__main__`` of a fresh process, or the
shell's namespace, one cell after the other), and is kept in `runner` and `kernel`.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..files import write_json_atomic
from ..redaction import Secrets
from . import environment, file_access, provenance_db, repairs
from . import recorder as _recorder

CAPTURE_OPTIONS: dict[str, list[str]] = {
    # fine: every operation of the script; coarse: calls, arguments, returns and file accesses
    "fine": [],
    "coarse": ["-cg"],
}


def exit_code_of(code: object) -> tuple[int, str | None]:
    """The process exit code Python would use for ``sys.exit(code)``, and a message to print."""
    if code is None:
        return 0, None
    if isinstance(code, bool):
        return int(code), None
    if isinstance(code, int):
        return code & 0xFF, None  # what the operating system keeps of it
    return 1, str(code)


def new_recorder(spec: Mapping[str, Any]) -> _recorder.Recorder:
    """The recorder of the run `spec` describes, with the secrets of this process's environment
    and of the spec's arguments (`environment.secrets_of`); not yet installed."""
    return _recorder.Recorder(spec["blobs_dir"], environment.secrets_of(spec),
                              model_files=bool(spec.get("model_files")),
                              linkable=tuple(spec.get("linkable_blobs", ())))


def now_args(spec: Mapping[str, Any], target: str, argv: Sequence[str]) -> argparse.Namespace:
    """``now run`` options for `target` (script or notebook) with its arguments `argv`."""
    from noworkflow.now.cmd.cmd_run import Run

    parser = argparse.ArgumentParser(prog="now")
    Run().create_parser(parser.add_subparsers())
    options = ["run", "--dir", spec["provenance_dir"], "--name", spec["name"]]
    options += CAPTURE_OPTIONS[spec.get("capture", "fine")]
    return parser.parse_args([*options, target, *argv])


def new_metascript(spec: Mapping[str, Any], target: str, cmd: str, secrets: Secrets,
                   template: str | None = None) -> tuple[Any, argparse.Namespace]:
    """noWorkflow's metascript for `target`, and its parsed command line.

    noWorkflow stores its command line (trial command, arguments table) with secrets masked;
    the experiment gets the real arguments (the caller sets them). `template` is a folder with
    an empty database to copy (`provenance_db.create_database`).
    """
    from noworkflow.now.collection.metadata import Metascript
    from noworkflow.now.persistence import relational
    from noworkflow.now.utils import io as now_io

    now_io.verbose = False
    # written without waiting for the disk, else noWorkflow's schema costs most of a small capture
    provenance_db.create_database(spec["provenance_dir"], template)
    masked = secrets.mask_argv(spec.get("argv", []))
    args = now_args(spec, target, masked)
    metascript = Metascript().read_cmd_args(args, cmd=f"{cmd} {' '.join([target, *masked])}")
    provenance_db.relax(relational.engine)  # before its first connection, which Trial.create opens
    return metascript, args


def prepare(metascript: Any, secrets: Secrets) -> None:
    """Set `metascript` up before any code is rewritten (see the module docstring, step 3)."""
    from ..provenance.serialize import serialize

    # comparable values (array digests, no memory addresses) and no secrets, instead of plain repr
    environment.hide_secrets(metascript, serialize, secrets)
    environment.skip_compositions(metascript)
    file_access.record_files_as_opened(metascript)
    repairs.install(metascript)


def create_trial(metascript: Any, args: argparse.Namespace) -> str:
    """The trial row, its arguments and its deployment rows, as noWorkflow's ``run`` makes them;
    returns the trial id."""
    from noworkflow.now.persistence.models import Argument, Trial

    metascript.trial_id = Trial.create(*metascript.create_trial_args())
    # noWorkflow's module analysis reads, hashes and stores every imported module's source and
    # asks pkg_resources for its version: most of its cost. Library versions are recorded by
    # `environment.collect` instead. Set here, after the trial row exists: ``-b`` on the command
    # line makes noWorkflow look up an earlier trial and fail in an empty store.
    metascript.bypass_modules = True
    metascript.create_arguments(args)
    Argument.store(metascript.arguments_store, True)
    metascript.deployment.collect_provenance()
    return str(metascript.trial_id)


def start_execution(metascript: Any, recorder: _recorder.Recorder) -> None:
    """noWorkflow's builtins into the experiment's namespace, ``now_tag_variable`` wrapped."""
    metascript.execution.configure()
    wrap_now_tag_variable(metascript.namespace["__builtins__"], recorder)


def wrap_now_tag_variable(builtin: Any, recorder: _recorder.Recorder) -> None:
    """Record noWorkflow's own ``now_tag_variable(name, value)`` calls as tags too (and
    ``now_variable``, its older name); `builtin` is the builtins module or dict."""
    original = builtin["now_tag_variable"] if isinstance(builtin, dict) else builtin.now_tag_variable

    def now_tag_variable(var_name: Any, value: Any) -> Any:
        _recorder.check_tag_name(var_name)  # the rule of `tag`, before noWorkflow stores it
        result = original(var_name, value)
        recorder.record(str(var_name), value, source="now_tag_variable")
        return result

    _recorder.provide_tag_variable(builtin, now_tag_variable)


def trial_status(exit_code: int) -> str:
    """noWorkflow's status of a trial that ended with `exit_code`: a script's error or non-zero
    exit leaves it ``unfinished``, as noWorkflow's own runner does."""
    return "finished" if exit_code == 0 else "unfinished"


def finish_trial(metascript: Any, exit_code: int, before_store: Callable[[], None] | None = None) -> None:
    """Store the trial's provenance and close it, as noWorkflow's ``run`` does after the script.

    `before_store` runs once the execution is over and before anything is stored (the kernel
    closes the notebook's activation there)."""
    from noworkflow.now.persistence import content
    from noworkflow.now.persistence.models import Tag, Trial

    if before_store is not None:
        before_store()
    metascript.deployment.store_provenance()
    metascript.definition.store_provenance()
    metascript.execution.collector.store(partial=False, status=trial_status(exit_code))
    Tag.create_automatic_tag(*metascript.create_automatic_tag_args())
    Trial.set_user_based_on_env(metascript.trial_id)
    content.commit_content(metascript.message or f"Trial {metascript.trial_id}")


def finish_recorder(recorder: _recorder.Recorder) -> str | None:
    """Uninstall `recorder` and encode the objects tagged by reference, as the run left them;
    the error that stopped it, if any."""
    _recorder.install(None)
    try:
        recorder.finish()
    except OSError as exc:
        return str(exc)
    return None


def write_result(path: str, doc: dict[str, Any]) -> None:
    """Write the result file atomically; a tag whose document JSON refuses drops the tags."""
    try:
        write_json_atomic(path, doc)
    except (TypeError, ValueError) as exc:
        doc["tags"] = {}
        doc["internal_error"] = f"could not write the tagged values: {exc}"
        write_json_atomic(path, doc)
