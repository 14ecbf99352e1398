"""Why a trial differs from its baseline: what it depended on, and where its operations diverged.

A trial's `ProvenanceRecord` keeps its operation sequence and the slice of every tag (and of all
taggings of a tag tagged more than once); `read_record` makes one out of noWorkflow's database.
Its file format, and reading it back, belong to the store (`store/records.py`).
Input changes compare what the trial recorded besides its values: data files by content hash,
arguments, library versions, the experiment's own modules, the Python version. Files the experiment
wrote are its outputs: compared apart from its inputs, and shown only when asked.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..provenance.reader import FileAccess, Op, Slice, read_file_accesses, read_operations, read_slices
from ..render.slices import format_slice_diff, indented
from ..store.records import ProvenanceRecord
from . import rootcause
from .slices import SliceDiff
from .variation import between_identical_runs, unseeded

ROOT_MARK = "<rootdir>"


def read_record(db_path: Path, trial_id: str, tags: Iterable[str], root: Path) -> ProvenanceRecord:
    """The record of a finished capture; raises `provenance.ProvenanceError` when unreadable.

    The rootdir's absolute path in values becomes ``<rootdir>``, so that records from two
    checkouts of a project compare equal and baselines hold no absolute path.
    """
    prefixes = sorted({str(root), str(Path(root).resolve())}, key=len, reverse=True)
    cache: dict[Op, Op] = {}

    def portable(op: Op) -> Op:
        if op not in cache:
            value = op.value
            for prefix in prefixes:
                value = value.replace(prefix, ROOT_MARK)
            cache[op] = op if value == op.value else replace(op, value=value)
        return cache[op]

    def portable_slices(found: dict[str, Slice]) -> dict[str, Slice]:
        return {tag: replace(s, ops=tuple(portable(op) for op in s.ops)) for tag, s in found.items()}

    slices = portable_slices(read_slices(db_path, trial_id, list(tags)))
    repeated = [tag for tag, s in slices.items() if s.events > 1]
    unions = portable_slices(read_slices(db_path, trial_id, repeated, union=True)) if repeated else {}
    return ProvenanceRecord(tuple(portable(op) for op in read_operations(db_path, trial_id)), slices, unions)


def file_inputs(accesses: Sequence[FileAccess]) -> dict[str, dict[str, str | None]]:
    """Each data file once: the content it had when first read, and when last written.

    A file written before it is first read has no "read" content: what the trial read there
    it wrote itself. `input_changes` tells inputs from outputs with both fields.
    """
    files: dict[str, dict[str, str | None]] = {}
    for access in accesses:
        entry = files.setdefault(access.path, {"read": None, "written": None})
        reads = "r" in access.mode or "+" in access.mode
        writes = any(m in access.mode for m in "wax+") or access.hash_after != access.hash_before
        if reads and entry["read"] is None and entry["written"] is None:
            entry["read"] = access.hash_before
        if writes:
            entry["written"] = access.hash_after
    return files


def read_files(db_path: Path, trial_id: str, root: Path, slices: Mapping[str, Slice] | None = None
               ) -> dict[str, Any]:
    """The trial's data files (`file_inputs`); a file some tags depend on lists them under "tags"."""
    accesses = read_file_accesses(db_path, trial_id, root)
    files: dict[str, Any] = file_inputs(accesses)
    for path, tags in slice_tags(accesses, slices or {}).items():
        files[path]["tags"] = tags
    return files


def slice_tags(accesses: Sequence[FileAccess], slices: Mapping[str, Slice]) -> dict[str, list[str]]:
    """For each file, the tags whose slice holds the operation that opened it: a change of the
    file is a change of what they were computed from."""
    paths: dict[tuple[str, str, int], set[str]] = {}
    for access in accesses:
        if access.opened_by is not None:
            paths.setdefault(access.opened_by, set()).add(access.path)
    found: dict[str, set[str]] = {}
    for tag, s in slices.items():
        for op in s.ops:
            for path in paths.get((op.code, op.file, op.line), ()):
                found.setdefault(path, set()).add(tag)
    return {path: sorted(tags) for path, tags in found.items()}


@dataclass(frozen=True)
class InputChange:
    """Something the trial depended on that differs from the baseline's."""

    what: str  # "input file", "output file", "arguments", "library", "module", "python"
    name: str
    old: Any
    new: Any
    tags: tuple[str, ...] = ()  # of an input file: the changed tags whose slices read it

    def describe(self, *, tied: bool = True) -> str:
        """One line for the inputs list; `tied` names the tags whose provenance reads the file."""
        def short(value: Any) -> str:
            if value is None:
                return "absent"
            return value[:10] if isinstance(value, str) and len(value) == 40 else str(value)

        if self.what == "arguments":
            return f"arguments changed: {list(self.old)} -> {list(self.new)}"
        if self.what == "python":
            return f"Python changed: {self.old} -> {self.new}"
        hashes = f"(sha1 {short(self.old)} -> {short(self.new)})"
        if self.what == "output file":
            if self.old is None:
                return f"now writes {self.name} {hashes}"
            if self.new is None:
                return f"no longer writes {self.name} {hashes}"
            return f"wrote a different {self.name} {hashes}"
        if self.what in ("input file", "module"):
            tags = f", in the provenance of {', '.join(self.tags)}" if self.tags and tied else ""
            if self.old is None:
                return f"{self.what} {self.name} is new {hashes}{tags}"
            if self.new is None:
                return f"{self.what} {self.name} is no longer used {hashes}{tags}"
            return f"{self.what} {self.name} changed {hashes}{tags}"
        return f"{self.what} {self.name} changed: {short(self.old)} -> {short(self.new)}"


def _mapping_changes(what: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[InputChange]:
    return [InputChange(what, name, old.get(name), new.get(name))
            for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name)]


def input_changes(old_inputs: Mapping[str, Any], old_argv: Sequence[str],
                  new_inputs: Mapping[str, Any], new_argv: Sequence[str]) -> list[InputChange]:
    """What differs between two trials' inputs; a side that did not record something is skipped.

    A file that either trial wrote is an output of the experiment, not an input: results it
    saves, and state it keeps between runs (a shelve, a counter it reads and rewrites), whose
    content the experiment's previous run produced. Its written content is compared as an
    "output file"; `why_lines` shows those only when asked. An input file names the tags
    whose slices read it, in either trial.
    """
    changes: list[InputChange] = []
    if list(old_argv) != list(new_argv):
        changes.append(InputChange("arguments", "", tuple(old_argv), tuple(new_argv)))
    old_files, new_files = old_inputs.get("files"), new_inputs.get("files")
    if old_files is not None and new_files is not None:
        written = {path for files in (old_files, new_files) for path, f in files.items() if f.get("written")}
        changes += [
            replace(change, tags=tuple(sorted({*old_files.get(change.name, {}).get("tags", ()),
                                               *new_files.get(change.name, {}).get("tags", ())})))
            for change in _mapping_changes(
                "input file",
                {path: f["read"] for path, f in old_files.items() if f.get("read") and path not in written},
                {path: f["read"] for path, f in new_files.items() if f.get("read") and path not in written})]
        changes += _mapping_changes(
            "output file",
            {path: f["written"] for path, f in old_files.items() if f.get("written")},
            {path: f["written"] for path, f in new_files.items() if f.get("written")})
    for key, what in (("libraries", "library"), ("modules", "module")):
        if key in old_inputs and key in new_inputs:
            changes += _mapping_changes(what, old_inputs[key], new_inputs[key])
    old_python, new_python = old_inputs.get("python"), new_inputs.get("python")
    if old_python and new_python and old_python != new_python:
        changes.append(InputChange("python", "", old_python, new_python))
    return changes


@dataclass(frozen=True)
class Explained:
    """Tags whose slice diffs tell one story: the longest of their diffs and its explanation."""

    tags: tuple[str, ...]
    diff: SliceDiff
    explanation: rootcause.Explanation


def explain_slices(inputs: Sequence[InputChange], slice_diffs: Sequence[SliceDiff], *,
                   identical: bool | None = None, code_same: bool | None = None,
                   facts: Mapping[str, Any] | None = None, operations: Sequence[Op] = ()
                   ) -> tuple[list[Explained], list[SliceDiff], bool]:
    """The explained slice diffs, grouped by their headline; the diffs that no recorded step
    explains; and whether the runs were identical (see `why_lines` for the arguments)."""
    explained = [(diff, rootcause.explain(diff.old, diff.new, diff.changes, inputs)) for diff in slice_diffs]
    if identical is None:
        identical = not any(change.what != "output file" for change in inputs) and (
            code_same if code_same is not None else not any(_changed_code(e) for _diff, e in explained))
    groups: dict[tuple, list[tuple[SliceDiff, rootcause.Explanation]]] = {}
    for diff, explanation in explained:
        if explanation is not None:
            if identical:
                explanation = between_identical_runs(explanation, diff.new, facts, operations)
            change = explanation.change
            key = (explanation.verdict, change and (change.kind, change.old, change.new),
                   tuple((r.step.old, r.step.new) for r in explanation.reorders))
            groups.setdefault(key, []).append((diff, explanation))
    stories = []
    for members in groups.values():
        longest, explanation = max(members, key=lambda member: len(member[0].changes))
        stories.append(Explained(tuple(diff.tag for diff, _ in members), longest, explanation))
    return stories, [diff for diff, explanation in explained if explanation is None], identical


def why_lines(inputs: Sequence[InputChange], slice_diffs: Sequence[SliceDiff], *, limit: int = 12,
              outputs: bool = False, identical: bool | None = None, code_same: bool | None = None,
              facts: Mapping[str, Any] | None = None, operations: Sequence[Op] = (), fold: bool = False,
              explained: tuple[list[Explained], list[SliceDiff], bool] | None = None) -> list[str]:
    """The "why it changed" section: input changes first, then the slice diffs.

    Output files the experiment wrote differently are a consequence, not a cause: they are
    listed (after the inputs) only with `outputs`.

    A value that changed with the same recorded inputs, in runs whose code, input files,
    libraries, modules, Python and arguments are the same, *varies between identical runs*: it
    is named so, with the unseeded constructs behind it (`variation`). `identical` says whether
    the runs were identical (True for repeats of one run); None tells it from `inputs` and
    `code_same` (the experiment's code digests are equal; None when a side did not record one:
    then no slice may have a root that is a change of the code). `facts` are the new trial's
    inputs (the objects the capture found unseeded), `operations` its whole sequence.

    Tags whose slices have the same headline (root cause, first divergence, reordered steps)
    tell one story: it is shown once, with the longest of their diffs, and the other tags are
    named with it. With `fold`, lines past a cap follow a `render.slices.Fold` line.
    `explained` is what `explain_slices` gave for these arguments, when it already ran.
    """
    lines = [f"  {change.describe()}" for change in inputs if change.what != "output file"]
    if outputs:
        lines += [f"  {change.describe()}" for change in inputs if change.what == "output file"]
    stories, unexplained, identical = explained or explain_slices(
        inputs, slice_diffs, identical=identical, code_same=code_same, facts=facts, operations=operations)
    for story in stories:
        lines.append(f"  {story_head(story)}:")
        lines += [indented("  ", line)
                  for line in format_slice_diff(story.diff, limit=limit, explanation=story.explanation, fold=fold)]
    for diff in unexplained:
        lines += no_step_differs(diff, identical, facts, operations)
    return lines


def story_head(story: Explained) -> str:
    """``in the provenance of auc (and loss)``."""
    also = f" (and {', '.join(story.tags[1:])})" if len(story.tags) > 1 else ""
    return f"in the provenance of {story.tags[0]}{also}"


def no_step_differs(diff: SliceDiff, identical: bool, facts: Mapping[str, Any] | None,
                    operations: Sequence[Op]) -> list[str]:
    """What a changed value whose slice shows no difference says: no recorded step differs, so
    its provenance cannot tell why (a fitted model whose repr is the same in both runs, read at
    the end of the run). Between identical runs it varies, with the unseeded constructs its
    slice reaches; otherwise the changed inputs listed above may explain it."""
    head = f"  in the provenance of {diff.tag}: no recorded step differs between the two runs"
    if not identical:
        return [f"{head}: its provenance cannot tell why it changed (the changes listed above may; so may "
                "state the capture does not see)"]
    s = diff.new
    constructs = unseeded(s, len(s.ops) - 1, facts, operations, tagged=True) if s is not None and s.ops else ()
    lines = [head, "    varies between identical runs: the same code, inputs and recorded values at every "
                   "step, so what changed it is state the capture does not see"]
    lines += [f"    behind it: {c.what}: {c.seed}" for c in constructs]
    if not constructs:
        lines.append("    behind it: nothing the capture reads shows what varies (a library's own unseeded "
                     "generator, thread scheduling or a GPU kernel can)")
    return lines


def _changed_code(explanation: rootcause.Explanation | None) -> bool:
    """Whether an explanation has a root that is a change of the code (a literal, a step that
    came or went), or no edges to tell one: then the runs may not have run the same code."""
    if explanation is None:
        return False
    verdicts = {explanation.verdict, *(root.verdict for root in explanation.others)}
    return bool(verdicts & {rootcause.Verdict.CAUSE, rootcause.Verdict.DIVERGENCE})
