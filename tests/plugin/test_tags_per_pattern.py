"""ini `nw_tags` per experiment pattern (`fraud/*.py: auc weights`) beside global names."""
from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nbformat.v4 import new_code_cell, new_notebook

from pytest_nwtrials.settings import SettingsError, parse_tag_lines, resolve

# every experiment defines the same generic names; only some should be recorded in each
CODE = """
import json
labels = [1, 0, 1]
X_train = [[0.5, 1.5], [2.0, 3.0]]
auc = 0.75
weights = [0.25, -1.5]
print(json.dumps({"labels": labels, "X_train": X_train, "auc": auc, "weights": weights}))
"""

TAGS = """
nw_tags =
    auc
    fraud/*.py: weights labels
    vision/**: X_train
    # a comment line
    fraud/notebooks/*.ipynb: labels
"""


def _notebook(path, source: str) -> None:
    nb = new_notebook()
    nb.cells.append(new_code_cell(source))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_pattern_lines_record_their_names_only_in_matching_experiments(project):
    project.ini(TAGS, experiments="fraud/*.py\n    vision/**/*.py\n    other.py\n    fraud/notebooks/*.ipynb")
    for relative in ("fraud/score.py", "vision/deep/net.py", "other.py"):
        path = project.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CODE, encoding="utf-8")
    _notebook(project.root / "fraud" / "notebooks" / "look.ipynb", CODE)
    plain = subprocess.run([sys.executable, str(project.root / "other.py")], capture_output=True, text=True,
                           check=True)
    expected = json.loads(plain.stdout)
    project.run().assert_outcomes(passed=4)
    recorded = {trial["experiment"]: trial["tags"] for trial in project.trials()}
    wanted = {"fraud/score.py": {"auc", "weights", "labels"}, "vision/deep/net.py": {"auc", "X_train"},
              "other.py": {"auc"}, "fraud/notebooks/look.ipynb": {"auc", "labels"}}
    assert {name: set(tags) for name, tags in recorded.items()} == wanted
    for tags in recorded.values():
        for name, doc in tags.items():  # the values plain Python gives, from scripts and the notebook alike
            assert doc["value"] == expected[name] and doc["source"] == "nw_tags", (name, doc)


def test_the_global_one_line_form_still_works_and_the_fixture_follows_patterns(project):
    project.ini("nw_tags = auc weights\n    sub/*.py: labels\n", experiments="unused/*.py")
    (project.root / "sub").mkdir()
    (project.root / "sub" / "exp.py").write_text(CODE, encoding="utf-8")
    (project.root / "top.py").write_text(CODE, encoding="utf-8")
    project.pytester.makepyfile(test_fixture="""
        def test_run(nw_trial):
            sub = nw_trial.run("sub/exp.py")
            top = nw_trial.run("top.py")
            assert sorted(sub.tags) == ["auc", "labels", "weights"], sorted(sub.tags)
            assert sorted(top.tags) == ["auc", "weights"], sorted(top.tags)
    """)
    project.run("test_fixture.py").assert_outcomes(passed=1)


@pytest.mark.parametrize("line, message", [
    ("fraud/*.py:", "ERROR: ini nw_tags: line 'fraud/*.py:' names no variable; each line is either*"),
    (": auc", "ERROR: ini nw_tags: line ': auc' has no pattern before the colon; *"),
    ("fraud/*.py: auc 2x", "ERROR: ini nw_tags: '2x' in line 'fraud/*.py: auc 2x' is not a variable name; *"),
    ("auc-score", "ERROR: ini nw_tags: 'auc-score' in line 'auc-score' is not a variable name; *"),
])
def test_a_bad_line_is_a_usage_error_naming_the_line(project, line, message):
    project.ini(f"nw_tags =\n    auc\n    {line}\n")
    project.experiment("ok.py", "x = 1\n")
    result = project.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "`PATTERN: names` (`fraud/*.py: auc weights`" in result.stderr.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


_NAME = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
_PATTERN = st.from_regex(r"[a-z*?]{1,6}(/[a-z*?]{1,6}){0,2}\.py", fullmatch=True)


@given(st.lists(_NAME, max_size=4), st.lists(st.tuples(_PATTERN, st.lists(_NAME, min_size=1, max_size=3)),
                                               max_size=3))
def test_lines_parse_back_to_the_names_and_patterns_written(global_names, pattern_lines):
    lines = [" ".join(global_names)] + [f"./{p}: {' '.join(names)}" for p, names in pattern_lines]
    tags, by_pattern = parse_tag_lines("\n".join(lines))
    assert tags == tuple(dict.fromkeys(global_names))
    assert by_pattern == tuple((p, tuple(names)) for p, names in pattern_lines)


def test_tags_for_adds_matching_patterns_after_global_names_once(tmp_path):
    settings = resolve(tmp_path, {}, {"nw_tags": ["auc", "a/*.py: auc w", "a/**: x w", "b/*.py: y"]})
    assert settings.tags_for("a/run.py") == ("auc", "w", "x")
    assert settings.tags_for("a/deep/run.py") == ("auc", "x", "w")
    assert settings.tags_for("b/run.py") == ("auc", "y")
    assert settings.tags_for("c.py") == ("auc",)
    with pytest.raises(SettingsError, match="nw_tags"):
        resolve(tmp_path, {}, {"nw_tags": ["a/*.py"]})  # a path where a name belongs
