"""Repairs to noWorkflow's rewriter and collector: code shapes it rewrites wrongly or cannot follow.

See `repairs` for when they are applied.
"""
from __future__ import annotations

from typing import Any


def install(metascript: Any) -> None:
    """Apply the rewriter and collector repairs (idempotent: class-level patches once per process)."""
