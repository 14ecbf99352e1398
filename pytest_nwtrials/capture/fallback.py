"""The safety net: an experiment that fine capture cannot follow is recorded with coarse capture.

When a fine-capture run fails inside noWorkflow's own code (`capture.capture_fault`), not in the
experiment's, the same experiment is run once more with coarse capture (calls, arguments,
returns and file accesses only), which rewrites far less of it. That run is the trial that is
recorded and gated, and it says so: `Fallback.note` goes into the trial record (``capture``,
``fallback``), the terminal summary, the item's report and the JSON and HTML reports. The
experiment's own exceptions are never rerun; when the coarse run fails inside noWorkflow too,
the fine run is kept and its failure reported first, without a further retry.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from .capture_fault import fallback_note, fault_text
from .launch import RunRequest, RunResult

FALLBACK_CAPTURE = "coarse"


@dataclass(frozen=True)
class Fallback:
    """What became of a fine-capture run that failed inside noWorkflow."""

    note: str  # said wherever the trial is shown
    traceback: str  # the fine run's, noWorkflow's frames included: what a report to noWorkflow needs


def run_with_fallback(launch: Callable[[RunRequest], RunResult],
                      request: RunRequest) -> tuple[RunRequest, RunResult, Fallback | None]:
    """Run `request`; if fine capture failed inside noWorkflow, run it with coarse capture.

    Returns the request and result to record, and the fallback taken, if any. The coarse run
    gets the same timeout as the first and a provenance folder of its own.
    """
    result = launch(request)
    fault = result.capture_fault
    if fault is None or request.capture != "fine" or result.timed_out:
        return request, result, None
    coarse_request = replace(request, capture=FALLBACK_CAPTURE,
                             provenance_dir=Path(request.provenance_dir) / FALLBACK_CAPTURE)
    coarse = launch(coarse_request)
    if coarse.capture_fault is None:
        return coarse_request, coarse, Fallback(fallback_note(fault, FALLBACK_CAPTURE), str(fault.get("traceback") or ""))
    note = (f"{fault_text('fine', fault)}; the rerun with coarse capture failed in noWorkflow too "
            f"({fault_text(FALLBACK_CAPTURE, coarse.capture_fault).partition(' in noWorkflow ')[2]}); "
            f"the fine-capture run is recorded")
    return request, result, Fallback(note, str(fault.get("traceback") or ""))
