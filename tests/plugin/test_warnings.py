"""The plugin's warnings are `NwTrialsWarning`, a `pytest.PytestWarning`: ``-W`` and the ini's
``filterwarnings`` reach them, and their text is what it was when they were lines of text.

A damaged trial record in the local store is the warning here: ``--nw-baseline=latest`` reads
the store's records, skips the damaged one and says so.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from pytest_nwtrials.plugin.notices import NwTrialsWarning

# where users name the class in -W and filterwarnings
CLASS = "pytest_nwtrials.NwTrialsWarning"
PREP = "from pytest_nwtrials import tag\ntag('rows', 10)\n"


def test_the_class_is_a_pytest_warning_named_where_users_name_it():
    import pytest_nwtrials

    assert issubclass(NwTrialsWarning, pytest.PytestWarning)
    assert pytest_nwtrials.NwTrialsWarning is NwTrialsWarning


@pytest.fixture
def damaged(project) -> Path:
    """A project whose store holds a finished trial of prep.py and a damaged trial record."""
    project.experiment("prep.py", PREP)
    project.run("--nw-capture=off").assert_outcomes(passed=1)
    path = project.root / ".nwtrials" / "trials" / "trial7.json"
    path.write_bytes(b"\x00\xff not a trial record")
    return path


def message(path: Path) -> str:
    return f"{path}: cannot be read as JSON"


def test_a_warning_is_said_once_in_the_nwtrials_section(project, damaged):
    result = project.run("--nw-baseline=latest", "--nw-capture=off")
    result.assert_outcomes(passed=1)
    text = result.stdout.str()
    assert text.count(message(damaged)) == 1, text
    assert f"warning: {message(damaged)}" in text
    assert "; skipped (delete the file to silence this warning)" in text
    assert "NwTrialsWarning" not in text  # not again in pytest's warnings summary


def test_w_error_makes_it_an_error(project, damaged):
    result = project.run("--nw-baseline=latest", "--nw-capture=off", "-W", f"error::{CLASS}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*NwTrialsWarning: {message(damaged)}*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_filterwarnings_in_the_ini_hides_it(project, damaged):
    project.ini(f"filterwarnings =\n    ignore::{CLASS}\n")
    result = project.run("--nw-baseline=latest", "--nw-capture=off")
    result.assert_outcomes(passed=1)
    assert "cannot be read as JSON" not in result.stdout.str()
    assert "warning:" not in result.stdout.str()


def test_filterwarnings_error_in_the_ini_fails_the_item_under_xdist(project, damaged):
    project.ini(f"filterwarnings =\n    error::{CLASS}\n")
    result = project.run("--nw-baseline=latest", "--nw-capture=off", "-n", "1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*NwTrialsWarning: {message(damaged)}*"])


def test_under_xdist_a_worker_s_warning_is_said_once_by_the_controller(project, damaged):
    result = project.run("--nw-baseline=latest", "--nw-capture=off", "-n", "1")
    result.assert_outcomes(passed=1)
    text = result.stdout.str()
    assert text.count(f"warning: {message(damaged)}") == 1, text
    assert "NwTrialsWarning" not in text


def test_w_error_on_a_warning_at_the_session_s_end_fails_the_session_with_it(project, damaged):
    # no baseline: the damaged record is first read when old trials are removed, after the items
    result = project.run("--nw-capture=off", "-W", f"error::{CLASS}")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    text = result.stdout.str() + result.stderr.str()
    assert f"error: {message(damaged)}" in text
    assert "Traceback" not in text and "INTERNALERROR" not in text


def test_notices_warn_each_new_message_once_under_the_filters_in_force():
    import warnings

    from pytest_nwtrials.plugin.notices import Notices

    source: list[str] = ["a"]
    notices = Notices([source])
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        notices.emit()
        source.extend(["a", "b"])
        notices.emit()
    assert notices.shown == ["a", "b"]

    source.extend(["c", "d"])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=NwTrialsWarning, message="c")
        with pytest.raises(NwTrialsWarning, match="^c$"):
            notices.emit()
        notices.emit()  # "d" was not lost to the error before it
    assert notices.shown == ["a", "b", "d"]

    source.extend(["e", "f"])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=NwTrialsWarning, message="e")
        warnings.filterwarnings("error", category=NwTrialsWarning, message="f")
        assert notices.emit_at_end()
    assert notices.shown == ["a", "b", "d"] and notices.errors == ["f"]
