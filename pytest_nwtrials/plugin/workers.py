"""pytest-xdist: workers record privately and send their trials; the controller alone writes.

A worker records each trial into a staging store of its own (a temporary folder) and sends it
with the report of the test phase that recorded it: the report carries, as one attribute, what
the worker recorded since its previous report (trial records, provenance records, compressed
noWorkflow databases when kept, value files, verdicts, collected experiments, used baseline
entries and warnings). The controller takes the attribute off the report before any other
plugin sees it and adds the trials to the local store, numbering them in the order they arrive;
at its own session end it saves baselines, removes old trials (``nw_keep``) and writes the
reports, as a session without workers does. What is left at a worker's end (little: verdicts
changed after the last report) travels through ``config.workeroutput``.

So a passed report and its trial arrive together: a worker that crashes later (``os._exit``, a
segfault, the OOM killer) takes no finished trial with it, and ``--nw-save-baseline`` still
saves the entries of every passed item.

Workers never write the store or the baselines: they need no shared filesystem with the
controller (``--tx ssh=...``), concurrent writers cannot collide, and ``--nw-save-baseline``
writes one complete baseline. Workers still read the baselines of their own checkout.

The files travel as bytes, except when a worker shares the controller's filesystem (it can read
a token file the controller wrote, as local ``-n`` workers can): then the worker stages inside
the controller's temporary folder and only paths are sent, so a large value never has to fit in
memory; the controller removes a worker's staging folder when the worker goes down, crashed or
not, and the whole temporary folder at its end.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ..files import copy_atomic, write_bytes_atomic
from ..paths import check_within, inside
from ..store import archive, layout
from ..store.trial_store import StoreError, Trial, TrialStore
from .state import Outcome, SessionState

PAYLOAD_KEY = "nwtrials"  # in workeroutput, and the attribute of a report that carries trials
TOKEN_KEY = "nwtrials_token"  # in workerinput: [path, content] of the controller's token file
PAYLOAD_VERSION = 3
STAGED_NAME_LENGTH = 8  # a staged trial's name, its id's start until the controller numbers it
STAGING_PREFIX = "nwtrials-worker-"


def is_worker(config: Any) -> bool:
    return hasattr(config, "workerinput")


def shares_filesystem(config: Any) -> bool:
    """Whether this worker sees the controller's files: it can read the controller's token."""
    token = getattr(config, "workerinput", {}).get(TOKEN_KEY)
    if not token:
        return False
    try:
        return Path(token[0]).read_text(encoding="utf-8") == token[1]
    except (OSError, UnicodeDecodeError, TypeError, IndexError):
        return False


class StagingStore(TrialStore):
    """A worker's private store: trials are kept in memory by the session, not numbered.

    A worker that shares the controller's filesystem stages inside the controller's temporary
    folder, which the controller removes even when the worker crashes before its first report.
    """

    def __init__(self, config: Any = None) -> None:
        self.shared = shares_filesystem(config)
        parent = Path(config.workerinput[TOKEN_KEY][0]).parent if self.shared else None
        super().__init__(Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=parent)))

    def stage(self) -> Path:
        """The staging store itself: its files are sent to the controller as they are."""
        self.ensure()
        return self.root

    def add(self, trial: Trial, staged: Path | None = None, *, check_names: bool = False) -> Trial:
        self.ensure()
        return replace(trial, name=trial.id[:STAGED_NAME_LENGTH], values_dir=self.values_dir)

    def rewrite(self, trial: Trial) -> Trial:
        """Nothing to write: the trial is sent to the controller as the session holds it."""
        return replace(trial, values_dir=self.values_dir)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _workeroutput(config: Any) -> dict[str, Any]:
    """What a pytest-xdist worker sends the controller at its end (set by xdist on its config)."""
    return config.workeroutput


def to_wire(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` as execnet can always send it: its text as ASCII JSON, its file contents as bytes
    beside it. execnet refuses strings that are not valid UTF-8, and a tag name or a value read
    from a committed file may hold a lone surrogate, which JSON escapes and restores exactly."""
    contents: list[bytes] = []

    def keep(value: Any) -> dict[str, int]:
        if not isinstance(value, bytes):
            raise TypeError(f"cannot send a {type(value).__name__} to the controller")
        contents.append(value)
        return {"__bytes__": len(contents) - 1}

    return {"version": PAYLOAD_VERSION, "json": json.dumps(doc, default=keep), "bytes": contents}


def from_wire(wire: dict[str, Any]) -> Any:
    """The document `to_wire` sent."""
    contents = wire["bytes"]

    def restore(obj: dict[str, Any]) -> Any:
        return contents[obj["__bytes__"]] if obj.keys() == {"__bytes__"} else obj

    return json.loads(wire["json"], object_hook=restore)


def _contents_of(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _path_of(path: Path) -> str | None:
    return str(path) if path.is_file() else None


def _outcome_doc(outcome: Outcome) -> dict[str, Any]:
    from ..render.report_data import change_doc

    return {"verdict": outcome.verdict, "against": outcome.against, "message": outcome.message,
            "changes": [change_doc(change) for change in outcome.changes],
            "why": list(outcome.why), "notes": list(outcome.notes), "pictures": outcome.pictures,
            "stability": outcome.stability.to_json() if outcome.stability is not None else None}


def _fingerprint(outcome: Outcome) -> tuple[Any, ...]:
    """Cheap to compare: changes whenever what `_outcome_doc` sends changes."""
    return (outcome.verdict, outcome.against, outcome.message, tuple(outcome.why), tuple(outcome.notes),
            id(outcome.changes), len(outcome.changes), id(outcome.stability), id(outcome.pictures))


class Worker:
    """Registered on each pytest-xdist worker: sends what it recorded with each report."""

    def __init__(self, session: SessionState, staging: StagingStore) -> None:
        self.session = session
        self.staging = staging  # the session's writer
        self.trials_sent = 0  # of session.recorded, in order
        self.outcomes_sent: dict[str, tuple[Any, ...]] = {}  # fingerprint of the verdict sent, by trial id
        self.sent: dict[str, set[str]] = {"collected": set(), "used_entries": set(), "warnings": set(),
                                          "errors": set()}
        self.sizes = (0, 0, 0, 0)  # of what the names in `sent` came from

    @pytest.hookimpl(wrapper=True)  # around pytest-xdist, which serializes the report for the controller
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Generator[None, object, object]:
        doc = self.news()
        if doc is None:
            return (yield)
        setattr(report, PAYLOAD_KEY, to_wire(doc))
        try:
            return (yield)
        finally:  # sent by now: the reports this worker keeps do not keep file contents too
            report.__dict__.pop(PAYLOAD_KEY, None)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        self.session.notices.emit_at_end()  # the controller shows them, and fails on an error among them
        _workeroutput(self.session.config)[PAYLOAD_KEY] = to_wire(self.news() or self.header())
        if not self.staging.shared:  # else the controller copies from the staging folder, then removes it
            self.staging.remove()

    def header(self) -> dict[str, Any]:
        return {"version": PAYLOAD_VERSION, "staging": str(self.staging.root) if self.staging.shared else None,
                "trials": [], "outcomes": {}, "collected": [], "used_entries": [], "warnings": [], "errors": []}

    def news(self) -> dict[str, Any] | None:
        """What the controller has not been sent yet, as execnet-serializable data (file
        contents as bytes, or paths in the staging folder); None when there is nothing new."""
        session = self.session
        new = session.recorded[self.trials_sent:]
        self.trials_sent = len(session.recorded)
        outcomes = {}
        for trial in session.recorded:
            outcome = session.outcomes.get(trial.name)
            if outcome is not None and self.outcomes_sent.get(trial.id) != (mark := _fingerprint(outcome)):
                self.outcomes_sent[trial.id] = mark
                outcomes[trial.id] = _outcome_doc(outcome)
        fresh = self._fresh_names()
        if not (new or outcomes or any(fresh.values())):
            return None
        return {**self.header(), **fresh, "trials": [self._trial_doc(trial) for trial in new], "outcomes": outcomes}

    def _fresh_names(self) -> dict[str, list[str]]:
        """Experiments collected, baseline entries used and warnings not sent yet (those emitted
        here under the filters in force: the controller shows them as they are)."""
        session = self.session
        notices = session.notices
        sizes = (len(session.collected), len(session.used_entries), len(notices.shown), len(notices.errors))
        if sizes == self.sizes:  # they only grow: nothing new (the common case, checked per report)
            return {key: [] for key in self.sent}
        self.sizes = sizes
        root = session.baselines.root
        current = {  # in a stable order: sorted, or as they were added
            "collected": sorted(session.collected),
            "used_entries": sorted(path.relative_to(root).as_posix() for path in session.used_entries
                                   if path.is_relative_to(root)),
            "warnings": list(notices.shown),
            "errors": list(notices.errors),
        }
        fresh = {key: [value for value in values if value not in self.sent[key]] for key, values in current.items()}
        for key, values in fresh.items():
            self.sent[key].update(values)
        return fresh

    def _trial_doc(self, trial: Trial) -> dict[str, Any]:
        from ..values.codec import blob_refs

        staging = self.staging
        read = _path_of if staging.shared else _contents_of
        blobs = {ref for doc in trial.tags.values() for ref in blob_refs(doc["value"], include_pickles=True)}
        return {
            "trial": trial.to_json(),
            "record": read(staging.record_path(trial)),
            "provenance": read(staging.root / trial.provenance) if trial.provenance else None,
            "values": {ref: data for ref in sorted(blobs)
                       if (data := read(staging.values_dir / Path(ref).name)) is not None},
        }


def _store_trial(store: TrialStore, item: dict[str, Any], staging: Path | None) -> Trial:
    """Write one staged trial's files into `store`, then its record under the next number.

    With `staging`, the files were sent as paths, which must lie in that folder. They wait in the
    store's staging folder until the trial is added, which moves them into place under the store
    lock."""

    def put(source: bytes | str, target: Path) -> None:
        if staging is None:
            if not isinstance(source, bytes):
                raise TypeError(f"a file sent as {type(source).__name__}, not bytes")
            write_bytes_atomic(target, source)
            return
        if not isinstance(source, str):
            raise TypeError(f"a path sent as {type(source).__name__}, not str")
        path = Path(source)
        check_within(staging, path, "a file sent by a worker")
        copy_atomic(path, target)

    staged = Trial.from_json(item["trial"], "trial sent by a worker")
    folder = store.stage()
    for ref, source in item["values"].items():
        put(source, folder / layout.VALUES / Path(ref).name)
    record_name = ""
    if item["record"] is not None:  # named by the worker's trial record: checked to be a file name
        record_name = staged.record_name
        put(item["record"], folder / layout.RECORDS / (record_name or f"{staged.id}.json"))
    provenance = ""
    if item["provenance"] is not None:
        provenance = archive.archive_name(staged.id)
        put(item["provenance"], folder / provenance)
    return store.add(replace(staged, name="", provenance=provenance, record_name=record_name), staged=folder,
                     check_names=True)


def _worker_name(node: Any) -> str:
    return str(getattr(getattr(node, "gateway", None), "id", "?"))


class Controller:
    """Registered on the pytest-xdist controller: receives each worker's trials with its reports."""

    def __init__(self, session: SessionState) -> None:
        self.session = session
        self.token_dir = Path(tempfile.mkdtemp(prefix="nwtrials-controller-"))
        self.token = [str(self.token_dir / "token"), uuid.uuid4().hex]
        Path(self.token[0]).write_text(self.token[1], encoding="utf-8")
        self.names: dict[str, str] = {}  # the store's name of each trial received, by trial id
        self.staging: dict[str, Path] = {}  # the staging folder of each worker that sends paths

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[TOKEN_KEY] = self.token

    def pytest_unconfigure(self) -> None:
        shutil.rmtree(self.token_dir, ignore_errors=True)

    @pytest.hookimpl(wrapper=True, tryfirst=True)  # around every other plugin: none sees the payload
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Generator[None, object, object]:
        doc = report.__dict__.pop(PAYLOAD_KEY, None)
        if doc is not None:
            lost = self.ingest(doc, _worker_name(getattr(report, "node", None)))
            if lost and report.passed:  # a phase is reported passed only with its trials recorded
                report.outcome, report.longrepr = "failed", "\n".join(lost)
            else:
                self.session.store.warnings.extend(lost)
        return (yield)

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        worker = _worker_name(node)
        doc = getattr(node, "workeroutput", {}).get(PAYLOAD_KEY)
        if doc is not None:
            self.session.store.warnings.extend(self.ingest(doc, worker))
        staging = self.staging.pop(worker, None)
        if staging is not None:  # a crashed worker's too: what it had reported is in the store
            shutil.rmtree(staging, ignore_errors=True)

    def ingest(self, doc: Any, worker: str) -> list[str]:
        """Add what a worker sent to the local store and the session; never raises. Returns
        why trials it sent were not recorded, if any were not."""
        if not isinstance(doc, dict) or doc.get("version") != PAYLOAD_VERSION:
            return [f"worker {worker} sent trials in another format; they were not recorded "
                    "(install the same pytest-nwtrials version on every worker)"]
        try:
            return self._ingest(from_wire(doc), worker)
        except StoreError as exc:
            return [f"{exc}; the trials of worker {worker} were not recorded"]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return [f"worker {worker} sent a damaged payload; its trials were not all recorded ({exc!r})"]

    def _ingest(self, doc: dict[str, Any], worker: str) -> list[str]:
        from ..render.failure import store_write_failed

        session = self.session
        staging = self._staging_of(doc, worker)
        session.collected.update(doc["collected"])
        session.used_entries.update(session.baselines.root / path for path in doc["used_entries"])
        session.notices.receive(doc["warnings"])
        session.notices.errors.extend(e for e in doc.get("errors", ()) if e not in session.notices.errors)
        lost = []
        for item in doc["trials"]:
            if item["trial"].get("id") in self.names:  # sent twice: recorded once
                continue
            experiment = item["trial"].get("experiment", "?")
            try:
                trial = _store_trial(session.store, item, staging)
            except OSError as exc:
                lost.append(store_write_failed(f"{experiment} (on worker {worker})", str(session.store.root), exc))
                continue
            except StoreError as exc:
                lost.append(f"{experiment}: the trial from worker {worker} was not recorded: {exc}")
                continue
            self.names[trial.id] = trial.name
            session.recorded.append(trial)
            session.outcomes[trial.name] = Outcome(trial, "recorded")
        for trial_id, sent in doc["outcomes"].items():
            outcome = session.outcomes.get(self.names.get(trial_id, ""))
            if outcome is not None:
                outcome.verdict, outcome.against, outcome.message = sent["verdict"], sent["against"], sent["message"]
                outcome.why, outcome.notes = tuple(sent["why"]), list(sent["notes"])
                outcome.pictures = sent.get("pictures")
                outcome.change_docs = list(sent["changes"])
                staged = self.staged_names()
                outcome.against = staged.get(outcome.against, outcome.against)  # a repeat names its first run
                if sent.get("stability") is not None:
                    self._stability(outcome, sent["stability"], staged)
        return lost

    def staged_names(self) -> dict[str, str]:
        """The store's name of each trial received, by the name its worker staged it under."""
        return {trial_id[:STAGED_NAME_LENGTH]: name for trial_id, name in self.names.items()}

    def _stability(self, outcome: Outcome, doc: dict[str, Any], staged: dict[str, str]) -> None:
        """Keep a group's stability, its runs named as the store names them (`staged`: the store's
        name by the worker's), on its first run."""
        from ..compare.spread import Stability

        stability = Stability.from_json(doc)
        stability = replace(stability, trials=tuple(staged.get(name, name) for name in stability.trials))
        outcome.stability = stability
        trial = replace(outcome.trial, stability=stability.to_json())
        try:
            outcome.trial = self.session.store.rewrite(trial)
        except (StoreError, OSError) as exc:  # the verdict still reaches the reports
            self.session.store.warnings.append(f"{trial.experiment}: the stability of its runs was not stored "
                                               f"in {trial.name} ({exc})")
            return
        session = self.session
        session.recorded[:] = [outcome.trial if t.name == trial.name else t for t in session.recorded]

    def _staging_of(self, doc: dict[str, Any], worker: str) -> Path | None:
        """The folder whose files a worker sent by path: inside this controller's temporary folder."""
        if doc.get("staging") is None:
            return None
        name = Path(doc["staging"]).name  # the worker staged in a folder of its own right in there
        if not name.startswith(STAGING_PREFIX):
            raise StoreError(f"worker {worker} names {doc['staging']} as its staging folder")
        staging = inside(self.token_dir, name, f"the staging folder of worker {worker}")
        self.staging[worker] = staging
        return staging
