"""Python constructs that noWorkflow's rewriter or collector broke, run under capture in scripts
and notebooks with the values plain Python gives (see `capture.repair_syntax`).

Each construct is one script and one notebook of the same cells; all of them run as items of
one pytest session, and each tag is compared with what ``python`` gives for the same code.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

nbformat = pytest.importorskip("nbformat", reason="notebook capture needs nbformat")
from nbformat.v4 import new_code_cell, new_notebook  # noqa: E402

# each construct: its cells (a script is the cells one after the other); every value it tags
# under its own name
CONSTRUCTS = {
    "zero_argument_super": ["""
        import dataclasses
        from pytest_nwtrials import tag
        class Base:
            made = []
            def __init__(self, x):
                self.x = x
            def __init_subclass__(cls, **kwargs):
                super().__init_subclass__(**kwargs)
                Base.made.append(cls.__name__)
            @classmethod
            def create(cls, x):
                return cls(x)
        class Left(Base):
            def __init__(self, x):
                super().__init__(x + 1)
                self.path = ["L"]
        class Right(Base):
            def __init__(self, x):
                super().__init__(x)
                self.path = getattr(self, "path", []) + ["R"]
        """, """
        class Both(Left, Right):
            def __init__(self, x):
                super().__init__(x)
                self.path.append("B")
            @classmethod
            def create(cls, x):
                return super().create(x * 10)
            def who(self):
                return __class__.__name__
        class Outer:
            class Inner(Base):
                def __init__(self):
                    super().__init__(7)
        @dataclasses.dataclass
        class Point(Base):
            y: int = 0
            def __post_init__(self):
                super().__init__(self.y * 2)
        b = Both.create(1)
        tag("zero_argument_super", [b.x, b.path, b.who(), Outer.Inner().x, Point(3).x, Base.made,
                                    type(b).__mro__[1].__name__])
        """],
    "decorators": ["""
        import functools
        from pytest_nwtrials import tag
        registry = []
        def register(f):
            registry.append(f.__name__)
            return f
        def times_ten(f):
            @functools.wraps(f)
            def inner(*args, **kwargs):
                return f(*args, **kwargs) * 10
            return inner
        class C:
            def __init__(self, v):
                self._v = v
            @property
            def v(self):
                return self._v + 1
            @v.setter
            def v(self, value):
                self._v = value
            @staticmethod
            def twice(x):
                return x * 2
            @classmethod
            def named(cls, x):
                return cls.__name__ + str(x)
            @functools.cached_property
            def cached(self):
                return self._v * 3
        class D(C):
            @property
            def v(self):
                return super().v * 100
        """, """
        @register
        @times_ten
        def plus_one(x):
            return x + 1
        @functools.lru_cache(maxsize=None)
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
        o = C(4)
        o.v = 5
        tag("decorators", [o.v, C.twice(3), C.named(2), o.cached, D(1).v, plus_one(1), plus_one.__name__,
                           fib(20), registry, sorted(k for k in vars(C) if not k.startswith("__"))])
        """],
    "lambdas": ["""
        from pytest_nwtrials import tag
        fs = [lambda x: x + 1, lambda x: 2 * x]
        table = {"a": lambda: 1, "b": lambda y=3: y}
        pair = (lambda: 5, lambda *a: len(a))
        walrus = [y := 5, y ** 2, {"z": (z := y + 1)}, z]
        """, """
        adders = {k: (lambda v, k=k: v + k) for k in range(3)}
        ordered = sorted([3, 1, 2], key=lambda v: -v)
        tag("lambdas", [[f(3) for f in fs], table["a"](), table["b"](), pair[0](), pair[1](1, 2),
                        adders[2](10), ordered, list(map(lambda v: v * v, [1, 2, 3])), walrus])
        """],
    "generators": ["""
        from pytest_nwtrials import tag
        def squares(n):
            for i in range(n):
                yield i * i
        def make_genexp(n):
            return (x + 1 for x in range(n))
        g = squares(5)
        ge = (x * 3 for x in range(4))
        from_function = make_genexp(3)
        """, """
        first = next(g)
        rest = list(g)
        def consume(it):
            return sum(it)
        tag("generators", [first, rest, consume(ge), consume(from_function), consume(x * 2 for x in range(3)),
                           max((v for v in [4, 9, 2]), key=lambda v: -v)])
        """],
    "recursion": ["""
        from pytest_nwtrials import tag
        def fact(n):
            return 1 if n <= 1 else n * fact(n - 1)
        def depth(n):
            if n == 0:
                return 0
            return depth(n - 1) + 1
        def is_even(n):
            return True if n == 0 else is_odd(n - 1)
        def is_odd(n):
            return False if n == 0 else is_even(n - 1)
        class Walker:
            def walk(self, n):
                return 0 if n == 0 else 1 + self.walk(n - 1)
        """, """
        tag("recursion", [fact(500) % 1000003, depth(500), is_even(401), Walker().walk(300),
                          sum(map(depth, [200, 300]))])
        """],
    "namespace": ["""
        from pytest_nwtrials import tag
        WATCHED = {"x", "y", "z", "f", "WATCHED"}
        x = 3
        g = globals()
        globals().update(y=4)
        globals()["z"] = y + g["x"]
        """, """
        def f():
            a = 1
            return sorted(locals())
        class K:
            inside = sorted(k for k in locals() if not k.startswith("__"))
        tag("namespace", ["x" in globals(), globals()["x"], z, g is globals(), locals() is globals(),
                          sorted(k for k in locals() if k in WATCHED), sorted(k for k in dir() if k in WATCHED),
                          sorted(k for k in vars() if k in WATCHED), f(), K.inside, eval("x + y"),
                          [k for k in dir() if k.startswith("__now")]])
        """],
    "augmented_targets": ["""
        import numpy as np
        from pytest_nwtrials import tag
        X = np.zeros((2, 3))
        for i in range(3):
            X[:, i] += i
        d = {"a": 1}
        d["a"] += 1
        """, """
        class O:
            def __init__(self):
                self.n: int = 0
        o = O()
        o.n += 1
        o.n *= 5
        rows = [[1], [2]]
        rows[len(rows) - 1][0] -= 7
        tag("augmented_targets", [X.tolist(), d, o.n, rows])
        """],
    # code that reads a function's signature: scikit-learn's get_params, clone
    "signatures": ["""
        import inspect
        from sklearn.base import BaseEstimator, TransformerMixin, clone
        from pytest_nwtrials import tag
        class Scale(TransformerMixin, BaseEstimator):
            def __init__(self, factor=2.0, *, shift=0):
                self.factor = factor
                self.shift = shift
            def fit(self, X, y=None):
                return self
            def transform(self, X):
                return [[v * self.factor + self.shift for v in row] for row in X]
        def f(a, b=1, *rest, c, **more):
            return a
        """, """
        est = clone(Scale(factor=3.0))
        tag("signatures", [str(inspect.signature(f)), str(inspect.signature(Scale.__init__)),
                           est.get_params(), est.fit_transform([[1, 2]])])
        """],
    # a builtin calling back into the experiment with other arguments than the call it ran in
    "callbacks": ["""
        from pytest_nwtrials import tag
        class Lazy:
            def __init__(self):
                self.base = 3
            def __getattr__(self, name):
                if name.endswith("_raw"):
                    raise AttributeError(name)
                return getattr(self, name + "_raw", self.base * 2)
        lazy = Lazy()
        """, """
        tag("callbacks", [lazy.width, getattr(lazy, "height"), hasattr(lazy, "x_raw"),
                          sorted([3, 1, 2], key=lambda v: -v), max(["ab", "c"], key=len)])
        """],
}
ENDLESS = """
def down(n):
    return down(n + 1)
down(0)
"""
# runs a script as `python script.py` would, with `tag` writing what it was given to stdout
PLAIN = """
import json, runpy, sys
import pytest_nwtrials
tags = {}
def tag(name, value, **tolerance):
    tags[name] = value
    return value
pytest_nwtrials.tag = tag
runpy.run_path(sys.argv[1], run_name="__main__")
print(json.dumps(tags))
"""


def write_constructs(project, names, endless: bool = False) -> None:
    """Each construct of `names` as `NAME.py` and `NAME_nb.ipynb` (plus the endless recursion)."""
    for name in names:
        cells = [textwrap.dedent(cell).strip() + "\n" for cell in CONSTRUCTS[name]]
        project.experiment(f"{name}.py", "\n".join(cells))
        nbformat.write(new_notebook(cells=[new_code_cell(cell) for cell in cells]),
                       project.root / "experiments" / f"{name}_nb.ipynb")
    if endless:
        project.experiment("endless.py", ENDLESS)
        nbformat.write(new_notebook(cells=[new_code_cell("x = 1"), new_code_cell(ENDLESS.strip())]),
                       project.root / "experiments" / "endless_nb.ipynb")
    project.ini(experiments="experiments/*.py\n    experiments/*.ipynb")


def plain_values(project, name: str) -> dict:
    """The tags of construct `name`'s script under plain Python."""
    script = project.root / "experiments" / f"{name}.py"
    done = subprocess.run([sys.executable, "-c", PLAIN, str(script)], cwd=script.parent, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_same_as_plain(project, names) -> None:
    trials = {t["experiment"]: t for t in project.trials()}
    for name in names:
        expected = plain_values(project, name)
        assert expected, f"{name}: plain Python tagged nothing"
        for experiment in (f"experiments/{name}.py", f"experiments/{name}_nb.ipynb"):
            trial = trials[experiment]
            assert trial["status"] == "finished", (experiment, trial.get("error"))
            got = {tag: record["value"] for tag, record in trial["tags"].items()}
            assert got == expected, experiment


def failure_section(output: str, item: str) -> list[str]:
    """The lines of `item`'s failure report, up to the next report or the summary."""
    lines = output.split("short test summary info")[0].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("_") and f"/{item} " in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("_", "="))), len(lines))
    return lines[start:end]


def test_constructs_under_fine_capture_give_plain_python_values(project):
    write_constructs(project, CONSTRUCTS, endless=True)
    result = project.run()
    result.assert_outcomes(passed=2 * len(CONSTRUCTS), failed=2)
    assert_same_as_plain(project, CONSTRUCTS)
    # an endless recursion still fails, with Python's short message naming the line
    output = result.stdout.str()
    for item, where in (("endless.py", 'endless.py", line 3, in down'),
                        ("endless_nb.ipynb", 'endless_nb.ipynb", cell 2, line 2, in down')):
        section = failure_section(output, item)
        text = "\n".join(section)
        assert len(section) < 40, text
        assert where in text and "RecursionError: maximum recursion depth exceeded" in text, text
        assert "more times]" in text and "During handling" not in text, text


def test_constructs_under_coarse_capture_give_plain_python_values(project):
    names = ["augmented_targets", "decorators", "zero_argument_super", "lambdas", "callbacks", "signatures"]
    write_constructs(project, names)
    project.run("--nw-capture=coarse").assert_outcomes(passed=2 * len(names))
    assert_same_as_plain(project, names)


MODEL = """
from pytest_nwtrials import tag
SCALE = {scale}
class Base:
    def scaled(self, v):
        return v * SCALE
class Model(Base):
    def scaled(self, v):
        return super().scaled(v) + 1
    @property
    def weight(self):
        return self.scaled(3.0)
tag("weight", Model().weight)
"""


def test_a_value_through_super_and_a_property_keeps_its_provenance(project):
    project.ini(experiments="experiments/model.py")
    result = project.gate("model.py", MODEL.format(scale=2.0), MODEL.format(scale=3.0))
    result.stdout.fnmatch_lines([
        "*weight: changed: 7.0 -> 10.0*",
        "Why it changed:",
        "*root cause: model.py:3  SCALE = 2.0 -> 3.0",
    ])
