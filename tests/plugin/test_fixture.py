"""The nw_trial fixture: experiments run and checked from ordinary tests."""
from __future__ import annotations

EXPERIMENT = """
import sys
from pytest_nwtrials import tag
lr = float(sys.argv[sys.argv.index("--lr") + 1])
tag("auc", round(0.95 - lr, 6))
tag("config", {"lr": lr})
"""


def test_fixture_runs_records_and_compares(project):
    project.experiment("train.py", EXPERIMENT)
    project.pytester.makepyfile(test_sweep="""
        def test_lr_sweep(nw_trial):
            run = nw_trial.run("experiments/train.py", "--lr", "0.1")
            assert run.values["auc"] > 0.8
            assert run.values["config"] == {"lr": 0.1}
            assert run.name.startswith("trial") and run.status == "finished"
            nw_trial.assert_matches(run, baseline="reference")
    """)
    # no baseline yet: the fixture fails the test with a message, not a traceback
    first = project.run("test_sweep.py")
    first.assert_outcomes(failed=1)
    first.stdout.fnmatch_lines(["*baseline=reference names no baseline and no trial*"])
    # saving accepts the run, which becomes its entry: then it matches
    project.run("test_sweep.py", "--nw-save-baseline=reference").assert_outcomes(passed=1)
    project.run("test_sweep.py").assert_outcomes(passed=1)
    # a run with other arguments is compared with the experiment's only entry: the arguments are the cause
    project.pytester.makepyfile(test_other="""
        def test_other_lr(nw_trial):
            nw_trial.assert_matches(nw_trial.run("experiments/train.py", "--lr", "0.2"), baseline="reference")
    """)
    other = project.run("test_other.py")
    other.assert_outcomes(failed=1)
    out = other.stdout.str()
    assert "auc: changed: 0.85 -> 0.75" in out
    assert "arguments changed: ['--lr', '0.1'] -> ['--lr', '0.2']" in out
    assert "subscript sys.argv[sys.argv.index(\"--lr\") + 1]: '0.1' -> '0.2'" in out
    assert str(project.root) not in out.split("Why it changed")[1]
    # with entries for two argument lists, a third has no entry to compare with
    project.run("test_other.py", "--nw-save-baseline=reference").assert_outcomes(passed=1)
    project.pytester.makepyfile(test_third="""
        def test_third_lr(nw_trial):
            nw_trial.assert_matches(nw_trial.run("experiments/train.py", "--lr", "0.3"), baseline="reference")
    """)
    third = project.run("test_third.py")
    third.assert_outcomes(failed=1)
    assert "experiments/train.py run with arguments ['--lr', '0.3'] is not in baseline 'reference'" in third.stdout.str()
    project.experiment("train.py", EXPERIMENT.replace("0.95", "0.96"))
    changed = project.run("test_sweep.py")
    changed.assert_outcomes(failed=1)
    changed.stdout.fnmatch_lines(["*auc: changed: 0.85 -> 0.86*",
                                  "*To accept the new values, run: pytest --nw-save-baseline=reference*"])


def test_fixture_reports_a_failing_script_unless_check_is_off(project):
    project.experiment("broken.py", "raise ValueError('bad data')\n")
    project.pytester.makepyfile(test_broken="""
        def test_checked(nw_trial):
            nw_trial.run("experiments/broken.py")

        def test_unchecked(nw_trial):
            run = nw_trial.run("experiments/broken.py", check=False)
            assert run.status == "failed" and run.error["type"] == "ValueError"

        def test_missing_script(nw_trial):
            nw_trial.run("experiments/nope.py")
    """)
    result = project.run("test_broken.py")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*experiments/broken.py raised ValueError: bad data*",
                                 "*nw_trial.run: no experiment script at *nope.py*"])


def test_marker_tolerances_apply_to_assert_matches(project):
    project.experiment("train.py", EXPERIMENT)
    project.pytester.makepyfile(test_marked="""
        import pytest

        def test_save(nw_trial):
            nw_trial.run("experiments/train.py", "--lr", "0.1")

        @pytest.mark.nw(atol=0.05)
        def test_loose(nw_trial):
            nw_trial.assert_matches(nw_trial.run("experiments/train.py", "--lr", "0.1"), baseline="ref")

        def test_strict(nw_trial):
            nw_trial.assert_matches(nw_trial.run("experiments/train.py", "--lr", "0.1"), baseline="ref")

        def test_argument_beats_marker(nw_trial):
            run = nw_trial.run("experiments/train.py", "--lr", "0.1")
            nw_trial.assert_matches(run, baseline="ref", atol=0.02)

        @pytest.mark.nw(rtol="wide")
        def test_bad_marker(nw_trial):
            nw_trial.assert_matches(nw_trial.run("experiments/train.py", "--lr", "0.1"), baseline="ref")
    """)
    project.run("test_marked.py::test_save", "--nw-save-baseline=ref").assert_outcomes(passed=1)
    project.experiment("train.py", EXPERIMENT.replace("0.95", "0.98"))
    result = project.run("test_marked.py", "-k", "not test_save")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines(["*auc: changed: 0.85 -> 0.88*"])
    assert "FAILED test_marked.py::test_loose" not in result.stdout.str()
    assert "FAILED test_marked.py::test_strict" in result.stdout.str()
    assert "FAILED test_marked.py::test_argument_beats_marker" in result.stdout.str()
    assert "@pytest.mark.nw rtol must be a finite number >= 0" in result.stdout.str()
