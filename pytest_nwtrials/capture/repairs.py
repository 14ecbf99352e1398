"""Repairs to noWorkflow 2.1.3 so that fine capture runs what plain Python runs.

noWorkflow rewrites the experiment's code (each expression becomes a call into its collector)
and runs it in a namespace of its own. Some common constructs break under that rewrite or
runtime. Each repair here is small, names the fault it answers and how it was measured, and is
applied once per process before any code is rewritten, by the script runner
(`runner.capture`) and the notebook kernel (`kernel_trial.NotebookCapture`) alike, through
`capture_setup.prepare`:

- `repair_syntax`: faults of the rewriter and collector (code shapes that noWorkflow rewrites
  wrongly or cannot follow).
- `repair_runtime`: faults of the run around the code (the namespace, files, processes and
  threads it leaves behind).
"""
from __future__ import annotations

from typing import Any

from . import environment, repair_runtime, repair_syntax


def install(metascript: Any) -> None:
    """Apply every repair to the process and to `metascript`, before any code is rewritten."""
    environment.balance_elif_conditions()
    repair_syntax.install(metascript)
    repair_runtime.install(metascript)
