"""pytest hooks of pytest-nwtrials: options, ini keys, the marker, collection and the fixture.

Inert when unused: this module imports pytest and the settings alone. The
session, the store and the capture machinery are loaded and registered only in a run that uses
them: one with experiments configured, a baseline, a report or a save asked for, workers to
collect trials from, or a test that uses the `nw_trial` fixture (seen at collection).
"""
from __future__ import annotations

import sys
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .. import settings as S

if TYPE_CHECKING:
    from .fixture import NwTrial
    from .session import TrialSession

FIXTURE = "nw_trial"
SETTINGS_KEY = pytest.StashKey[S.Settings]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nwtrials", "experiment trials (pytest-nwtrials)")
    group.addoption(S.option(S.BASELINE), dest=S.BASELINE, metavar="REF", default=None,
                    help="Compare each experiment's new trial with REF: a baseline name, a trial "
                         "name such as trial3, a trial id or prefix, or 'latest'")
    group.addoption(S.option(S.SAVE_BASELINE), dest=S.SAVE_BASELINE, metavar="NAME", default=None,
                    help="Store this session's finished trials as baseline NAME")
    group.addoption(S.option(S.TIMEOUT), dest=S.TIMEOUT, metavar="SECONDS", default=None,
                    help=f"Stop an experiment after SECONDS (default {S.DEFAULT_TIMEOUT:g})")
    group.addoption(S.option(S.RTOL), dest=S.RTOL, metavar="RTOL", default=None,
                    help="Relative tolerance of every comparison in this session (default 1e-7)")
    group.addoption(S.option(S.ATOL), dest=S.ATOL, metavar="ATOL", default=None,
                    help="Absolute tolerance of every comparison in this session (default 0)")
    group.addoption(S.option(S.OPS), dest=S.OPS, metavar="MODE", default=None, choices=S.OPS_MODES,
                    help="Operation provenance: off; report (default: explain failures with it); "
                         "strict (also fail when the operation sequence changed)")
    group.addoption(S.option(S.CAPTURE), dest=S.CAPTURE, metavar="MODE", default=None,
                    choices=S.CAPTURE_MODES,
                    help="Provenance capture: auto (default: a gate runs without capture and reruns "
                         "under fine capture only to explain a difference or failure); fine (every "
                         "operation of the experiment); coarse (calls, returns and file accesses only: "
                         "for long loops); off (no noWorkflow: values and versions only)")
    group.addoption(S.option(S.REPEAT), dest=S.REPEAT, metavar="N", default=None,
                    help="Run each experiment N times and fail it as not reproducible when the runs' "
                         "values differ beyond tolerance (default 1)")
    group.addoption(S.option(S.KERNEL), dest=S.KERNEL, metavar="NAME", default=None,
                    help="Jupyter kernel whose Python runs notebook experiments (default: this Python)")
    group.addoption(S.option(S.REPORT), dest=S.REPORT, metavar="FILE.html", default=None,
                    help="Write a self-contained HTML report of the session's trials to FILE.html")
    group.addoption(S.option(S.JSON), dest=S.JSON, metavar="FILE", default=None,
                    help="Write the session's trials, verdicts and changes as JSON to FILE")
    parser.addini(S.EXPERIMENTS, "Glob patterns of experiment scripts, relative to the rootdir",
                  type="linelist", default=[])
    parser.addini(S.BASELINE, "Default for --nw-baseline", default="")
    parser.addini(S.BASELINES_DIR, f"Folder of named baselines (default {S.DEFAULT_BASELINES_DIR})", default="")
    parser.addini(S.STORE, f"Folder of the local trial store (default {S.DEFAULT_STORE})", default="")
    parser.addini(S.TIMEOUT, f"Seconds an experiment may run (default {S.DEFAULT_TIMEOUT:g})", default="")
    parser.addini(S.CELL_TIMEOUT, "Seconds one notebook cell may run (default: no limit but nw_timeout); "
                  "a notebook's metadata execution.timeout takes precedence", default="")
    parser.addini(S.OTHER_KERNELS, "Notebooks whose kernel runs another language than Python: "
                  "skip (default) or fail", default="")
    parser.addini(S.TAGS, "Module-level variables recorded as tags when an experiment ends, one "
                  "line each of global names or PATTERN: names (only experiments matching PATTERN)",
                  type="linelist", default=[])
    parser.addini(S.RTOL, "Default for --nw-rtol", default="")
    parser.addini(S.ATOL, "Default for --nw-atol", default="")
    parser.addini(S.TOLERANCES, "Tolerances by tag or path, one per line: PATTERN: rtol=... atol=...",
                  type="linelist", default=[])
    parser.addini(S.IGNORE, "Tags or paths (glob patterns) left out of comparisons", type="args", default=[])
    parser.addini(S.OPS, "Default for --nw-ops: off, report or strict", default="")
    parser.addini(S.KERNEL, "Default for --nw-kernel", default="")
    parser.addini(S.CAPTURE, "Default for --nw-capture: auto, fine, coarse or off", default="")
    parser.addini(S.KEEP, f"Trials per experiment kept in the local store, older ones removed at the "
                  f"end of a session; 0 keeps every trial (default {S.DEFAULT_KEEP})", default="")
    parser.addini(S.KEEP_DATABASE, "Keep each trial's whole noWorkflow database (compressed) in the local "
                  "store besides its provenance record (default false)", type="bool", default=False)
    parser.addini(S.REPEAT, "Default for --nw-repeat: runs of each experiment, compared with each other",
                  default="")
    parser.addini(S.ENV_REDACT, "Glob patterns of environment variables whose values are never stored, "
                  "besides names with TOKEN, SECRET, KEY, PASSWORD, PASS, CREDENTIAL or AUTH",
                  type="args", default=[])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "nw(rtol=None, atol=None, ignore=(), capture=None, repeat=None): tolerances and ignored "
                   "tags for the comparison; capture mode (auto, fine, coarse, off) of the experiment; "
                   "runs of the experiment, compared with each other")
    cli = {name: config.getoption(name) for name in (S.BASELINE, S.SAVE_BASELINE, S.TIMEOUT, S.RTOL, S.ATOL,
                                                      S.OPS, S.REPORT, S.JSON, S.KERNEL, S.CAPTURE,
                                                      S.REPEAT)}
    ini = {name: config.getini(name) for name in
           (S.EXPERIMENTS, S.BASELINE, S.BASELINES_DIR, S.STORE, S.TIMEOUT, S.TAGS, S.RTOL, S.ATOL,
            S.TOLERANCES, S.IGNORE, S.OPS, S.ENV_REDACT, S.KERNEL, S.CAPTURE, S.KEEP, S.KEEP_DATABASE, S.REPEAT,
            S.CELL_TIMEOUT, S.OTHER_KERNELS)}
    try:
        settings = S.resolve(Path(config.rootpath), cli, ini, Path(config.invocation_params.dir))
    except S.SettingsError as exc:
        from ..printable import printable

        raise pytest.UsageError(printable(exc)) from None  # it may quote the committed ini file
    config.stash[SETTINGS_KEY] = settings
    if (settings.experiments or settings.baseline or settings.save_baseline or settings.html_report
            or settings.json_report or _distributing(config)):
        start_session(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the session once a test that uses `nw_trial` is collected, and only then."""
    if _SESSION_STARTED not in config.stash and any(FIXTURE in getattr(item, "fixturenames", ()) for item in items):
        start_session(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    forkserver = sys.modules.get("pytest_nwtrials.capture.forkserver")
    if forkserver is not None:
        forkserver.shutdown()  # the warm capture process, if one was started


_SESSION_STARTED = pytest.StashKey[bool]()


def start_session(config: pytest.Config) -> TrialSession:
    """The session's bookkeeping, registered as plugins at the first call; the session later."""
    from .session import SESSION_KEY, TrialSession

    if _SESSION_STARTED in config.stash:
        return config.stash[SESSION_KEY]
    config.stash[_SESSION_STARTED] = True
    settings = config.stash[SETTINGS_KEY]
    from . import workers

    # a pytest-xdist worker writes its trials into a private staging store and sends them to
    # the controller, which alone writes the local store (see plugin/workers.py)
    staging = workers.StagingStore(config) if workers.is_worker(config) else None
    session = TrialSession(config, settings, writer=staging, is_worker=staging is not None)
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "nwtrials-session")
    _start_fork_server(config, settings)
    if settings.experiments:
        from .kernels_ahead import register

        register(config, settings)  # notebooks' capture kernels
    if staging is not None:
        config.pluginmanager.register(workers.Worker(session, staging), "nwtrials-xdist-worker")
    elif _distributing(config):
        config.pluginmanager.register(workers.Controller(session), "nwtrials-xdist-controller")
    return session


def _distributing(config: pytest.Config) -> bool:
    """Whether this is a pytest-xdist controller with workers: they may record trials, which it
    cannot know before they collect."""
    return getattr(config.option, "dist", "no") != "no" and not hasattr(config, "workerinput")


def _start_fork_server(config: pytest.Config, settings: S.Settings) -> None:
    """Start the warm capture process now when this process may run experiments: it preloads
    noWorkflow while pytest collects (or runs the tests before the first `nw_trial` run),
    instead of after the first experiment has started. Runs that are not captured in full
    never need it."""
    option = config.option
    from .auto import may_skip_capture

    # a gate under auto runs without capture first: the warm process waits until one differs
    if (not may_skip_capture(settings) and not _distributing(config) and not option.collectonly
            and not getattr(option, "help", False) and not getattr(option, "version", False)):
        from ..capture import forkserver

        forkserver.shared()


def is_experiment(config: pytest.Config, file_path: Path) -> bool:
    settings = config.stash[SETTINGS_KEY]
    if not settings.experiments or file_path.suffix not in (".py", ".ipynb"):
        return False
    try:
        relative = file_path.relative_to(settings.rootdir).as_posix()
    except ValueError:
        return False
    return S.matches_experiments(relative, settings.experiments)


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector
                        ) -> Generator[None, list[pytest.Collector], list[pytest.Collector]]:
    collected = yield
    if not is_experiment(parent.config, file_path):
        return collected
    from .items import ExperimentFile

    # an experiment that also matches python_files is run as an experiment, never imported as tests
    kept = [node for node in collected if not isinstance(node, pytest.Module)]
    return kept + [ExperimentFile.from_parent(parent, path=file_path)]


@pytest.fixture(name=FIXTURE)
def nw_trial(request: pytest.FixtureRequest) -> NwTrial:
    """Run experiments (scripts or notebooks) from a test and compare their trials with a baseline."""
    from .fixture import NwTrial

    # started at collection, unless the fixture was requested dynamically (getfixturevalue)
    return NwTrial(start_session(request.config), request)
