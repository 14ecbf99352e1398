"""The ``@pytest.mark.nw(...)`` marker's settings for one experiment, and the gate's failure.

Items and the `nw_trial` fixture read the closest marker into a `Comparison` (tolerances,
ignored tags, capture mode, repeats); a marker with a bad value fails that item, naming it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from ..compare.tolerance_rule import RULE, is_tolerance
from ..settings import CAPTURE_MODES, SettingsError, parse_repeat


class GateFailure(Exception):
    """An experiment failed the gate; the message is the whole report."""


@dataclass(frozen=True)
class Comparison:
    """Tolerance settings for one comparison, from markers or fixture arguments, and the
    marker's capture mode for the run."""

    rtol: float | None = None
    atol: float | None = None
    ignore: tuple[str, ...] = ()
    capture: str | None = None
    repeat: int | None = None  # runs of the experiment; None: --nw-repeat or ini nw_repeat decides


def comparison_from_marker(item: pytest.Item) -> Comparison:
    """Tolerances, ignored tags and capture mode from the closest ``@pytest.mark.nw(...)``."""
    marker = item.get_closest_marker("nw")
    if marker is None:
        return Comparison()
    kwargs: dict[str, Any] = dict(marker.kwargs)
    unknown = set(kwargs) - {"rtol", "atol", "ignore", "capture", "repeat"}
    if unknown or marker.args:
        raise GateFailure(
            f"{item.nodeid}: @pytest.mark.nw takes the keyword arguments rtol, atol, ignore, capture and repeat; got "
            f"{', '.join(sorted(unknown)) or 'positional arguments'}")
    for name in ("rtol", "atol"):
        value = kwargs.get(name)
        if value is not None and not is_tolerance(value):
            raise GateFailure(f"{item.nodeid}: @pytest.mark.nw {name} must be {RULE}, got {value!r}")
    capture = kwargs.get("capture")
    if capture is not None and capture not in CAPTURE_MODES:
        raise GateFailure(f"{item.nodeid}: @pytest.mark.nw capture must be one of {', '.join(CAPTURE_MODES)}, "
                          f"got {capture!r}")
    repeat = kwargs.get("repeat")
    if repeat is not None:
        try:
            repeat = parse_repeat(repeat, f"{item.nodeid}: @pytest.mark.nw repeat")
        except SettingsError as exc:
            raise GateFailure(str(exc)) from None
    ignore = kwargs.get("ignore", ())
    return Comparison(kwargs.get("rtol"), kwargs.get("atol"), (ignore,) if isinstance(ignore, str) else tuple(ignore),
                      capture, repeat)
