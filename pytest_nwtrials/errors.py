"""The error of damaged or hand-edited store and baseline files."""
from __future__ import annotations

from typing import Any


class StoreError(ValueError):
    """A store or baseline file is unusable; the message names the file and what to do.

    A ValueError, so that callers that already treat undecodable values as bad data (``except
    ValueError``) keep doing so; value decoding (`values.decode`) raises it too.
    """


def short(value: Any, limit: int = 60) -> str:
    """The repr of `value` for a message, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
