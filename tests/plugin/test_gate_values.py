"""The gate with arrays, frames and nested values: tolerances, and what a failure reports."""
from __future__ import annotations

import json

import pytest

EXPERIMENT = """
import numpy as np
import pandas as pd
from pytest_nwtrials import tag

NOISE = {noise}
rng = np.random.default_rng(0)
weights = rng.normal(size=(20, 3)){weights_edit}
weights = weights + NOISE * np.abs(weights)
frame = pd.DataFrame({{"score": np.linspace(0, 1, 50), "label": np.arange(50) % 2, "name": [f"r{{i}}" for i in range(50)]}}){frame_edit}
nested = {{"metrics": {{"auc": 0.9 + NOISE, "n": 50}}, "layers": [np.ones(3), {{"bias": 0.5}}]}}{nested_edit}
tag("weights", weights)
tag("frame", frame)
tag("nested", nested)
"""


def experiment(noise=0.0, weights_edit="", frame_edit="", nested_edit=""):
    return EXPERIMENT.format(noise=noise, weights_edit=weights_edit, frame_edit=frame_edit,
                             nested_edit=nested_edit)


@pytest.fixture
def saved(project):
    project.experiment("model.py", experiment())
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    return project


def test_complex_values_are_saved_as_files_next_to_the_entry(saved):
    entry = saved.baseline_entry("base", "experiments/model.py")
    assert entry["tags"]["weights"]["value"]["__nw__"] == "ndarray"
    assert entry["tags"]["frame"]["value"]["__nw__"] == "frame"
    values = saved.root / "nw-baselines" / "base" / "values"
    assert {p.suffix for p in values.iterdir()} >= {".npy", ".parquet"}
    assert "pickle" not in json.dumps(entry["tags"])  # inputs may name a library such as cloudpickle
    saved.run("--nw-baseline=base").assert_outcomes(passed=1)


def test_noise_within_tolerance_passes_and_beyond_fails(saved):
    saved.experiment("model.py", experiment(noise=1e-9))
    saved.run("--nw-baseline=base").assert_outcomes(passed=1)
    saved.experiment("model.py", experiment(noise=1e-4))
    result = saved.run("--nw-baseline=base")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "weights: changed" in out
    assert "Number of differences: 60 / 60 (100" in out
    assert "nested['metrics']['auc']: changed" in out
    # the same change is accepted with a wider tolerance, from the command line or the ini file
    saved.run("--nw-baseline=base", "--nw-rtol=1e-3", "--nw-atol=1e-3").assert_outcomes(passed=1)
    saved.ini("nw_tolerances =\n    weights: rtol=1e-3\n    nested*: atol=1e-3\n")
    saved.run("--nw-baseline=base").assert_outcomes(passed=1)


def test_tag_tolerance_in_the_experiment_wins(saved):
    saved.experiment("model.py", experiment(noise=1e-4).replace('tag("weights", weights)',
                                                                'tag("weights", weights, rtol=1e-3)')
                     .replace('tag("nested", nested)', 'tag("nested", nested, atol=1e-3)'))
    saved.run("--nw-baseline=base").assert_outcomes(passed=1)


def test_shape_dtype_column_and_key_changes_are_reported(saved):
    saved.experiment("model.py", experiment(
        weights_edit=".astype(np.float32)",
        frame_edit='.rename(columns={"label": "target"})',
        nested_edit='\nnested["metrics"]["f1"] = 0.5\ndel nested["metrics"]["n"]\nnested["layers"].append(1)',
    ))
    result = saved.run("--nw-baseline=base")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "weights: dtype changed" in out and "float64" in out and "float32" in out
    assert "frame: columns changed" in out and "target" in out
    assert "nested['metrics']['f1']" in out and "nested['metrics']['n']" in out
    assert "nested['layers'][2]" in out
    saved.experiment("model.py", experiment(weights_edit="[:10]"))
    shape = saved.run("--nw-baseline=base")
    shape.assert_outcomes(failed=1)
    assert "weights: shape changed" in shape.stdout.str()


def test_ignored_tags_are_not_compared(saved):
    saved.experiment("model.py", experiment(noise=1e-4))
    saved.ini("nw_ignore = weights nested\n")
    saved.run("--nw-baseline=base").assert_outcomes(passed=1)


def test_bad_tolerance_settings_are_usage_errors(project):
    project.experiment("model.py", "x = 1\n")
    bad = project.run("--nw-rtol=-1")
    assert bad.ret == 4
    bad.stderr.fnmatch_lines(["*--nw-rtol='-1' must be a finite number >= 0*"])
    project.ini("nw_tolerances =\n    weights rtol 1e-3\n")
    result = project.run()
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*ini nw_tolerances:*weights rtol 1e-3*"])
    assert "Traceback" not in result.stderr.str()


MODEL_LIB = """
class Model:
    def __init__(self, coef):
        self.coef = coef
"""

OPAQUE = """
from modellib import Model
from pytest_nwtrials import tag

model = tag("model", Model({coef}))
stream = tag("stream", (i for i in range(3)))
"""


def test_opaque_objects_keep_a_summary_and_load_back_only_on_request(project):
    import sys

    project.experiment("modellib.py", MODEL_LIB)
    project.ini(experiments="experiments/fit.py")
    project.experiment("fit.py", OPAQUE.format(coef=[1.0, 2.0]))
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    entry = project.baseline_entry("base", "experiments/fit.py")
    model = entry["tags"]["model"]["value"]
    assert model["__nw__"] == "object" and model["type"] == "modellib.Model" and model["digest"]
    assert not list((project.root / "nw-baselines").rglob("*.pickle"))
    assert list((project.root / ".nwtrials" / "values").glob("*.pickle"))
    assert "generator" in entry["tags"]["stream"]["value"]["type"]

    project.run("--nw-baseline=base").assert_outcomes(passed=1)
    project.experiment("fit.py", OPAQUE.format(coef=[1.0, 2.5]))
    changed = project.run("--nw-baseline=base")
    changed.assert_outcomes(failed=1)
    changed.stdout.fnmatch_lines(["*model: changed*"])

    project.pytester.makepyfile(load="""
        import sys
        sys.path.insert(0, "experiments")
        from pytest_nwtrials import load_trial
        print(type(load_trial("trial1").values["model"]).__name__)
        print(load_trial("trial1", allow_pickle=True).values["model"].coef)
        print(load_trial("trial3", allow_pickle=True).values["model"].coef)
    """)
    loaded = project.pytester.run(sys.executable, "load.py")
    assert loaded.ret == 0, loaded.stderr.str()
    assert loaded.stdout.lines[:3] == ["OpaqueValue", "[1.0, 2.0]", "[1.0, 2.5]"]


PERIODS = """
import pandas as pd
from pytest_nwtrials import tag

tag("months", pd.Series(pd.period_range("2020-01", periods=3, freq="M")))
tag("bins", pd.Series(pd.interval_range(0, 3)))
tag("frame", pd.DataFrame({"day": pd.period_range("2020-01-01", periods=2, freq="D"),
                           "range": pd.interval_range(0.0, 2.0, closed="left")}))
tag("by_year", pd.Series([1.5, 2.5], index=pd.period_range("2020", periods=2, freq="Y")))
tag("by_bin", pd.Series([1, 2], index=pd.interval_range(0, 2)))
"""


def test_period_and_interval_values_are_compared_in_later_runs(project):
    project.experiment("periods.py", PERIODS)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    entry = project.baseline_entry("base", "experiments/periods.py")
    assert {tag["value"]["__nw__"] for tag in entry["tags"].values()} <= {"series", "frame"}
    project.run("--nw-baseline=base").assert_outcomes(passed=1)
    project.run("--nw-baseline=latest").assert_outcomes(passed=1)
    project.experiment("periods.py", PERIODS.replace('periods=3, freq="M"', 'periods=3, freq="Q"'))
    changed = project.run("--nw-baseline=base")
    changed.assert_outcomes(failed=1)
    changed.stdout.fnmatch_lines(["*months: *changed*"])
    assert "cannot be compared" not in changed.stdout.str()
