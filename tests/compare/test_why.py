"""Why a value changed: the headline (root cause or first divergence), changed inputs, reordered steps and
missing tags in scripts and notebooks, --nw-ops=strict."""
from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

PIPELINE = """
from pytest_nwtrials import tag
from helper import scale

SCALE = {scale}
with open("data.csv") as handle:
    rows = [float(line) for line in handle]
{steps}
total = tag("total", round(scale(sum(rows)) * SCALE, 6))
count = tag("count", len(rows))
"""
CLIP = "rows = [min(r, 10.0) for r in rows]"
SHIFT = "rows = [r - 1.0 for r in rows]"


def pipeline(project, scale=2.0, steps=(CLIP, SHIFT), data="1\n5\n20\n", helper="def scale(x):\n    return x\n"):
    project.experiment("pipe.py", PIPELINE.format(scale=scale, steps="\n".join(steps)))
    (project.root / "experiments" / "data.csv").write_text(data)
    (project.root / "experiments" / "helper.py").write_text(helper)


def saved(project, **kwargs):
    project.ini(experiments="experiments/pipe.py")
    pipeline(project, **kwargs)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)


def test_changed_literal_names_its_line_as_first_divergence(project):
    saved(project)
    pipeline(project, scale=3.0)
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*total: changed: 26.0 -> 39.0*",
        "Why it changed:",
        "*in the provenance of total:",
        "*root cause: pipe.py:5  SCALE = 2.0 -> 3.0",
    ])
    assert "count" not in result.stdout.str().split("Why it changed")[1]


def test_changed_data_file_is_named_with_both_hashes(project):
    saved(project)
    pipeline(project, data="1\n5\n7\n")
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(failed=1)
    old = hashlib.sha1(b"1\n5\n20\n").hexdigest()[:10]
    new = hashlib.sha1(b"1\n5\n7\n").hexdigest()[:10]
    result.stdout.fnmatch_lines(["*total: changed: 26.0 -> 20.0*",
                                 f"*input file experiments/data.csv changed (sha1 {old} -> {new})*"])


def test_swapped_preprocessing_steps_headline_the_reorder_by_their_lines(project):
    saved(project)
    pipeline(project, steps=(SHIFT, CLIP))
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "total: changed: 26.0 -> 28.0" in out
    why = out.split("Why it changed:")[1].splitlines()
    assert why[2] == ("    reordered: `[min(r, 10.0) for r in rows]` now runs after `[r - 1.0 for r in rows]`, "
                      "pipe.py, line 8 -> line 9")
    assert any(line.startswith("    <> moved pipe.py:9 ") and "(was pipe.py:8)" in line for line in why)
    assert not any(" op " in line or "literal) moved" in line for line in why)


def test_a_refactor_that_keeps_values_and_operations_passes_even_strict(project):
    saved(project)
    project.experiment("pipe.py", "# refactored: comments and blank lines only\n\n"
                       + PIPELINE.format(scale=2.0, steps=f"{CLIP}\n\n# then shift\n{SHIFT}"))
    project.run("--nw-baseline=base", "--nw-ops=strict").assert_outcomes(passed=1)


def test_strict_fails_on_a_new_order_that_reaches_the_same_values(project):
    same = "from pytest_nwtrials import tag\na = 2\nb = 3\ntag('product', a * b)\n"
    swapped = "from pytest_nwtrials import tag\nb = 3\na = 2\ntag('product', a * b)\n"
    project.experiment("calc.py", same)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    project.experiment("calc.py", swapped)
    project.run("--nw-baseline=base").assert_outcomes(passed=1)
    strict = project.run("--nw-baseline=base", "--nw-ops=strict")
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines([
        "*every tagged value matches baseline 'base' (recorded in trial1), but the operations that produced them changed*",
        "*in the provenance of the experiment's operation sequence:*",
    ])
    strict.stdout.fnmatch_lines(["    reordered: `a = 2` now runs after `b = 3`, calc.py, line 2 -> line 3",
                                 "    <> moved calc.py:3 literal (was calc.py:2) = 2, with the operation after it"])
    bad = project.run("--nw-ops=sometimes")
    assert bad.ret == 4 and "--nw-ops" in bad.stderr.str()


def test_changed_helper_module_and_library_inputs_are_recorded(project):
    saved(project)
    pipeline(project, helper="def scale(x):\n    return 2 * x\n")
    result = project.run("--nw-baseline=base", "--nw-ops=strict")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*total: changed: 26.0 -> 52.0*", "*module experiments/helper.py changed (sha1 *"])
    [*_, trial] = project.trials()
    assert trial["inputs"]["python"] == f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    assert trial["inputs"]["files"]["experiments/data.csv"]["read"] == hashlib.sha1(b"1\n5\n20\n").hexdigest()


LOOP = """
from pytest_nwtrials import tag
n_features = tag("n_features", 3)
w = [0.0] * n_features
for epoch in range(200):
    for j in range(n_features):
        w[j] = w[j] + 0.01 * (j + 1)
tag("w", w)
for k in range(2):
    tag("step", k * 10)
"""


def test_slices_through_the_trial_api_and_trial_diff(project):
    project.experiment("loop.py", LOOP)
    project.run().assert_outcomes(passed=1)
    project.experiment("loop.py", LOOP.replace("0.01", "0.02"))
    project.run().assert_outcomes(passed=1)
    project.pytester.makepyfile(inspect_trials="""
        from pytest_nwtrials import load_trial, trial_diff
        first = load_trial("trial1")
        w, n = first.slice("w"), first.slice("n_features")
        loop_lines = {op.line for op in w.ops if "w[j]" in op.code}
        print("w ops", len(w.ops), "loop lines", sorted(loop_lines))
        print("n_features ops", [(op.line, op.code) for op in n.ops])
        print("step last", [op.value for op in first.slice("step").ops if op.kind == "mult"])
        print("step union", [op.value for op in first.slice("step", union=True).ops if op.kind == "mult"])
        diff = trial_diff("trial1", "trial2")
        assert trial_diff("trial1", "trial1").empty  # callable again: the name stays the function
        print(diff)
        print("HTML", "<table>" in diff._repr_html_(), "w" in diff.tags)
    """)
    out = subprocess.run([sys.executable, "inspect_trials.py"], cwd=project.root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    w_ops = int(lines[0].split()[2])
    assert w_ops > 600  # the 200 iterations of the inner update, at least
    assert "loop lines [7]" in lines[0]  # the update inside the loop (noWorkflow records no control flow)
    assert all(line < 5 for line, _ in eval(lines[1][len("n_features ops "):]))
    assert lines[2] == "step last ['10']" and lines[3] == "step union ['0', '10']"
    text = out.stdout
    assert "trial2 differs from trial1" in text and "w[0]: changed: 2.0000000000000013 -> 4.000000000000003" in text
    assert "root cause: loop.py:7" in text and "0.01 -> 0.02" in text
    assert lines[-1] == "HTML True True"



SKIPPED_TAG = """
from pytest_nwtrials import tag
VERBOSE = {verbose}
rows = [1.0, 2.0, 4.0]
total = tag("total", sum(rows))
if VERBOSE:
    tag("summary", {{"n": len(rows), "max": max(rows)}})
"""


def test_a_missing_tag_names_where_the_baseline_tagged_it(project):
    result = project.gate("report.py", SKIPPED_TAG.format(verbose=True), SKIPPED_TAG.format(verbose=False))
    result.stdout.fnmatch_lines([
        "*summary: missing in the new trial (baseline: {'n': 3, 'max': 4.0})",
        "Why it changed:",
        "  summary: missing in the new trial (tagged at report.py:7 in the baseline)",
    ])


def notebook(project, *cells: str) -> None:
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, project.root / "experiments" / "prep.ipynb")


def test_swapped_notebook_cells_headline_the_reorder_by_their_cells(project):
    project.ini(experiments="experiments/*.ipynb")
    (project.root / "experiments").mkdir()
    cells = ["from pytest_nwtrials import tag\nrows = [1.0, 5.0, 20.0]", "rows = [r - 1.0 for r in rows]",
             "rows = [min(r, 10.0) for r in rows]", "tag('total', sum(rows))\nif len(rows) > 2:\n    tag('top', max(rows))"]
    notebook(project, *cells)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    notebook(project, cells[0], cells[2], cells[1], cells[3].replace("> 2", "> 5"))
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*total: changed: 14.0 -> 13.0*",
        "Why it changed:",
        "  in the provenance of total:",
        "    reordered: `[min(r, 10.0) for r in rows]` now runs before `[r - 1.0 for r in rows]`, "
        "prep.ipynb, cell 3 -> cell 2",
    ])
    result.stdout.fnmatch_lines(["  top: missing in the new trial (tagged at prep.ipynb, cell 4, line 3 in the baseline)"])
