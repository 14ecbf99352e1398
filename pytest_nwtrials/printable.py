"""Text from committed or stored files, made safe to show in a terminal or an XML attribute.

Experiment paths, tag names, trial names, arguments, messages and string values come from
trial records and baseline entries that anyone who can commit may have written. Printed raw, an
ANSI escape sequence in them could clear the screen, retitle the terminal or hide lines, and a
NUL or other control character makes a JUnit XML file unreadable. Every sink that shows such
text (the terminal summary, failure reports, skip reasons, usage errors, the `nwtrials`
command, JUnit properties, the HTML report) passes it through `printable`.
"""
from __future__ import annotations

import re
from typing import Any

# C0 controls but tab and newline, DEL and C1 controls (ESC, CSI, OSC...), lone surrogates
# (which cannot be encoded to UTF-8), the two non-characters XML forbids, and the bidirectional
# controls that can make a line read differently from what it holds.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff"
                          "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def json_escaped(text: str) -> str:
    """JSON text with the characters `printable` escapes written as JSON ``\\uXXXX`` escapes.

    For ``json.dumps(..., ensure_ascii=False)`` output, where such characters can only be inside
    strings (it already escapes the C0 ones): the same data, safe to print and to encode.
    """
    return _UNPRINTABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def printable(text: Any) -> str:
    """`text` (made a string) with control characters written as visible escapes (``\\x1b``,
    ``\\u202e``); newlines and tabs are kept, so multi-line reports stay multi-line."""
    return _UNPRINTABLE.sub(_escape, text if isinstance(text, str) else str(text))


class PrintableStream:
    """A text stream that writes through `printable`, for a command whose whole output quotes
    names and values from stored files."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(printable(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding...
        return getattr(self._stream, name)
