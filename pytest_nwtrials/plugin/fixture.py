"""The `nw_trial` fixture: experiment runs and baseline checks from ordinary tests."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ..printable import printable
from ..settings import CAPTURE_MODES, SettingsError, parse_repeat
from ..store.trial_store import Trial
from .marker import Comparison, GateFailure, comparison_from_marker
from .session import TrialSession

T = TypeVar("T")


class NwTrial:
    """Runs experiments as trials recorded like items, and checks them against baselines."""

    def __init__(self, session: TrialSession, request: pytest.FixtureRequest) -> None:
        self._session = session
        self._request = request

    def _script(self, script: str | Path) -> Path:
        path = Path(script)
        if not path.is_absolute():
            path = self._session.settings.rootdir / path
        if not path.is_file():
            pytest.fail(f"nw_trial.run: no experiment script at {path}", pytrace=False)
        return path.resolve()

    def run(self, script: str | Path, *argv: str, timeout: float | None = None, check: bool = True,
            capture: str | None = None, repeat: int | None = None) -> Trial:
        """Run `script` (relative to the rootdir) with `argv` under capture; return its trial.

        With `check` (the default) a script that raises, exits non-zero or times out fails the
        test with its traceback; with ``check=False`` the failed trial is returned. `capture`
        (auto, fine, coarse, off) overrides the test's ``@pytest.mark.nw(capture=...)`` and
        ``--nw-capture``; auto runs under fine capture here, as the comparison comes after the run
        and the test may read the trial's slices.
        `repeat` runs it that many times (default: the marker's repeat, else ``--nw-repeat``) and
        returns the first run's trial with its ``stability``; with `check`, runs that differ
        beyond the test's tolerances fail the test as not reproducible.
        """
        from .repeats import repeat_group

        if capture is not None and capture not in CAPTURE_MODES:
            pytest.fail(f"nw_trial.run: capture must be one of {', '.join(CAPTURE_MODES)}, got {capture!r}",
                        pytrace=False)
        if repeat is not None:
            try:
                repeat = parse_repeat(repeat, "nw_trial.run repeat")
            except SettingsError as exc:
                pytest.fail(str(exc), pytrace=False)
        marked = _fail_on_gate_failure(comparison_from_marker, self._request.node)
        capture = marked.capture if capture is None else capture
        options = replace(marked, repeat=repeat) if repeat is not None else marked
        path, args = self._script(script), tuple(str(a) for a in argv)
        trial, result = _fail_on_gate_failure(self._session.run, path, args, timeout, capture)
        if check:
            _fail_on_gate_failure(self._session.check_run, trial, result, timeout)
        if trial.status == "finished":
            trial = _fail_on_gate_failure(repeat_group, self._request.node, self._session, trial, path, args,
                                          timeout, capture, options, check)
        return trial

    def assert_matches(self, trial: Trial, baseline: str | None = None, *, rtol: float | None = None,
                       atol: float | None = None, ignore: tuple[str, ...] | list[str] = ()) -> None:
        """Fail the test with the gate's report when `trial` differs from `baseline`.

        `baseline` takes what ``--nw-baseline`` takes; without it, the session's ``--nw-baseline``.
        Tolerances not given here come from the test's ``@pytest.mark.nw(rtol=..., atol=...)``.
        Under ``--nw-save-baseline`` of the same name the check passes: the run is being accepted.
        """
        text = baseline or self._session.settings.baseline
        if not text:
            pytest.fail("nw_trial.assert_matches needs a baseline: pass baseline=NAME or run with "
                        "--nw-baseline=REF", pytrace=False)
        if text == self._session.settings.save_baseline:
            return  # this session accepts new values into that baseline: the trial is saved at the end
        given = "baseline=" if baseline else "--nw-baseline="

        def check() -> None:
            marked = comparison_from_marker(self._request.node)
            options = Comparison(marked.rtol if rtol is None else rtol, marked.atol if atol is None else atol,
                                 marked.ignore + tuple(ignore))
            reference = self._session.resolve(text, given)
            self._session.compare(trial, reference, options)

        _fail_on_gate_failure(check)


def _fail_on_gate_failure(check: Callable[..., T], *args: Any) -> T:
    """Return `check(*args)`; a gate failure fails the test with its report alone, no chained traceback."""
    try:
        return check(*args)
    except (GateFailure, pytest.UsageError) as exc:
        message = str(exc)
    pytest.fail(printable(message), pytrace=False)  # it quotes names and values from stored files
