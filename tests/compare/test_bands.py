"""Gating within a baseline's recorded run-to-run spread: the pure band check (bands.py).

The end-to-end runs (save with --nw-repeat, gate, change) are in test_bands_gate.py.
"""
from __future__ import annotations

import hypothesis.extra.numpy as hnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pytest_nwtrials.compare.bands import apply_bands, band_of, value_at
from pytest_nwtrials.compare.engine import Kind, Rules, Tolerance, diff_tags
from pytest_nwtrials.compare.spread import PathSpread

SETTINGS = settings(max_examples=120, deadline=None)
EXACT = Rules(default=Tolerance(rtol=0, atol=0))

moderate = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
widths = st.floats(min_value=1e-6, max_value=1e3, allow_nan=False, allow_infinity=False)


def banded(old: dict, new: dict, spreads: dict, rules: Rules = EXACT):
    return apply_bands(diff_tags(old, new, rules), old, new, spreads, rules)


# -- scalars ------------------------------------------------------------------------------------

@SETTINGS
@given(low=moderate, width=widths, at=st.floats(min_value=-1, max_value=1), first=st.floats(min_value=0, max_value=1))
def test_a_number_within_the_deviation_of_the_saved_value_is_never_reported(low, width, at, first):
    high = low + width
    saved = low + first * width
    deviation = max(saved - low, high - saved)  # what the runs low..high recorded from the saved one
    value = saved + at * deviation
    spreads = {"auc": PathSpread("auc", low, high, deviation, None)}
    result = banded({"auc": saved}, {"auc": value}, spreads)
    assert result.changes == ()
    assert result.within == (("auc",) if value != saved else ())


@SETTINGS
@given(low=moderate, width=widths, beyond=st.floats(min_value=1e-3, max_value=1e6), above=st.booleans(),
       rtol=st.sampled_from([0.0, 1e-7, 1e-3]))
def test_a_number_beyond_the_deviation_is_always_reported_and_says_so(low, width, beyond, above, rtol):
    high = low + width  # saved at low: the band is low - width .. low + width
    edge = high if above else low - width
    value = edge + beyond * (1 + abs(edge)) if above else edge - beyond * (1 + abs(edge))
    rules = Rules(default=Tolerance(rtol=rtol, atol=0))
    assume(beyond * (1 + abs(edge)) > 2 * rtol * (abs(high) + abs(low) + width) + 1e-9)
    result = banded({"auc": low}, {"auc": value}, {"auc": PathSpread("auc", low, high, width, None)}, rules)
    assert [c.path for c in result.changes] == ["auc"]
    assert result.within == ()
    assert result.changes[0].detail.startswith("outside the recorded run-to-run spread ")
    assert result.changes[0].detail.splitlines()[0].endswith(f"({low:.6g} ± {width:.6g})")


def test_the_band_is_centred_on_the_saved_value():
    # runs 0.811 (saved), 0.823, 0.834: a rerun at 0.80 is as far from the saved run as one was
    spreads = {"auc": PathSpread("auc", 0.811, 0.834, 0.023, 0.03)}
    assert not banded({"auc": 0.811}, {"auc": 0.80}, spreads).changes
    assert banded({"auc": 0.811}, {"auc": 0.787}, spreads).changes


def test_the_band_is_widened_by_the_tolerance():
    spreads = {"auc": PathSpread("auc", 0.811, 0.834, 0.023, 0.03)}
    just_above = {"auc": 0.8345}
    assert banded({"auc": 0.811}, just_above, spreads).changes  # exact: outside
    loose = Rules(default=Tolerance(rtol=1e-3, atol=0))  # 0.834 * 1e-3 reaches 0.8348
    assert banded({"auc": 0.811}, just_above, spreads, loose).within == ("auc",)


@SETTINGS
@given(old=st.dictionaries(st.sampled_from(["a", "b", "c"]), moderate, max_size=3),
       new=st.dictionaries(st.sampled_from(["a", "b", "c"]), moderate, max_size=3))
def test_without_spreads_the_changes_come_back_unchanged(old, new):
    changes = diff_tags(old, new, EXACT)
    result = apply_bands(changes, old, new, {}, EXACT)
    assert result.changes == tuple(changes) and result.within == ()


def test_integers_are_banded_exactly_unless_a_tolerance_is_set():
    spreads = {"n": PathSpread("n", 10, 12, 2, 0.2)}
    assert banded({"n": 10}, {"n": 12}, spreads, Rules()).within == ("n",)
    assert banded({"n": 10}, {"n": 8}, spreads, Rules()).within == ("n",)
    assert banded({"n": 10}, {"n": 13}, spreads, Rules()).changes[0].detail == \
        "outside the recorded run-to-run spread 8..12 (10 ± 2)"


# -- arrays and frame columns -------------------------------------------------------------------

arrays = hnp.arrays(np.float64, st.integers(1, 20), elements=moderate)


@SETTINGS
@given(saved=arrays, deviation=widths, data=st.data())
def test_an_array_whose_every_element_stays_within_the_deviation_is_never_reported(saved, deviation, data):
    steps = data.draw(hnp.arrays(np.float64, saved.shape, elements=st.floats(-1, 1)))
    new = saved + steps * deviation
    assume(np.all(np.abs(new - saved) <= deviation))  # rounding may overshoot by an ulp
    spreads = {"w": PathSpread("w", None, None, deviation, None)}
    result = banded({"w": saved}, {"w": new}, spreads)
    assert result.changes == ()


@SETTINGS
@given(saved=arrays, deviation=widths, data=st.data())
def test_an_array_with_one_element_beyond_the_deviation_is_always_reported(saved, deviation, data):
    new = saved.copy()
    where = data.draw(st.integers(0, saved.size - 1))
    sign = data.draw(st.sampled_from([-1.0, 1.0]))
    new[where] = saved[where] + sign * (deviation * 1.5 + 1e-6 * abs(saved[where]) + 1e-9)
    assume(abs(new[where] - saved[where]) > deviation)
    result = banded({"w": saved}, {"w": new}, {"w": PathSpread("w", None, None, deviation, None)})
    assert [c.path for c in result.changes] == ["w"] and result.within == ()
    first = result.changes[0].detail.splitlines()[0]
    assert first == (f"outside the recorded run-to-run spread (±{deviation:.6g} of the baseline) "
                     f"at 1 of {saved.size} elements")
    assert "Number of differences: 1" in result.changes[0].detail  # the array summary follows


def test_nan_matches_only_nan_within_a_band():
    spreads = {"w": PathSpread("w", 0.0, 1.0, 0.5, None)}
    saved = np.array([0.2, np.nan, 0.4])
    assert banded({"w": saved}, {"w": np.array([0.3, np.nan, 0.5])}, spreads).within == ("w",)
    assert banded({"w": saved}, {"w": np.array([0.3, 0.1, 0.5])}, spreads).changes


def test_a_frame_column_is_banded_by_its_own_spread():
    old = pd.DataFrame({"score": [0.50, 0.60, 0.70], "label": ["a", "b", "c"], "n": [1, 2, 3]})
    inside = old.assign(score=[0.52, 0.58, 0.71])
    outside = old.assign(score=[0.52, 0.90, 0.71])
    spreads = {"frame['score']": PathSpread("frame['score']", 0.48, 0.72, 0.03, 0.04)}
    assert banded({"frame": old}, {"frame": inside}, spreads).within == ("frame['score']",)
    result = banded({"frame": old}, {"frame": outside}, spreads)
    assert [c.path for c in result.changes] == ["frame['score']"]
    assert "at 1 of 3 elements" in result.changes[0].detail
    # another column of the frame has no band: its change is reported as it is
    moved = banded({"frame": old}, {"frame": inside.assign(n=[1, 2, 4])}, spreads)
    assert [c.path for c in moved.changes] == ["frame['n']"] and moved.within == ("frame['score']",)


def test_a_spread_of_an_enclosing_path_covers_what_is_inside_it():
    old = {"summary": {"auc": 0.80, "recall": 0.4}}
    spreads = {"summary": PathSpread("summary", 0.4, 0.82, 0.02, 0.025)}
    assert banded(old, {"summary": {"auc": 0.815, "recall": 0.4}}, spreads).within == ("summary['auc']",)
    # an enclosing band bounds the distance from the saved value, not the lowest and highest seen
    result = banded(old, {"summary": {"auc": 0.5, "recall": 0.4}}, spreads)
    assert result.changes[0].detail == "outside the recorded run-to-run spread (±0.02 of the baseline)"


def test_changes_of_kind_or_shape_and_non_numeric_spreads_are_always_reported():
    spreads = {"w": PathSpread("w", 0.0, 1.0, 1.0, None), "name": PathSpread("name", detail="'a' -> 'b'")}
    old = {"w": np.zeros(3), "name": "a"}
    new = {"w": np.zeros(4), "name": "c"}
    result = banded(old, new, spreads)
    assert {c.kind for c in result.changes} == {Kind.SHAPE_CHANGED, Kind.CHANGED}
    named = next(c for c in result.changes if c.path == "name")
    assert named.detail == "the saved runs already differed here ('a' -> 'b'): no band covers it"


def test_band_of_prefers_the_narrowest_path():
    spreads = {"f": PathSpread("f", deviation=1.0), "f['a']": PathSpread("f['a']", deviation=0.1)}
    assert band_of("f['a']", spreads) == (spreads["f['a']"], True)
    assert band_of("f['b']", spreads) == (spreads["f"], False)
    assert band_of("g", spreads) is None


def test_value_at_follows_paths_and_refuses_what_it_cannot_follow():
    values = {"s": {"auc": [1, 2, {"x": 3}]}, "f": pd.DataFrame({"a b": [1.0]})}
    assert value_at(values, "s['auc'][2]['x']") == 3
    assert list(value_at(values, "f['a b']")) == [1.0]
    for path in ("missing", "s['nope']", "s['auc'][9]", "s[<object>]", "f['c']"):
        with pytest.raises(LookupError):
            value_at(values, path)


def test_a_complex_number_is_banded_by_its_distance_from_the_saved_value():
    spreads = {"z": PathSpread("z", None, None, 0.5, 0.5)}
    assert banded({"z": 1 + 0j}, {"z": 1 + 0.4j}, spreads).within == ("z",)
    assert banded({"z": 1 + 0j}, {"z": 1 + 0.6j}, spreads).changes[0].detail == \
        "outside the recorded run-to-run spread (±0.5 of the baseline)"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12)


@SETTINGS
@given(spread=json_values | st.dictionaries(
    st.text(max_size=5), st.fixed_dictionaries({}, optional={
        key: json_values for key in ("low", "high", "deviation", "relative", "detail")}), max_size=3))
def test_a_committed_spread_reads_as_spreads_or_a_value_error_naming_the_field(spread):
    from pytest_nwtrials.store.baseline_entries import check_spread

    try:
        found = check_spread({"spread": spread})
    except ValueError as exc:
        assert str(exc).startswith("'spread': ")
    else:
        assert set(found) == set(spread) and all(isinstance(s, PathSpread) for s in found.values())
    assert check_spread({}) == {}
