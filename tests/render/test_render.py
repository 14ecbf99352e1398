"""Failure report lines: one block per change, capped, no terminal writer."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pytest_nwtrials.compare.engine import Change, Kind, diff, diff_tags
from pytest_nwtrials.render.text import DETAIL_LINES, format_changes
from pytest_nwtrials.values.codec import OpaqueValue, Summary


def test_a_report_for_every_kind_of_change() -> None:
    weights = np.zeros((1000, 10))
    changed = weights.copy()
    changed[3, 7] = 0.5
    old = {"auc": 0.9192, "gone": 1, "n": 1, "weights": weights, "w32": np.zeros(3),
           "summary": {"a": 1, "b": [1, 2]}}
    new = {"auc": 0.9011, "loss": 0.3, "n": 1.0, "weights": changed, "w32": np.zeros(3, np.float32),
           "summary": {"a": 1, "b": [1], "c": 2}}
    assert format_changes(diff_tags(old, new)) == [
        "  auc: changed: 0.9192 -> 0.9011",
        "  gone: missing in the new trial (baseline: 1)",
        "  loss: new tag (value: 0.3)",
        "  n: type changed: int 1 -> float 1.0",
        "  summary['b'][1]: missing in the new trial (baseline: 2)",
        "  summary['c']: added (value: 2)",
        "  w32: dtype changed: float64 -> float32",
        "  weights: changed (ndarray(shape=(1000, 10), dtype=float64))",
        "    Shape: (1000, 10)",
        "    Number of differences: 1 / 10000 (0.01%)",
        "    Max absolute error: 0.5",
        "    Mean absolute error: 0.5",
        "    Max relative error: inf",
        "    [3, 7]: 0.0 -> 0.5",
    ]


def test_frame_changes_read_as_columns_index_and_values() -> None:
    old = pd.DataFrame({"price": [1.0, 2.0], "qty": [1, 2]})
    new = pd.DataFrame({"price": [1.0, 2.5], "size": [1, 2]}, index=["a", "b"])
    assert format_changes(diff(old, new, path="orders")) == [
        "  orders: columns changed: ['price', 'qty'] -> ['price', 'size']",
        "    Removed: ['qty']",
        "    Added: ['size']",
        "  orders: index changed: RangeIndex(length=2, dtype=int64) -> Index(length=2, dtype=str)",
        "    Dtype: int64 -> str",
        "    Removed labels (2): [0, 1]",
        "    Added labels (2): ['a', 'b']",
        "  orders['price']: changed (Series(length=2, dtype=float64))",
        "    Shape: (2,)",
        "    Number of differences: 1 / 2 (50%)",
        "    Max absolute error: 0.5",
        "    Mean absolute error: 0.5",
        "    Max relative error: 0.25",
        "    [1]: 2.0 -> 2.5",
    ]


def test_type_changes_name_both_types() -> None:
    changes = [
        Change("a", Kind.TYPE_CHANGED, True, 1),
        Change("b", Kind.TYPE_CHANGED, np.float32(0.5), "0.5"),
        Change("c", Kind.TYPE_CHANGED, Summary("DataFrame(shape=(1, 1), columns=['a'], digest=12345678)"), None),
        Change("d", Kind.TYPE_CHANGED, OpaqueValue("pkg.Model", 10, "ab" * 32), [1, 2]),
    ]
    assert format_changes(changes) == [
        "  a: type changed: bool True -> int 1",
        "  b: type changed: numpy.float32 0.5 -> str '0.5'",
        "  c: type changed: DataFrame(shape=(1, 1), columns=['a'], digest=12345678) -> None",
        "  d: type changed: <object pkg.Model, 10 bytes, digest=abababab> -> list [1, 2]",
    ]


def test_long_reports_are_capped() -> None:
    changes = [Change(f"t{i}", Kind.CHANGED, i, i + 1) for i in range(25)]
    lines = format_changes(changes, limit=20)
    assert len(lines) == 21 and lines[-1] == "  ... and 5 more changes"
    assert format_changes(changes[:21], limit=20)[-1] == "  ... and 1 more change"
    assert format_changes([]) == []


def test_long_details_and_lines_are_capped() -> None:
    detail = "\n".join(f"line {i}" for i in range(30))
    lines = format_changes([Change("w", Kind.CHANGED, Summary("x"), Summary("y"), detail)])
    assert len(lines) == 1 + DETAIL_LINES
    assert lines[1] == "    line 0" and lines[-1] == f"    ... ({30 - DETAIL_LINES + 1} more lines)"
    wide = format_changes([Change("t" * 50, Kind.CHANGED, "a" * 500, "b" * 500)], width=100)
    assert len(wide) == 1 and len(wide[0]) <= 100 and "..." in wide[0] and " -> " in wide[0]


def test_a_change_at_the_top_level_has_a_readable_path() -> None:
    assert format_changes(diff(1, 2)) == ["  (value): changed: 1 -> 2"]
