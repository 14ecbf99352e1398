"""The gate end to end: collect experiments, run them under capture, save and compare baselines."""
from __future__ import annotations

SCRIPT = """
from pytest_nwtrials import tag
lr = {lr}
auc = tag("auc", round(0.9 - lr / 10, 6))
tag("summary", {{"auc": auc, "epochs": 3, "name": "logreg", "ok": True, "none": None}})
print("trained")
"""


def test_collects_experiments_by_glob_and_records_trials(project):
    project.experiment("train.py", SCRIPT.format(lr=0.1))
    project.experiment("test_prep.py", "from pytest_nwtrials import tag\ntag('rows', 10)\n")
    (project.root / "experiments" / "notes.txt").write_text("not an experiment")
    result = project.run("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "*experiments/test_prep.py::experiment PASSED*",
        "*experiments/train.py::experiment PASSED*",
        "*nwtrials*",
        "trial1  experiments/test_prep.py  recorded*",
        "trial2  experiments/train.py  recorded*",
        "2 run, 0 matched, 0 changed, 0 new, 0 failed, 0 skipped, 0 missing",
    ])
    records = {t["experiment"]: t for t in project.trials()}
    train = records["experiments/train.py"]
    assert train["status"] == "finished" and train["exit_code"] == 0
    assert train["tags"]["auc"]["value"] == 0.89
    assert train["tags"]["summary"]["value"] == {"auc": 0.89, "epochs": 3, "name": "logreg", "ok": True, "none": None}
    assert len(train["id"]) == 36 and train["argv"] == [] and train["duration"] > 0
    assert (project.root / ".nwtrials" / ".gitignore").read_text().strip().endswith("*")


def test_save_then_compare_passes_and_a_changed_value_fails_with_report(project):
    project.experiment("train.py", SCRIPT.format(lr=0.1))
    saved = project.run("--nw-save-baseline=reference")
    saved.assert_outcomes(passed=1)
    saved.stdout.fnmatch_lines(["saved 1 entry to baseline 'reference' in nw-baselines/reference/"])
    entry = project.baseline_entry("reference", "experiments/train.py")
    assert entry["tags"]["auc"]["value"] == 0.89 and entry["trial"] == "trial1"
    assert str(project.root) not in (project.root / "nw-baselines/reference/experiments/train.py.json").read_text()

    project.run("--nw-baseline=reference").assert_outcomes(passed=1)

    project.experiment("train.py", SCRIPT.format(lr=0.3))
    failed = project.run("--nw-baseline=reference")
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines([
        "*experiments/train.py: 2 tagged values differ from baseline 'reference' (recorded in trial1); new trial: trial3*",
        "*auc: changed: 0.89 -> 0.87*",
        "*To accept the new values, run: pytest --nw-save-baseline=reference*",
    ])
    assert "summary['auc']: changed: 0.89 -> 0.87" in failed.stdout.str()

    project.run("--nw-save-baseline=reference").assert_outcomes(passed=1)
    project.run("--nw-baseline=reference").assert_outcomes(passed=1)


def test_missing_and_new_tags_are_reported(project):
    project.experiment("train.py", "from pytest_nwtrials import tag\ntag('auc', 0.9)\ntag('loss', 0.1)\n")
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    project.experiment("train.py", "from pytest_nwtrials import tag\ntag('auc', 0.9)\ntag('f1', 0.5)\n")
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*f1: new tag (value: 0.5)*", "*loss: missing in the new trial (baseline: 0.1)*"])


def test_experiment_missing_from_baseline_says_how_to_add_it(project):
    project.experiment("train.py", "from pytest_nwtrials import tag\ntag('auc', 0.9)\n")
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    project.experiment("extra.py", "from pytest_nwtrials import tag\ntag('auc', 0.5)\n")
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*experiments/extra.py is not in baseline 'base'.*",
        "*To add it, run: pytest --nw-save-baseline=base*",
    ])


def test_tag_in_a_loop_is_compared_by_its_last_value(project):
    project.experiment("loop.py", "from pytest_nwtrials import tag\nfor i in range(3):\n    tag('step', i)\n")
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    [trial] = project.trials()
    assert trial["tags"]["step"]["value"] == 2 and trial["tags"]["step"]["count"] == 3
    project.run("--nw-baseline=base").assert_outcomes(passed=1)


def test_ini_baseline_is_used_and_saving_does_not_compare_with_it(project):
    project.ini("nw_baseline = base\n")
    project.experiment("train.py", "from pytest_nwtrials import tag\ntag('auc', 0.9)\n")
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    project.experiment("train.py", "from pytest_nwtrials import tag\ntag('auc', 0.8)\n")
    project.run().assert_outcomes(failed=1)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    project.run().assert_outcomes(passed=1)


def test_a_script_that_raises_fails_with_its_own_traceback(project):
    project.experiment("broken.py", """
        from pytest_nwtrials import tag
        tag("before", 1)
        def load(path):
            return open(path).read()
        data = load("missing.csv")
    """)
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*experiments/broken.py raised FileNotFoundError: *missing.csv* (trial1, noWorkflow trial *)",
        "Traceback (most recent call last):",
        '  File "*experiments/broken.py", line 6, in <module>',
        '  File "*experiments/broken.py", line 5, in load',
        "FileNotFoundError: *missing.csv*",
    ])
    assert "pytest_nwtrials" not in result.stdout.str().split("Traceback")[1].split("short test summary")[0]
    [trial] = project.trials()
    assert trial["status"] == "failed" and trial["exit_code"] == 1
    assert trial["error"]["type"] == "FileNotFoundError" and trial["error"]["location"]["line"] == 5
    assert trial["tags"]["before"]["value"] == 1


def test_sys_exit_with_a_status_fails_and_bare_sys_exit_passes(project):
    project.experiment("three.py", "import sys\nprint('bye', file=sys.stderr)\nsys.exit(3)\n")
    project.experiment("bare.py", "import sys\nfrom pytest_nwtrials import tag\ntag('x', 1)\nsys.exit()\n")
    project.experiment("text.py", "import sys\nsys.exit('giving up')\n")
    result = project.run("-v")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "*experiments/bare.py::experiment PASSED*",
        "*experiments/text.py exited with status 1 (trial*",
        "*giving up*",
        "*experiments/three.py exited with status 3 (trial*",
        "*bye*",
    ])
    trials = {t["experiment"]: t for t in project.trials()}
    assert trials["experiments/bare.py"]["tags"]["x"]["value"] == 1
    assert trials["experiments/three.py"]["exit_code"] == 3


def test_a_hanging_script_is_stopped_with_its_children(project):
    project.experiment("hang.py", """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        with open("child.pid", "w") as handle:
            handle.write(str(child.pid))
        time.sleep(120)
    """)
    result = project.run("--nw-timeout=10")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*experiments/hang.py timed out after 10 s and was stopped*",
                                 "*raise --nw-timeout or ini nw_timeout*"])
    import os
    pid = int((project.root / "experiments" / "child.pid").read_text())
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as stat:
            alive = stat.read().split()[2] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        alive = False
    assert not alive
    result.stdout.fnmatch_lines(["trial1  experiments/hang.py  timeout  *"])
    [trial] = project.trials()
    assert trial["status"] == "timeout"


def test_ini_tags_and_now_tag_variable_are_recorded(project):
    project.ini("nw_tags = weights threshold absent\n")
    project.experiment("train.py", """
        weights = [0.5, -1.25]
        threshold = 0.1
        total = now_tag_variable("total", sum(weights))
    """)
    project.run().assert_outcomes(passed=1)
    [trial] = project.trials()
    tags = trial["tags"]
    assert set(tags) == {"weights", "threshold", "total"}
    assert tags["weights"]["value"] == [0.5, -1.25] and tags["weights"]["source"] == "nw_tags"
    assert tags["total"]["value"] == -0.75 and tags["total"]["source"] == "now_tag_variable"


def test_tag_outside_pytest_is_a_plain_passthrough(project):
    import subprocess
    import sys
    script = project.experiment("plain.py", """
        from pytest_nwtrials import tag
        print(tag("auc", 0.5) + 1)
    """)
    done = subprocess.run([sys.executable, str(script)], cwd=script.parent, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1.5\n"
    assert sorted(p.name for p in script.parent.iterdir()) == ["plain.py"]
    assert not (project.root / ".nwtrials").exists()
    for bad in ("''", "3"):
        done = subprocess.run([sys.executable, "-c", f"from pytest_nwtrials import tag; tag({bad}, 1)"],
                              capture_output=True, text=True)
        assert done.returncode == 1 and "tag name must" in done.stderr
