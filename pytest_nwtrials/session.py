"""The session's bookkeeping: runs experiments, records trials, compares them, saves baselines.

One `TrialSession` is registered as a plugin in `pytest_configure`; items and the `nw_trial`
fixture reach it through ``config.stash``.
"""
from __future__ import annotations

import os
import platform
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from . import provenance_archive as archive
from . import session_provenance as kept
from . import report, workers
from .baselines import BaselineStore, Entry, entry_from_trial
from .capture.launch import RunRequest, RunResult, masked, run_experiment
from .printable import printable
from .redaction import Secrets
from .record_fields import stored_alike
from .references import Reference, ReferenceError_, resolve
from .settings import AUTO, FULL, Settings
from .spread import Stability
from .store import StoreError, Trial, TrialStore
from .fallback import run_with_fallback
from .marker import Comparison, GateFailure

SESSION_KEY = pytest.StashKey["TrialSession"]()


def full_or(capture: str) -> str:
    """The capture a run gets: auto means full capture unless `auto.first_run` ran it without
    capture first."""
    return FULL if capture == AUTO else capture


@dataclass
class Outcome:
    """How one trial of this session fared; feeds the summary, JUnit properties and reports."""

    trial: Trial
    verdict: str  # recorded, matched, changed, new, failed, timeout, error, skipped
    against: str | None = None
    message: str | None = None
    changes: tuple = ()
    why: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)  # worth saying even when it passes
    change_docs: list[dict] | None = None  # the changes as report data, when sent by a worker
    stability: Stability | None = None  # of the first run of a group run with --nw-repeat
    fallback_traceback: str = ""  # noWorkflow's failure under fine capture, when it fell back


@dataclass(frozen=True)
class Pending:
    """A run that `TrialSession.launch` made and that is not recorded yet."""

    trial: Trial  # unnamed; its values are read from `staged`
    result: RunResult
    staged: Path  # its files, moved into the store when it is recorded
    fallback: Any = None  # fallback.Fallback, when fine capture fell back to coarse


class TrialSession:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.store = TrialStore(settings.store)  # earlier trials are read from here
        self.baselines = BaselineStore(settings.baselines_dir, project=settings.rootdir)
        self.is_worker = workers.is_worker(config)
        # where this session's trials are written: a pytest-xdist worker stages them privately
        # and sends them to the controller (see workers.py)
        self.writer: TrialStore = workers.StagingStore(config) if self.is_worker else self.store
        try:
            self.first_number = self.store.next_number()
        except StoreError as exc:  # a folder of the store is a link leading outside it
            raise pytest.UsageError(str(exc)) from None
        self.recorded: list[Trial] = []
        self.outcomes: dict[str, Outcome] = {}  # by trial name
        self.used_entries: set[Path] = set()
        self.collected: set[str] = set()  # experiments collected as items
        self.saved: list[Path] = []
        self.pruned: list[str] = []
        self.removed = 0  # old trials removed from the store at the end (nw_keep)
        self.reference = self.resolve(settings.baseline) if settings.baseline else None
        # what is masked in trials and messages: grows with the secret arguments of each run
        self.secrets = Secrets.from_environment(os.environ, settings.env_redact)
        if settings.save_baseline:
            try:
                self.baselines.check_writable(settings.save_baseline)
            except StoreError as exc:
                raise pytest.UsageError(printable(f"--nw-save-baseline={settings.save_baseline}: {exc}")) from None

    # -- references -------------------------------------------------------------------------
    def resolve(self, text: str, given: str = "--nw-baseline=") -> Reference:
        """Resolve a reference; an unusable one is a usage error naming what exists."""
        try:
            return resolve(text, self.store, self.baselines, given)
        except (ReferenceError_, StoreError) as exc:
            raise pytest.UsageError(printable(exc)) from None  # it lists stored names

    def experiment_name(self, script: Path) -> str:
        """The experiment's path relative to the rootdir, with forward slashes."""
        return Path(os.path.relpath(script, self.settings.rootdir)).as_posix()

    # -- running ----------------------------------------------------------------------------
    def run(self, script: Path, argv: tuple[str, ...] = (), timeout: float | None = None,
            capture: str | None = None, env: tuple[tuple[str, str], ...] = (),
            fork_slot: int | None = 0) -> tuple[Trial, RunResult]:
        """Run `script` under capture and record the trial in the local store.

        The script gets `argv` as given; the trial records it with secrets masked, and every
        text of the result (output, error, values, noWorkflow's database) is masked too. `env`
        is set in the capture process's environment on top of pytest's; `fork_slot` says which
        warm process forks it (see capture.forkserver).
        """
        pending = self.launch(script, argv, timeout, capture, env, fork_slot)
        return self.record(pending), pending.result

    def launch(self, script: Path, argv: tuple[str, ...] = (), timeout: float | None = None,
               capture: str | None = None, env: tuple[tuple[str, str], ...] = (),
               fork_slot: int | None = 0) -> Pending:
        """Run `script` as `run` does, without recording it: its trial is not yet in the store
        (its values are read from the run's staging folder) until `record` adds it."""
        experiment = self.experiment_name(script)
        self.secrets = secrets = self.secrets.with_argv(argv)
        try:
            staged = self.writer.stage()  # the run's files wait there until its trial is added
        except OSError as exc:
            raise GateFailure(report.store_write_failed(experiment, str(self.writer.root), exc)) from None
        except StoreError as exc:  # a folder of the store leads outside it; the store is locked
            raise GateFailure(f"{experiment} was not run: {exc}") from None
        with tempfile.TemporaryDirectory(prefix="nwtrials-capture-") as project:
            request = RunRequest(
                script=script,
                argv=argv,
                provenance_dir=Path(project),
                blobs_dir=staged / "values",
                name=experiment,
                timeout=timeout or self.settings.timeout,
                capture=full_or(capture or self.settings.capture),
                ini_tags=self.settings.tags_for(experiment),
                root=self.settings.rootdir,
                env_redact=self.settings.env_redact,
                env=env,
                fork_slot=fork_slot,
                model_files=self.settings.save_baseline is not None,
                linkable_blobs=self._linkable_blobs(),
            )
            request, result, fallback = run_with_fallback(self._launch, request)
            result = masked(result, secrets)
            trial_id = result.trial_id or str(uuid.uuid4())
            inputs = dict(result.environment)
            notebook = getattr(result, "notebook", None)
            if notebook is not None and notebook.cell_tags:
                inputs["cell_tags"] = dict(notebook.cell_tags)  # now_tag_cell names -> cell numbers
            provenance = record_name = ""
            db = archive.database_in(request.provenance_dir)
            warnings = self.store.warnings
            if result.trial_id and request.capture != "off" and kept.redacted(db, experiment, trial_id, secrets, warnings):
                if self.settings.ops != "off":
                    inputs["files"], record_name = kept.record_provenance(db, staged, experiment, trial_id, result,
                                                                          self.settings.rootdir, warnings)
                if self.settings.keep_database:
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
            values_dir=staged / "values")
        return Pending(trial, result, staged, fallback)

    def record(self, pending: Pending, capture: str | None = None) -> Trial:
        """Add the trial of a `launch`ed run to the store (with `capture` as its recorded capture
        mode, when given) and to this session's outcomes; its name is set then."""
        result, staged, fallback, secrets = pending.result, pending.staged, pending.fallback, self.secrets
        experiment = pending.trial.experiment
        unnamed = replace(pending.trial, capture=capture or pending.trial.capture, values_dir=None)
        try:
            trial = self.writer.add(unnamed, staged=staged)
        except OSError as exc:  # a full disk, a folder without write permission
            raise GateFailure(report.store_write_failed(experiment, str(self.writer.trials_dir), exc)) from None
        except StoreError as exc:
            raise GateFailure(f"{experiment} ran, but its trial was not recorded: {exc}") from None
        self.recorded.append(trial)
        self.outcomes[trial.name] = Outcome(trial, "recorded")
        if fallback is not None:
            self.outcomes[trial.name].notes.append(f"{experiment}: {trial.fallback}")
            self.outcomes[trial.name].fallback_traceback = secrets.mask_text(fallback.traceback)
        self.outcomes[trial.name].notes.extend(f"{experiment}: {note}" for note in result.notes)
        notebook = getattr(result, "notebook", None)
        if notebook is not None and notebook.out_of_order:
            self.outcomes[trial.name].notes.append(f"{experiment}: {notebook.out_of_order}")
        return trial

    def _linkable_blobs(self) -> tuple[Path, ...]:
        """Where a run's values may already be stored (the local store, the baseline compared
        with): a value found there is linked rather than written again."""
        folders = [self.store.values_dir]
        if self.reference is not None and self.reference.kind == "baseline":
            # first: a file linked from the baseline is one the comparison need not hash again
            folders.insert(0, self.baselines.root / self.reference.text / "values")
        return tuple(folders)

    def discard(self, pending: Pending) -> None:
        """Forget a `launch`ed run that is not to be recorded, and the files it left staged."""
        if pending.staged != self.writer.root:  # a pytest-xdist worker stages in its store itself
            shutil.rmtree(pending.staged, ignore_errors=True)

    def _launch(self, request: RunRequest) -> RunResult:
        if request.script.suffix == ".ipynb":
            from .capture.notebook import NotebookError, run_notebook

            try:
                return run_notebook(request, kernel=self.settings.kernel, cell_timeout=self.settings.cell_timeout)
            except NotebookError as exc:  # may quote the kernel's output
                raise GateFailure(self.secrets.mask_text(str(exc))) from None
        return run_experiment(request)

    def check_run(self, trial: Trial, result: RunResult, timeout: float | None = None) -> None:
        if trial.status != "finished":
            self.fail(trial, trial.status, report.run_failure(trial.experiment, trial, result,
                                                               timeout or self.settings.timeout))
        notebook = getattr(result, "notebook", None)  # only a notebook's run order fails under strict
        if notebook is not None and notebook.out_of_order and self.settings.ops == "strict":
            self.fail(trial, "failed", "\n".join([f"{trial.experiment}: {notebook.out_of_order}",
                                                  "(--nw-ops=strict fails a notebook whose saved "
                                                  "outputs came from another order)"]))

    def fail(self, trial: Trial, verdict: str, message: str, **details) -> None:
        """Record the outcome and fail the item (or test) with `message`."""
        outcome = self.outcomes[trial.name]
        if trial.fallback:  # the failure is of the run recorded, which was not the first one
            message = f"{trial.experiment}: {trial.fallback}\n{message}"
        message = self.secrets.mask_text(message)  # values read from older records may hold one
        outcome.verdict, outcome.message = verdict, message
        for key, value in details.items():
            setattr(outcome, key, value)
        raise GateFailure(message)

    # -- comparing --------------------------------------------------------------------------
    def entry_for(self, trial: Trial, reference: Reference) -> Entry:
        """What `trial` is compared with under `reference`; skips or fails when there is none."""
        if reference.kind == "trial":
            other = reference.trial
            if (other.experiment, other.argv) != (trial.experiment, trial.argv):
                self.outcomes[trial.name].verdict = "skipped"
                pytest.skip(printable(f"baseline {other.name} is a trial of {other.experiment}, "
                                      f"not of {trial.experiment}"))
            return entry_from_trial(other, self.store)
        if reference.kind == "latest":
            earlier = self.store.latest(trial.experiment, trial.argv, before=self.first_number)
            if earlier is None:
                self.fail(trial, "new", report.no_earlier_trial(trial.experiment, str(self.store.root)))
            return entry_from_trial(earlier, self.store)
        try:
            entry = self.baselines.entry(reference.text, trial.experiment, trial.argv)
        except StoreError as exc:
            self.fail(trial, "error", str(exc))
        if entry is None:
            self.fail(trial, "new", report.missing_entry(trial.experiment, trial.argv, reference.text))
        self.used_entries.add(entry.path)
        return entry

    def compare(self, trial: Trial, reference: Reference, options: Comparison = Comparison()) -> None:
        """Fail with a report when `trial` differs from its baseline: values beyond tolerance,
        other arguments, or (with ``--nw-ops=strict``) another operation sequence."""
        from .bands import matched_note
        from .diffing import diff_trials

        entry = self.entry_for(trial, reference)
        same = stored_alike(entry, trial)  # equal without decoding: left out of the diff
        try:
            old, new = entry.values(same), trial.values_except(same)
        except StoreError as exc:  # names the damaged file and what to do
            self.fail(trial, "error", f"{trial.experiment} cannot be compared with {entry.label}: {exc}")
        settings = self.settings
        rules = self.rules(trial, options)
        old_record, new_record = self._records(entry, trial)
        label = self.label(entry)
        diff = diff_trials(label, trial.name, old, new, rules, entry.inputs, entry.argv,
                           trial.inputs, trial.argv, old_record, new_record,
                           operations=settings.ops == "strict", spreads=entry.spread)
        outcome = self.outcomes[trial.name]
        outcome.against = label
        if diff.empty:
            outcome.verdict = "matched"
            if diff.within:  # said even though it passes: the values did move
                outcome.notes.append(matched_note(trial.experiment, diff.within))
            return
        name = reference.text if reference.kind == "baseline" else None
        # files the experiment wrote differently are a consequence: shown with -v
        why = diff.why(outputs=self.config.get_verbosity() > 0)
        if old_record is None and settings.ops != "off":
            why.append(f"  ({entry.label} has no provenance record, so the operations cannot be compared)")
        self.fail(trial, "changed",
                  report.values_changed(trial.experiment, trial, label, diff.value_lines(),
                                        len(diff.tags), name, why, bool(diff.operations), diff.tags),
                  changes=diff.values, why=tuple(why))

    @staticmethod
    def label(entry: Entry) -> str:
        """How reports name what a trial was compared with."""
        return entry.label if entry.label == entry.trial else f"{entry.label} (recorded in {entry.trial})"

    def rules(self, trial: Trial, options: Comparison = Comparison()) -> Any:
        """The tolerances and ignored paths `trial` is compared under (`compare.Rules`): against
        its baseline, and against the other runs of its group under --nw-repeat."""
        from .compare import Rules, Tolerance

        settings = self.settings
        # narrowest wins: tag(rtol=) > nw_tolerances pattern > marker or fixture > --nw-rtol > built-in
        return Rules(
            default=Tolerance(settings.rtol if options.rtol is None else options.rtol,
                              settings.atol if options.atol is None else options.atol),
            patterns=settings.tolerances,
            ignore=settings.ignore + options.ignore,
            tag_tolerances={name: Tolerance(doc.get("rtol"), doc.get("atol"))
                            for name, doc in trial.tags.items() if "rtol" in doc or "atol" in doc},
        )

    def _records(self, entry: Entry, trial: Trial):
        """The provenance records of both sides, or None for a side that has none (or with --nw-ops=off)."""
        if self.settings.ops == "off":
            return None, None
        records = []
        for read in (entry.provenance, trial.record):
            try:
                records.append(read())
            except StoreError as exc:  # names the file and what to do
                self.store.warnings.append(f"{exc}; the operations are not compared")
                records.append(None)
        return records[0], records[1]

    # -- session end ----------------------------------------------------------------------
    def pytest_itemcollected(self, item: pytest.Item) -> None:
        from .items import ExperimentItem

        if isinstance(item, ExperimentItem):
            self.collected.add(self.experiment_name(item.path))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from . import summary

        if self.is_worker:  # the controller records, saves and reports (workers.Worker sends the trials)
            return
        name = self.settings.save_baseline
        if name:
            for trial in self.recorded:  # a group of repeated runs is saved as its first run
                if trial.status == "finished" and self.outcomes[trial.name].verdict != "repeat":
                    try:
                        self.saved.append(self.baselines.save(name, trial, self.store))
                    except StoreError as exc:
                        self.store.warnings.append(f"{exc}; not saved")
                        session.exitstatus = pytest.ExitCode.TESTS_FAILED
            self.pruned = summary.prune_dead_entries(self)
        summary.write_reports(self)  # before pruning, which may remove an older trial of this session
        summary.remove_old_trials(self)
        self.store.close()

    def pytest_unconfigure(self) -> None:
        self.store.close()  # when the session did not reach its end

    def pytest_terminal_summary(self, terminalreporter) -> None:
        from . import summary

        summary.terminal_summary(self, terminalreporter)
