"""Why a value changed when the cause reached it through a mutation or a module's hidden state.

Each pattern is an experiment as a user writes it: a baseline is saved, ONE line is changed
(`old` -> `new`), the gate runs against the baseline. The changed statement must be what the
report names, and it must be in the tag's slice, reached only through the edge kind the
pattern is about (without the MUTATION or STATE edges it would not be there). All script
patterns run in one project (one pytest run to save, one to gate), notebooks in another.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from pytest_nwtrials import load_trial
from pytest_nwtrials.provenance.graph import CONTROL, DATA, MUTATION, STATE
from pytest_nwtrials.store.trial_store import TrialStore

ESTLIB = '''
class Est:
    """A library estimator: fine capture records its calls as single calls."""

    def __init__(self, alpha=1.0):
        self.alpha = alpha
        self.coef_ = None

    def fit(self, X, y, lr=0.1):
        self.coef_ = [self.alpha * lr * (x + t) for x, t in zip(X, y)]
        return self

    def predict(self, X):
        return [round(c * x, 9) for c, x in zip(self.coef_, X)]


def scale_(x, factor):
    """Changes its argument in place: no list of mutating functions knows it."""
    x *= factor
'''


@dataclass(frozen=True)
class Pattern:
    name: str
    code: str
    old: str  # the line changed between the baseline and the new trial
    new: str
    tag: str
    kind: str  # the edge kind that brings the changed line into the slice

    @property
    def line(self) -> int:
        return textwrap.dedent(self.code).splitlines().index(self.old) + 1

    def source(self, changed: bool) -> str:
        code = textwrap.dedent(self.code)
        return code.replace(self.old, self.new) if changed else code


PATTERNS = [
    Pattern("fit_other_module", """
        from pytest_nwtrials import tag
        from estlib import Est
        X = [1.0, 2.0, 3.0]
        y = [0.0, 1.0, 0.0]
        LR = 0.1
        model = Est(alpha=0.5)
        model.fit(X, y, LR)
        tag("pred", model.predict(X))
        """, "LR = 0.1", "LR = 0.2", "pred", MUTATION),
    Pattern("rng_shuffle", """
        import numpy as np
        from pytest_nwtrials import tag
        SEED = 0
        rng = np.random.default_rng(SEED)
        data = np.arange(10.0)
        rng.shuffle(data)
        tag("data", data)
        """, "SEED = 0", "SEED = 1", "data", MUTATION),
    Pattern("shuffle_read_twice", """
        import numpy as np
        from pytest_nwtrials import tag
        SEED = 0
        rng = np.random.RandomState(SEED)
        idx = np.arange(10)
        rng.shuffle(idx)
        head = idx[:5]
        tail = idx[5:]
        tag("parts", [head.tolist(), tail.tolist()])
        """, "SEED = 0", "SEED = 1", "parts", MUTATION),
    Pattern("numpy_global_seed", """
        import numpy as np
        from pytest_nwtrials import tag
        SEED = 0
        np.random.seed(SEED)
        scale = 2.0
        noise = np.random.normal(size=5) * scale
        tag("noise", noise)
        """, "SEED = 0", "SEED = 1", "noise", STATE),
    Pattern("random_seed", """
        import random
        from pytest_nwtrials import tag
        SEED = 0
        random.seed(SEED)
        first = random.random()
        second = random.randint(0, 1000)
        tag("second", second)
        """, "SEED = 0", "SEED = 1", "second", STATE),
    Pattern("random_shuffle", """
        import random
        from pytest_nwtrials import tag
        SEED = 0
        random.seed(SEED)
        items = list(range(10))
        random.shuffle(items)
        tag("items", items)
        """, "SEED = 0", "SEED = 1", "items", MUTATION),
    Pattern("fillna_inplace", """
        import pandas as pd
        from pytest_nwtrials import tag
        FILL = 0.0
        df = pd.DataFrame({"a": [1.0, None, 3.0]})
        df.fillna(FILL, inplace=True)
        tag("total", float(df["a"].sum()))
        """, "FILL = 0.0", "FILL = 5.0", "total", MUTATION),
    Pattern("sort_values_inplace", """
        import pandas as pd
        from pytest_nwtrials import tag
        ASCENDING = True
        df = pd.DataFrame({"a": [2.0, 1.0, 3.0]})
        df.sort_values("a", ascending=ASCENDING, inplace=True)
        tag("first", float(df["a"].iloc[0]))
        """, "ASCENDING = True", "ASCENDING = False", "first", MUTATION),
    Pattern("list_sort", """
        from pytest_nwtrials import tag
        REVERSE = False
        lst = [3, 1, 2]
        lst.sort(reverse=REVERSE)
        tag("lst", lst)
        """, "REVERSE = False", "REVERSE = True", "lst", MUTATION),
    Pattern("array_sort", """
        import numpy as np
        from pytest_nwtrials import tag
        AXIS = 0
        arr = np.array([[3.0, 1.0], [0.0, 2.0]])
        arr.sort(axis=AXIS)
        tag("arr", arr)
        """, "AXIS = 0", "AXIS = 1", "arr", MUTATION),
    Pattern("copyto", """
        import numpy as np
        from pytest_nwtrials import tag
        VALUE = 1.0
        src = np.full(3, VALUE)
        dst = np.zeros(3)
        np.copyto(dst, src)
        tag("dst", dst)
        """, "VALUE = 1.0", "VALUE = 2.0", "dst", MUTATION),
    Pattern("ufunc_out", """
        import numpy as np
        from pytest_nwtrials import tag
        B = 1.0
        a = np.arange(3.0)
        b = np.full(3, B)
        c = np.zeros(3)
        np.add(a, b, out=c)
        tag("c", c)
        """, "B = 1.0", "B = 2.0", "c", MUTATION),
    Pattern("observed_in_library", """
        import numpy as np
        from pytest_nwtrials import tag
        from estlib import scale_
        FACTOR = 2.0
        X = np.arange(4.0)
        scale_(X, FACTOR)
        tag("X", X)
        """, "FACTOR = 2.0", "FACTOR = 3.0", "X", MUTATION),
]
SKLEARN = Pattern("sklearn_fit", """
    import numpy as np
    from sklearn.linear_model import Ridge
    from pytest_nwtrials import tag
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0.0, 1.0, 2.0, 4.0])
    WEIGHT = 1.0
    model = Ridge(alpha=1.0)
    model.fit(X, y, sample_weight=np.full(4, WEIGHT))
    tag("pred", model.predict(X).round(9))
    """, "WEIGHT = 1.0", "WEIGHT = 3.0", "pred", MUTATION)
# a long script with no mutation: calls of pure functions and methods (np.mean, len, X.sum(),
# frame.describe(), .copy()) must not join a slice; sizes measured at the code before the
# mutation rules (67cb5e2)
PURE = """
import math
import numpy as np
import pandas as pd
from pytest_nwtrials import tag

SCALE = 3.0
rows = [float(k) * SCALE for k in range(40)]
X = np.array(rows).reshape(8, 5)
frame = pd.DataFrame(X, columns=list("abcde"))
means = []
for column in frame.columns:
    values = frame[column].to_numpy()
    centred = values - np.mean(values)
    spread = float(np.std(centred)) + len(values) / 100
    means = means + [round(spread, 6)]
total = sum(means) + max(means) - min(means)
norm = math.sqrt(sum(m * m for m in means))
summary = frame.describe()
ratio = float(X.sum() / X.mean()) + len(rows) + float(summary.loc["mean", "a"])
stacked = np.concatenate([X.ravel(), X.T.ravel()])
clipped = np.clip(stacked, 0, 50).copy()
scores = {name: float(np.mean(clipped[i::5])) for i, name in enumerate("vwxyz")}
text = ",".join(sorted(str(round(v, 3)) for v in scores.values()))
tag("total", round(total + norm + ratio, 6))
tag("text", text)
"""
PURE_SIZES = {"total": 497, "text": 403}
HAS_SKLEARN = importlib.util.find_spec("sklearn") is not None


@dataclass
class Gated:
    root: Path
    sections: dict[str, str]  # experiment file -> its part of the gate's output

    def trial(self, experiment: str):
        """The newest trial of an experiment that has provenance, as the public API loads it: a
        gate that matches under auto capture keeps none, its baseline's trial has it."""
        store = self.root / ".nwtrials"
        found = [t for t in TrialStore(store).trials()
                 if t.experiment == f"experiments/{experiment}" and t.has_provenance]
        return load_trial(max(found, key=lambda t: t.number).name, store=store)


def run_pytest(root: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rN", *args],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    return done.stdout + done.stderr


def sections(out: str) -> dict[str, str]:
    """The failure report of each item, by experiment file name."""
    found = {}
    parts = re.split(r"^_{3,} experiment (experiments/\S+) _{3,}$", out, flags=re.M)
    for name, text in zip(parts[1::2], parts[2::2]):
        found[Path(name).name] = text
    return found


def gate(root: Path, write) -> Gated:
    """Save a baseline of the experiments `write(changed=False)` makes, change them, gate."""
    write(changed=False)
    first = run_pytest(root, "--nw-save-baseline=base")
    assert re.search(r"^=+ \d+ passed in [\d.]+s( \([\d:]+\))? =+$", first, re.M), first
    write(changed=True)
    return Gated(root, sections(run_pytest(root, "--nw-baseline=base")))


def new_project(tmp_path_factory: pytest.TempPathFactory, name: str, experiments: str) -> tuple[Path, Path]:
    """A project folder and its experiments folder, which holds the library stand-in `estlib`."""
    root = tmp_path_factory.mktemp(name) / "project"
    folder = root / "experiments"
    folder.mkdir(parents=True)
    (root / "pytest.ini").write_text(f"[pytest]\nnw_experiments = {experiments}\n")
    (folder / "estlib.py").write_text(ESTLIB)
    return root, folder


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> Gated:
    root, folder = new_project(tmp_path_factory, "mutation", "experiments/p_*.py")
    (folder / "p_pure.py").write_text(PURE)  # the same in both runs
    patterns = PATTERNS + ([SKLEARN] if HAS_SKLEARN else [])

    def write(changed: bool) -> None:
        for pattern in patterns:
            (folder / f"p_{pattern.name}.py").write_text(pattern.source(changed))

    return gate(root, write)


def reachable(s, kinds: set[str]) -> set[int]:
    """The ops of a slice its last op depends on through edges of these kinds (itself included)."""
    seen, stack = set(), [len(s.ops) - 1]
    while stack:
        index = stack.pop()
        if index not in seen:
            seen.add(index)
            stack.extend(dep for dep, edge in s.edges[index] if edge in kinds)
    return seen


def reached_only_through(s, target: int, kind: str) -> bool:
    """Whether op `target` is in the slice's dependencies of its last op, and drops out of them
    when the edges of `kind` are ignored."""
    def reached(kinds: set[str]) -> bool:
        return target in reachable(s, kinds)

    every = {DATA, MUTATION, STATE, CONTROL}
    return reached(every) and not reached(every - {kind})


def assert_explained(gated: Gated, pattern: Pattern, file: str, where: str, op_file: str, line: int) -> None:
    """The report names `where` (the changed statement) as the first divergence of the tag, and
    the statement (`op_file`, `line`) is in the tag's slice through an edge of the pattern's kind."""
    section = gated.sections.get(file, "")
    assert "Why it changed" in section, section or gated.sections
    assert "the capture does not see" not in section, section  # every read of the object is explained
    # the report's wording for the root of a change, in this one place
    assert re.search(rf"root cause: {re.escape(where)}\s+{re.escape(pattern.old)} -> "
                     rf"{re.escape(pattern.new.partition(' = ')[2])}", section), section
    s = gated.trial(file).slice(pattern.tag)
    changed = [n for n, op in enumerate(s.ops) if op.file.endswith(op_file) and op.line == line]
    assert changed, [(op.file, op.line, op.code) for op in s.ops]
    assert any(reached_only_through(s, n, pattern.kind) for n in changed), list(zip(s.ops, s.edges))


def assert_script_explained(gated: Gated, pattern: Pattern) -> None:
    file = f"p_{pattern.name}.py"
    assert_explained(gated, pattern, file, f"{file}:{pattern.line}", file, pattern.line)


@pytest.mark.parametrize("pattern", PATTERNS, ids=[p.name for p in PATTERNS])
def test_changed_line_before_a_mutation_or_a_draw_is_the_named_cause(scripts, pattern):
    assert_script_explained(scripts, pattern)


def test_a_scikit_learn_fit_in_place_is_in_the_slice_of_predict(scripts):
    pytest.importorskip("sklearn")
    assert_script_explained(scripts, SKLEARN)


def test_pure_functions_leave_a_long_slice_as_it_was(scripts):
    trial = scripts.trial("p_pure.py")
    for tag, size in PURE_SIZES.items():
        s = trial.slice(tag)
        assert not {kind for deps in s.edges for _dep, kind in deps} & {MUTATION, STATE}
        # what data flow alone reaches is the slice as it was before mutation and control edges;
        # the rest is the loop's control (its iterable), never a pure call
        assert len(reachable(s, {DATA})) == size
        assert len(reachable(s, {DATA, CONTROL})) == len(s.ops)


# -- notebooks: the same patterns, one statement per cell, in a capture kernel ----------------

# the script patterns, run one statement per cell (the global seed without its extra factor)
NOTEBOOKS = [
    *(dataclasses.replace(p, name=f"nb_{p.name}") for p in PATTERNS if p.name in ("fit_other_module", "rng_shuffle")),
    Pattern("nb_numpy_global_seed", """
        import numpy as np
        from pytest_nwtrials import tag
        SEED = 0
        np.random.seed(SEED)
        noise = np.random.normal(size=5)
        tag("noise", noise)
        """, "SEED = 0", "SEED = 1", "noise", STATE),
    *(dataclasses.replace(p, name=f"nb_{p.name}") for p in PATTERNS if p.name in ("fillna_inplace", "copyto", "ufunc_out")),
]


def cells(pattern: Pattern, changed: bool) -> list[str]:
    """One cell per line of the pattern (the first two lines, its imports, in one cell)."""
    lines = pattern.source(changed).strip().splitlines()
    return ["\n".join(lines[:2]), *lines[2:]]


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory: pytest.TempPathFactory) -> Gated:
    root, folder = new_project(tmp_path_factory, "mutation-nb", "experiments/*.ipynb")

    def write(changed: bool) -> None:
        for pattern in NOTEBOOKS:
            nb = new_notebook(cells=[new_code_cell(source) for source in cells(pattern, changed)])
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
            nbformat.write(nb, folder / f"{pattern.name}.ipynb")

    return gate(root, write)


@pytest.mark.parametrize("pattern", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_in_a_notebook_the_cell_before_a_mutation_or_a_draw_is_the_named_cause(notebooks, pattern):
    file = f"{pattern.name}.ipynb"
    cell = cells(pattern, False).index(pattern.old) + 1
    assert_explained(notebooks, pattern, file, f"{file}, cell {cell}, line 1", f"{file}#cell{cell}", 1)


# -- which calls are seeds or draws of a module's hidden generator (from stored values) --------

@pytest.mark.parametrize("name, func_value, receiver_value, expected", [
    ("seed", "<cyfunction seed>", "<module numpy.random>", ("numpy.random", True)),
    ("normal", "<bound method RandomState.normal of RandomState(MT19937)>", "<module numpy.random>",
     ("numpy.random", False)),
    ("normal", "<bound method RandomState.normal of RandomState(MT19937)>", None, ("numpy.random", False)),
    ("seed", "<cyfunction seed>", None, ("numpy.random", True)),
    ("seed", "<bound method Random.seed of <random.Random object>>", "<module random>", ("random", True)),
    ("random", "<built-in function Random.random>", "<module random>", ("random", False)),
    ("shuffle", "<bound method Random.shuffle of <random.Random object>>", None, ("random", False)),
    ("manual_seed", "<function manual_seed>", "<module torch>", ("torch", True)),
    ("randn", "<built-in function torch.randn>", "<module torch>", ("torch", False)),
    # a generator object of the script's own is an object (its calls are mutations of it)
    ("rand", "<bound method RandomState.rand of RandomState(MT19937)>", "RandomState(MT19937)", None),
    ("random", "<built-in function Random.random>", "<random.Random object>", None),
    # pure functions and constructors of the same modules read no hidden state
    ("mean", "<function mean>", "<module numpy>", None),
    ("default_rng", "<cyfunction default_rng>", "<module numpy.random>", None),
    ("Random", "<class 'random.Random'>", "<module random>", None),
    ("tensor", "<built-in function torch.tensor>", "<module torch>", None),
])
def test_hidden_generators_are_told_from_stored_values(name, func_value, receiver_value, expected):
    from pytest_nwtrials.provenance.effects import CallSite
    from pytest_nwtrials.provenance.state import hidden_state

    receiver = None if receiver_value is None else 2
    site = CallSite(call=3, moment=1.0, name=name, func=1, receiver=receiver, arguments=(), keywords=())
    values = {1: func_value, **({2: receiver_value} if receiver_value is not None else {})}
    assert hidden_state(site, values) == expected


def test_draws_chain_back_to_their_seed_and_generators_stay_apart():
    from pytest_nwtrials.provenance.effects import CallSite
    from pytest_nwtrials.provenance.state import state_edges

    numpy_draw = "<bound method RandomState.normal of RandomState(MT19937)>"
    calls = [(10, "<cyfunction seed>"), (11, numpy_draw), (12, "<built-in function Random.random>"),
             (13, numpy_draw), (14, "<cyfunction seed>"), (15, numpy_draw), (16, "<function mean>")]
    sites = [CallSite(call, float(call), "f", call + 100, None, (), ()) for call, _value in calls]
    values = {call + 100: value for call, value in calls}
    # a draw depends on the previous event of its generator; a seed on nothing; a first draw
    # with no seed before it on nothing
    assert state_edges(sites, values) == [(11, 10), (13, 11), (15, 14)]
