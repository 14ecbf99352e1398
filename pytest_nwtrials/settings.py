"""One frozen `Settings`, resolved once per session: command line > ini > default.

Option and ini names are constants here so the plugin, the tests and the messages agree on them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .compare.tolerance_rule import RULE, tolerance_from_text
from .store import layout
from .store.project import ConfigError, configured_folder

EXPERIMENTS = "nw_experiments"
BASELINE = "nw_baseline"
SAVE_BASELINE = "nw_save_baseline"
BASELINES_DIR = layout.BASELINES_KEY
STORE = layout.STORE_KEY
TIMEOUT = "nw_timeout"
CELL_TIMEOUT = "nw_cell_timeout"
OTHER_KERNELS = "nw_other_kernels"
TAGS = "nw_tags"
RTOL = "nw_rtol"
ATOL = "nw_atol"
TOLERANCES = "nw_tolerances"
IGNORE = "nw_ignore"
OPS = "nw_ops"
ENV_REDACT = "nw_env_redact"
KERNEL = "nw_kernel"
REPORT = "nw_report"
JSON = "nw_json"
CAPTURE = "nw_capture"
KEEP = "nw_keep"
KEEP_DATABASE = "nw_keep_database"
REPEAT = "nw_repeat"
OPS_MODES = ("off", "report", "strict")
# auto: without capture first, rerun under fine capture when a value differs or the run fails
# (see plugin/auto.py); fine: every operation of the script; coarse: calls, arguments, returns and file
# accesses only; off: no noWorkflow at all (tags, exit status and library versions are still recorded)
AUTO = "auto"
FULL = "fine"  # the capture that explains: what auto reruns with, and runs under when it cannot skip it
CAPTURE_MODES = (AUTO, "fine", "coarse", "off")
DEFAULT_KEEP = 50
# what to do with a notebook whose kernel runs another language than Python (R, Julia, ...)
OTHER_KERNEL_CHOICES = ("skip", "fail")

DEFAULT_TIMEOUT = 600.0
DEFAULT_STORE = layout.STORE_DIR
DEFAULT_BASELINES_DIR = layout.BASELINES_DIR


def matches_experiments(relative: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """Whether the rootdir-relative POSIX path `relative` matches one of the ``nw_experiments`` globs.

    The globs users know from shells: ``*`` and ``?`` stay within one folder, ``**`` spans any
    number of folders (none included), ``[...]`` is a class; matching is case-sensitive. As in a
    shell, wildcards skip hidden names (a leading dot), so ``exp/**/*.ipynb`` leaves Jupyter's
    ``.ipynb_checkpoints/`` copies alone; a pattern that spells the dot out matches them.
    """
    from wcmatch import glob

    cleaned = [pattern[2:] if pattern.startswith("./") else pattern for pattern in patterns]
    return bool(cleaned) and glob.globmatch(relative, cleaned, flags=glob.GLOBSTAR | glob.CASE)


def option(name: str) -> str:
    """The command-line spelling of an ini key: ``nw_baseline`` -> ``--nw-baseline``."""
    return "--" + name.replace("_", "-")


class SettingsError(ValueError):
    """A setting with a value the plugin cannot use; the message names the option."""


@dataclass(frozen=True)
class Settings:
    rootdir: Path
    experiments: tuple[str, ...]
    baseline: str | None
    save_baseline: str | None
    baselines_dir: Path
    store: Path
    timeout: float
    tags: tuple[str, ...]  # global ini nw_tags names: recorded in every experiment
    rtol: float | None = None
    atol: float | None = None
    tolerances: tuple[tuple[str, Any], ...] = ()
    ignore: tuple[str, ...] = ()
    ops: str = "report"
    env_redact: tuple[str, ...] = ()
    kernel: str | None = None
    html_report: Path | None = None
    json_report: Path | None = None
    capture: str = AUTO
    keep: int = DEFAULT_KEEP  # trials per experiment kept in the local store; 0 keeps all
    # keep each trial's whole noWorkflow database too (its record is what everything reads)
    keep_database: bool = False
    repeat: int = 1  # runs of each experiment in the session, compared with each other
    cell_timeout: float | None = None  # seconds one notebook cell may run; None: no limit of its own
    other_kernels: str = "skip"  # a notebook in another language than Python: skip or fail its item
    # ini nw_tags lines `PATTERN: name ...`: names recorded only in experiments matching PATTERN
    pattern_tags: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def tags_for(self, experiment: str) -> tuple[str, ...]:
        """The ini nw_tags names recorded in `experiment` (its rootdir-relative POSIX path): the
        global names, then those of every pattern line it matches, each name once."""
        names = list(self.tags)
        for pattern, pattern_names in self.pattern_tags:
            if matches_experiments(experiment, (pattern,)):
                names.extend(pattern_names)
        return tuple(dict.fromkeys(names))

    @property
    def active(self) -> bool:
        return bool(self.experiments) or self.baseline is not None or self.save_baseline is not None


def parse_timeout(raw: Any, source: str) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{source}={raw!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise SettingsError(f"{source}={raw!r} must be a number of seconds greater than 0")
    return value


def parse_tolerance(raw: Any, source: str) -> float | None:
    if raw in (None, ""):
        return None
    try:
        float(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{source}={raw!r} is not a number") from None
    value = tolerance_from_text(raw)
    if value is None:
        raise SettingsError(f"{source}={raw!r} must be {RULE}")
    return value


def parse_choice(raw: Any, source: str, choices: tuple[str, ...], default: str) -> str:
    value = (raw or default).strip()
    if value not in choices:
        raise SettingsError(f"{source}={value!r} is not one of {', '.join(choices)}")
    return value


def parse_keep(raw: Any, source: str) -> int:
    if raw in (None, ""):
        return DEFAULT_KEEP
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise SettingsError(f"{source}={raw!r} is not a whole number of trials") from None
    if value < 0:
        raise SettingsError(f"{source}={raw!r} must be 0 (keep every trial) or more")
    return value


def parse_repeat(raw: Any, source: str) -> int:
    """The number of runs of each experiment: a whole number >= 1 (1, the default, runs it once).

    One parser for the option, the ini key, the marker and the fixture argument, so each says
    the same about a bad value; `source` names where it came from.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return 1
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise SettingsError(f"{source}={raw!r} is not a whole number of runs")
    try:
        value = int(raw.strip()) if isinstance(raw, str) else raw
    except ValueError:
        raise SettingsError(f"{source}={raw!r} is not a whole number of runs") from None
    if value < 1:
        raise SettingsError(f"{source}={raw!r} must be 1 (run each experiment once) or more")
    return value


_TAG_FORM = ("each line is either variable names (`auc weights`, recorded in every experiment) or "
             "`PATTERN: names` (`fraud/*.py: auc weights`, recorded only in experiments whose "
             "rootdir-relative path matches PATTERN, a glob as in nw_experiments)")


def parse_tag_lines(lines: Any) -> tuple[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]]:
    """Split ini ``nw_tags`` into global names and ``(PATTERN, names)`` lines.

    Lines without a colon hold global names, as before patterns existed; blank lines and ``#``
    comments are skipped. A bad line raises SettingsError quoting it and the accepted forms.
    """
    if isinstance(lines, str):
        lines = lines.splitlines()
    global_names: list[str] = []
    by_pattern: list[tuple[str, tuple[str, ...]]] = []
    for raw in lines:
        line = str(raw).strip()
        if not line or line.startswith("#"):
            continue
        pattern, colon, rest = line.rpartition(":") if ":" in line else ("", "", line)
        pattern = pattern.strip()
        names = rest.split()
        if colon and not pattern:
            raise SettingsError(f"ini {TAGS}: line {line!r} has no pattern before the colon; {_TAG_FORM}")
        if not names:
            raise SettingsError(f"ini {TAGS}: line {line!r} names no variable; {_TAG_FORM}")
        for name in names:
            if not name.isidentifier():
                raise SettingsError(f"ini {TAGS}: {name!r} in line {line!r} is not a variable name; {_TAG_FORM}")
        if colon:
            by_pattern.append((pattern[2:] if pattern.startswith("./") else pattern, tuple(names)))
        else:
            global_names.extend(names)
    return tuple(dict.fromkeys(global_names)), tuple(by_pattern)


def resolve(rootdir: Path, cli: dict[str, Any], ini: dict[str, Any], invocation_dir: Path | None = None) -> Settings:
    """Build Settings from command-line values (None when not given) and ini values.

    Report paths are relative to `invocation_dir`, where pytest was started, as ``--junitxml`` is.
    """

    def pick(name: str) -> tuple[Any, str]:
        if cli.get(name) is not None:
            return cli[name], option(name)
        return ini.get(name), f"ini {name}"

    def folder(name: str, default: str) -> Path:
        try:  # the rule the nwtrials command and the API find these folders by, too
            return configured_folder(rootdir, name, ini.get(name), default)
        except ConfigError as exc:
            raise SettingsError(str(exc)) from None

    _check_not_blank(cli, ini)
    baseline, _ = pick(BASELINE)
    baseline = str(baseline).strip() if baseline else None
    save = cli.get(SAVE_BASELINE)
    if save is not None and cli.get(BASELINE) is None:
        baseline = None  # saving accepts the new values; only an explicit --nw-baseline still compares
    if save is not None:
        try:
            from .store.baselines import check_baseline_name

            check_baseline_name(save)
        except ValueError as exc:
            raise SettingsError(f"{option(SAVE_BASELINE)}: {exc}") from None
    raw_timeout, source = pick(TIMEOUT)
    timeout = DEFAULT_TIMEOUT if raw_timeout in (None, "") else parse_timeout(raw_timeout, source)
    raw_cell_timeout = ini.get(CELL_TIMEOUT)
    cell_timeout = None if raw_cell_timeout in (None, "") else parse_timeout(raw_cell_timeout, f"ini {CELL_TIMEOUT}")
    tags, pattern_tags = parse_tag_lines(ini.get(TAGS) or ())
    experiments = tuple(line.strip() for line in ini.get(EXPERIMENTS) or () if line.strip())
    ops = parse_choice(*pick(OPS), OPS_MODES, "report")
    capture = parse_choice(*pick(CAPTURE), CAPTURE_MODES, AUTO)
    rtol = parse_tolerance(*pick(RTOL))
    atol = parse_tolerance(*pick(ATOL))
    from .compare.rules import parse_tolerance_lines

    try:
        tolerances = tuple(parse_tolerance_lines(ini.get(TOLERANCES) or ()))
    except ValueError as exc:
        raise SettingsError(f"ini {TOLERANCES}: {exc}") from None
    return Settings(
        rootdir=rootdir,
        experiments=experiments,
        baseline=baseline or None,
        save_baseline=save,
        baselines_dir=folder(BASELINES_DIR, DEFAULT_BASELINES_DIR),
        store=folder(STORE, DEFAULT_STORE),
        timeout=timeout,
        tags=tags,
        pattern_tags=pattern_tags,
        rtol=rtol,
        atol=atol,
        tolerances=tolerances,
        ignore=tuple(ini.get(IGNORE) or ()),
        ops=ops,
        env_redact=tuple(ini.get(ENV_REDACT) or ()),
        kernel=(pick(KERNEL)[0] or "").strip() or None,
        html_report=_report_path(cli.get(REPORT), REPORT, invocation_dir or rootdir),
        json_report=_report_path(cli.get(JSON), JSON, invocation_dir or rootdir),
        capture=capture,
        keep=parse_keep(*pick(KEEP)),
        keep_database=bool(ini.get(KEEP_DATABASE)),
        repeat=parse_repeat(*pick(REPEAT)),
        cell_timeout=cell_timeout,
        other_kernels=parse_choice(ini.get(OTHER_KERNELS), f"ini {OTHER_KERNELS}", OTHER_KERNEL_CHOICES, "skip"),
    )


def _check_not_blank(cli: dict[str, Any], ini: dict[str, Any]) -> None:
    """An option given with an empty value is a usage error, never a silent "not given".

    ``--nw-baseline=$BASELINE`` with BASELINE unset would otherwise turn off the ini's gate (or
    drop a report, a timeout, a tolerance) and the run would pass without comparing anything.
    """
    for name, value in cli.items():
        if isinstance(value, str) and not value.strip():
            configured = ini.get(name)
            instead = (f"leave the option out to use ini {name} = {str(configured).strip()}"
                       if isinstance(configured, str) and configured.strip() else "leave the option out")
            raise SettingsError(f"{option(name)} was given an empty value (as {option(name)}=$VAR gives when VAR "
                                f"is unset): give a value, or {instead}")


def _report_path(raw: str | None, name: str, base: Path) -> Path | None:
    if not raw:
        return None
    path = (base / raw).resolve()
    if path.is_dir():
        raise SettingsError(f"{option(name)}={raw} is a folder; give a file name")
    return path
