"""The text of ``nwtrials show`` and ``nwtrials baseline show``: a trial, and a baseline's entries,
each with the run-to-run spread recorded when it was run with ``--nw-repeat``.

Lines out, no printing; the stored files they quote may be damaged, so what cannot be read is
shown as ``<unreadable: ...>`` in its place rather than stopping the listing.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .compare.spread import PathSpread, Stability
from .store.layout import RECORDS, VALUES
from .store.trial_store import StoreError, Trial

SUMMARY_WIDTH = 70


def table(rows: list[list[str]]) -> list[str]:
    """Rows as left-aligned columns two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def summary(value: Any) -> str:
    from .values.codec import summarize

    return summarize(value, SUMMARY_WIDTH)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def spread_lines(spreads: Mapping[str, PathSpread], indent: str = "  ") -> list[str]:
    """One row per path: lowest and highest value seen, largest deviation from the first run,
    and that deviation relative to the first run's value; what differed when it is not a number."""
    rows = [[indent + "path", "low", "high", "deviation", "relative"]]
    for path, spread in sorted(spreads.items()):
        if spread.numeric:
            relative = "-" if spread.relative is None else f"{100 * spread.relative:.3g}%"
            rows.append([indent + path, _number(spread.low), _number(spread.high), _number(spread.deviation),
                         relative])
        else:
            rows.append([indent + path, f"not a number: {spread.detail or 'the values differ'}", "", "", ""])
    return table(rows)


def stability_lines(trial: Trial) -> list[str]:
    """What repeated runs of `trial` showed; nothing when it was run once."""
    if trial.stability is None:
        return []
    try:
        stability = Stability.from_json(trial.stability)
    except ValueError as exc:
        return [f"stability: <unreadable: {exc}>"]
    if stability.stable:
        verdict = "stable"
    elif stability.covered:
        verdict = "varied within tolerance"
    else:
        verdict = "not reproducible"
    lines = [f"stability: {verdict} across {stability.runs} runs ({', '.join(stability.trials)})"]
    if stability.spreads:
        lines += ["run-to-run spread:", *spread_lines(stability.spreads)]
    lines += ["  " + line for line in (*stability.diverged, *stability.proposal)]
    return lines


def trial_lines(trial: Trial) -> list[str]:
    """``nwtrials show``: metadata, tags, the stability of repeated runs, inputs."""
    from .api import tag_value
    from .capture.recorder import END_OF_RUN
    from .store.record_fields import no_provenance_note

    code = f" (exit code {trial.exit_code})" if trial.exit_code is not None else ""
    lines = [f"{trial.name}  {trial.experiment}  {trial.status}{code}",
             f"  id:         {trial.id}",
             f"  arguments:  {' '.join(trial.argv) if trial.argv else '(none)'}",
             f"  started:    {trial.started or '?'}",
             f"  duration:   {trial.duration:.2f} s",
             f"  python:     {trial.python or '?'}",
             f"  provenance: {provenance_text(trial)}"]
    if trial.capture:
        lines.append(f"  capture:    {trial.capture}")
    note = no_provenance_note(trial)
    if note:
        lines.append(f"  ({note})")
    if trial.fallback:
        lines.append(f"  fallback:   {trial.fallback}")
    if trial.error:
        lines.append(f"  error:      {trial.error.get('type', '?')}: {trial.error.get('message', '')}")
    lines.append("tags:" if trial.tags else "tags: (none)")
    if trial.tags:
        rows = []
        for name, doc in trial.tags.items():
            try:
                shown = summary(tag_value(trial, name))
            except ValueError as exc:
                shown = f"<unreadable: {exc}>"
            extra = [f"tagged {doc['count']} times"] if doc.get("count", 1) > 1 else []
            extra += [f"{key}={doc[key]:g}" for key in ("rtol", "atol") if doc.get(key) is not None]
            extra += ["state at the end of the run"] if doc.get("state") == END_OF_RUN else []
            rows.append(["  " + name, shown + (f"  ({', '.join(extra)})" if extra else "")])
        lines += table(rows)
    lines += stability_lines(trial)
    lines += ["inputs:", *input_lines(trial.inputs)]
    return lines


def provenance_text(trial: Trial) -> str:
    """Where the trial's provenance is kept: its record, and noWorkflow's database when kept."""
    kept = [f"{RECORDS}/{trial.record_name}"] if trial.record_name else []
    kept += [f"database {trial.provenance}" if kept else trial.provenance] if trial.provenance else []
    return ", ".join(kept) or "(none)"


def input_lines(inputs: dict[str, Any]) -> list[str]:
    if not inputs:
        return ["  (none recorded)"]
    lines = [f"  python {inputs['python']}"] if inputs.get("python") else []
    for path, seen in sorted((inputs.get("files") or {}).items()):
        how = ", ".join(f"{kind} sha1 {str(seen[kind])[:10]}" for kind in ("read", "written") if seen.get(kind))
        tags = f"; in the provenance of {', '.join(seen['tags'])}" if seen.get("tags") else ""
        lines.append(f"  file {path}: {how or 'absent when opened'}{tags}")
    for key, what in (("libraries", "library"), ("modules", "module")):
        for name, version in sorted((inputs.get(key) or {}).items()):
            lines.append(f"  {what} {name} {str(version)[:12]}")
    return lines or ["  (none recorded)"]


def baseline_lines(name: str, folder: Path, entries: Mapping[Path, str]) -> list[str]:
    """``nwtrials baseline show``: each entry (`entries`: file -> experiment) with its values and,
    when it was saved from repeated runs, their spread."""
    from .files import read_json
    from .values.codec import BlobStore, decode

    blobs = BlobStore(folder / VALUES)
    lines = [f"baseline '{name}' in {folder}"]
    for path, experiment in entries.items():
        try:
            doc = read_json(path)
        except StoreError as exc:
            lines.append(f"{experiment}  <unreadable: {exc}>")
            continue
        doc = doc if isinstance(doc, dict) else {}
        argv = " ".join(map(str, doc.get("argv") or []))
        lines.append(f"{experiment}{' ' + argv if argv else ''}  (recorded in {doc.get('trial', '?')}, "
                     f"started {doc.get('started') or '?'})")
        rows = []
        for tag, tag_doc in (doc.get("tags") or {}).items():
            try:
                shown = summary(decode(tag_doc["value"], blobs))
            except (KeyError, TypeError, ValueError) as exc:
                shown = f"<unreadable: {exc}>"
            rows.append(["  " + tag, shown])
        lines += table(rows) if rows else ["  (no tags)"]
        if "spread" in doc:
            lines += _entry_spread_lines(doc["spread"])
    return lines


def _entry_spread_lines(doc: Any) -> list[str]:
    from .store.baseline_entries import bands_from_json

    try:
        spreads = bands_from_json(doc)
    except ValueError as exc:
        return [f"  run-to-run spread: <unreadable: {exc}>"]
    if not spreads:
        return ["  run-to-run spread: none, the saved runs agreed (a later change is compared exactly)"]
    return ["  run-to-run spread (a later value inside it is matched):", *spread_lines(spreads, "    ")]
