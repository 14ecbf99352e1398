"""Why a value changed when control flow decided it: a step skipped, another branch taken, a loop
run more or fewer times (or not at all), a tag no longer reached; in scripts and notebooks.

Each test records a baseline, changes one line as a user would, runs the gate, and checks both
the slice (its operations and the kinds of their edges, read back with `load_trial`) and that
the changed condition's statement is in the report's "Why it changed" section.
"""
from __future__ import annotations

import ast
import re
import gzip
import json
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing

import pytest
from hypothesis import given, strategies as st

from pytest_nwtrials.provenance.control import may_assign, statement_parts

# prints, per trial and tag: the slice's site and, per operation, (line, kind, code, value,
# [(earlier op, edge kind), ...]) as JSON
DUMP = """
import json, sys
from pytest_nwtrials import load_trial
out = {}
for ref, tag in zip(sys.argv[1::2], sys.argv[2::2]):
    s = load_trial(ref).slice(tag)
    out[ref + ":" + tag] = {"site": s.site, "ops": [[op.line, op.kind, op.code, op.value, [list(e) for e in edges]]
                                                  for op, edges in zip(s.ops, s.edges)]}
print(json.dumps(out))
"""


def slices(project, *refs_and_tags: str) -> dict:
    script = project.root / "dump_slices.py"
    script.write_text(DUMP)
    done = subprocess.run([sys.executable, str(script), *refs_and_tags], cwd=project.root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def why(result) -> str:
    out = result.stdout.str()
    assert "Why it changed" in out, out
    return out.split("Why it changed", 1)[1]


def root(result) -> str:
    """The headline of the first explanation: its root cause."""
    found = re.search(r"^\s*root cause: (.*)$", why(result), re.M)
    assert found, why(result)
    return found[1]


def controls(ops: list, index: int) -> list:
    """The operations operation `index` has a control edge to."""
    return [ops[dep] for dep, kind in ops[index][4] if kind == "control"]


# -- scripts ----------------------------------------------------------------------------------

SKIPPED_STEP = """
from pytest_nwtrials import tag
def scale(values):
    return [v / 4.0 for v in values]
normalize = True
X = [1.0, 2.0, 4.0]
if normalize:
    X = scale(X)
tag("total", sum(X))
"""


def test_flag_that_no_longer_runs_a_step_is_in_the_slice_of_the_next_read(project):
    result = project.gate("prep.py", SKIPPED_STEP, SKIPPED_STEP.replace("normalize = True", "normalize = False"))
    found = slices(project, "trial2", "total")["trial2:total"]
    ops = found["ops"]
    # sum(X): X read after the `if` that did not reassign it depends on the test that decided so
    read = next(i for i, op in enumerate(ops) if op[:3] == [9, "name", "X"])
    assert [op[:4] for op in controls(ops, read)] == [[7, "name", "normalize", "False"]]
    assert [5, "literal", "False", "False"] in [op[:4] for op in ops]
    assert "scale" not in {op[2] for op in ops}
    assert root(result) == "prep.py:5  normalize = True -> False"


ELIF = """
from pytest_nwtrials import tag
optimizer = "sgd"
if optimizer == "sgd":
    lr = 0.1
elif optimizer == "adam":
    lr = 0.01
else:
    lr = 1.0
seed = 7
tag("lr", lr * 2)
tag("seed", seed)
"""


def test_elif_branch_taken_instead_depends_on_both_tests(project):
    result = project.gate("opt.py", ELIF, ELIF.replace('optimizer = "sgd"', 'optimizer = "adam"'))
    found = slices(project, "trial2", "lr", "trial2", "seed", "trial1", "seed")
    ops = found["trial2:lr"]["ops"]
    written = next(i for i, op in enumerate(ops) if op[:3] == [7, "name", "lr"])
    [elif_test] = controls(ops, written)
    assert elif_test[:4] == [6, "eq", 'optimizer == "adam"', "True"]
    [if_test] = controls(ops, ops.index(elif_test))
    assert if_test[:4] == [4, "eq", 'optimizer == "sgd"', "False"]
    # after an `if ... elif`, noWorkflow keeps the first test as a condition of everything that
    # follows: statements after the `if` do not depend on it
    for trial in ("trial1", "trial2"):
        assert [op[2] for op in found[f"{trial}:seed"]["ops"]] == ["7", "seed", "seed"]
    assert root(result) == "opt.py:3  optimizer = 'sgd' -> 'adam'"


ELIF_LOOP = """
from pytest_nwtrials import tag
mode = "b"
total = 0
for i in range(200):
    if mode == "a":
        total = total + 1
    elif mode == "b":
        total = total + 2
tag("total", total)
"""


def test_elif_in_a_loop_keeps_the_database_linear(project):
    project.ini("nw_keep_database = true")
    project.experiment("loop.py", ELIF_LOOP)
    project.run().assert_outcomes(passed=1)
    [archive] = (project.root / ".nwtrials" / "provenance").glob("*.sqlite.gz")
    db = project.root / "db.sqlite"
    db.write_bytes(gzip.decompress(archive.read_bytes()))
    with closing(sqlite3.connect(db)) as conn:
        conditions = conn.execute("SELECT COUNT(*) FROM dependency WHERE type = 'condition'").fetchone()[0]
    # each pass: the two tests and the body's four evaluations (noWorkflow alone: 1 + 2 + ... + 200
    # leftover conditions on top of that, for every evaluation)
    assert conditions <= 200 * 6
    ops = slices(project, "trial1", "total")["trial1:total"]["ops"]
    last_add = max(i for i, op in enumerate(ops) if op[1:3] == ["add", "total + 2"])
    [elif_test] = controls(ops, last_add)
    assert elif_test[1:4] == ["eq", 'mode == "b"', "True"]
    assert [op[1:4] for op in controls(ops, ops.index(elif_test))] == [["eq", 'mode == "a"', "False"]]


WHILE = """
from pytest_nwtrials import tag
tol = 0.1
err = 1.0
steps = 0
while err > tol:
    err = err / 2
    steps = steps + 1
tag("steps", steps)
"""


def test_while_that_runs_a_different_number_of_times_depends_on_its_last_test(project):
    result = project.gate("solve.py", WHILE, WHILE.replace("tol = 0.1", "tol = 0.01"))
    ops = slices(project, "trial2", "steps")["trial2:steps"]["ops"]
    assert ops[-1][:4] == [9, "name", "steps", "7"]
    # the test that ended the loop decided that `steps` was not incremented again
    assert [op[:4] for op in controls(ops, len(ops) - 1)] == [[6, "gt", "err > tol", "False"]]
    assert [3, "literal", "0.01", "0.01"] in [op[:4] for op in ops]
    assert "tol = 0.1 -> 0.01" in root(result)


EARLY_STOP = """
from pytest_nwtrials import tag
def clipped(v, limit):
    if v > limit:
        return limit
    return v * 1.0
tol = 0.1
w = 8.0
for epoch in range(100):
    w = w / 2
    if w < tol:
        break
    last = clipped(epoch, 30)
tag("w", w)
tag("last", last)
"""


def test_break_and_return_under_an_if_control_what_runs_after_them(project):
    result = project.gate("stop.py", EARLY_STOP, EARLY_STOP.replace("tol = 0.1", "tol = 0.01"))
    found = slices(project, "trial2", "w", "trial2", "last")
    ops = found["trial2:w"]["ops"]
    # the loop ended at the test that broke out of it, after the last `w = w / 2`
    assert [op[:4] for op in controls(ops, len(ops) - 1)] == [[11, "lt", "w < tol", "True"]]
    ops = found["trial2:last"]["ops"]
    # `last = clipped(...)` ran because the test before it in the loop did not break
    call = max(i for i, op in enumerate(ops) if op[1:3] == ["call", "clipped(epoch, 30)"])
    assert [op[1:4] for op in controls(ops, call)] == [["call", "range(100)", "range(0, 100)"],
                                                       ["lt", "w < tol", "False"]]
    # `return v * 1.0` ran because the test before it did not return
    product = max(i for i, op in enumerate(ops) if op[1:3] == ["mult", "v * 1.0"])
    assert [op[1:3] for op in controls(ops, product)] == [["gt", "v > limit"]]
    assert "tol = 0.1 -> 0.01" in root(result)


FOR = """
from pytest_nwtrials import tag
folds = [1, 2, 3]
trained = 0
for fold in folds:
    trained = trained + 1
tag("trained", trained)
"""


def test_loop_over_a_changed_list_depends_on_the_list(project):
    result = project.gate("cv.py", FOR, FOR.replace("folds = [1, 2, 3]", "folds = [1, 2, 3, 4]"))
    ops = slices(project, "trial2", "trained")["trial2:trained"]["ops"]
    # the body does not read `fold`: it ran once per item of `folds`
    increments = [i for i, op in enumerate(ops) if op[:3] == [6, "add", "trained + 1"]]
    assert len(increments) == 4
    assert all([op[:3] for op in controls(ops, i)] == [[5, "name", "folds"]] for i in increments)
    assert [3, "name", "folds", "[1, 2, 3, 4]"] in [op[:4] for op in ops]
    assert root(result).startswith("cv.py:3  folds = [1, 2, 3] -> [1, 2, 3, 4]"), root(result)


ZERO = """
from pytest_nwtrials import tag
epochs = 2
w = 1.0
for _ in range(epochs):
    w = w * 0.5
tag("w", w)
"""


def test_loop_that_ran_zero_times_is_in_the_slice(project):
    result = project.gate("fit.py", ZERO, ZERO.replace("epochs = 2", "epochs = 0"))
    ops = slices(project, "trial2", "w")["trial2:w"]["ops"]
    assert ops[-1][:4] == [7, "name", "w", "1.0"]
    assert [op[:4] for op in controls(ops, len(ops) - 1)] == [[5, "call", "range(epochs)", "range(0, 0)"]]
    assert [3, "literal", "0", "0"] in [op[:4] for op in ops]
    assert "epochs = 2 -> 0" in root(result)


METHOD = """
from pytest_nwtrials import tag
class Model:
    def __init__(self):
        self.w = 0.0
    def fit(self, x):
        self.w = x * 2
refit = True
model = Model()
if refit:
    model.fit(3.0)
tag("w", model.w)
"""


def test_method_call_under_a_flag_makes_the_flag_a_control_of_the_object(project):
    result = project.gate("refit.py", METHOD, METHOD.replace("refit = True", "refit = False"))
    found = slices(project, "trial1", "w", "trial2", "w")
    old, new = found["trial1:w"]["ops"], found["trial2:w"]["ops"]
    # new trial: `model` read after the skipped call depends on the test that skipped it
    read = next(i for i, op in enumerate(new) if op[:3] == [12, "name", "model"])
    assert [op[:4] for op in controls(new, read)] == [[10, "name", "refit", "False"]]
    # baseline: the call ran under the test (noWorkflow gives calls no condition of their caller)
    calls = [i for i, op in enumerate(old) if op[1:3] == ["call", "model.fit(3.0)"]]
    assert calls and all([op[:3] for op in controls(old, i)] == [[10, "name", "refit"]] for i in calls)
    assert root(result) == "refit.py:8  refit = True -> False"


FUNCTION = """
from pytest_nwtrials import tag
def prepare(value, clip):
    if clip:
        value = min(value, 1.0)
    return value
CLIP = True
tag("prepared", prepare(3.5, CLIP))
"""


def test_if_inside_a_function_controls_the_read_of_its_parameter(project):
    result = project.gate("fn.py", FUNCTION, FUNCTION.replace("CLIP = True", "CLIP = False"))
    ops = slices(project, "trial2", "prepared")["trial2:prepared"]["ops"]
    returned = next(i for i, op in enumerate(ops) if op[:3] == [6, "name", "value"])
    assert [op[:4] for op in controls(ops, returned)] == [[4, "name", "clip", "False"]]
    assert "CLIP = True -> False" in root(result)


TAG_IN_IF = """
from pytest_nwtrials import tag
report = True
score = 0.75
tag("score", score)
if report:
    tag("summary", {"score": score})
"""


def test_tag_inside_an_if_now_skipped_points_at_its_baseline_site_and_condition(project):
    result = project.gate("report.py", TAG_IN_IF, TAG_IN_IF.replace("report = True", "report = False"))
    found = slices(project, "trial1", "summary")["trial1:summary"]
    assert found["site"] == ["report.py", 7]  # as its operations name the file: from the trial's folder
    ops = found["ops"]
    assert [op[:4] for op in controls(ops, len(ops) - 1)] == [[6, "name", "report", "True"]]
    out = result.stdout.str()
    assert "summary: missing in the new trial" in out
    assert "report.py:7" in out and "report = True -> False" in why(result)


# -- notebooks --------------------------------------------------------------------------------

def notebook(project, name: str, *cells: str) -> None:
    nbformat = pytest.importorskip("nbformat", reason="notebook capture needs nbformat")
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell(textwrap.dedent(source).strip()) for source in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = project.root / "experiments" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def notebook_gate(project, before: list[str], after: list[str]):
    project.ini(experiments="experiments/*.ipynb")
    notebook(project, "nb.ipynb", *before)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    notebook(project, "nb.ipynb", *after)
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(failed=1)
    return result


# a name defined in one cell, maybe reassigned under a flag in the next, read in a third
NB = ["from pytest_nwtrials import tag\nnormalize = True\nepochs = 2\nreport = True\nX = [1.0, 2.0, 4.0]",
      "if normalize:\n    X = [v / 4.0 for v in X]",
      "w = 1.0\nfor _ in range(epochs):\n    w = w * 0.5",
      "tag('total', sum(X) + w)\nif report:\n    tag('summary', {'w': w})"]


def test_notebook_flag_and_zero_iteration_loop_are_controls_across_cells(project):
    after = [NB[0].replace("normalize = True", "normalize = False").replace("epochs = 2", "epochs = 0"), *NB[1:]]
    result = notebook_gate(project, NB, after)
    ops = slices(project, "trial2", "total")["trial2:total"]["ops"]
    reads = {op[2]: i for i, op in enumerate(ops) if op[0] == 1 and op[1] == "name" and op[2] in ("X", "w")}
    assert [op[:4] for op in controls(ops, reads["X"])] == [[1, "name", "normalize", "False"]]
    assert [op[:4] for op in controls(ops, reads["w"])] == [[2, "call", "range(epochs)", "range(0, 0)"]]
    assert root(result).startswith("nb.ipynb, cell 1, line "), root(result)
    assert "True -> False" in root(result) or "2 -> 0" in root(result)


def test_notebook_tag_inside_an_if_points_at_its_cell(project):
    after = [NB[0].replace("report = True", "report = False"), *NB[1:]]
    result = notebook_gate(project, NB, after)
    found = slices(project, "trial1", "summary")["trial1:summary"]
    assert found["site"] == ["nb.ipynb#cell4", 3]
    ops = found["ops"]
    assert [op[:4] for op in controls(ops, len(ops) - 1)] == [[2, "name", "report", "True"]]
    out = result.stdout.str()
    assert "summary: missing in the new trial" in out and "nb.ipynb, cell 4, line 3" in out


# -- the statements' structure, from their source text (pure) ---------------------------------


def text_at(source: str, line: int, span) -> str:
    """The text of `span` ((line, column), (line, column), 1-based lines from `line`) in `source`."""
    lines = source.splitlines()
    (first_line, first_col), (last_line, last_col) = span
    if first_line == last_line:
        return lines[first_line - line][first_col:last_col]
    return "\n".join([lines[first_line - line][first_col:], *lines[first_line - line + 1:last_line - line],
                      lines[last_line - line][:last_col]])


def test_statement_parts_of_if_elif_while_for_as_noworkflow_stores_them():
    # noWorkflow's text: the first line without its indentation, the others as in the file
    text = 'if mode == "a":\n        lr = 0.1\n    elif (mode ==\n            "b"):\n        model.fit(X)\n    else:\n        del cache'
    (span, names, _leaves) = statement_parts(text, "if", 12, 4)
    assert span == ((12, 7), (12, 18)) and names == {"lr", "model", "cache"}
    elif_text = 'elif (mode ==\n            "b"):\n        model.fit(X)\n    else:\n        del cache'
    (span, names, _leaves) = statement_parts(elif_text, "if", 14, 4)
    assert span == ((14, 10), (15, 15)) and names == {"model", "cache"}
    (span, names, _leaves) = statement_parts("while err > tol:\n    err = err / 2\n    hist[k] = err", "while", 3, 0)
    assert span == ((3, 6), (3, 15)) and names == {"err", "hist"}
    (span, names, _leaves) = statement_parts("for a, b in zip(x, y):\n    def f(): q = 1\n    total += a", "for", 1, 0)
    assert span == ((1, 12), (1, 21)) and names == {"a", "b", "f", "total"}
    assert statement_parts("if broken(:\n    x = 1", "if", 1, 0) is None


def test_may_assign_leaves_nested_scopes_and_reads_out():
    tree = ast.parse("y = f(x)\nobj.attr.deep = 1\nclass C:\n    inner = 2\nlambda: (z := 3)\nprint([w for w in v])\n"
                     "import numpy.linalg as la, os.path")
    assert may_assign(tree.body) == {"y", "obj", "C", "la", "os", "w"}


NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda name: name not in {"if", "in", "is", "or", "as", "and", "not", "for", "def", "del", "try", "elif", "else",
                              "with", "from", "pass", "while", "break", "class", "raise", "yield", "async",
                              "await", "global", "lambda", "return", "import", "assert", "finally", "continue",
                              "except", "nonlocal"})


@given(kind=st.sampled_from(["if", "while", "for"]), test=NAMES, other=NAMES, target=NAMES,
       indent=st.integers(0, 12), first_line=st.integers(1, 500), elifs=st.integers(0, 2))
def test_the_test_span_points_at_the_test_in_the_file(kind, test, other, target, indent, first_line, elifs):
    pad = " " * indent
    header = {"if": f"if {test} > {other}:", "while": f"while {test} > {other}:",
              "for": f"for {other} in {test}:"}[kind]
    body = [f"{pad}    {target} = {other}"]
    if kind == "if":
        for n in range(elifs):
            body += [f"{pad}elif {test} == {n}:", f"{pad}    {target}.append({n})"]
    file_lines = ["# before"] * (first_line - 1) + [pad + header, *body]
    source = "\n".join(file_lines)
    stored = "\n".join([header, *body])  # as noWorkflow stores it
    (span, names, _leaves) = statement_parts(stored, kind, first_line, indent)
    expected = f"{test} > {other}" if kind != "for" else test
    assert text_at(source, 1, span) == expected
    assert target in names and (other in names) == (kind == "for" or other == target)
