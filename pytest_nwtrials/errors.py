"""The error of damaged or hand-edited store and baseline files."""
from __future__ import annotations


class StoreError(ValueError):
    """A store or baseline file is unusable; the message names the file and what to do.

    A ValueError, so that callers that already treat undecodable values as bad data (``except
    ValueError``) keep doing so; value decoding (`values.decode`) raises it too.
    """
