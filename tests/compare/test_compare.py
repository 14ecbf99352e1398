"""The diff engine: tolerances, change records, paths, and the rules that pick tolerances."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import hypothesis.extra.numpy as hnp
import hypothesis.extra.pandas as hpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pytest_nwtrials.compare.engine import (
    Change, Kind, Rules, Tolerance, diff, diff_tags, dotted_path, parse_tolerance_lines, split_path)
from pytest_nwtrials.values.codec import BlobStore, OpaqueValue, Summary, decode, encode

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
EXACT = Rules(default=Tolerance(rtol=0, atol=0))


# ---------------------------------------------------------------------------------------------
# strategies (small: the engine's behaviour does not depend on size)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.complex_numbers(), st.text(max_size=4),
    st.binary(max_size=4),
)
numpy_dtypes = st.one_of(
    hnp.boolean_dtypes(), hnp.integer_dtypes(endianness="="), hnp.floating_dtypes(endianness="="),
    hnp.complex_number_dtypes(endianness="="), hnp.unicode_string_dtypes(max_len=3),
    hnp.datetime64_dtypes(endianness="="), hnp.timedelta64_dtypes(endianness="="),
)
numpy_scalars = numpy_dtypes.flatmap(lambda dtype: hnp.arrays(dtype, ()).map(lambda a: a[()]))
arrays = numpy_dtypes.flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)))
object_arrays = hnp.arrays(object, hnp.array_shapes(max_dims=2, max_side=3),
                           elements=st.one_of(st.none(), st.floats(), st.text(max_size=2)))
frames = hpd.data_frames(
    columns=[hpd.column("x", dtype=float), hpd.column("n", dtype=int),
             hpd.column("s", elements=st.text(st.characters(codec="utf-8"), max_size=3)),
             hpd.column("flag", dtype=bool)],
    index=hpd.range_indexes(max_size=6) | hpd.indexes(dtype=int, max_size=6),
)
series = hpd.series(dtype=float, index=hpd.range_indexes(max_size=6), name=st.none() | st.text(max_size=3))


def nested(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.one_of(st.text(max_size=3), st.integers(-3, 3))
    return st.recursive(leaves, lambda children: st.one_of(
        st.lists(children, max_size=3), st.lists(children, max_size=3).map(tuple),
        st.dictionaries(keys, children, max_size=3)), max_leaves=8)


# Deferred: the repr of a big combined strategy runs to tens of kilobytes, and Hypothesis warns.
any_value = st.deferred(lambda: st.one_of(nested(st.one_of(scalars, numpy_scalars, arrays)), object_arrays, frames,
                                          series))


class Model:
    """A stand-in for a fitted model: compared by type and pickle digest."""

    def __init__(self, weights: list[float]) -> None:
        self.weights = weights


def paths(changes: list[Change]) -> list[str]:
    return [c.path for c in changes]


# ---------------------------------------------------------------------------------------------
# properties


@SETTINGS
@given(value=st.one_of(any_value, st.builds(Model, st.lists(st.floats(), max_size=3))))
def test_a_value_never_differs_from_itself(value: Any) -> None:
    assert diff(value, value) == []
    assert diff(value, value, EXACT) == []


@SETTINGS
@given(value=any_value)
def test_a_decoded_baseline_matches_the_live_value(tmp_path: Path, value: Any) -> None:
    blobs = BlobStore(tmp_path)
    baseline = decode(encode(value, blobs), blobs)
    assert diff(baseline, value, EXACT) == []
    assert diff_tags({"t": baseline}, {"t": value}) == []


@SETTINGS
@given(old=any_value, new=any_value)
def test_both_directions_report_the_same_paths(old: Any, new: Any) -> None:
    forward, backward = diff(old, new, EXACT, "t"), diff(new, old, EXACT, "t")
    assert sorted(paths(forward)) == sorted(paths(backward))
    swap = {Kind.ADDED: Kind.REMOVED, Kind.REMOVED: Kind.ADDED}
    swapped = sorted((c.path, swap.get(c.kind, c.kind)) for c in forward)
    assert swapped == sorted((c.path, c.kind) for c in backward)


tolerances = st.tuples(st.sampled_from([0.0, 1e-9, 1e-6, 1e-3, 0.1]),  # rtol, atol
                       st.sampled_from([0.0, 1e-12, 1e-6, 1e-2, 1.0]))
moderate = st.floats(min_value=-1e9, max_value=1e9)


def _moved(x: float, limit: float, factor: float, sign: int) -> float:
    return x + sign * max(factor * limit, 1e-300)


@SETTINGS
@given(x=moderate, tol=tolerances, factor=st.sampled_from([0.0, 0.25, 0.5, 0.9]), sign=st.sampled_from([-1, 1]))
def test_a_change_within_tolerance_is_never_reported(
        x: float, tol: tuple[float, float], factor: float, sign: int) -> None:
    rtol, atol = tol
    rules = Rules(default=Tolerance(rtol, atol))
    limit = atol + rtol * abs(x)
    new = x + sign * factor * limit
    assume(abs(new - x) <= limit)
    assert diff(x, new, rules) == []
    assert diff(np.float64(x), np.float64(new), rules) == []
    assert diff({"a": [x]}, {"a": [new]}, rules) == []
    assert diff(np.full((3, 2), x), np.full((3, 2), new), rules) == []
    assert diff(pd.DataFrame({"c": [x, 1.0]}), pd.DataFrame({"c": [new, 1.0]}), rules) == []


@SETTINGS
@given(x=moderate, tol=tolerances, factor=st.sampled_from([1.5, 2.0, 10.0]), sign=st.sampled_from([-1, 1]),
       where=st.lists(st.integers(0, 5), min_size=1, max_size=6, unique=True))
def test_a_change_beyond_tolerance_is_always_reported(
        x: float, tol: tuple[float, float], factor: float, sign: int, where: list[int]) -> None:
    rtol, atol = tol
    rules = Rules(default=Tolerance(rtol, atol))
    limit = atol + rtol * abs(x)
    new = _moved(x, limit, factor, sign)
    assume(abs(new - x) > limit)
    assert [(c.path, c.kind) for c in diff(x, new, rules, "v")] == [("v", Kind.CHANGED)]
    assert paths(diff({"a": [x]}, {"a": [new]}, rules, "v")) == ["v['a'][0]"]
    old_array = np.full((2, 3), x)
    new_array = old_array.copy()
    new_array.flat[where] = new
    (change,) = diff(old_array, new_array, rules, "w")
    assert change.kind is Kind.CHANGED and f"Number of differences: {len(where)} / 6 " in change.detail
    old_frame = pd.DataFrame({"c": old_array.ravel()})
    (change,) = diff(old_frame, pd.DataFrame({"c": new_array.ravel()}), rules, "f")
    assert change.path == "f['c']" and f"Number of differences: {len(where)} / 6 " in change.detail


# ---------------------------------------------------------------------------------------------
# scalars


@pytest.mark.parametrize(
    ("old", "new"),
    [(math.nan, math.nan), (math.inf, math.inf), (-0.0, 0.0), (np.float32("nan"), np.float32("nan")),
     (complex(math.nan, 1), complex(math.nan, 1)), (np.datetime64("NaT"), np.datetime64("NaT")), (2**70, 2**70)],
)
def test_special_values_equal_themselves(old: Any, new: Any) -> None:
    assert diff(old, new, EXACT) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [(math.inf, -math.inf), (math.nan, 1.0), (math.inf, 1e308), (complex(1, math.nan), complex(2, math.nan)),
     (np.datetime64("2020-01-01"), np.datetime64("NaT", "D")), ("a", "b"), (b"a", b"b"), (True, False)],
)
def test_specials_and_non_numbers_differ_whatever_the_tolerance(old: Any, new: Any) -> None:
    generous = Rules(default=Tolerance(rtol=1.0, atol=1e300))
    assert [c.kind for c in diff(old, new, generous)] == [Kind.CHANGED]


def test_ints_are_exact_unless_a_tolerance_is_explicit() -> None:
    assert diff(1000, 1001) == [Change("", Kind.CHANGED, 1000, 1001)]
    assert diff(1000, 1001, Rules(default=Tolerance(rtol=1e-2))) == []
    assert diff(1000, 1001, Rules(tag_tolerances={"n": Tolerance(atol=1)}), "n") == []
    assert diff(np.array([1000]), np.array([1001]), Rules(default=Tolerance(atol=1))) == []
    assert len(diff(np.array([1000]), np.array([1001]))) == 1
    assert diff(True, False, Rules(default=Tolerance(atol=5))) != []  # bools never take a tolerance


@pytest.mark.parametrize(
    ("old", "new"),
    [(True, 1), (1, 1.0), (1.0, "1.0"), ([1], (1,)), (None, 0), (pd.DataFrame({"a": [1]}), np.array([1])),
     (pd.Series([1.0]), pd.DataFrame({"a": [1.0]})), ({"a": 1}, [("a", 1)]), (np.float64(1.0), np.array(1.0))],
)
def test_kinds_of_value_changing_is_a_type_change(old: Any, new: Any) -> None:
    (change,) = diff(old, new, path="x")
    assert change.kind is Kind.TYPE_CHANGED and change.path == "x"


def test_scalar_dtype_changes_still_compare_values() -> None:
    assert diff(np.float64(0.5), 0.5) == []  # a Python float is a float64
    assert diff(np.float32(0.5), np.float64(0.5), path="p") == [
        Change("p", Kind.DTYPE_CHANGED, Summary("float32"), Summary("float64"))]
    kinds = [c.kind for c in diff(np.int64(1), 2)]
    assert kinds == [Kind.DTYPE_CHANGED, Kind.CHANGED]


# ---------------------------------------------------------------------------------------------
# nested values


def test_nested_changes_have_stable_paths() -> None:
    old = {"summary": {"auc": 0.9, "gone": 1}, "layers": [1, 2, 3], "pair": (1, 2)}
    new = {"summary": {"auc": 0.8, "fresh": 2}, "layers": [1, 2], "pair": (1, 3)}
    assert [(c.path, c.kind, c.old, c.new) for c in diff_tags({"r": old}, {"r": new})] == [
        ("r['summary']['auc']", Kind.CHANGED, 0.9, 0.8),
        ("r['summary']['gone']", Kind.REMOVED, 1, None),
        ("r['summary']['fresh']", Kind.ADDED, None, 2),
        ("r['layers'][2]", Kind.REMOVED, 3, None),
        ("r['pair'][1]", Kind.CHANGED, 2, 3),
    ]


def test_tags_are_sorted_and_missing_or_new_tags_reported() -> None:
    changes = diff_tags({"b": 1, "a": np.zeros(30), "c": 1}, {"c": 2, "b": 1, "d": 0.3})
    assert [(c.path, c.kind) for c in changes] == [("a", Kind.REMOVED), ("c", Kind.CHANGED), ("d", Kind.ADDED)]
    assert isinstance(changes[0].old, Summary) and changes[0].old.startswith("ndarray(shape=(30,)")


def test_set_changes_list_what_was_added_and_removed() -> None:
    (change,) = diff({1, 2}, {2, 3}, path="s")
    assert change.kind is Kind.CHANGED and change.detail == "Removed: [1]\nAdded: [3]"


def test_opaque_objects_compare_by_type_and_digest(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    baseline = decode(encode(Model([1.0]), blobs), blobs)
    assert isinstance(baseline, OpaqueValue)
    assert diff(baseline, Model([1.0])) == []
    assert [c.kind for c in diff(baseline, Model([2.0]))] == [Kind.CHANGED]
    assert [c.kind for c in diff(baseline, OpaqueValue("other.Model", 10, "0" * 64))] == [Kind.TYPE_CHANGED]
    assert [c.kind for c in diff(baseline, 1.0)] == [Kind.TYPE_CHANGED]
    assert diff(lambda: 1, lambda: 2) == []  # unpicklable: type only


def test_a_frame_kept_as_a_pickle_still_compares_with_the_live_frame(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": pd.Series([1, "x"], dtype=object)})
    blobs = BlobStore(tmp_path)
    baseline = decode(encode(frame, blobs), blobs)
    assert isinstance(baseline, OpaqueValue)
    assert diff(baseline, frame.copy()) == []
    assert [c.kind for c in diff(baseline, frame.replace("x", "y"))] == [Kind.CHANGED]


# ---------------------------------------------------------------------------------------------
# arrays


def test_array_mismatch_summary() -> None:
    old = np.zeros((1000, 10))
    new = old.copy()
    new[3, 7] = 0.5
    new[10, 0] = -0.25
    new[20, 1] = np.nan
    (change,) = diff(old, new, path="weights")
    assert change.kind is Kind.CHANGED
    assert change.old == change.new == "ndarray(shape=(1000, 10), dtype=float64)"
    assert change.detail.splitlines() == [
        "Shape: (1000, 10)",
        "Number of differences: 3 / 10000 (0.03%)",
        "Max absolute error: 0.5",
        "Mean absolute error: 0.375",
        "Max relative error: inf",
        "Differences involving nan or inf: 1",
        "[3, 7]: 0.0 -> 0.5",
        "[10, 0]: 0.0 -> -0.25",
        "[20, 1]: 0.0 -> nan",
    ]


def test_array_examples_stop_at_five_and_count_all() -> None:
    old, new = np.arange(100.0), np.arange(100.0) + 1
    (change,) = diff(old, new)
    lines = change.detail.splitlines()
    assert lines[1] == "Number of differences: 100 / 100 (100%)"
    assert lines[-5:] == [f"[{i}]: {float(i)} -> {float(i + 1)}" for i in range(5)]


def test_large_arrays_are_walked_in_blocks() -> None:
    old = np.zeros(200_003)
    new = old.copy()
    new[[0, 65_536, 200_002]] = [1.0, np.inf, 2.0]
    (change,) = diff(old, new)
    assert "Number of differences: 3 / 200003" in change.detail
    assert change.detail.splitlines()[-3:] == ["[0]: 0.0 -> 1.0", "[65536]: 0.0 -> inf", "[200002]: 0.0 -> 2.0"]
    assert diff(np.full(200_003, np.nan), np.full(200_003, np.nan)) == []


def test_shape_and_dtype_changes() -> None:
    assert [(c.kind, c.old, c.new) for c in diff(np.zeros((3, 4)), np.zeros((3, 5)))] == [
        (Kind.SHAPE_CHANGED, "(3, 4)", "(3, 5)")]
    changes = diff(np.zeros(3), np.array([0, 0, 1], dtype=np.float32))
    assert [(c.kind, c.old, c.new) for c in changes][0] == (Kind.DTYPE_CHANGED, "float64", "float32")
    assert changes[1].kind is Kind.CHANGED and "[2]: 0.0 -> 1.0" in changes[1].detail
    assert [c.kind for c in diff(np.zeros(3), np.array(["a", "b", "c"]))] == [Kind.DTYPE_CHANGED]


def test_non_numeric_arrays_compare_exactly() -> None:
    dates = np.array(["2020-01-01", "NaT"], dtype="datetime64[s]")
    assert diff(dates, dates.copy()) == []
    (change,) = diff(np.array(["a", "b"]), np.array(["a", "c"]))
    assert change.detail.splitlines()[-1] == "[1]: 'b' -> 'c'" and "error" not in change.detail
    assert diff(np.array([True, False]), np.array([True, True]))[0].detail.splitlines()[1] == (
        "Number of differences: 1 / 2 (50%)")


def test_object_arrays_compare_element_by_element() -> None:
    old = np.array([1.0, "a", None], dtype=object)
    assert diff(old, np.array([1.0 + 1e-12, "a", None], dtype=object)) == []
    (change,) = diff(old, np.array([1.0, "b", None], dtype=object))
    assert change.detail.splitlines()[-1] == "[1]: 'a' -> 'b'"


# ---------------------------------------------------------------------------------------------
# frames and series


def test_frame_columns_index_and_dtype_changes() -> None:
    old = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "z"], "c": [1, 2, 3]})
    new = pd.DataFrame({"a": [1.0, 2.5, 3.0], "b": ["x", "q", "z"], "d": [1, 2, 3]}, index=[0, 1, 5])
    new["b"] = new["b"].astype(object)
    changes = diff(old, new, path="frame")
    assert [(c.path, c.kind) for c in changes] == [
        ("frame", Kind.COLUMNS_CHANGED),
        ("frame", Kind.INDEX_CHANGED),
        ("frame['a']", Kind.CHANGED),
        ("frame['b']", Kind.DTYPE_CHANGED),
        ("frame['b']", Kind.CHANGED),
    ]
    assert changes[0].detail == "Removed: ['c']\nAdded: ['d']"
    assert changes[1].detail == "Removed labels (1): [2]\nAdded labels (1): [5]"
    assert (changes[3].old, changes[3].new) == ("str", "object")
    assert changes[2].detail.splitlines()[-1] == "[1]: 2.0 -> 2.5"  # rows named by the baseline's index
    assert changes[4].detail.splitlines()[-1] == "[1]: 'y' -> 'q'"


def test_reordered_columns_are_one_change_and_values_still_compare() -> None:
    old = pd.DataFrame({"a": [1.0], "b": [2.0]})
    changes = diff(old, old[["b", "a"]], path="f")
    assert [(c.kind, c.detail) for c in changes] == [(Kind.COLUMNS_CHANGED, "Order: ['a', 'b'] -> ['b', 'a']")]


def test_index_representation_is_not_a_change() -> None:
    old = pd.DataFrame({"a": [1.0, 2.0]})
    assert diff(old, old.set_axis(pd.Index([0, 1]))) == []
    (change,) = diff(old, old.set_axis(pd.Index([1, 0])), path="f")
    assert change.kind is Kind.INDEX_CHANGED and change.detail.splitlines() == [
        "Same labels in a different order: 2 positions differ", "[0]: 0 -> 1", "[1]: 1 -> 0"]


def test_categories_dtypes_and_series_names() -> None:
    old = pd.Series(pd.Categorical(["a", "b"]), name="s")
    new = pd.Series(pd.Categorical(["a", "b"], categories=["a", "b", "c"]), name="t")
    changes = diff(old, new, path="s")
    assert [c.kind for c in changes] == [Kind.COLUMNS_CHANGED, Kind.DTYPE_CHANGED]
    assert changes[1].detail == "Categories: ['a', 'b'] -> ['a', 'b', 'c']"
    tz = pd.Series(pd.date_range("2020", periods=2, tz="UTC"))
    assert diff(tz, tz.copy()) == []
    assert [c.kind for c in diff(tz, tz + pd.Timedelta(1, "s"))] == [Kind.CHANGED]


def test_frame_column_tolerances_follow_the_column_path() -> None:
    old = pd.DataFrame({"price": [100.0], "qty": [1.0]})
    new = pd.DataFrame({"price": [100.5], "qty": [1.5]})
    rules = Rules(patterns=parse_tolerance_lines(["frame.price: atol=1"]))
    assert paths(diff_tags({"frame": old}, {"frame": new}, rules)) == ["frame['qty']"]
    assert paths(diff_tags({"frame": old}, {"frame": new}, Rules(ignore=["frame['qty']"]))) == ["frame['price']"]


# ---------------------------------------------------------------------------------------------
# rules


def test_paths_have_a_dotted_spelling() -> None:
    assert split_path("summary['a]b'][2][(1, 'x')]") == ["summary", "'a]b'", "2", "(1, 'x')"]
    assert dotted_path("summary['auc'][0]") == "summary.auc.0"
    assert dotted_path("plain") == "plain"


def test_tolerance_resolution_order() -> None:
    rules = Rules(
        default=Tolerance(rtol=1e-2),
        patterns=[("summary.*", Tolerance(rtol=1e-3)), ("summary.auc", Tolerance(atol=0.5)),
                  ("summary['loss']", Tolerance(rtol=1e-4)), ("*", Tolerance(atol=9.0))],
        tag_tolerances={"pinned": Tolerance(rtol=0.25)},
    )
    assert rules.tolerance_for("summary['auc']") == (1e-3, 0.5, True)  # fields resolve independently
    assert rules.tolerance_for("summary['loss']") == (1e-4, 9.0, True)
    assert rules.tolerance_for("summary['other'][3]") == (1e-3, 9.0, True)
    assert rules.tolerance_for("pinned['x']") == (0.25, 9.0, True)  # the tag's own tolerance wins
    assert rules.tolerance_for("elsewhere") == (1e-2, 9.0, True)
    assert Rules().tolerance_for("anything") == (1e-7, 0.0, False)
    assert Rules(default=Tolerance(atol=0.1)).tolerance_for("x") == (1e-7, 0.1, True)


def test_the_most_specific_pattern_wins_then_the_first_listed() -> None:
    rules = Rules(patterns=[("w*", Tolerance(rtol=1.0)), ("weights", Tolerance(rtol=2.0)),
                            ("weight?", Tolerance(rtol=3.0)), ("weight*", Tolerance(rtol=4.0))])
    assert rules.tolerance_for("weights").rtol == 2.0
    assert rules.tolerance_for("weightz").rtol == 3.0
    assert rules.tolerance_for("weights_2").rtol == 4.0
    assert rules.tolerance_for("wide").rtol == 1.0


def test_a_pattern_covers_the_paths_inside_what_it_matches() -> None:
    rules = Rules(patterns=[("frame", Tolerance(atol=1.0))], ignore=["summary.debug"])
    assert rules.tolerance_for("frame['price']").atol == 1.0
    assert rules.tolerance_for("framework").atol == 0.0
    assert rules.ignored("summary['debug'][0]") and rules.ignored("summary.debug")
    assert not rules.ignored("summary['debugger']")
    assert diff_tags({"summary": {"debug": 1, "x": 1}}, {"summary": {"debug": 2, "x": 1}}, rules) == []


def test_ignored_tags_are_skipped() -> None:
    rules = Rules(ignore=["time", "host", "seed"])
    assert diff_tags({"seed": 1, "time": 3.0}, {"time": 4.0, "host": "b"}, rules) == []


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["weights: rtol=1e-3 atol=0.01"], [("weights", Tolerance(1e-3, 0.01))]),
        (["summary.*:atol = 1, rtol=0", "", "# a comment"], [("summary.*", Tolerance(0.0, 1.0))]),
        (["summary['a:b']: rtol=2"], [("summary['a:b']", Tolerance(rtol=2.0))]),
    ],
)
def test_parse_tolerance_lines(lines: list[str], expected: list[tuple[str, Tolerance]]) -> None:
    assert parse_tolerance_lines(lines) == expected


@pytest.mark.parametrize(
    ("line", "problem"),
    [("weights rtol=1e-3", "bad tolerance line 'weights rtol=1e-3': expected 'PATTERN: rtol=1e-3 atol=0.01'"),
     (": rtol=1", "expected 'PATTERN: rtol="),
     ("w: rtol=abc", "rtol='abc' is not a finite number >= 0"),
     ("w: atol=-1", "atol='-1' is not a finite number >= 0"),
     ("w: rtol=nan", "is not a finite number >= 0"),
     ("w: rtol=inf", "rtol='inf' is not a finite number >= 0"),
     ("w: rtol=1 rtol=2", "rtol is given twice"),
     ("w: rtol=1 btol=2", "unknown setting 'btol'")],
)
def test_parse_tolerance_lines_names_the_bad_line(line: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace("[", r"\[")) as info:
        parse_tolerance_lines(["ok: rtol=1", line])
    assert repr(line) in str(info.value) and "PATTERN: rtol=1e-3 atol=0.01" in str(info.value)


def test_tolerance_values_are_validated() -> None:
    with pytest.raises(ValueError, match="rtol must be a finite number >= 0"):
        Tolerance(rtol=-1.0)
    with pytest.raises(ValueError, match="atol must be a finite number >= 0"):
        Tolerance(atol=math.nan)
    with pytest.raises(ValueError, match="rtol must be a finite number >= 0"):
        Tolerance(rtol=math.inf)


def test_object_whose_equality_raises_is_compared_by_digest() -> None:
    class Odd:
        def __eq__(self, other: object) -> bool:
            raise RuntimeError("no")

    assert diff([Odd()], [Odd()]) == []  # a local class cannot be pickled: compared by type


def test_every_entry_point_of_a_tolerance_follows_one_rule() -> None:
    """`tag()`, a tolerance object, an ini line, an ini option or command-line option and
    `nwtrials diff --rtol` accept exactly the finite numbers >= 0 (inf was accepted by some)."""
    import argparse

    from hypothesis import given
    from hypothesis import strategies as st

    from pytest_nwtrials.capture.recorder import check_tolerance
    from pytest_nwtrials.cli import _tolerance
    from pytest_nwtrials.settings import SettingsError, parse_tolerance

    numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10),
                        st.sampled_from([0, 0.0, -0.0, math.inf, -math.inf, math.nan, 1e308]))

    def accepts(call, *args) -> bool:
        try:
            call(*args)
        except (ValueError, SettingsError, argparse.ArgumentTypeError):
            return False
        return True

    @given(numbers)
    def check(value) -> None:
        valid = math.isfinite(value) and value >= 0
        text = repr(float(value))
        assert accepts(check_tolerance, "rtol", value) is valid
        assert accepts(Tolerance, value) is valid
        assert accepts(parse_tolerance_lines, [f"w: rtol={text}"]) is valid
        assert accepts(parse_tolerance, text, "--nw-rtol") is valid
        assert accepts(_tolerance, text) is valid

    check()


def test_every_change_kind_keeps_the_phrase_reports_and_stores_were_written_with():
    """A kind's value is what reports print and JSON reports keep: renaming a member must not
    change it, and no member may appear or vanish unnoticed."""
    assert {kind.name: kind.value for kind in Kind} == {
        "CHANGED": "changed", "TYPE_CHANGED": "type changed", "REMOVED": "missing in the new trial",
        "ADDED": "new", "SHAPE_CHANGED": "shape changed", "DTYPE_CHANGED": "dtype changed",
        "COLUMNS_CHANGED": "columns changed", "INDEX_CHANGED": "index changed",
        "HYPERPARAMETER": "hyperparameter changed", "CLASS_CHANGED": "class changed",
    }
    for kind in Kind:
        assert str(kind) == f"{kind}" == kind.value and json.dumps(kind) == json.dumps(kind.value)
        assert Kind(kind.value) is kind
