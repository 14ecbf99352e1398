"""Tag plots keep their labels readable: trial names and tick labels never drawn over each other,
whether the trials ran seconds apart (in one CI job, in a test) or days apart."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from itertools import combinations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("matplotlib")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402

from pytest_nwtrials.api import open_store, plot, plot_trials  # noqa: E402

START = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)


def texts_drawn(figure) -> list:
    """Every visible, non-empty text of the figure's axes but the legend: trial names, tick
    labels, the axis' offset texts and labels, the title; drawn, so where each one is is known."""
    FigureCanvasAgg(figure).draw()
    found = []
    for ax in figure.axes:
        found += [*ax.texts, *ticks_drawn(ax.xaxis), *ticks_drawn(ax.yaxis), ax.xaxis.get_offset_text(),
                  ax.yaxis.get_offset_text(), ax.xaxis.label, ax.yaxis.label, ax.title]
    return [text for text in found if text.get_visible() and text.get_text().strip()]


def ticks_drawn(axis) -> list:
    """The labels of the ticks in the axis' view: the axis keeps the others, not drawn."""
    low, high = sorted(axis.get_view_interval())
    tolerance = (high - low) * 1e-9
    return [tick.label1 for tick in axis.get_major_ticks() if low - tolerance <= tick.get_loc() <= high + tolerance]


def assert_no_overlap(figure) -> list[str]:
    """The drawn texts, after checking that no two of them overlap."""
    texts = texts_drawn(figure)
    renderer = figure.canvas.get_renderer()
    boxes = [(text.get_text(), text.get_window_extent(renderer)) for text in texts]
    overlapping = [(a, b) for (a, box_a), (b, box_b) in combinations(boxes, 2) if box_a.overlaps(box_b)]
    assert not overlapping, overlapping
    return [text for text, _ in boxes]


def trials_at(store, starts: list[datetime], picks: list[str] | None = None) -> list:
    """Real trials of the store (train runs: trial2, or those named in `picks`), recorded again
    at each of `starts`, named trial11, trial12, ..."""
    found = {name: open_store(store).find(name)[0] for name in set(picks or ["trial2"])}
    return [replace(found[picks[n] if picks else "trial2"], name=f"trial{11 + n}", id=f"copy-{n}",
                    started=when.isoformat(timespec="milliseconds")) for n, when in enumerate(starts)]


SECONDS = [START + timedelta(seconds=i) for i in range(8)]
TWO_RUNS = [START + timedelta(hours=i // 4, seconds=i % 4) for i in range(8)]  # two CI jobs, an hour apart
DAILY = [START + timedelta(days=day, hours=hour) for day, hour in enumerate([0, 2, 1, 0, 2, 0, 1, 0])]
DAYS = [START + timedelta(days=day, hours=hour) for day, hour in
        [(0, 0), (1, 2), (2, 0), (4, 5), (5, 0), (7, 1), (8, 0), (10, 0)]]  # some names too close on a time axis
NAMES = {f"trial{n}" for n in range(11, 19)}


@pytest.mark.parametrize("size", [None, (6, 3, 80)], ids=["as-drawn", "as-in-the-report"])
@pytest.mark.parametrize("starts", [SECONDS, TWO_RUNS, DAILY, DAYS],
                         ids=["a-second-apart", "two-runs", "daily", "days-apart"])
def test_no_label_of_a_tag_plot_overlaps_another(store, starts, size):
    figure = plot_trials("auc", trials_at(store, starts), title="auc: experiments/train.py")
    if size is not None:  # as render/html.py draws it
        figure.set_size_inches(size[:2])
        figure.set_dpi(size[2])
    shown = assert_no_overlap(figure)
    assert NAMES <= set(shown)  # every trial named, at its point or at its tick


def test_trials_close_in_time_beside_others_are_plotted_in_their_order_and_named(store):
    figure = plot_trials("auc", trials_at(store, TWO_RUNS[::-1]), title="auc")
    ax = figure.axes[0]
    [line] = ax.get_lines()
    assert list(line.get_xdata()) == list(range(8))  # the order they started in
    assert [t.get_text() for t in ax.get_xticklabels() if t.get_text()] == [f"trial{n}" for n in range(18, 10, -1)]
    assert ax.get_xlabel() == "trials in start order, 2026-03-02 09:30 to 10:30 UTC"
    assert not ax.texts  # no names beside the points: the ticks name them


def test_trials_far_apart_in_time_are_plotted_at_their_start_named_beside_their_point(store):
    ax = plot_trials("auc", trials_at(store, DAILY), title="auc").axes[0]
    [line] = ax.get_lines()
    assert list(line.get_xdata()) == DAILY and ax.get_xlabel() == "trial start (UTC)"
    assert sorted(text.get_text() for text in ax.texts) == sorted(NAMES)


def test_many_trials_close_in_time_keep_their_names_apart(store):
    trials = trials_at(store, [START + timedelta(seconds=i) for i in range(60)])
    figure = plot_trials("auc", trials, title="auc")
    shown = assert_no_overlap(figure)
    assert sum(text.startswith("trial") for text in shown) >= 8  # thinned, not dropped


def test_the_stores_own_trials_seconds_apart_have_readable_labels(store):
    assert_no_overlap(plot("auc", store=store))  # two experiments, interleaved, seconds apart


@pytest.mark.filterwarnings("error")  # matplotlib's date locator warns when it cannot keep to few ticks
@pytest.mark.parametrize("span", [timedelta(hours=3), timedelta(days=3), timedelta(days=1000)])
def test_a_time_axis_over_any_span_draws_without_a_warning(store, span):
    ax = plot_trials("auc", trials_at(store, [START, START + span / 2, START + span]), title="auc").axes[0]
    assert ax.get_xlabel() == "trial start (UTC)"
    assert_no_overlap(ax.figure)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.floats(0, 10), st.sampled_from(["trial2", "trial4", "trial6"])), min_size=1, max_size=25),
       st.sampled_from([1, 60, 3600, 86400, 86400 * 365]), st.booleans())
def test_labels_never_overlap_whatever_the_start_times(store, runs, unit, small):
    starts = [START + timedelta(seconds=offset * unit) for offset, _ in runs]
    figure = plot_trials("auc", trials_at(store, starts, [pick for _, pick in runs]), title="auc")
    if small:
        figure.set_size_inches(6, 3)
        figure.set_dpi(80)
    shown = assert_no_overlap(figure)
    assert any(text.startswith("trial1") for text in shown)
