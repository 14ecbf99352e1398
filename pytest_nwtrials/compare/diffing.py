"""The structured difference of two trials: values, inputs, slices and operations.

The gate, the `nw_trial` fixture and the public `trial_diff(a, b)` all build a `TrialDiff`
here; it renders as text, and as HTML in Jupyter. No pytest in here.
"""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..provenance.reader import Op, Slice
from ..render.slices import format_missing_tag
from ..render.text import format_changes
from ..store.record_fields import no_provenance_note
from .bands import PHRASE, apply_bands
from .engine import Change, Kind, Rules, diff_tags
from .explain import Explained, InputChange, ProvenanceRecord, explain_slices, input_changes, why_lines
from .missing_tags import MissingTag, missing_tag
from .slices import OpChange, SliceDiff, diff_operations, diff_slices
from .spread import PathSpread
from .stability import listed


@dataclass(frozen=True)
class TrialDiff:
    """How the `new` trial differs from the `old` one (labels name them in reports)."""

    old: str
    new: str
    values: tuple[Change, ...]
    tags: tuple[str, ...]  # the tag names whose values changed
    inputs: tuple[InputChange, ...]
    slices: tuple[SliceDiff, ...]
    operations: tuple[OpChange, ...]  # of the whole sequence; empty unless it was compared
    argv_changed: bool
    has_provenance: bool = True
    missing: tuple[MissingTag, ...] = ()  # the baseline's tags the new trial did not make
    sequences: tuple[Slice, Slice] | None = None  # both operation sequences, when they were compared
    code_same: bool | None = None  # the experiment's code digests are equal; None: a side has none
    facts: Mapping[str, Any] | None = None  # the new trial's inputs: the objects it found unseeded
    new_operations: tuple[Op, ...] = ()  # the new trial's sequence: whether it seeded a global generator
    within: tuple[str, ...] = ()  # paths whose change lay inside the baseline's run-to-run spread (compare/bands.py)
    # why a side has no provenance, when it was recorded without it on purpose (`no_provenance_note`)
    notes: tuple[str, ...] = ()
    # the experiment's code in each trial, by the file names its operations give (`ProvenanceRecord.sources`)
    sources: tuple[Mapping[str, str], Mapping[str, str]] = ({}, {})
    # `explained`'s results by `identical`: the report's pictures reuse the why-lines' explanations
    _explained: dict[bool | None, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    @property
    def empty(self) -> bool:
        """True when values, arguments and (if compared) operations all match."""
        return not self.values and not self.argv_changed and not self.operations

    def why(self, *, outputs: bool = False, identical: bool | None = None, fold: bool = False) -> list[str]:
        """The "why it changed" lines; files the trials wrote differently only with `outputs`.

        A value that changed with the same recorded inputs, while the code, input files and
        libraries did not, "varies between identical runs"; `identical=True` says the trials
        are runs of the same experiment with the same inputs (repeats), False never says so.
        With `fold`, what a cap leaves out follows a `render.slices.Fold` line (`folded` drops it).
        """
        lines = why_lines(self.inputs, self.slices, outputs=outputs, identical=identical,
                          code_same=self.code_same, facts=self.facts, operations=self.new_operations, fold=fold,
                          explained=self.explained(identical))
        for missing in self.missing:
            lines += format_missing_tag(missing)
        if self.operations:
            sequences = self.sequences or (None, None)
            lines += why_lines([], [SliceDiff("the experiment's operation sequence", self.operations, *sequences)],
                               fold=fold)
        return lines

    def explained(self, identical: bool | None = None) -> tuple[list[Explained], list[SliceDiff], bool]:
        """`explain.explain_slices` of the value slices (see `why`), made once per `identical`."""
        if identical not in self._explained:
            self._explained[identical] = explain_slices(self.inputs, self.slices, identical=identical,
                                                        code_same=self.code_same, facts=self.facts,
                                                        operations=self.new_operations)
        return self._explained[identical]

    def value_lines(self) -> list[str]:
        """The value changes, then the paths matched within the recorded run-to-run spread."""
        lines = format_changes(self.values)
        if self.within:
            lines.append(f"  matched within {PHRASE}: {listed(self.within)}")
        return lines

    def lines(self, *, outputs: bool = False) -> list[str]:
        """The text report: value changes, then why they changed."""
        lines = self.value_lines()
        why = self.why(outputs=outputs)
        if why:
            lines += ["", "Why it changed:", *why]
        return lines

    def text(self, *, outputs: bool = False) -> str:
        """The whole report as text: a one-line verdict when the trials match."""
        notes = [f"({note})" for note in self.notes]
        if self.empty:
            within = f" within {PHRASE} ({listed(self.within)})" if self.within else ""
            return "\n".join([f"{self.new} matches {self.old}{within}", *notes])
        return "\n".join([f"{self.new} differs from {self.old}", *self.lines(outputs=outputs), *notes])

    def __str__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        """Jupyter's rendering: a table of value changes and the why-section as text."""
        head = (f"<p><b>{html.escape(self.new)}</b> {'matches' if self.empty else 'differs from'} "
                f"<b>{html.escape(self.old)}</b></p>")
        head += "".join(f"<p><i>{html.escape(note)}</i></p>" for note in self.notes)
        if self.empty:
            return head
        rows = "".join(
            f"<tr><td><code>{html.escape(c.path)}</code></td><td>{html.escape(str(c.kind))}</td>"
            f"<td>{self._html_value(c.old)}</td><td>{self._html_value(c.new)}</td></tr>"
            for c in self.values)
        table = ("<table><thead><tr><th>path</th><th>change</th><th>old</th><th>new</th></tr></thead>"
                 f"<tbody>{rows}</tbody></table>") if rows else ""
        why = self.why(outputs=self.whole)
        why_html = f"<h4>Why it changed</h4><pre>{html.escape(chr(10).join(why))}</pre>" if why else ""
        return f"<div>{head}{table}{why_html}</div>"

    #: values and outputs shown whole rather than cut to a width (noWorkflow's API shows them so)
    whole = False

    def _html_value(self, value: Any) -> str:
        return html.escape(_short(value))


# why a trial has no provenance, by the capture mode it was recorded with
def provenance_notes(*trials: Any) -> tuple[str, ...]:
    """`no_provenance_note` of each of `trials` that has one."""
    return tuple(note for note in map(no_provenance_note, trials) if note)


def _short(value: Any) -> str:
    from ..values.codec import summarize

    return summarize(value, 60)


def diff_trials(old_label: str, new_label: str,
                old_values: Mapping[str, Any], new_values: Mapping[str, Any], rules: Rules | None,
                old_inputs: Mapping[str, Any], old_argv: Sequence[str],
                new_inputs: Mapping[str, Any], new_argv: Sequence[str],
                old_record: ProvenanceRecord | None, new_record: ProvenanceRecord | None,
                *, operations: bool = False, spreads: Mapping[str, PathSpread] | None = None) -> TrialDiff:
    """Compare two trials; with `operations`, their whole operation sequences too. A value change
    inside the old side's recorded run-to-run spread (`spreads`, by path) is no change."""
    banded = apply_bands(diff_tags(old_values, new_values, rules), old_values, new_values, spreads or {}, rules)
    changes = banded.changes
    tags = tuple(sorted(name for name in set(old_values) | set(new_values)
                        if any(c.path == name or c.path.startswith(name + "[") for c in changes)))
    slices: list[SliceDiff] = []
    ops: tuple[OpChange, ...] = ()
    missing: list[MissingTag] = []
    sequences = None
    if old_record is not None:
        missing = [missing_tag(c.path, old_record.slices[c.path], new_record.operations if new_record else ())
                   for c in changes if c.kind is Kind.REMOVED and c.path in old_record.slices]
    if old_record is not None and new_record is not None:
        slices = [diff_slices(old_record.slices[t], new_record.slices[t])
                  for t in tags if t in old_record.slices and t in new_record.slices]
        if operations:
            ops = diff_operations(old_record.operations, new_record.operations)
            # as slices without edges: what tells which steps a reordered one swapped with
            sequences = (Slice("", old_record.operations, 1), Slice("", new_record.operations, 1))
    return TrialDiff(
        old=old_label, new=new_label, values=tuple(changes), tags=tags,
        # an input file is tied to the tags that changed, of those whose slices read it
        inputs=tuple(replace(change, tags=tuple(t for t in change.tags if t in tags))
                     for change in input_changes(old_inputs, old_argv, new_inputs, new_argv)),
        slices=tuple(slices), operations=ops,
        argv_changed=tuple(old_argv) != tuple(new_argv),
        has_provenance=old_record is not None and new_record is not None,
        missing=tuple(missing), sequences=sequences, code_same=_same_source(old_inputs, new_inputs),
        facts=new_inputs, new_operations=new_record.operations if new_record is not None else (),
        within=banded.within,
        sources=(_sources(old_record), _sources(new_record)),
    )


def _sources(record: ProvenanceRecord | None) -> Mapping[str, str]:
    return record.sources if record is not None else {}


def _same_source(old_inputs: Mapping[str, Any], new_inputs: Mapping[str, Any]) -> bool | None:
    """Whether both trials recorded the digest of the experiment's code and it is the same."""
    old, new = old_inputs.get("source"), new_inputs.get("source")
    return old == new if isinstance(old, str) and isinstance(new, str) else None
