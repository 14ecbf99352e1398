"""Running an experiment for the session: a script or notebook launched under capture (falling
back to coarse capture when fine capture fails inside noWorkflow), its files staged, its trial
not yet recorded (plugin/recording.py adds it to the store)."""
from __future__ import annotations

import platform
import shutil
import tempfile
import uuid
from pathlib import Path

from ..capture.fallback import run_with_fallback
from ..capture.launch import RunRequest, RunResult, masked, run_experiment
from ..render import failure as report
from ..store import archive, layout
from ..store.trial_store import StoreError, Trial
from . import run_record as kept
from .marker import GateFailure
from .state import Pending, SessionState, full_or


def launch(state: SessionState, script: Path, argv: tuple[str, ...] = (), timeout: float | None = None,
           capture: str | None = None, env: tuple[tuple[str, str], ...] = (),
           fork_slot: int | None = 0) -> Pending:
    """Run `script` under capture without recording it: its trial is not yet in the store (its
    values are read from the run's staging folder) until `plugin.recording.record` adds it.

    The script gets `argv` as given; the trial records it with secrets masked, and every text
    of the result (output, error, values, noWorkflow's database) is masked too. `env` is set in
    the capture process's environment on top of pytest's; `fork_slot` says which warm process
    forks it (see capture.forkserver)."""
    settings = state.settings
    experiment = state.experiment_name(script)
    state.secrets = secrets = state.secrets.with_argv(argv)
    try:
        staged = state.writer.stage()  # the run's files wait there until its trial is added
    except OSError as exc:
        raise GateFailure(report.store_write_failed(experiment, str(state.writer.root), exc)) from None
    except StoreError as exc:  # a folder of the store leads outside it; the store is locked
        raise GateFailure(f"{experiment} was not run: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="nwtrials-capture-") as project:
        request = RunRequest(
            script=script,
            argv=argv,
            provenance_dir=Path(project),
            blobs_dir=staged / layout.VALUES,
            name=experiment,
            timeout=timeout or settings.timeout,
            capture=full_or(capture or settings.capture),
            ini_tags=settings.tags_for(experiment),
            root=settings.rootdir,
            env_redact=settings.env_redact,
            env=env,
            fork_slot=fork_slot,
            model_files=settings.save_baseline is not None,
            linkable_blobs=linkable_blobs(state),
        )
        request, result, fallback = run_with_fallback(lambda request: _launch(state, request), request)
        result = masked(result, secrets)
        trial_id = result.trial_id or str(uuid.uuid4())
        inputs = dict(result.environment)
        notebook = getattr(result, "notebook", None)
        if notebook is not None and notebook.cell_tags:
            inputs["cell_tags"] = dict(notebook.cell_tags)  # now_tag_cell names -> cell numbers
        provenance = record_name = ""
        db = archive.database_in(request.provenance_dir)
        warnings = state.store.warnings  # data here: plugin/notices.py turns them into NwTrialsWarning
        if result.trial_id and request.capture != "off" and kept.redacted(db, experiment, trial_id, secrets, warnings):
            if settings.ops != "off":
                inputs["files"], record_name = kept.record_provenance(db, staged, request.script, experiment, trial_id,
                                                                      result, settings.rootdir, secrets, warnings)
            if settings.keep_database:
                provenance = kept.keep_database(db, staged, experiment, trial_id, warnings)
    trial = Trial(
        name="",
        id=trial_id,
        experiment=experiment,
        argv=secrets.mask_argv(argv),
        status=result.status,
        exit_code=result.exit_code,
        started=result.started,
        duration=result.duration,
        tags=result.tags,
        error=result.error,
        python=result.environment.get("python") or platform.python_version(),
        inputs=inputs,
        provenance=provenance,
        record_name=record_name,
        capture=request.capture,
        fallback=secrets.mask_text(fallback.note) if fallback is not None else None,
        values_dir=staged / layout.VALUES)
    return Pending(trial, result, staged, fallback)


def linkable_blobs(state: SessionState) -> tuple[Path, ...]:
    """Where a run's values may already be stored (the local store, the baseline compared
    with): a value found there is linked rather than written again."""
    folders = [state.store.values_dir]
    if state.reference is not None and state.reference.kind == "baseline":
        # first: a file linked from the baseline is one the comparison need not hash again
        folders.insert(0, state.baselines.root / state.reference.text / layout.VALUES)
    return tuple(folders)


def discard(state: SessionState, pending: Pending) -> None:
    """Forget a `launch`ed run that is not to be recorded, and the files it left staged."""
    if pending.staged != state.writer.root:  # a pytest-xdist worker stages in its store itself
        shutil.rmtree(pending.staged, ignore_errors=True)


def _launch(state: SessionState, request: RunRequest) -> RunResult:
    if request.script.suffix == ".ipynb":
        from ..capture.notebook import NotebookError, run_notebook

        try:
            return run_notebook(request, kernel=state.settings.kernel, cell_timeout=state.settings.cell_timeout)
        except NotebookError as exc:  # may quote the kernel's output
            raise GateFailure(state.secrets.mask_text(str(exc))) from None
    return run_experiment(request)
