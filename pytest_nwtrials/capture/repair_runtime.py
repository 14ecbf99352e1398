"""Repairs to the run around the experiment's code under noWorkflow: namespace, files,
processes and threads.

See `repairs` for when they are applied.
"""
from __future__ import annotations

from typing import Any


def install(metascript: Any) -> None:
    """Apply the runtime repairs (idempotent: process-level patches once per process)."""
