"""Bad input: scripts Python cannot read, bad tag names, names tagged twice, huge values and
option values out of range. Each gives a clear verdict or usage error, never a plugin traceback."""
from __future__ import annotations

import pytest

OK = "from pytest_nwtrials import tag\ntag('rows', 10)\n"


def failure_text(result: pytest.RunResult, experiment: str) -> str:
    """The failure section of one experiment in a pytest run's output."""
    text = result.stdout.str()
    start = text.index(f" experiment experiments/{experiment} ")
    return text[start:].split("\n___", 1)[0].split("\n===", 1)[0]


def test_scripts_python_cannot_compile_are_reported_as_python_reports_them(project):
    project.experiment("syntax.py", "x = 1\ny = 2\nprint(x +)\n")
    (project.root / "experiments" / "latin.py").write_bytes(b"x = 1\ny = '\xe9t\xe9'\n")
    (project.root / "experiments" / "nul.py").write_bytes(b"x = 1\0\n")
    project.experiment("ok.py", OK)
    result = project.run()
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines([
        "*experiments/latin.py does not compile (line 2): SyntaxError: Non-UTF-8 code starting with '\\xe9' "
        "in file */experiments/latin.py on line 2, but no encoding declared; "
        "see https://peps.python.org/pep-0263/ for details (trial1)",
        "",
        '  File "*/experiments/latin.py", line 2',
        "SyntaxError: Non-UTF-8 code starting with '\\xe9' in file *",
    ])
    result.stdout.fnmatch_lines([
        "*experiments/nul.py does not compile (line 1): SyntaxError: source code cannot contain null bytes (trial2)",
    ])
    result.stdout.fnmatch_lines([
        "*experiments/syntax.py does not compile (line 3): SyntaxError: invalid syntax (trial4)",
        "",
        '  File "*/experiments/syntax.py", line 3',
        "    print(x +)",
        "             ^",
        "SyntaxError: invalid syntax",
    ])
    for name in ("latin.py", "nul.py", "syntax.py"):
        failure = failure_text(result, name)
        assert "Traceback" not in failure and "pytest_nwtrials" not in failure and "noworkflow" not in failure
    trials = {t["experiment"]: t for t in project.trials()}
    syntax = trials["experiments/syntax.py"]
    assert (syntax["status"], syntax["exit_code"], syntax["tags"]) == ("failed", 1, {})
    assert syntax["error"]["type"] == "SyntaxError" and syntax["error"]["location"]["line"] == 3
    assert trials["experiments/ok.py"]["status"] == "finished"


def test_an_empty_script_passes_with_no_tags(project):
    assert project.experiment("empty.py", "").stat().st_size == 0
    project.experiment("comments.py", "# nothing to run yet\n")
    project.run("-v").stdout.fnmatch_lines([
        "*experiments/comments.py::experiment PASSED*",
        "*experiments/empty.py::experiment PASSED*",
    ])
    for trial in project.trials():
        assert (trial["status"], trial["exit_code"], trial["tags"]) == ("finished", 0, {})


@pytest.mark.parametrize("call, error", [
    ('tag("", 1)', "ValueError: tag name must not be empty"),
    ('tag("  ", 1)', "ValueError: tag name must not be empty"),
    ("tag(3, 1)", "TypeError: tag name must be a string, got int: 3"),
    ("tag(None, 1)", "TypeError: tag name must be a string, got NoneType: None"),
    ('tag("auc", 0.5, rtol=-1)', "ValueError: tag rtol must be a finite number >= 0, got -1"),
    ('now_tag_variable("", 1)', "ValueError: tag name must not be empty"),
])
def test_a_bad_tag_fails_the_experiment_at_its_line(project, call, error):
    project.experiment("bad.py", f"from pytest_nwtrials import tag\nx = 1\n{call}\n")
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"*experiments/bad.py raised {error} (trial1, noWorkflow trial *)",
        "",
        "Traceback (most recent call last):",
        '  File "*/experiments/bad.py", line 3, in <module>',
        f"    {call}",
        error,
    ])
    assert "pytest_nwtrials" not in failure_text(result, "bad.py")
    [trial] = project.trials()
    assert trial["error"]["location"]["line"] == 3 and trial["tags"] == {}


COLLIDE = """
from pytest_nwtrials import tag
for step in range(3):
    tag("step", step)
tag("auc", 0.5)
auc = 0.7
tag("auc", auc)
now_tag_variable("auc", auc)
tag("same", 1)
tag("same", 1)
"""


def test_a_name_tagged_from_two_places_keeps_its_last_value_with_a_note(project):
    project.ini("nw_tags = auc\n")
    project.experiment("collide.py", COLLIDE)
    result = project.run("-rP")
    result.assert_outcomes(passed=1)
    output = result.stdout.str()
    result.stdout.fnmatch_lines([
        "note: tag 'auc' was recorded 3 times with different values, from collide.py line 5, "
        "collide.py line 7, collide.py line 8; only its last value is kept and compared",
        "note: 'auc' is listed in ini nw_tags and also tagged by the experiment (collide.py line 5, "
        "collide.py line 7, collide.py line 8); the tagged value is kept, the variable is not recorded",
    ])
    assert "'step'" not in output and "'same'" not in output  # a loop, or the same value: nothing to say
    [trial] = project.trials()
    assert trial["tags"]["auc"] == {"value": 0.7, "count": 3, "source": "now_tag_variable"}
    assert trial["tags"]["step"] == {"value": 2, "count": 3, "source": "tag"}


def test_a_tag_collision_is_noted_in_the_session_summary(project):
    project.experiment("collide.py", COLLIDE)
    result = project.run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "trial1  experiments/collide.py  recorded  *",
        "  note: experiments/collide.py: tag 'auc' was recorded 3 times with different values*",
    ])


RSS_CONFTEST = """
import resource

def pytest_sessionfinish(session):
    with open("children-peak-kb.txt", "w") as handle:
        handle.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
"""


def test_a_large_array_is_recorded_without_a_second_copy_in_memory(project):
    size = 2 * 10**8  # int8: 200 MB
    project.pytester.makeconftest(RSS_CONFTEST)
    project.experiment("big.py", f"""
        import resource
        import numpy as np
        from pytest_nwtrials import tag
        with open("../before-kb.txt", "w") as handle:
            handle.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
        tag("big", np.ones({size}, dtype=np.int8))
    """)
    try:
        project.run().assert_outcomes(passed=1)
        before = int((project.root / "before-kb.txt").read_text())
        peak = int((project.root / "children-peak-kb.txt").read_text())
        extra_mb = (peak - before) / 1024
        assert extra_mb < 1.5 * size / 2**20, f"{extra_mb:.0f} MB more for a {size / 2**20:.0f} MB array"
        [trial] = project.trials()
        [blob] = (project.root / ".nwtrials" / "values").iterdir()
        assert trial["tags"]["big"]["value"]["blob"] == blob.name and blob.stat().st_size > size
    finally:
        for blob in (project.root / ".nwtrials" / "values").glob("*"):
            blob.unlink()


@pytest.mark.parametrize("args, ini, message", [
    (["--nw-timeout=0"], "", "ERROR: --nw-timeout='0' must be a number of seconds greater than 0"),
    (["--nw-timeout=-1"], "", "ERROR: --nw-timeout='-1' must be a number of seconds greater than 0"),
    (["--nw-timeout=abc"], "", "ERROR: --nw-timeout='abc' is not a number of seconds"),
    (["--nw-rtol=-1"], "", "ERROR: --nw-rtol='-1' must be a finite number >= 0"),
    (["--nw-atol=nan"], "", "ERROR: --nw-atol='nan' must be a finite number >= 0"),
    (["--nw-ops=bogus"], "",
     "*error: argument --nw-ops: invalid choice: 'bogus' (choose from 'off', 'report', 'strict')"),
    ([], "nw_timeout = abc", "ERROR: ini nw_timeout='abc' is not a number of seconds"),
    (["--nw-capture=everything"], "", "*argument --nw-capture: invalid choice: 'everything'*"),
    ([], "nw_capture = everything", "ERROR: ini nw_capture='everything' is not one of auto, fine, coarse, off"),
    ([], "nw_keep = some", "ERROR: ini nw_keep='some' is not a whole number of trials"),
    ([], "nw_keep = -1", "ERROR: ini nw_keep='-1' must be 0 (keep every trial) or more"),
])
def test_an_option_value_out_of_range_is_a_usage_error(project, args, ini, message):
    project.ini(ini)
    project.experiment("ok.py", OK)
    result = project.run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert not (project.root / ".nwtrials").exists()
