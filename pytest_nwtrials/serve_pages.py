"""The pages of the trial browser (`nwtrials serve`, serve.py): the trials and baselines, one
trial, and two compared, as the HTML of the session report (render/html.py). No pytest in here.

Nothing here writes: the store is read as `nwtrials list` reads it (no lock), and the baselines
through a `BaselineStore` that leaves an interrupted save for the next writer. Trials and
baseline entries are named by reference only (a trial's name, id or id prefix; a baseline's name,
for its entry of the compared trial's experiment), never by a path: a reference that is not a
plain name is refused before anything is looked up, and baseline folders are reached only through
`BaselineStore.folder`, which keeps them inside the folder of baselines.
"""
from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from .errors import StoreError, short
from .printable import printable
from .render.html import html_page, report_html
from .store.baselines import BaselineStore, Entry
from .store.trial_store import Trial, TrialStore

__all__ = ["PageError", "Pages", "reference"]

# what a trial name, trial id or baseline name can be; nothing else is looked up
REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
NAV = "<nav class=\"meta\"><a href=\"/\">All trials</a></nav>\n"
STYLE = """<style>
form.compare { margin: .4rem 0 .6rem; display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; }
form.compare select { max-width: 28rem; }
table.trials td.status-failed, table.trials td.status-timeout { color: #cf222e; font-weight: 600; }
</style>"""


class PageError(Exception):
    """A request for nothing the browser can show: its HTTP status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def reference(text: str, what: str) -> str:
    """`text` (from a URL, percent-decoded once) when it is a plain trial or baseline name;
    PageError 404 otherwise. Decoded once more it must still be one, so that no later decoding
    can turn it into a path (``%252e%252e%252f``)."""
    for form in (text, unquote(text)):
        if not REFERENCE.fullmatch(form) or ".." in form:
            raise PageError(404, f"{what} {short(text, 80)} is not a trial or baseline name; "
                                 "refer to a trial by its name (trial3), id or id prefix")
    return text


def _e(value: Any) -> str:
    return html.escape(printable("" if value is None else value), quote=True)


def _title(experiment: str, argv: tuple[str, ...]) -> str:
    return experiment + "".join(f" {a}" for a in argv)


def _when(trial: Trial) -> str:
    from .api import started_at

    when = started_at(trial)
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else "?"


def _tags(trial: Trial) -> dict[str, Any]:
    from .render.report_data import tag_doc

    try:
        return {name: tag_doc(value) for name, value in trial.values.items()}
    except (ValueError, OSError) as exc:  # a damaged value file: StoreError names it
        return {"(unreadable)": str(exc)}


def _entry_label(entry: Entry) -> str:
    """How reports name what a trial was compared with (as the gate does)."""
    return entry.label if entry.label == entry.trial else f"{entry.label} (recorded in {entry.trial})"


class Pages:
    """The browser's pages over `store` and `baselines` (None: no folder of baselines found)."""

    def __init__(self, store: TrialStore, baselines: BaselineStore | None, rootdir: Path) -> None:
        self.store = store
        self.baselines = baselines
        self.rootdir = rootdir

    # -- lookups --------------------------------------------------------------------------------

    def find(self, ref: str, what: str = "trial") -> Trial:
        """The one trial `ref` names; PageError 404 saying why when none or several do."""
        found = self.store.find(reference(ref, what))
        if len(found) == 1:
            return found[0]
        if found:
            listed = ", ".join(f"{t.name} ({t.id})" for t in found[:10])
            raise PageError(404, f"{what} {ref!r} is ambiguous: it matches {listed}; give more characters")
        hint = " (an id prefix needs at least 4 characters)" if len(ref) < 4 else ""
        raise PageError(404, f"no trial {ref!r} in {self.store.root}{hint}")

    def old_side(self, ref: str, new: Trial) -> tuple[Entry, Trial | None]:
        """What `new` is compared with: the entry of its experiment in baseline `ref`, or trial
        `ref` (then also returned). A baseline name wins over a trial id, as in ``--nw-baseline``."""
        from .store.baseline_entries import entry_from_trial

        reference(ref, "old")
        if self.baselines is not None and self.baselines.exists(ref):
            entry = self.baselines.entry(ref, new.experiment, new.argv)
            if entry is None:
                raise PageError(404, f"baseline {ref!r} has no entry for {_title(new.experiment, new.argv)}")
            return entry, None
        trial = self.find(ref, "old")
        return entry_from_trial(trial, self.store), trial

    def baseline_entries(self) -> dict[str, list[Entry | str]]:
        """Each baseline's entries, or for one that cannot be read, what is wrong with it."""
        if self.baselines is None:
            return {}
        found: dict[str, list[Entry | str]] = {}
        for name in self.baselines.names():
            try:
                files = self.baselines.entry_files(name)
            except StoreError as exc:
                found[name] = [str(exc)]
                continue
            entries: list[Entry | str] = []
            for path, experiment in sorted(files.items()):
                try:
                    entries.append(self.baselines.read_entry(name, path, experiment))
                except StoreError as exc:
                    entries.append(str(exc))
            found[name] = entries
        return found

    # -- pages ----------------------------------------------------------------------------------

    def index(self) -> str:
        """Every experiment (and arguments) with its trials, newest first, a form to compare two
        of them, and the baselines with their entries."""
        trials = self.store.trials()
        groups: dict[tuple[str, tuple[str, ...]], list[Trial]] = {}
        for trial in reversed(trials):
            groups.setdefault((trial.experiment, trial.argv), []).append(trial)
        baselines = self.baseline_entries()
        where = f"baselines <code>{_e(self.baselines.root)}</code>" if self.baselines else "no folder of baselines"
        parts = [f"<header><h1>pytest-nwtrials trials</h1><p class=\"meta\">store <code>{_e(self.store.root)}"
                 f"</code>; {where}; {len(trials)} trials of {len(groups)} experiments</p></header>", STYLE]
        parts += [f"<p class=\"note\">{_e(warning)}</p>" for warning in self.store.warnings]
        if not trials:
            parts.append("<p class=\"note\">No trials yet: run pytest on the experiments first.</p>")
        for number, ((experiment, argv), own) in enumerate(sorted(groups.items()), 1):
            parts.append(self._group(number, experiment, argv, own, baselines))
        parts.append(self._baselines(baselines))
        return html_page("pytest-nwtrials trials", "\n".join(parts))

    def _group(self, number: int, experiment: str, argv: tuple[str, ...], trials: list[Trial],
               baselines: dict[str, list[Entry | str]]) -> str:
        rows = "".join(
            f"<tr><td><a href=\"/trial/{quote(t.name)}\">{_e(t.name)}</a></td>"
            f"<td class=\"status-{_e(re.sub(r'[^a-z]', '', t.status.lower()))}\">{_e(t.status)}</td>"
            f"<td>{_e(_when(t))}</td><td>{_e(', '.join(t.tags))}</td></tr>" for t in trials)
        table = ("<table class=\"trials\"><thead><tr><th>trial</th><th>status</th><th>started (UTC)</th>"
                 f"<th>tags</th></tr></thead><tbody>{rows}</tbody></table>")
        return (f"<section id=\"experiment-{number}\" class=\"experiment\">"
                f"<h2><code>{_e(_title(experiment, argv))}</code></h2>"
                f"{self._form(experiment, argv, trials, baselines)}{table}</section>")

    @staticmethod
    def _form(experiment: str, argv: tuple[str, ...], trials: list[Trial],
              baselines: dict[str, list[Entry | str]]) -> str:
        """Two lists to pick what to compare (a baseline entry or a trial) and the trial compared;
        a plain GET form, no script."""
        # the baselines whose entry `BaselineStore.entry` gives for this experiment and arguments
        runs = {name: [e.argv for e in entries if isinstance(e, Entry) and e.experiment == experiment]
                for name, entries in baselines.items()}
        usable = [name for name, argvs in runs.items() if argv in argvs or len(argvs) == 1]
        olds = [(name, f"baseline '{name}'") for name in usable]
        olds += [(t.name, f"{t.name} ({_when(t)}, {t.status})") for t in trials]
        if len(olds) < 2:
            return "<p class=\"note\">One trial and no baseline entry: nothing to compare it with yet.</p>"
        default_old = olds[0][0] if usable else trials[1].name  # the baseline, else the trial before the last

        def options(choices: list[tuple[str, str]], chosen: str) -> str:
            return "".join(f"<option value=\"{_e(value)}\"{' selected' if value == chosen else ''}>{_e(label)}</option>"
                           for value, label in choices)

        news = [(t.name, f"{t.name} ({_when(t)}, {t.status})") for t in trials]
        return ("<form class=\"compare\" method=\"get\" action=\"/diff\">"
                f"<label>compare <select name=\"new\">{options(news, trials[0].name)}</select></label>"
                f"<label>with <select name=\"old\">{options(olds, default_old)}</select></label>"
                "<button type=\"submit\">Compare</button></form>")

    @staticmethod
    def _baselines(baselines: dict[str, list[Entry | str]]) -> str:
        if not baselines:
            return ("<section class=\"baselines\"><h2>Baselines</h2><p class=\"note\">None yet: save one with "
                    "<code>pytest --nw-save-baseline=NAME</code>.</p></section>")
        parts = ["<section class=\"baselines\"><h2>Baselines</h2>"]
        for name, entries in baselines.items():
            rows = []
            for entry in entries:
                if isinstance(entry, str):
                    rows.append(f"<tr><td colspan=\"2\" class=\"note\">unusable: {_e(entry)}</td></tr>")
                else:
                    rows.append(f"<tr><td><code>{_e(_title(entry.experiment, entry.argv))}</code></td>"
                                f"<td>recorded in {_e(entry.trial)}</td></tr>")
            body = "".join(rows) or "<tr><td class=\"note\">no entries</td></tr>"
            parts.append(f"<h3 id=\"baseline-{_e(name)}\">{_e(name)}</h3>"
                         f"<table class=\"baseline\"><tbody>{body}</tbody></table>")
        parts.append("</section>")
        return "".join(parts)

    def trial(self, ref: str) -> str:
        """One trial as a section of the report: its tags, notes, record and plots of its numeric tags."""
        from .cli_show import trial_lines
        from .store.record_fields import no_provenance_note

        trial = self.find(ref)
        verdict = "recorded" if trial.status == "finished" else (
            trial.status if trial.status in ("failed", "timeout") else "error")
        notes = [no_provenance_note(trial), trial.fallback and f"recorded with coarse capture: {trial.fallback}"]
        doc = {"experiment": trial.experiment, "argv": list(trial.argv), "trial": trial.name,
               "trial_id": trial.id, "verdict": verdict, "against": None,
               "message": "\n".join(trial_lines(trial)), "changes": [], "why": [],
               "notes": [note for note in notes if note], "tags": _tags(trial), "stability": trial.stability}
        return self._report(doc, None)

    def diff(self, old_ref: str, new_ref: str) -> str:
        """Trial `new_ref` compared with `old_ref` (a trial, or a baseline's entry of its
        experiment) as `nwtrials diff` compares them: the report of that one experiment."""
        from .compare.bands import matched_note
        from .compare.diffing import diff_trials, provenance_notes
        from .compare.engine import Rules, Tolerance
        from .compare.pictures import pictures
        from .render.report_data import change_doc
        from .render.slices import folded
        from .store.baseline_entries import records_of

        new = self.find(new_ref, "new")
        entry, old = self.old_side(old_ref, new)
        against = _entry_label(entry)
        notes = []
        if (entry.experiment, entry.argv) != (new.experiment, new.argv):
            notes.append(f"{new.name} is a run of {_title(new.experiment, new.argv)}, {against} of "
                         f"{_title(entry.experiment, entry.argv)}")
        old_record, new_record, problems = records_of(entry, new)
        notes += problems
        diff = diff_trials(against, new.name, entry.values(), new.values, Rules(default=Tolerance(None, None)),
                           entry.inputs, entry.argv, new.inputs, new.argv, old_record, new_record,
                           spreads=entry.spread)
        notes += provenance_notes(*(t for t in (old, new) if t is not None))
        if diff.empty and diff.within:
            notes.append(matched_note(new.experiment, diff.within))
        doc: dict[str, Any] = {
            "experiment": new.experiment, "argv": list(new.argv), "trial": new.name, "trial_id": new.id,
            "verdict": "matched" if diff.empty else "changed", "against": against, "message": None,
            "changes": [change_doc(change) for change in diff.values], "why": [], "notes": notes,
            "tags": _tags(new), "stability": None}
        if not diff.empty:  # as the gate reports a change: the why-lines, the slice graphs and the code
            lines = diff.why(fold=True)
            if old_record is None:
                lines.append(f"  ({entry.label} has no provenance record, so the operations cannot be compared)")
            doc["why"] = folded(lines)
            doc.update(pictures(diff, lines=lines))
        return self._report(doc, entry.baseline)

    def _report(self, doc: dict[str, Any], baseline: str | None) -> str:
        """The report page of one experiment `doc`, with a link back to the index."""
        report = {"schema": 1, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "rootdir": str(self.rootdir), "baseline": baseline, "summary": {"run": 1, doc["verdict"]: 1},
                  "unused_baseline_entries": [], "outside_baseline_entries": [], "experiments": [doc]}
        return report_html(report, self.store).replace("<body>\n", "<body>\n" + NAV, 1)


def error_page(status: int, message: str) -> str:
    """A page with one line saying what went wrong, and a link back to the index."""
    return html_page(f"{status}: pytest-nwtrials trials",
                     f"{NAV}<h1>{status}</h1><p class=\"error\">{_e(message)}</p>")
