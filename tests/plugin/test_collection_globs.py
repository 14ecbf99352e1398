"""``nw_experiments`` globs mean what they mean in a shell: ``*`` within a folder, ``**`` across."""
from __future__ import annotations

import pytest

from pytest_nwtrials import api

SCRIPT = "from pytest_nwtrials import tag\ntag('n', 1)\n"
FILES = ["a.py", "b1.py", "ab.py", "x/c.py", "x/y/d.py", "helpers/deep/util.py", ".hidden.py", "notes.txt"]


@pytest.fixture
def nested(project):
    for name in FILES:
        project.experiment(name, SCRIPT)
    return project


def collected(project, patterns: str) -> set[str]:
    project.ini(experiments=patterns)
    result = project.run("--collect-only", "-q")
    assert result.ret in (0, 5), result.stdout.str() + result.stderr.str()
    return {line.split("::")[0].removeprefix("experiments/") for line in result.stdout.lines if "::" in line}


@pytest.mark.parametrize("patterns, expected", [
    ("experiments/*.py", {"a.py", "b1.py", "ab.py"}),
    ("experiments/**/*.py", {"a.py", "b1.py", "ab.py", "x/c.py", "x/y/d.py", "helpers/deep/util.py"}),
    ("experiments/*/*.py", {"x/c.py"}),
    ("experiments/x/**/*.py", {"x/c.py", "x/y/d.py"}),
    ("experiments/?.py", {"a.py"}),
    ("experiments/[ab]?.py", {"b1.py", "ab.py"}),
    ("**/util.py", {"helpers/deep/util.py"}),
    ("./experiments/a.py\n    experiments/x/*.py", {"a.py", "x/c.py"}),
    ("experiments/.*.py", {".hidden.py"}),  # wildcards skip hidden names unless the dot is spelled out
    ("experiments/*", {"a.py", "b1.py", "ab.py"}),  # only .py and .ipynb files are experiments
])
def test_globs_collect_exactly_the_matching_scripts(nested, patterns, expected):
    assert collected(nested, patterns) == expected


def test_saving_prunes_and_browsing_selects_with_the_same_globs(nested):
    """An entry whose experiment no longer matches is pruned on the next save, and `nwtrials list
    PATTERN` (api.select) reads a pattern as collection does."""
    nested.ini(experiments="experiments/**/*.py")
    nested.run("--nw-save-baseline=base").assert_outcomes(passed=6)
    nested.ini(experiments="experiments/*.py")
    result = nested.run("--nw-save-baseline=base")
    result.assert_outcomes(passed=3)
    entries = sorted(p.relative_to(nested.root / "nw-baselines" / "base").as_posix()
                     for p in (nested.root / "nw-baselines" / "base").rglob("*.py.json"))
    assert entries == ["experiments/a.py.json", "experiments/ab.py.json", "experiments/b1.py.json"]
    store = nested.root / ".nwtrials"
    assert {t.experiment for t in api.select(api.open_store(store), "experiments/*.py")} == {
        "experiments/a.py", "experiments/b1.py", "experiments/ab.py"}
    assert {t.experiment for t in api.select(api.open_store(store), "experiments/**/d.py")} == {"experiments/x/y/d.py"}
