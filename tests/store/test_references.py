"""--nw-baseline references: named baselines, trial names, ids and prefixes, and 'latest'."""
from __future__ import annotations

import json


def tagging(value) -> str:
    return f"from pytest_nwtrials import tag\ntag('auc', {value!r})\n"


def test_unknown_reference_is_a_usage_error_listing_baselines(project):
    project.experiment("train.py", tagging(0.9))
    project.run("--nw-save-baseline=alpha").assert_outcomes(passed=1)
    project.run("--nw-save-baseline=beta").assert_outcomes(passed=1)
    result = project.run("--nw-baseline=gamma")
    assert result.ret == 4  # pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--nw-baseline=gamma names no baseline and no trial. Baselines: alpha, beta.*"])
    assert "Traceback" not in result.stderr.str()


def test_ambiguous_prefix_lists_the_candidates(project):
    project.experiment("train.py", tagging(0.9))
    project.run().assert_outcomes(passed=1)
    trials = project.root / ".nwtrials" / "trials"
    record = json.loads((trials / "trial1.json").read_text())
    twin = dict(record, name="trial2", id=record["id"][:6] + "ffff-ffff-ffff-ffff-ffffffffffff", provenance="")
    (trials / "trial2.json").write_text(json.dumps(twin))
    result = project.run(f"--nw-baseline={record['id'][:5]}")
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"*--nw-baseline={record['id'][:5]} is ambiguous: it matches trial1 ({record['id']}*trial2*"])
    # a longer prefix is unique again, and so is the full id
    project.run(f"--nw-baseline={record['id'][:8]}").assert_outcomes(passed=1)
    project.run(f"--nw-baseline={record['id']}").assert_outcomes(passed=1)


def test_trial_reference_is_the_baseline_of_its_own_experiment_only(project):
    project.experiment("train.py", tagging(0.9))
    project.experiment("other.py", tagging(0.1))
    project.run().assert_outcomes(passed=2)
    names = {t["experiment"]: t["name"] for t in project.trials()}
    train = names["experiments/train.py"]
    result = project.run(f"--nw-baseline={train}", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines([f"*baseline {train} is a trial of experiments/train.py, not of experiments/other.py*"])
    project.experiment("train.py", tagging(0.8))
    changed = project.run(f"--nw-baseline={train}")
    changed.assert_outcomes(failed=1, skipped=1)
    changed.stdout.fnmatch_lines([f"*1 tagged value differs from {train}; new trial: trial*", "*auc: changed: 0.9 -> 0.8*",
                                  "*--nw-save-baseline=NAME*"])


def test_latest_compares_with_the_previous_finished_trial(project):
    project.experiment("train.py", tagging(0.9))
    first = project.run("--nw-baseline=latest")
    first.assert_outcomes(failed=1)
    first.stdout.fnmatch_lines(["*experiments/train.py has no earlier finished trial in *.nwtrials*"])
    project.run().assert_outcomes(passed=1)
    project.run("--nw-baseline=latest").assert_outcomes(passed=1)
    project.experiment("train.py", tagging(0.7))
    project.run("--nw-baseline=latest").assert_outcomes(failed=1)
    # the failed comparison still recorded a finished trial, which is now the latest
    project.run("--nw-baseline=latest").assert_outcomes(passed=1)


def test_bad_option_values_are_usage_errors(project):
    project.experiment("train.py", tagging(0.9))
    for args, message in [
        (["--nw-timeout=soon"], "*--nw-timeout='soon' is not a number of seconds*"),
        (["--nw-timeout=0"], "*--nw-timeout='0' must be a number of seconds greater than 0*"),
        (["--nw-save-baseline=../up"], "*--nw-save-baseline: baseline name '../up' is not valid*"),
        (["--nw-save-baseline=latest"], "*baseline name 'latest' is reserved*"),
    ]:
        result = project.run(*args)
        assert result.ret == 4, args
        result.stderr.fnmatch_lines([message])
        assert "Traceback" not in result.stderr.str()
