"""spread.measure and the stability verdict's pure parts, on values (no capture)."""
from __future__ import annotations

import json
import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_nwtrials.compare.engine import Rules, Tolerance, diff_tags
from pytest_nwtrials.compare.spread import PathSpread, Stability, StabilityVerdict, measure
from pytest_nwtrials.compare.stability import judge, needed_tolerances, note, number_text, round_up

SETTINGS = settings(max_examples=80, deadline=None)

finite = st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-1e300, max_value=1e300)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5),
                    st.complex_numbers(allow_nan=True))
arrays = hnp.arrays(st.sampled_from([np.float64, np.float32, np.int64, np.bool_, np.complex128]),
                    hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=4))
values = st.recursive(st.one_of(scalars, arrays),
                      lambda inner: st.one_of(st.lists(inner, max_size=3), st.tuples(inner, inner),
                                              st.dictionaries(st.text(max_size=3), inner, max_size=3)),
                      max_leaves=8)


def json_safe(spreads: dict[str, PathSpread]) -> None:
    """What a trial record stores: strict JSON, no nan or inf."""
    json.dumps(Stability(2, ("a", "b"), spreads).to_json(), allow_nan=False)


@SETTINGS
@given(st.dictionaries(st.text(max_size=4), values, max_size=3), st.integers(2, 4))
def test_identical_runs_have_no_spread(run, count):
    assert measure([run] * count) == {}


@SETTINGS
@given(st.lists(finite, min_size=2, max_size=5))
def test_the_spread_of_a_scalar_holds_every_run(numbers):
    found = measure([{"x": n} for n in numbers])
    if len(set(numbers)) == 1:
        assert found == {}
        return
    spread = found["x"]
    assert all(spread.low <= n <= spread.high for n in numbers)
    assert spread.low == min(numbers) and spread.high == max(numbers)
    assert spread.deviation == max(abs(n - numbers[0]) for n in numbers)
    relative = spread.deviation / abs(numbers[0]) if numbers[0] != 0 else math.inf
    assert spread.relative == (pytest.approx(relative) if math.isfinite(relative) else None)


@SETTINGS
@given(st.lists(st.dictionaries(st.sampled_from("abc"), values, max_size=3), min_size=2, max_size=4))
def test_measure_never_raises_and_stores_as_strict_json(runs):
    found = measure(runs)
    json_safe(found)
    for spread in found.values():
        assert spread.numeric or spread.detail


@SETTINGS
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=5), elements=finite),
       st.lists(hnp.arrays(np.float64, 1, elements=finite), min_size=1, max_size=3))
def test_an_array_deviates_elementwise_from_the_first_run(first, shifts):
    runs = [first] + [first + shift[0] for shift in shifts]
    found = measure([{"a": run} for run in runs])
    with np.errstate(all="ignore"):
        gaps = [np.abs(run - first) for run in runs]
    if not all(np.isfinite(g).all() for g in gaps):
        return  # beyond float range: a spread without numbers
    deviation = max(float(g.max()) for g in gaps)
    if deviation == 0:
        assert found == {}
        return
    spread = found["a"]
    assert spread.deviation == deviation
    assert spread.low == min(float(run.min()) for run in runs)
    assert spread.high == max(float(run.max()) for run in runs)


def test_nan_and_inf_in_the_same_places_are_no_difference():
    a = np.array([1.0, np.nan, np.inf, 4.0])
    assert measure([{"a": a}, {"a": a.copy()}]) == {}
    found = measure([{"a": a}, {"a": np.array([1.0, np.nan, np.inf, 5.0])}])
    assert found["a"] == PathSpread("a", 1.0, 5.0, 1.0, 0.25)
    moved = measure([{"a": a}, {"a": np.array([1.0, 2.0, np.inf, 4.0])}])["a"]
    assert not moved.numeric and "nan or inf" in moved.detail


def test_empty_and_mismatched_values():
    assert measure([{"a": np.array([])}, {"a": np.array([])}]) == {}
    assert measure([{"a": []}, {"a": []}, {"a": {}}])["a"].detail == "type list -> dict"
    assert measure([{"a": np.zeros(2)}, {"a": np.zeros(3)}])["a"].detail == "shape (2,) -> (3,)"
    assert measure([{"a": np.zeros(2)}, {"a": np.zeros(2, np.float32)}])["a"].detail == "dtype float64 -> float32"
    assert measure([{"a": 1}, {}])["a"].detail == "made by 1 of 2 runs"
    assert measure([{"a": 2 ** 80}, {"a": 2 ** 80 + 1}])["a"].detail == f"{2 ** 80} -> {2 ** 80 + 1}"
    assert measure([{"a": 2 ** 60}, {"a": 2 ** 60 + 1}])["a"].numeric  # told apart though float64 cannot


def test_nested_paths_are_spelled_as_the_diff_engine_spells_them():
    runs = [{"m": {"auc": 0.9, "layers": [1.0, 2.0]}, "f": pd.DataFrame({"price": [1.0, 2.0], "name": ["a", "b"]})},
            {"m": {"auc": 0.8, "layers": [1.0, 2.5]}, "f": pd.DataFrame({"price": [1.0, 2.2], "name": ["a", "c"]})}]
    found = measure(runs)
    changes = {change.path for change in diff_tags(runs[0], runs[1])}
    assert set(found) == {"m['auc']", "m['layers'][1]", "f['price']", "f['name']"} == changes
    assert found["f['price']"].deviation == pytest.approx(0.2) and found["f['price']"].high == 2.2
    assert not found["f['name']"].numeric


def test_a_model_digest_that_differs_has_no_numbers():
    from pytest_nwtrials.values.codec import OpaqueValue

    found = measure([{"m": OpaqueValue("sklearn.Forest", 10, "aa" * 32)},
                     {"m": OpaqueValue("sklearn.Forest", 10, "bb" * 32)}])
    assert not found["m"].numeric and "digest aaaaaaaaaaaa" in found["m"].detail


def test_a_big_array_is_measured_in_linear_time():
    first = np.arange(2_000_000, dtype=np.float64)
    found = measure([{"a": first}, {"a": first + 1e-9 * first}])
    assert found["a"].relative == pytest.approx(1e-9, rel=1e-3)


@pytest.mark.parametrize("value, rounded, text", [
    (0.0123, 0.02, "0.02"), (0.02, 0.02, "0.02"), (1.0, 1.0, "1"), (9.5, 10.0, "10"),
    (3.2e-9, 4e-9, "4e-9"), (0.96, 1.0, "1"),
])
def test_tolerances_are_rounded_up_to_one_significant_digit(value, rounded, text):
    assert round_up(value) == rounded and number_text(round_up(value)) == text


@SETTINGS
@given(st.lists(hnp.arrays(np.float64, 4, elements=st.floats(-100, 100)), min_size=2, max_size=4),
       st.sampled_from([None, 0.5]))
def test_the_needed_tolerance_covers_every_run(runs, zero):
    runs = [run.copy() for run in runs]
    if zero is not None:
        runs[0][0] = 0.0  # a first value of 0: no relative tolerance reaches it
    values = [{"a": run} for run in runs]
    spreads = measure(values)
    needed = needed_tolerances(["a"], spreads, values)
    if not spreads:
        return
    rtol, atol = needed["a"]
    rules = Rules(tag_tolerances={"a": Tolerance(rtol, atol)})
    assert not any(diff_tags(values[0], run, rules) for run in values[1:])


def test_judge_uses_the_rules_of_the_gate():
    runs = [{"x": 1.0, "y": "a"}, {"x": 1.0 + 1e-9, "y": "a"}, {"x": 1.2, "y": "a"}]
    strict = judge(["t1", "t2", "t3"], runs, Rules())
    assert strict.unstable == ("x",) and strict.differing == 2 and not strict.stability.covered
    loose = judge(["t1", "t2", "t3"], runs, Rules(default=Tolerance(rtol=0.5)))
    assert loose.stability.covered and loose.differing is None and "x" in loose.stability.spreads
    ignored = judge(["t1", "t2", "t3"], runs, Rules(ignore=["x"]))
    assert ignored.stability.stable and ignored.stability.spreads == {}


def test_no_tolerance_covers_a_string():
    values = [{"s": "a"}, {"s": "b"}]
    assert needed_tolerances(["s"], measure(values), values) == {"s": None}
    assert round_up(1e-300) == 1e-300 and round_up(1.1e-300) == 2e-300


@SETTINGS
@given(st.data())
def test_frames_are_measured_by_column_and_never_raise(data):
    import hypothesis.extra.pandas as hpd

    frames = hpd.data_frames([hpd.column("price", dtype=float), hpd.column("n", dtype=int),
                              hpd.column("name", elements=st.text(max_size=2))],
                             index=hpd.range_indexes(min_size=0, max_size=4))
    first = data.draw(frames)
    other = data.draw(frames)
    assert measure([{"f": first}, {"f": first.copy()}]) == {}
    found = measure([{"f": first}, {"f": other}])
    json_safe(found)
    assert all(path == "f" or path.startswith("f[") for path in found)


def test_the_spread_and_the_verdict_import_no_pytest_and_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys, pytest_nwtrials.compare.spread, pytest_nwtrials.compare.stability; "
            "print(sorted(m for m in ('pytest', 'numpy', 'pandas', 'noworkflow') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_round_up_at_the_ends_of_the_floats():
    assert round_up(5e-324) == 5e-324  # the smallest subnormal: no division that underflows
    assert round_up(1.7976931348623157e308) == 1.7976931348623157e308  # 2e308 would be inf


def test_the_stability_verdict_is_told_by_its_words_and_the_stored_flags_still_read():
    assert {v.name: v.value for v in StabilityVerdict} == {
        "STABLE": "stable", "VARIED": "varied within tolerance", "NOT_REPRODUCIBLE": "not reproducible"}
    spread = {"x": PathSpread("x", 1.0, 2.0, 1.0, 1.0)}
    cases = [(Stability(3, ("a", "b", "c")), StabilityVerdict.STABLE),
             (Stability(3, ("a", "b", "c"), spread, covered=True), StabilityVerdict.VARIED),
             (Stability(3, ("a", "b", "c"), spread, covered=False), StabilityVerdict.NOT_REPRODUCIBLE)]
    for stability, verdict in cases:
        assert stability.verdict is verdict
        # what a trial keeps is the stable/covered flags, not the verdict: a stored one reads back the same
        assert Stability.from_json(json.loads(json.dumps(stability.to_json()))).verdict is verdict
    assert note("exp", cases[0][0]) == "exp: stable across 3 runs"
    assert note("exp", cases[1][0]) == "exp: varied across 3 runs within tolerance (x)"
    assert note("exp", cases[2][0]) == "exp: not reproducible across 3 runs (x)"
