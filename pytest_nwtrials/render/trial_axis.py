"""The x axis of a tag plot (`api.plot_trials`): trials against their start time when each one's
name fits before the next trial's point, else against the order they started in, each named by
its tick label.

Trials recorded by one CI job or one test start seconds apart, often beside trials of other days:
on a time axis their names would be written over each other. Their order is what such a plot is
read for, so the axis becomes the trials' order, the start times moving to the axis' label. The
decision needs the axes' width before the figure is drawn; a figure may be drawn smaller later
(the HTML report draws it 6 inches wide), so a width of at most `NARROWEST` is assumed. On the
order axis, matplotlib's MaxNLocator thins the names to what the axis' length holds when it is
drawn, and they stand upright when they would not fit side by side.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes

NAME_SIZE = 7.0  # points: trial names written beside their points
TICK_SIZE = 8.0  # points: trial names as tick labels
NARROWEST = 288.0  # points: the widest the axes are assumed to be drawn at (4 inches)
_BESIDE = 4.0  # points between a point and its name, and between a name and the next point
_MARGINS = 1.1  # matplotlib leaves 5% of the data's span empty on each side
TIME_TICKS = 6  # date ticks at most: ConciseDateFormatter's labels are up to 6 characters or so


@lru_cache(maxsize=256)
def text_width(text: str, size: float) -> float:
    """The width in points of `text` drawn in matplotlib's default font at `size` points."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    width, _, _ = TextToPath().get_text_width_height_descent(text, FontProperties(size=size), ismath=False)
    return float(width)


def axes_width(ax: Axes) -> float:
    """The width in points the axes get, at most `NARROWEST`."""
    width = ax.bbox.width * 72 / ax.figure.dpi  # display units are pixels at the figure's dpi
    return min(width, NARROWEST) if width > 0 else NARROWEST


def names_fit_in_time(points: Sequence[tuple[datetime, str]], width: float) -> bool:
    """Whether, on a time axis `width` points wide, each trial's name (written right of its point)
    ends before the next trial's point. `points` are (start, name), in start order; a single
    trial is better named by its tick."""
    if len(points) < 2:
        return False  # a time axis around a single point shows days or years with nothing on them
    span = (points[-1][0] - points[0][0]).total_seconds()
    if span <= 0:
        return False
    per_second = width / _MARGINS / span
    return all((later[0] - earlier[0]).total_seconds() * per_second >= text_width(earlier[1], NAME_SIZE) + 2 * _BESIDE
               for earlier, later in zip(points, points[1:]))


def name_beside(ax: Axes, name: str, x: object, y: float) -> None:
    """Write the trial's name right of and above its point."""
    ax.annotate(name, (x, y), textcoords="offset points", xytext=(_BESIDE, _BESIDE), fontsize=NAME_SIZE)


def time_axis(ax: Axes) -> None:
    """Start times on the x axis, in dates as short as they can be."""
    from matplotlib.dates import HOURLY, MINUTELY, MONTHLY, SECONDLY, AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator(maxticks=TIME_TICKS)
    # with so few ticks, some spans (3 hours, 3 days, 3 years) need a coarser step than the
    # default ones, or the locator warns and picks its own
    for frequency, step in ((MONTHLY, 12), (HOURLY, 24), (MINUTELY, 60), (SECONDLY, 60)):
        locator.intervald[frequency] = [*locator.intervald[frequency], step]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_xlabel("trial start (UTC)")


def order_axis(ax: Axes, names: Sequence[str], first: datetime, last: datetime) -> None:
    """Trials 0..n-1 on the x axis, each tick labelled with its trial's name; upright when the
    names would not fit side by side. The label says when the first and the last started."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    def name_at(x: float, _: object) -> str:
        return names[int(x)] if float(x).is_integer() and 0 <= x < len(names) else ""

    ax.xaxis.set_major_locator(MaxNLocator(nbins="auto", integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(name_at))
    ax.set_xlim(-0.5, len(names) - 0.5)
    slot = axes_width(ax) / len(names)
    upright = any(text_width(name, TICK_SIZE) + 2 * _BESIDE > slot for name in names)
    ax.tick_params(axis="x", labelsize=TICK_SIZE, labelrotation=90 if upright else 0)
    ax.set_xlabel(f"trials in start order, {period(first, last)}")


def period(first: datetime, last: datetime) -> str:
    """``2026-03-02 09:30 to 10:30 UTC``: when the first and the last trial started, the last
    without what it shares with the first (``2026-03-02 09:30 to 03-04 08:00 UTC``)."""
    first, last = (when.astimezone(timezone.utc) if when.tzinfo is not None else when for when in (first, last))
    if last.date() == first.date():
        end = f"{last:%H:%M}"
    else:
        end = f"{last:%m-%d %H:%M}" if last.year == first.year else f"{last:%Y-%m-%d %H:%M}"
    return f"{first:%Y-%m-%d %H:%M}" + ("" if end == f"{first:%H:%M}" else f" to {end}") + " UTC"
