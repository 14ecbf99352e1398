"""Notebook items' capture kernels, started ahead of need: the next notebook's starts while the
running item runs, the first one's when collection ends (see `capture.notebook_warm`)."""
from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from ..settings import Settings
from .items import ExperimentItem
from .marker import GateFailure, comparison_from_marker


class KernelsAhead:
    """Tells `capture.notebook_warm` which notebooks this pytest process runs next."""

    def __init__(self, settings: Settings, first_at_collection: bool) -> None:
        self.settings = settings
        # an xdist worker is sent its items as it goes: the first one collected may be another's
        self.first_at_collection = first_at_collection

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.first_at_collection and session.items:
            _prepare(self._wanted(session.items[:1]))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        _prepare(self._wanted([item, nextitem]))

    def pytest_unconfigure(self) -> None:
        warm = sys.modules.get(WARM)  # loaded by the first notebook: scripts alone never load it
        if warm is not None:
            warm.shutdown()

    def _wanted(self, items: Sequence[pytest.Item | None]) -> list[tuple[Any, Path]]:
        """The kernels the notebooks among `items` will take, in order."""
        notebooks = [item for item in items if isinstance(item, ExperimentItem) and item.path.suffix == ".ipynb"]
        if not notebooks:
            return []
        from ..capture import notebook_warm
        from ..capture.notebook_limits import other_language
        from ..settings import AUTO, FULL
        from .auto import full_capture_reason

        wanted = []
        for item in notebooks:
            if other_language(item.path):
                continue
            try:
                capture = comparison_from_marker(item).capture or self.settings.capture
            except GateFailure:  # the item fails on its marker before it runs
                continue
            if capture == AUTO:  # the first run's capture: off on a gate, in full where auto cannot skip it
                capture = FULL if full_capture_reason(self.settings, script=item.path) else "off"
            wanted.append((notebook_warm.Kind.of(self.settings.kernel, capture), item.path))
        return wanted


WARM = "pytest_nwtrials.capture.notebook_warm"


def _prepare(wanted: list[tuple[Any, Path]]) -> None:
    """`notebook_warm.prepare`, which ends the kernels no longer wanted; a session of scripts
    alone never loads it."""
    if wanted or WARM in sys.modules:
        from ..capture import notebook_warm

        notebook_warm.prepare(wanted)


def register(config: pytest.Config, settings: Settings) -> None:
    """Start kernels ahead in a process that runs experiment items (not an xdist controller, not
    ``--collect-only``); tests that run notebooks through `nw_trial` start theirs when they run."""
    option = config.option
    worker = hasattr(config, "workerinput")
    controller = getattr(option, "dist", "no") != "no" and not worker
    if settings.experiments and not controller and not option.collectonly:
        config.pluginmanager.register(KernelsAhead(settings, first_at_collection=not worker), "nwtrials-kernels-ahead")
