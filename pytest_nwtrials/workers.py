"""pytest-xdist: workers record privately and send their trials; the controller alone writes.

A worker records each trial into a staging store of its own (a temporary folder) and, at the end
of its session, sends everything the trials consist of through ``config.workeroutput``: the
trial records, provenance records, compressed noWorkflow databases, value files and verdicts.
The controller receives each worker's payload in ``pytest_testnodedown`` and adds the trials to
the local store, numbering them; at its own session end it saves baselines, removes old trials
(``nw_keep``) and writes the reports, as a session without workers does.

So workers never write the store or the baselines: they need no shared filesystem with the
controller (``--tx ssh=...``), concurrent writers cannot collide, and ``--nw-save-baseline``
writes one complete baseline. Workers still read the baselines of their own checkout.

The files travel as bytes, except when a worker shares the controller's filesystem (it can read
a token file the controller wrote, as local ``-n`` workers can): then only their paths are sent,
the staging folder is left for the controller to copy from and remove, and a large value never
has to fit in memory.

Trials staged by a worker are named by the first characters of their id until the controller
numbers them; failure messages show that prefix, which the store resolves once recorded.
"""
from __future__ import annotations

import shutil
import tempfile
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import provenance_archive as archive
from .store import StoreError, Trial, TrialStore, copy_atomic, write_bytes_atomic

if TYPE_CHECKING:
    from .session import TrialSession

PAYLOAD_KEY = "nwtrials"
TOKEN_KEY = "nwtrials_token"  # in workerinput: [path, content] of the controller's token file
PAYLOAD_VERSION = 1
STAGED_NAME_LENGTH = 8


def is_worker(config: Any) -> bool:
    return hasattr(config, "workerinput")


class StagingStore(TrialStore):
    """A worker's private store: trials are kept in memory by the session, not numbered."""

    def __init__(self) -> None:
        super().__init__(Path(tempfile.mkdtemp(prefix="nwtrials-worker-")))

    def stage(self) -> Path:
        """The staging store itself: its files are sent to the controller as they are."""
        self.ensure()
        return self.root

    def add(self, trial: Trial, staged: Path | None = None) -> Trial:
        self.ensure()
        return replace(trial, name=trial.id[:STAGED_NAME_LENGTH], values_dir=self.values_dir)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _contents_of(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _path_of(path: Path) -> str | None:
    return str(path) if path.is_file() else None


def shares_filesystem(config: Any) -> bool:
    """Whether this worker sees the controller's files: it can read the controller's token."""
    token = getattr(config, "workerinput", {}).get(TOKEN_KEY)
    try:
        return bool(token) and Path(token[0]).read_text(encoding="utf-8") == token[1]
    except (OSError, UnicodeDecodeError):
        return False


def payload(session: TrialSession, by_path: bool = False) -> dict[str, Any]:
    """Everything the controller needs of this worker's session, as execnet-serializable data:
    file contents as bytes, or with `by_path` as paths in the staging folder."""
    from .summary import change_doc
    from .values import blob_refs

    staging = session.writer
    _read_bytes = _path_of if by_path else _contents_of
    trials = []
    for trial in session.recorded:
        outcome = session.outcomes[trial.name]
        blobs = {ref for doc in trial.tags.values() for ref in blob_refs(doc["value"], include_pickles=True)}
        trials.append({
            "trial": trial.to_json(),
            "record": _read_bytes(staging.record_path(trial.id)),
            "provenance": _read_bytes(staging.root / trial.provenance) if trial.provenance else None,
            "values": {ref: data for ref in sorted(blobs)
                       if (data := _read_bytes(staging.values_dir / Path(ref).name)) is not None},
            "outcome": {
                "verdict": outcome.verdict, "against": outcome.against, "message": outcome.message,
                "changes": [change_doc(change) for change in outcome.changes],
                "why": list(outcome.why), "notes": list(outcome.notes),
            },
        })
    baselines_root = session.baselines.root
    return {
        "version": PAYLOAD_VERSION,
        "staging": str(staging.root) if by_path else None,
        "trials": trials,
        "collected": sorted(session.collected),
        "used_entries": sorted(path.relative_to(baselines_root).as_posix() for path in session.used_entries
                               if path.is_relative_to(baselines_root)),
        "warnings": list(dict.fromkeys(session.store.warnings + staging.warnings)),
    }


def ingest(session: TrialSession, doc: dict[str, Any], worker: str) -> None:
    """Add one worker's trials to the local store and its verdicts to the session."""
    from .session import Outcome

    if doc.get("version") != PAYLOAD_VERSION:
        session.store.warnings.append(f"worker {worker} sent trials in another format; they were not recorded "
                                      "(install the same pytest-nwtrials version on every worker)")
        return
    session.collected.update(doc["collected"])
    session.used_entries.update(session.baselines.root / path for path in doc["used_entries"])
    session.store.warnings.extend(w for w in doc["warnings"] if w not in session.store.warnings)
    staging = doc.get("staging")
    try:
        for item in doc["trials"]:
            try:
                trial = _store_trial(session.store, item, by_path=staging is not None)
            except (OSError, StoreError) as exc:
                experiment = item["trial"].get("experiment", "?")
                session.store.warnings.append(f"{experiment}: trial from worker {worker} not recorded: {exc}")
                continue
            sent = item["outcome"]
            session.recorded.append(trial)
            session.outcomes[trial.name] = Outcome(
                trial, sent["verdict"], sent["against"], sent["message"], why=tuple(sent["why"]),
                notes=list(sent["notes"]), change_docs=list(sent["changes"]))
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _store_trial(store: TrialStore, item: dict[str, Any], by_path: bool) -> Trial:
    """Stage one worker's trial's files in the store, then add it under the next number (which
    moves them into place under the store lock)."""

    def put(source: bytes | str, target: Path) -> None:
        if by_path:
            copy_atomic(Path(source), target)
        else:
            write_bytes_atomic(target, source)

    staged = Trial.from_json(item["trial"], "trial sent by a worker")
    folder = store.stage()
    for ref, source in item["values"].items():
        put(source, folder / "values" / Path(ref).name)
    if item["record"] is not None:
        put(item["record"], folder / "records" / f"{staged.id}.json")
    provenance = ""
    if item["provenance"] is not None:
        provenance = archive.archive_name(staged.id)
        put(item["provenance"], folder / provenance)
    return store.add(replace(staged, name="", provenance=provenance), staged=folder)


class Controller:
    """Registered on the pytest-xdist controller: receives each worker's trials."""

    def __init__(self, session: TrialSession) -> None:
        self.session = session
        self.token_dir = Path(tempfile.mkdtemp(prefix="nwtrials-controller-"))
        self.token = [str(self.token_dir / "token"), uuid.uuid4().hex]
        Path(self.token[0]).write_text(self.token[1], encoding="utf-8")

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[TOKEN_KEY] = self.token

    def pytest_unconfigure(self) -> None:
        shutil.rmtree(self.token_dir, ignore_errors=True)

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        worker = getattr(node, "gateway", None)
        worker = getattr(worker, "id", "?")
        doc = getattr(node, "workeroutput", {}).get(PAYLOAD_KEY)
        if doc is None:
            if error is not None:
                self.session.store.warnings.append(
                    f"worker {worker} ended before sending its trials ({error}); they were not recorded")
            return
        ingest(self.session, doc, worker)

