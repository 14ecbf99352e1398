"""A value that varies between identical runs is named so, with the unseeded construct behind it.

Each unseeded experiment is run UNCHANGED: a baseline is saved in one pytest session, the gate
runs in another (with another PYTHONHASHSEED, as two runs on a machine get). The report must say
"varies between identical runs", name the operation where it varies and the construct behind
it. The seeded version of each must match. An experiment whose code or module also changed
keeps the wording of a cause. All run in one project: one session to save, one to gate.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nbformat.v4 import new_code_cell, new_notebook

from pytest_nwtrials import load_trial, trial_diff
from pytest_nwtrials.capture.environment import FACT_NAMES, experiment_facts, unseeded_objects
from pytest_nwtrials.compare.explain import why_lines
from pytest_nwtrials.provenance.reader import Op, Slice
from pytest_nwtrials.compare.slices import diff_slices
from pytest_nwtrials.store.trial_store import TrialStore
from pytest_nwtrials.compare.variation import unseeded, varying_op

JITTER = '''
import numpy as np


class Jitter:
    """Estimator-like: fit draws its weights in place, predict uses them."""

    def __init__(self, scale=1.0, random_state=None):
        self.scale = scale
        self.random_state = random_state

    def fit(self, X):
        rng = np.random.default_rng(self.random_state)
        self.w_ = rng.normal(size=X.shape[1]) * self.scale
        return self

    def predict(self, X):
        return X @ self.w_
'''

ESTIMATOR = '''
import numpy as np
from jitter import Jitter
from pytest_nwtrials import tag

X = np.arange(12.0).reshape(4, 3)
model = Jitter(scale=0.5{seed})
model.fit(X)
tag("pred", model.predict(X).round(6).tolist())
'''
SKLEARN = '''
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from pytest_nwtrials import tag

X, y = make_classification(n_samples=120, random_state=0)
rf = RandomForestClassifier(n_estimators=5{seed})
rf.fit(X, y)
tag("proba", rf.predict_proba(X)[:, 1].round(3).tolist())
'''
GENERATOR = '''
import numpy as np
from pytest_nwtrials import tag

rng = np.random.default_rng({seed})
noise = rng.normal(size=3)
tag("noise", noise.round(6).tolist())
'''
GLOBAL = '''
import numpy as np
from pytest_nwtrials import tag

{seed}
a = np.random.rand(3)
tag("a", a.round(6).tolist())
'''
SET = '''
from pytest_nwtrials import tag

out = []
for w in {seed}:
    out.append(w)
tag("order", "-".join(out))
'''
WORDS = '{"alpha", "beta", "gamma", "delta", "eps"}'
CLOCK = '''
import time
from pytest_nwtrials import tag

start = {seed}
tag("tick", int(start * 1e9) % 1000003)
'''
# (name, source, unseeded, seeded)
CASES = [
    ("estimator", ESTIMATOR, "", ", random_state=0"),
    ("sklearn", SKLEARN, "", ", random_state=0"),
    ("generator", GENERATOR, "", "0"),
    ("global", GLOBAL, "", "np.random.seed(0)"),
    ("set", SET, WORDS, f"sorted({WORDS})"),
    ("clock", CLOCK, "time.perf_counter()", "time.gmtime(0).tm_year"),
]
# the place and code of the operation named, and the construct behind it
EXPECTED = {
    "estimator": ("v_estimator.py:7  model.fit(X)",
                  "behind it: model is a Jitter whose random_state is None: pass random_state=0 "
                  "(or any fixed number) to Jitter(...)"),
    "sklearn": ("v_sklearn.py:7  rf.fit(X, y)",
                "behind it: rf is a RandomForestClassifier whose random_state is None: pass random_state=0 "
                "(or any fixed number) to RandomForestClassifier(...)"),
    "generator": ("v_generator.py:5  `rng.normal(size=3)` returned a different value with the same arguments",
                  "behind it: `np.random.default_rng()` creates a generator without a seed: "
                  "create it with a seed: np.random.default_rng(0)"),
    "global": ("v_global.py:5  `np.random.rand(3)` returned a different value with the same arguments",
               "behind it: the numpy global generator is never seeded (`np.random.rand(3)` draws from it): "
               "call np.random.seed(0) first"),
    "set": ("v_set.py:4  `w` (name) has a different value with the same recorded inputs",
            "behind it: iteration over the set `{\"alpha\", \"beta\", \"gamma\", \"delta\", \"eps\"}` "
            "(its order follows PYTHONHASHSEED): iterate over sorted(...) or set PYTHONHASHSEED"),
    "clock": ("v_clock.py:4  `time.perf_counter()` returned a different value with the same arguments",
              "behind it: the clock (time.perf_counter()): keep clock readings out of tagged values, "
              "or pass the time in"),
}
HAS_SKLEARN = __import__("importlib.util").util.find_spec("sklearn") is not None
NOTEBOOK_CELLS = ["import numpy as np\nfrom pytest_nwtrials import tag", "rng = np.random.default_rng()",
                  "noise = rng.normal(size=3)", 'tag("noise", noise.round(6).tolist())']
HELPER = "OFFSET = {offset}\n"
# changed between the sessions: a literal in the script, a value in a module it imports; the
# generator stays unseeded, yet a change is a cause, not variation
LITERAL = '''
import numpy as np
from pytest_nwtrials import tag

rng = np.random.default_rng()
scale = {scale}
tag("noise", (rng.normal(size=3) * scale).round(6).tolist())
'''
MODULE = '''
import numpy as np
from helper import OFFSET
from pytest_nwtrials import tag

rng = np.random.default_rng()
tag("noise", (rng.normal(size=3) + OFFSET).round(6).tolist())
'''
# objects whose look-ups raise: the capture's facts must neither break the run nor name them
HOSTILE = '''
from pytest_nwtrials import tag


class Hostile:
    def __getattr__(self, name):
        raise RuntimeError(name)

    def get_params(self, deep=True):
        raise RuntimeError("no params")


class Slotted:
    __slots__ = ("random_state",)


trap, empty = Hostile(), Slotted()
tag("ok", 1)
'''
INI = """[pytest]
nw_experiments =
    experiments/v_*.py
    experiments/s_*.py
    experiments/c_*.py
    experiments/*.ipynb
"""


def run_pytest(root: Path, hash_seed: str | None, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHONHASHSEED"))}
    if hash_seed is not None:
        env["PYTHONHASHSEED"] = hash_seed  # the capture's fork server inherits it, per session
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rN", *args],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    return done.stdout + done.stderr


def sections(out: str) -> dict[str, str]:
    """The failure report of each item, by experiment file name."""
    parts = re.split(r"^_{3,} experiment (experiments/\S+) _{3,}$", out, flags=re.M)
    return {Path(name).name: text for name, text in zip(parts[1::2], parts[2::2])}


def write_project(root: Path, changed: bool) -> None:
    folder = root / "experiments"
    folder.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text(INI)
    (folder / "jitter.py").write_text(JITTER)
    for name, source, unseeded_code, seeded_code in CASES:
        if name == "sklearn" and not HAS_SKLEARN:
            continue
        (folder / f"v_{name}.py").write_text(source.format(seed=unseeded_code).lstrip())
        (folder / f"s_{name}.py").write_text(source.format(seed=seeded_code).lstrip())
    (folder / "c_literal.py").write_text(LITERAL.format(scale="2.0" if changed else "1.0").lstrip())
    (folder / "c_module.py").write_text(MODULE.lstrip())
    (folder / "s_hostile.py").write_text(HOSTILE.lstrip())
    (folder / "helper.py").write_text(HELPER.format(offset=1 if changed else 0))
    nb = new_notebook(cells=[new_code_cell(source) for source in NOTEBOOK_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "nb_generator.ipynb")


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, str]]:
    """The project, the gate's whole output and each failing item's report."""
    root = tmp_path_factory.mktemp("variation") / "project"
    write_project(root, changed=False)
    saved = run_pytest(root, "1", "--nw-save-baseline=base")
    assert re.search(r"^=+ \d+ passed in [\d.]+s( \([\d:]+\))? =+$", saved, re.M), saved
    write_project(root, changed=True)
    out = run_pytest(root, "2", "--nw-baseline=base")
    return root, out, sections(out)


def report(gated, experiment: str) -> str:
    found = gated[2].get(experiment)
    assert found is not None, f"{experiment} did not fail:\n{gated[1]}"
    return found.split("short test summary info")[0]


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_an_unseeded_experiment_run_unchanged_varies_at_the_named_operation(gated, name):
    if name == "sklearn" and not HAS_SKLEARN:
        pytest.skip("scikit-learn is not installed")
    text = report(gated, f"v_{name}.py")
    where, construct = EXPECTED[name]
    assert f"varies between identical runs: {where}" in text, text
    assert construct in text, text
    assert "root cause" not in text and "first divergence" not in text, text


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_the_seeded_version_matches(gated, name):
    if name == "sklearn" and not HAS_SKLEARN:
        pytest.skip("scikit-learn is not installed")
    assert re.search(rf"^trial\d+\s+experiments/s_{name}\.py\s+matched", gated[1], re.M), gated[1]


@pytest.fixture(scope="module")
def repeated(gated) -> tuple[str, dict[str, str]]:
    """Every case run three times in one session, with no hash seed pinned (each repeat gets its
    own), without a baseline: the whole output and each failing item's report."""
    root = gated[0]
    names = [f"experiments/{kind}_{name}.py" for name, *_ in CASES for kind in "vs"
             if name != "sklearn" or HAS_SKLEARN]
    out = run_pytest(root, None, "--nw-repeat=3", *names)
    return out, sections(out)


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_repeated_in_one_session_the_unseeded_version_varies_and_the_seeded_one_is_stable(repeated, name):
    if name == "sklearn" and not HAS_SKLEARN:
        pytest.skip("scikit-learn is not installed")
    out, failures = repeated
    assert re.search(rf"^  note: experiments/s_{name}\.py: stable across 3 runs$", out, re.M), out
    text = failures.get(f"v_{name}.py", "").split("short test summary info")[0]
    assert f"experiments/v_{name}.py is not reproducible: 3 runs gave different values" in text, out
    where, construct = EXPECTED[name]
    assert f"varies between identical runs: {where}" in text and construct in text, text


def test_an_estimator_fitted_in_place_names_fit_and_the_first_value_that_differs(gated):
    text = report(gated, "v_estimator.py")
    assert "the first value that differs is `model.predict(X)` (v_estimator.py:8), with the same arguments" in text, text


def test_in_a_notebook_the_cell_of_the_draw_is_named(gated):
    text = report(gated, "nb_generator.ipynb")
    assert "varies between identical runs: nb_generator.ipynb, cell 3, line 1  `rng.normal(size=3)`" in text, text
    assert "`np.random.default_rng()` creates a generator without a seed" in text, text


def test_a_changed_literal_is_a_cause_not_variation(gated):
    text = report(gated, "c_literal.py")
    assert "root cause: c_literal.py:5  scale = 1.0 -> 2.0" in text, text
    assert not_a_variation_verdict(text), text


def test_a_changed_module_is_a_cause_not_variation(gated):
    text = report(gated, "c_module.py")
    assert "module experiments/helper.py changed" in text, text
    assert not_a_variation_verdict(text), text


def not_a_variation_verdict(text: str) -> bool:
    """Whether a report names its change as a cause: no verdict of variation. Under auto capture
    the unseeded generator's run without capture and its rerun disagree, and the report may add
    that as evidence after the cause, never in place of it."""
    cause, _, evidence = text.partition("The run without capture")
    return ("varies between identical runs" not in text and "is not reproducible" not in text
            and "varies" not in cause and (not evidence or "not the cause of a change" in evidence))


def test_the_capture_records_the_code_digest_and_the_unseeded_objects(gated):
    trials = {t.experiment: t for t in TrialStore(gated[0] / ".nwtrials").trials()}
    unseeded_trial, seeded_trial = trials["experiments/v_estimator.py"], trials["experiments/s_estimator.py"]
    assert unseeded_trial.inputs["unseeded"] == [{"name": "model", "class": "jitter.Jitter", "param": "random_state"}]
    assert seeded_trial.inputs["unseeded"] == []
    source = (gated[0] / "experiments" / "v_estimator.py").read_bytes()
    assert unseeded_trial.inputs["source"] == __import__("hashlib").sha1(source).hexdigest()
    assert isinstance(trials["experiments/nb_generator.ipynb"].inputs["source"], str)
    assert trials["experiments/s_hostile.py"].inputs["unseeded"] == []
    assert re.search(r"^trial\d+\s+experiments/s_hostile\.py\s+matched", gated[1], re.M), gated[1]


def test_two_repeats_get_the_same_headline_from_trial_diff(gated):
    store = gated[0] / ".nwtrials"
    runs = sorted((t for t in TrialStore(store).trials() if t.experiment == "experiments/v_generator.py"),
                  key=lambda t: t.number)
    diff = trial_diff(load_trial(runs[0].name, store=store), load_trial(runs[-1].name, store=store), store=store)
    assert any("varies between identical runs" in line for line in diff.why(identical=True))
    assert not any("varies" in line for line in diff.why(identical=False))


# -- the capture's facts, in this process: hostile objects never break it -----------------------


class Hostile:
    def __getattr__(self, name):
        raise RuntimeError(f"no {name}")


class HostileParams:
    random_state = property(lambda self: 1 / 0)

    def get_params(self, deep=True):
        raise RuntimeError("no params")


class ParamsOnly:
    __slots__ = ()

    def get_params(self, deep=True):
        return {"random_state": None, "n": 3}


class Seeded:
    def __init__(self):
        self.random_state = 7


class Unseeded:
    def __init__(self):
        self.random_state = None


def test_unseeded_objects_are_read_without_running_hostile_code():
    namespace = {"h": Hostile(), "hp": HostileParams(), "p": ParamsOnly(), "s": Seeded(), "u": Unseeded(),
                 "cls": Unseeded, "mod": types, "f": lambda: None, "_hidden": Unseeded()}
    found = unseeded_objects(namespace)
    assert [(f["name"], f["class"].rpartition(".")[2]) for f in found] == [("p", "ParamsOnly"), ("u", "Unseeded")]
    assert experiment_facts(namespace, b"x = 1")["source"] == __import__("hashlib").sha1(b"x = 1").hexdigest()


def test_unseeded_objects_look_at_a_bounded_number_of_names():
    namespace = {f"v{n}": Unseeded() for n in range(FACT_NAMES * 3)}
    assert len(unseeded_objects(namespace)) <= FACT_NAMES


def test_a_namespace_that_cannot_be_listed_records_nothing():
    class Broken(dict):
        def items(self):
            raise RuntimeError("no")

    assert experiment_facts(Broken(), None) == {"unseeded": []}


# -- pure: arbitrary slices never raise -------------------------------------------------------

CODES = ["rng", "rng.normal(size=3)", "np.random.default_rng()", "np.random.rand", "np.random.seed", "w",
         "time.time()", "rf.fit(X, y)", "rf", "list(s)", "{1, 2}", "'-'.join(out)", ""]
VALUES = ["None", "<cyfunction default_rng>", "<cyfunction seed>", "{'a', 'b'}", "'a'", "1.5",
          "<bound method RandomState.rand of RandomState(MT19937)>", "<built-in function time.time>",
          "<class 'random.Random'>", "Generator(PCG64)", ""]
KINDS = ["name", "attribute", "call", "literal", "set", "list"]
EDGE_KINDS = ["data", "mutation", "state", "control", "other"]

ops = st.builds(Op, st.sampled_from(KINDS), st.sampled_from(CODES), st.just("x.py"),
                st.integers(1, 5), st.sampled_from(VALUES))


@st.composite
def slices(draw) -> Slice:
    found = draw(st.lists(ops, max_size=12))
    edges = tuple(tuple(draw(st.lists(st.tuples(st.integers(-3, 15), st.sampled_from(EDGE_KINDS)), max_size=4)))
                  for _ in found)
    return Slice("t", tuple(found), 1, 0, draw(st.one_of(st.none(), st.just(edges))))


facts = st.one_of(st.none(), st.fixed_dictionaries({"unseeded": st.one_of(
    st.lists(st.fixed_dictionaries({"name": st.sampled_from(["rf", "rng", "", "w"]),
                                    "class": st.sampled_from(["a.B", "", "C"]),
                                    "param": st.sampled_from(["random_state", ""])}), max_size=3),
    st.integers(), st.text(max_size=3), st.lists(st.integers(), max_size=2))}))


@settings(max_examples=300, deadline=None)
@given(slices(), st.integers(-2, 14), facts, st.lists(ops, max_size=6))
def test_unseeded_never_raises(s, index, fact, operations):
    found = unseeded(s, index, fact, operations)
    assert all(c.what and c.seed for c in found)
    assert isinstance(varying_op(s, index, fact), int)


@settings(max_examples=150, deadline=None)
@given(slices(), slices(), facts, st.sampled_from([True, None, False]))
def test_why_lines_between_identical_runs_never_raise(old, new, fact, identical):
    why_lines([], [diff_slices(old, new)], identical=identical, facts=fact)


def test_without_code_digests_a_changed_literal_keeps_the_wording_of_a_cause():
    """Records without a code digest: a root that is a change of the code means the runs were
    not identical, so an unseeded draw beside it is not said to vary."""
    def trial(seed_literal: str, draw: str) -> Slice:
        return Slice("t", (Op("literal", seed_literal, "x.py", 1, seed_literal), Op("name", "n", "x.py", 1, seed_literal),
                           Op("call", "rng.normal()", "x.py", 2, draw),
                           Op("add", "n + rng.normal()", "x.py", 3, draw + seed_literal)),
                     1, 0, ((), ((0, "data"),), (), ((1, "data"), (2, "data"))))

    diff = diff_slices(trial("1", "0.5"), trial("2", "0.7"))
    text = "\n".join(why_lines([], [diff]))
    assert "root cause" in text and "varies" not in text, text
    same_code = "\n".join(why_lines([], [diff_slices(trial("1", "0.5"), trial("1", "0.7"))]))
    assert "varies between identical runs: x.py:2  `rng.normal()`" in same_code, same_code
    assert "nothing the capture reads shows what varies" in same_code, same_code


def test_an_unseeded_object_whose_calls_gave_the_same_values_is_not_named():
    # pca = PCA(); X = pca.fit_transform(A); rf = Forest(); rf.fit(X, y); rf.predict(X): the
    # forest's fit is where it varies; PCA's output was the same, so it passes nothing on
    ops = (Op("attribute", "pca.fit_transform", "nb.py", 2, "<bound method PCA.fit_transform>"),
           Op("call", "pca.fit_transform(A)", "nb.py", 2, "ndarray(digest=1)"),
           Op("name", "X", "nb.py", 2, "ndarray(digest=1)"),
           Op("attribute", "rf.fit", "nb.py", 4, "<bound method Forest.fit>"),
           Op("call", "rf.fit(X, y)", "nb.py", 4, "Forest()"),
           Op("attribute", "rf.predict", "nb.py", 5, "<bound method Forest.predict>"),
           Op("call", "rf.predict(X)", "nb.py", 5, "ndarray(digest=2)"))
    edges = ((), ((0, "data"),), ((1, "data"),), (), ((3, "data"), (2, "data")), ((4, "mutation"),),
             ((5, "data"), (2, "data")))
    facts = {"unseeded": [{"name": "pca", "class": "sklearn.decomposition.PCA", "param": "random_state"},
                          {"name": "rf", "class": "forest.Forest", "param": "random_state"}]}
    s = Slice("proba", ops, 1, 0, edges)
    assert [c.what for c in unseeded(s, 6, facts)] == ["rf is a Forest whose random_state is None"]
    assert varying_op(s, 6, facts) == 4


FOREST = '''
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from pytest_nwtrials import tag

X, y = make_classification(n_samples=120, n_features=5, random_state=0)
model = RandomForestClassifier(n_estimators=5)
model.fit(X, y)
tag("model", model)
'''


@pytest.mark.skipif(not HAS_SKLEARN, reason="scikit-learn is not installed")
@pytest.mark.parametrize("edited", [False, True], ids=["identical runs", "code edited"])
def test_a_value_whose_provenance_shows_no_difference_says_its_provenance_cannot_tell(project, edited):
    """An unseeded forest tagged whole: its repr, and every recorded step, are the same in both
    runs; only its trees differ. The report says so instead of staying silent."""
    project.ini()
    project.experiment("forest.py", FOREST)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    if edited:  # another code digest: the runs are no longer identical
        project.experiment("forest.py", FOREST + "# edited\n")
    result = project.run("--nw-baseline=base", "--nw-capture=fine")
    result.assert_outcomes(failed=1)
    text = result.stdout.str().split("short test summary info")[0]
    assert "Why it changed:\n  in the provenance of model: no recorded step differs between the two runs" in text, text
    if edited:
        assert "its provenance cannot tell why it changed" in text and "varies" not in text, text
    else:
        assert ("    varies between identical runs: the same code, inputs and recorded values at every step, "
                "so what changed it is state the capture does not see") in text, text
        assert ("    behind it: model is a RandomForestClassifier whose random_state is None: pass random_state=0 "
                "(or any fixed number) to RandomForestClassifier(...)") in text, text


TAGGED_AS_BUILT = '''
from sklearn.datasets import make_classification
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from pytest_nwtrials import tag  # now_variable is a builtin, as under noWorkflow

X, y = make_classification(n_samples=120, n_features=5, random_state=0)
pca = PCA(n_components=3)
X = pca.fit_transform(X)
rf = now_variable("model", RandomForestClassifier(n_estimators=5))
rf.fit(X, y)
tag("score", float(rf.score(X[:40], y[:40]) + rf.predict_proba(X[:1])[0, 0]))
'''


@pytest.mark.skipif(not HAS_SKLEARN, reason="scikit-learn is not installed")
def test_a_model_tagged_as_it_was_built_names_its_unseeded_object_and_not_an_unchanged_one(project):
    """As the noWorkflow tutorial tags its model: the slice of `model` is the constructor call
    alone (fit comes after, the value is read at the end of the run); the unseeded forest is
    named behind it, the unseeded PCA (whose output stays the same) nowhere."""
    project.ini()
    project.experiment("built.py", TAGGED_AS_BUILT)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    result = project.run("--nw-baseline=base", "--nw-capture=fine")
    result.assert_outcomes(failed=1)
    text = result.stdout.str().split("short test summary info")[0]
    behind = ("behind it: rf is a RandomForestClassifier whose random_state is None: pass random_state=0 "
              "(or any fixed number) to RandomForestClassifier(...)")
    model = text.split("in the provenance of model: no recorded step differs between the two runs")[1]
    assert behind in model.split("To accept")[0], text
    assert "pca is a PCA" not in text, text
