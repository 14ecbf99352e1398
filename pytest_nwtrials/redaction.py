"""Secrets: how they are recognised, and how they are masked in what is stored or reported.

One rule for every place a secret could end up (tagged values, arguments, noWorkflow's
database, the script's output, failure messages). A secret is

- the value of an environment variable whose name contains one of `SECRET_WORDS`, or matches
  one of the globs of ini ``nw_env_redact``;
- the value of an argument option whose name has one of `SECRET_OPTION_WORDS` as a word
  (``--token X``, ``--api-key=X``, ``--password X``, ``db.password=X``; any case).

Arguments holding a secret, or naming a secret option's value, are stored as `REDACTED` in
their place, so the recorded arguments (and the baseline entry named after them) stay the same
when the secret changes. Anywhere else, a secret is found by its text: values shorter than
`MIN_LENGTH` characters are not searched for, since masking "1" or "yes" everywhere would
destroy the record and protect nothing. A longer secret that is also ordinary text (a variable
``PIP_KEYRING_PROVIDER=subprocess``) is masked wherever that text appears: the rule errs on the
side of hiding.

This module imports only the standard library and `values/redaction.py`, which masks secrets
inside values (`scrub`) and imports nothing of this package.
"""
from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .values.redaction import ENCODINGS, REDACTED, scrub

# names that look like credentials: environment variables whose name contains one of them
SECRET_WORDS = ("TOKEN", "SECRET", "KEY", "PASSWORD", "PASS", "CREDENTIAL", "AUTH")
# argument options: a word of the option's name equal to one of these, or ending in one of
# SECRET_OPTION_SUFFIXES (``--apikey``, ``--accesstoken``); "--max-tokens" or "--passes" are not
SECRET_OPTION_WORDS = frozenset({"token", "secret", "key", "password", "passwd", "pass", "passphrase",
                                 "credential", "credentials", "auth"})
SECRET_OPTION_SUFFIXES = ("token", "secret", "key", "password", "passwd")
MIN_LENGTH = 6

_SECRET_NAME = re.compile("|".join(SECRET_WORDS), re.IGNORECASE)
# words of an option name: split at punctuation and at a lower-to-upper case change (apiKey)
_WORD_BREAK = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
_OPTION = re.compile(r"^(?P<name>-{0,2}[A-Za-z][\w.\-]*)=(?P<value>.*)$", re.DOTALL)


def is_secret(name: str, patterns: Sequence[str] = ()) -> bool:
    """True for an environment variable whose value must not be stored (`patterns`: extra globs)."""
    return bool(_SECRET_NAME.search(name)) or any(fnmatch.fnmatchcase(name.upper(), p.upper()) for p in patterns)


def is_secret_option(option: str) -> bool:
    """True for an option name (``--api-key``, ``db.password``) whose value is a secret."""
    words = [w.lower() for w in _WORD_BREAK.split(option.lstrip("-")) if w]
    return any(w in SECRET_OPTION_WORDS or w.endswith(SECRET_OPTION_SUFFIXES) for w in words)


def option_values(argv: Sequence[str]) -> list[tuple[int, str | None, str]]:
    """Where secret option values are in `argv`: (index, None, option) for a whole argument
    after a secret option, (index, value, option) for the value of ``--option=value``."""
    found: list[tuple[int, str | None, str]] = []
    for index, arg in enumerate(argv):
        match = _OPTION.match(arg)
        if match is not None:
            if is_secret_option(match["name"]):
                found.append((index, match["value"], match["name"]))
        elif arg.startswith("-") and len(arg) > 2 and is_secret_option(arg) and index + 1 < len(argv):
            # the next argument is the value, whatever it looks like: a secret may start with "-"
            found.append((index + 1, None, arg))
    return found


@dataclass(frozen=True)
class Secrets:
    """The secret values of one run, and how to mask them. Empty (false) when there are none.

    `sources` names where each value came from ("MY_API_TOKEN", "argument --token"), for
    notes; names are not secret.
    """

    name_patterns: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], name_patterns: Iterable[str] = (),
                         argv: Sequence[str] = ()) -> Secrets:
        """The secrets of a run: `environ`'s secret variables and `argv`'s secret options."""
        patterns = tuple(name_patterns)
        sources = {value: name for name, value in sorted(environ.items())
                   if is_secret(name, patterns) and len(value) >= MIN_LENGTH}
        return cls(patterns, sources).with_argv(argv)

    def with_argv(self, argv: Sequence[str]) -> Secrets:
        """These secrets plus the values of `argv`'s secret options."""
        sources = dict(self.sources)
        for index, value, option in option_values(argv):
            value = argv[index] if value is None else value
            if len(value) >= MIN_LENGTH:
                sources.setdefault(value, f"argument {option}")
        return Secrets(self.name_patterns, sources) if len(sources) != len(self.sources) else self

    def __bool__(self) -> bool:
        return bool(self.sources)

    @cached_property
    def forms(self) -> tuple[tuple[str, str], ...]:
        """(text to find, its source): each secret as itself and as repr() and JSON escape it,
        longest first so that a secret inside another is not masked half."""
        forms: dict[str, str] = {}
        for value, source in self.sources.items():
            for form in (value, repr(value)[1:-1], json.dumps(value)[1:-1]):
                forms.setdefault(form, source)
        return tuple(sorted(forms.items(), key=lambda item: len(item[0]), reverse=True))

    @cached_property
    def _encoded(self) -> tuple[tuple[bytes, bytes, str, str], ...]:
        """(encoded secret, `REDACTED` in the same encoding, source, encoding), for each form
        and encoding."""
        found: dict[bytes, tuple[bytes, str, str]] = {}
        for form, source in self.forms:
            for encoding in ENCODINGS:
                found.setdefault(form.encode(encoding), (REDACTED.encode(encoding), source, encoding))
        quads = ((secret, *rest) for secret, rest in found.items())
        return tuple(sorted(quads, key=lambda item: len(item[0]), reverse=True))

    def mask_text(self, text: str, hits: set[str] | None = None) -> str:
        """`text` with every secret replaced by `REDACTED`; the sources found go to `hits`."""
        for form, source in self.forms:
            if form in text:
                text = text.replace(form, REDACTED)
                if hits is not None:
                    hits.add(source)
        return text

    def mask_bytes(self, data: bytes, hits: set[str] | None = None) -> bytes:
        """`data` with every secret, in each of `ENCODINGS`, replaced by `REDACTED`."""
        for secret, redacted, source, _ in self._encoded:
            if secret in data:
                data = data.replace(secret, redacted)
                if hits is not None:
                    hits.add(source)
        return data

    def found_in(self, data: bytes, encodings: Sequence[str] = ENCODINGS) -> bool:
        """Whether `data` holds a secret in one of `encodings`."""
        return any(secret in data for secret, _, _, encoding in self._encoded if encoding in encodings)

    def mask_doc(self, doc: Any, keys: bool = False) -> Any:
        """A JSON document with every string value masked, and with `keys` every key too (keys
        are left alone by default: they are a document's structure, which a secret that happens
        to be an ordinary word must not break)."""
        if not self:
            return doc
        if isinstance(doc, str):
            return self.mask_text(doc)
        if isinstance(doc, list):
            return [self.mask_doc(item, keys) for item in doc]
        if isinstance(doc, dict):
            return {self.mask_text(k) if keys and isinstance(k, str) else k: self.mask_doc(v, keys)
                    for k, v in doc.items()}
        return doc

    def mask_argv(self, argv: Sequence[str]) -> tuple[str, ...]:
        """`argv` as it is stored: secret option values and secrets inside arguments masked."""
        masked = [self.mask_text(arg) for arg in argv]
        for index, value, _ in option_values(argv):
            if value is None:
                masked[index] = REDACTED
            else:
                masked[index] = argv[index][: len(argv[index]) - len(value)] + REDACTED
        return tuple(masked)

    def mask_environ(self, environ: Mapping[str, str]) -> dict[str, str]:
        """`environ` as it is stored: secret variables as `REDACTED`, secrets inside others masked."""
        return {name: REDACTED if is_secret(name, self.name_patterns) else self.mask_text(value)
                for name, value in environ.items()}

    def scrub(self, value: Any, hits: set[str] | None = None) -> Any:
        """`value` with its secrets masked, as far as its structure is known (see
        `values/redaction.py`); the value itself when it holds none."""
        if not self:
            return value
        return scrub(value, self, hits)

    @staticmethod
    def note(masked: Mapping[str, set[str]]) -> str:
        """A note saying which tags (`masked`: tag name -> sources) had secrets masked, and whose."""
        tags = ", ".join(repr(name) for name in masked)
        sources = ", ".join(sorted(set().union(*masked.values())))
        return f"secret values masked as {REDACTED} in tag{'s' if len(masked) > 1 else ''} {tags} ({sources})"
