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

Trials staged by a worker are named by the first characters of their id until the controller
numbers them; failure messages show that prefix, which the store resolves once recorded.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import provenance_archive as archive
from .store import StoreError, Trial, TrialStore, write_text_atomic

if TYPE_CHECKING:
    from .session import TrialSession

PAYLOAD_KEY = "nwtrials"
PAYLOAD_VERSION = 1
STAGED_NAME_LENGTH = 8


def is_worker(config: Any) -> bool:
    return hasattr(config, "workerinput")


class StagingStore(TrialStore):
    """A worker's private store: trials are kept in memory by the session, not numbered."""

    def __init__(self) -> None:
        super().__init__(Path(tempfile.mkdtemp(prefix="nwtrials-worker-")))

    def add(self, trial: Trial) -> Trial:
        self.ensure()
        return replace(trial, name=trial.id[:STAGED_NAME_LENGTH], values_dir=self.values_dir)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def payload(session: TrialSession) -> dict[str, Any]:
    """Everything the controller needs of this worker's session, as execnet-serializable data."""
    from .summary import change_doc
    from .values import blob_refs

    staging = session.writer
    trials = []
    for trial in session.recorded:
        outcome = session.outcomes[trial.name]
        blobs = {ref for doc in trial.tags.values() for ref in blob_refs(doc["value"], include_pickles=True)}
        record = _read_bytes(staging.record_path(trial.id))
        trials.append({
            "trial": trial.to_json(),
            "record": record.decode("utf-8") if record is not None else None,
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
    for item in doc["trials"]:
        try:
            trial = _store_trial(session.store, item)
        except (OSError, StoreError) as exc:
            experiment = item["trial"].get("experiment", "?")
            session.store.warnings.append(f"{experiment}: trial from worker {worker} not recorded: {exc}")
            continue
        sent = item["outcome"]
        session.recorded.append(trial)
        session.outcomes[trial.name] = Outcome(
            trial, sent["verdict"], sent["against"], sent["message"], why=tuple(sent["why"]),
            notes=list(sent["notes"]), change_docs=list(sent["changes"]))


def _store_trial(store: TrialStore, item: dict[str, Any]) -> Trial:
    """Write one staged trial's files into `store`, then its record under the next number."""
    staged = Trial.from_json(item["trial"], "trial sent by a worker")
    store.ensure()
    for ref, data in item["values"].items():
        target = store.values_dir / Path(ref).name  # content-addressed: an existing file is the same
        if not target.exists():
            archive.write(data, target)
    if item["record"] is not None:
        write_text_atomic(store.record_path(staged.id), item["record"])
    provenance = ""
    if item["provenance"] is not None:
        provenance = archive.archive_name(staged.id)
        archive.write(item["provenance"], store.root / provenance)
    return store.add(replace(staged, name="", provenance=provenance))


class Controller:
    """Registered on the pytest-xdist controller: receives each worker's trials."""

    def __init__(self, session: TrialSession) -> None:
        self.session = session

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

