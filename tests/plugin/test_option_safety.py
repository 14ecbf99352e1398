"""Settings that would silently weaken the gate or move its files out of the project are refused.

An empty ``--nw-baseline=`` (what ``--nw-baseline=$BASELINE`` gives with BASELINE unset) must
not drop the ini's gate, and a committed ``nw_store``/``nw_baselines_dir`` (or a link in their
place) must not make the plugin write or delete outside the rootdir.
"""
from __future__ import annotations

import os

import pytest

from conftest import snapshot

OK = "from pytest_nwtrials import tag\ntag('score', {score})\n"


@pytest.fixture
def gated(project):
    """A project whose ini compares with baseline 'base', and an experiment that no longer matches it."""
    project.experiment("score.py", OK.format(score=1))
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    project.ini("nw_baseline = base\n")
    project.experiment("score.py", OK.format(score=2))
    project.run().assert_outcomes(failed=1)  # the ini's gate
    return project


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_baseline_option_keeps_the_ini_gate_by_refusing_to_run(gated, value):
    trials = len(gated.trials())
    result = gated.run(f"--nw-baseline={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --nw-baseline was given an empty value (as --nw-baseline=$VAR gives when "
                                 "VAR is unset): give a value, or leave the option out to use ini nw_baseline = base"])
    assert len(gated.trials()) == trials  # nothing ran, so nothing passed
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("option", ["--nw-save-baseline", "--nw-timeout", "--nw-rtol", "--nw-atol", "--nw-kernel",
                                    "--nw-report", "--nw-json", "--nw-ops", "--nw-capture"])
@pytest.mark.parametrize("value", ["", " "])
def test_every_option_given_empty_is_a_usage_error(project, option, value):
    project.ini("nw_timeout = 30\nnw_rtol = 0\nnw_ops = strict\n")
    project.experiment("score.py", OK.format(score=1))
    result = project.run(f"{option}={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert option in err and "Traceback" not in err + result.stdout.str()
    assert not (project.root / ".nwtrials").exists()


@pytest.fixture
def outside(tmp_path_factory):
    folder = tmp_path_factory.mktemp("outside")
    (folder / "keep.txt").write_text("not the project's\n")
    (folder / "trials").mkdir()  # looks like a store, so only the rootdir check stops it
    return folder


@pytest.mark.parametrize("key", ["nw_store", "nw_baselines_dir"])
@pytest.mark.parametrize("how", ["dotdot", "absolute", "link"])
def test_a_store_or_baselines_folder_outside_the_rootdir_is_a_usage_error(project, outside, key, how):
    project.experiment("score.py", OK.format(score=1))
    if how == "link":
        os.symlink(outside, project.root / "data")
        raw = "data"
    else:
        raw = os.path.relpath(outside, project.root) if how == "dotdot" else str(outside)
    project.ini(f"{key} = {raw}\n")
    before = snapshot(outside)
    result = project.run("--nw-save-baseline=base")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: ini {key} = {raw} leads outside the rootdir *: the plugin writes and "
                                 f"deletes files there, so it must be a folder inside the project*"])
    assert snapshot(outside) == before


@pytest.mark.parametrize("folder", [".nwtrials", "nw-baselines"])
def test_a_committed_link_in_place_of_a_default_folder_is_a_usage_error(project, outside, folder):
    project.experiment("score.py", OK.format(score=1))
    os.symlink(outside, project.root / folder)
    before = snapshot(outside)
    result = project.run("--nw-save-baseline=base")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    key = "nw_store" if folder == ".nwtrials" else "nw_baselines_dir"
    result.stderr.fnmatch_lines([f"ERROR: {project.root / folder} leads outside the rootdir * (to *), the folder of ini {key}: *"])
    assert snapshot(outside) == before


def test_folders_and_links_inside_the_rootdir_are_fine(project):
    project.experiment("score.py", OK.format(score=1))
    (project.root / "data" / "kept").mkdir(parents=True)
    os.symlink(project.root / "data" / "kept", project.root / "store-link")
    project.ini("nw_store = store-link\nnw_baselines_dir = data/../data/baselines\n")
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    assert list((project.root / "data" / "kept" / "trials").glob("trial1.json"))
    assert (project.root / "data" / "baselines" / "base").is_dir()
