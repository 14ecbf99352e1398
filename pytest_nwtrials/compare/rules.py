"""Tolerances and ignore rules for the diff engine, and the path syntax they match against.

A path is a tag name followed by accessors, the way Python would write them: `summary['auc']`,
`layers[2]`, `frame['price']`, `grid[(1, 'a')]`. Every path also has a dotted spelling, used
only for matching: each accessor becomes `.` plus the key, unquoted when it is a string, so
`summary['auc']` is `summary.auc`, `layers[2]` is `layers.2` and `frame['a b']` is `frame.a b`.

A pattern (from the `nw_tolerances` and `nw_ignore` settings) is a glob over either spelling where
only `*` (any run of characters, dots and brackets included) and `?` (one character) are
wildcards; everything else, `[` and `]` included, is literal. A pattern that matches a path
also covers everything inside it: `summary` applies to `summary['auc']`.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

from .tolerance_rule import RULE, is_tolerance, tolerance_from_text

BUILTIN = (1e-7, 0.0)  # rtol, atol when nothing else is set
_CACHE_SIZE = 4096


def child_path(path: str, key: Any) -> str:
    """The path of `key` inside `path`: `summary` + 'auc' -> `summary['auc']`."""
    numpy = sys.modules.get("numpy")  # a numpy key exists only once numpy is imported: not imported here
    if numpy is not None and isinstance(key, numpy.generic):
        key = key.item()  # `layers[2]`, not `layers[np.int64(2)]`
    try:
        text = repr(key)
    except Exception:
        text = f"<{type(key).__qualname__}>"
    return f"{path}[{text}]"


def split_path(path: str) -> list[str]:
    """[tag, key text, key text, ...]: `summary['a'][2]` -> ['summary', "'a'", '2']."""
    start = path.find("[")
    if start < 0:
        return [path]
    parts = [path[:start]]
    i = start
    while i < len(path):
        end = _closing_bracket(path, i)
        if path[i] != "[" or end < 0:
            parts[-1] += path[i:]  # not accessor syntax: keep the rest as text
            break
        parts.append(path[i + 1 : end])
        i = end + 1
    return parts


def _closing_bracket(text: str, start: int) -> int:
    depth, quote, i = 0, "", start
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return i if char == "]" else -1
        i += 1
    return -1


def dotted_path(path: str) -> str:
    """The dotted spelling used for matching: `summary['auc'][0]` -> `summary.auc.0`."""
    tag, *keys = split_path(path)
    return tag + "".join("." + _dotted_key(key) for key in keys)


def _dotted_key(text: str) -> str:
    if text[:1] in ("'", '"'):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(value, str):
            return value
    return text


def _spellings(path: str) -> tuple[str, ...]:
    """Both spellings of the path and of each path containing it, narrowest last."""
    tag, *keys = split_path(path)
    found = [tag]
    bracketed, dotted = tag, tag
    for key in keys:
        bracketed += f"[{key}]"
        dotted += "." + _dotted_key(key)
        found += [bracketed, dotted]
    return tuple(found)


def _compile(pattern: str) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body + r"\Z", re.DOTALL)


def _specificity(pattern: str) -> int:
    return sum(c not in "*?" for c in pattern)


@dataclass(frozen=True)
class Tolerance:
    """rtol/atol set at one level; None means "not set here", so the next level decides."""

    rtol: float | None = None
    atol: float | None = None

    def __post_init__(self) -> None:
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if value is None:
                continue
            if not is_tolerance(value):
                raise ValueError(f"{name} must be {RULE}, got {value!r}")


class ResolvedTolerance(NamedTuple):
    rtol: float
    atol: float
    explicit: bool  # set by the experiment, an ini pattern or the marker/CLI, not the built-in default


_NO_TOLERANCE = Tolerance()


class Rules:
    """Resolves the tolerance for a path and whether it is ignored. Narrowest wins.

    Order, per field (rtol and atol resolve independently): the tag's own tolerance (from
    `tag(name, value, rtol=...)`), then matching patterns from the most specific (most
    non-wildcard characters; ties: first listed), then `default`, then rtol=1e-7, atol=0.
    """

    def __init__(
        self,
        *,
        default: Tolerance = _NO_TOLERANCE,
        patterns: Sequence[tuple[str, Tolerance]] = (),
        ignore: Sequence[str] = (),
        tag_tolerances: Mapping[str, Tolerance] | None = None,
    ) -> None:
        self.default = default
        ordered = sorted(enumerate(patterns), key=lambda item: (-_specificity(item[1][0]), item[0]))
        self._patterns = [(_compile(pattern), tolerance) for _, (pattern, tolerance) in ordered]
        self._ignore = [_compile(pattern) for pattern in ignore]
        self.tag_tolerances = dict(tag_tolerances or {})
        # Nested values ask about the same paths over and over; bounded so a huge list cannot grow it.
        self._tolerances: dict[str, ResolvedTolerance] = {}
        self._ignored: dict[str, bool] = {}

    def __repr__(self) -> str:
        return (f"Rules(default={self.default!r}, patterns={len(self._patterns)}, "
                f"ignore={len(self._ignore)}, tag_tolerances={self.tag_tolerances!r})")

    def tolerance_for(self, path: str) -> ResolvedTolerance:
        found = self._tolerances.get(path)
        if found is None:
            if len(self._tolerances) >= _CACHE_SIZE:
                self._tolerances.clear()
            found = self._tolerances[path] = self._tolerance_for(path)
        return found

    def ignored(self, path: str) -> bool:
        if not self._ignore:
            return False
        found = self._ignored.get(path)
        if found is None:
            if len(self._ignored) >= _CACHE_SIZE:
                self._ignored.clear()
            spellings = _spellings(path)
            found = self._ignored[path] = any(regex.match(s) for regex in self._ignore for s in spellings)
        return found

    def _tolerance_for(self, path: str) -> ResolvedTolerance:
        levels: list[Tolerance] = []
        tag = split_path(path)[0]
        if tag in self.tag_tolerances:
            levels.append(self.tag_tolerances[tag])
        if self._patterns:
            spellings = _spellings(path)
            levels += [tol for regex, tol in self._patterns if any(regex.match(s) for s in spellings)]
        levels.append(self.default)
        rtol = next((level.rtol for level in levels if level.rtol is not None), None)
        atol = next((level.atol for level in levels if level.atol is not None), None)
        return ResolvedTolerance(
            float(BUILTIN[0] if rtol is None else rtol),
            float(BUILTIN[1] if atol is None else atol),
            rtol is not None or atol is not None,
        )


class FixedRules(Rules):
    """One tolerance everywhere and nothing ignored: for the elements of object arrays."""

    def __init__(self, tolerance: ResolvedTolerance) -> None:
        super().__init__()
        self._fixed = tolerance

    def _tolerance_for(self, path: str) -> ResolvedTolerance:
        return self._fixed


_LINE = re.compile(r"(?P<pattern>.*?)\s*:\s*(?P<settings>(?:rtol|atol)\s*=.*)\Z")
_FORM = "expected 'PATTERN: rtol=1e-3 atol=0.01' (rtol=, atol= or both)"


def parse_tolerance_lines(lines: Iterable[str]) -> list[tuple[str, Tolerance]]:
    """Parse ini lines `PATTERN: rtol=1e-3 atol=0.01`; blank lines and `#` comments are skipped."""
    parsed: list[tuple[str, Tolerance]] = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None or not match.group("pattern"):
            raise ValueError(f"bad tolerance line {raw!r}: {_FORM}")
        settings: dict[str, float] = {}
        for token in re.sub(r"\s*=\s*", "=", match.group("settings")).replace(",", " ").split():
            name, _, number = token.partition("=")
            if name not in ("rtol", "atol"):
                raise ValueError(f"bad tolerance line {raw!r}: unknown setting {name!r}; {_FORM}")
            if name in settings:
                raise ValueError(f"bad tolerance line {raw!r}: {name} is given twice; {_FORM}")
            value = tolerance_from_text(number)
            if value is None:
                raise ValueError(f"bad tolerance line {raw!r}: {name}={number!r} is not {RULE}; {_FORM}")
            settings[name] = value
        parsed.append((match.group("pattern"), Tolerance(**settings)))
    return parsed
