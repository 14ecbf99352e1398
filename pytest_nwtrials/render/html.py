"""A session's report as JSON and as one self-contained HTML file. No pytest in here.

The plugin builds the report as a dict (``--nw-json=FILE`` writes it, ``--nw-report=FILE.html``
renders it)::

    {"schema": 1,
     "created": "2026-05-01T12:00:00+00:00",       # ISO 8601
     "rootdir": "/path/to/project",
     "baseline": "reference" | None,                # the named baseline compared with, if any
     "summary": {"run": n, "matched": n, "changed": n, "new": n, "missing": n, "failed": n, "skipped": n,
                 "repeats": n, "unstable": n},                # repeats: runs after the first (--nw-repeat)
     "unused_baseline_entries": ["fraud/old.py", ...],  # missing: this run would have run them
     "outside_baseline_entries": ["vision/net.py", ...],  # not under the paths this run collected
     "experiments": [{
         "experiment": "fraud/train.py", "argv": [], "trial": "trial3", "trial_id": "...",
         "verdict": "matched" | "changed" | "new" | "missing" | "failed" | "timeout" | "error"
                    | "skipped" | "recorded" | "unstable" | "repeat",   # repeat: a later run of a group
         "stability": spread.Stability.to_json() | None,   # of the first run of a group (--nw-repeat)
         "against": "baseline 'reference' (recorded in trial1)" | None,
         "message": "the full failure text" | None,
         "changes": [{"path": str, "kind": str, "old": str, "new": str, "detail": str}],  # summaries
         "why": ["  first divergence: ...", ...],
         "tags": {"auc": 0.91, "summary": "{'precision': ...}"},  # scalars as numbers, others as summaries
         # of a changed trial, when a report was asked for (compare/pictures.py):
         "why_folded": {"lines": [...], "folds": [[index, hidden], ...]},  # "why" with what it cuts short
         "explanations": [{"tags": [...], "head": str, "verdict": str, "graph": {...}}],  # drawn as SVG
         "why_title": "Where the runs diverged",  # of a group of runs (--nw-repeat) that differed
         "code": {"files": [{"file", "old", "new", "old_marks", "new_marks"}], "note": str}}]}  # side by side

The HTML file needs no network and no JavaScript: inline CSS, slices as inline SVG drawn here
(render/graph.py), plots as PNG data URIs, lists cut short in the text as <details> that open,
and a Content-Security-Policy that forbids loading anything else. Every text from the report is
escaped. With a store, each numeric tag of an experiment gets a plot of its values across the
stored trials of that experiment (and arguments).
"""
from __future__ import annotations

import base64
import html
import json
import math
import re
from typing import TYPE_CHECKING, Any

from ..extras import MissingExtra
from .code import code_html
from .graph import explanation_html
from .style import CSS

if TYPE_CHECKING:
    from ..store.trial_store import Trial, TrialStore

__all__ = ["CSP", "html_page", "report_html", "report_json"]

SCHEMA = 1
PLOTS_PER_EXPERIMENT = 12  # more numeric tags than this are listed, not plotted
VERDICT_ORDER = ("changed", "unstable", "failed", "timeout", "error", "missing", "new", "recorded", "skipped", "matched")


# what a page may load: nothing but its inline styles and data: images (no script, no network)
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _e(value: Any) -> str:
    from ..printable import printable

    return html.escape(printable("" if value is None else value), quote=True)


def _json_safe(value: Any) -> Any:
    """The report with non-finite floats as the strings "nan", "inf", "-inf" (JSON has none)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _check(report: Any) -> dict[str, Any]:
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        found = report.get("schema") if isinstance(report, dict) else type(report).__name__
        raise ValueError(f"not a pytest-nwtrials report of schema {SCHEMA} (got {found!r})")
    return report


def report_json(report: dict[str, Any]) -> str:
    """The report as strict JSON text (non-finite floats written as strings), ending in a newline.

    Readable text stays as it is; control characters are ``\\uXXXX`` escapes (the same data),
    so the file is safe to print and a lone surrogate in a tag cannot make it unwritable.
    """
    from ..printable import json_escaped

    text = json.dumps(_json_safe(_check(report)), indent=1, ensure_ascii=False, default=str, allow_nan=False)
    return json_escaped(text) + "\n"


def html_page(title: str, body: str) -> str:
    """A complete self-contained HTML document around `body` (already HTML)."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def report_html(report: dict[str, Any], store: TrialStore | None) -> str:
    """The report as one HTML file; plots of numeric tags from `store` unless it is None."""
    report = _check(report)
    trials = _stored_trials(store)
    # a group of repeated runs is shown once, as its first run with the group's stability
    experiments = [e for e in report.get("experiments") or [] if not (isinstance(e, dict) and e.get("verdict") == "repeat")]
    parts = [_header(report, experiments)]
    for number, experiment in enumerate(experiments, 1):
        parts.append(_section(number, experiment, trials))
    unused = report.get("unused_baseline_entries") or []
    if unused:
        items = "".join(f"<li><code>{_e(path)}</code></li>" for path in unused)
        parts.append("<section class=\"experiment verdict-missing\"><h2><span class=\"verdict\">missing</span>"
                     "Baseline entries no experiment used</h2>"
                     f"<ul>{items}</ul><p class=\"note\">Run these experiments, or save the baseline "
                     "again to drop entries of experiments that no longer exist.</p></section>")
    return html_page("pytest-nwtrials report", "\n".join(parts))


def _stored_trials(store: TrialStore | None) -> list[Trial] | None:
    if store is None:
        return None
    from ..store.trial_store import StoreError

    try:
        return store.trials()
    except (OSError, StoreError):
        return None


def _verdict_class(verdict: Any) -> str:
    return "verdict-" + (re.sub(r"[^a-z]", "", str(verdict).lower()) or "unknown")


def _header(report: dict[str, Any], experiments: list[dict[str, Any]]) -> str:
    baseline = report.get("baseline")
    against = f"compared with baseline <b>{_e(baseline)}</b>" if baseline else "no named baseline compared"
    counts = "".join(f"<li class=\"count-{re.sub(r'[^a-z]', '', str(key).lower())}\">{_e(key)} <b>{_e(value)}</b></li>"
                     for key, value in (report.get("summary") or {}).items())
    index = "".join(
        f"<li><a href=\"#experiment-{n}\"><span class=\"verdict {_verdict_class(e.get('verdict'))}\">"
        f"{_e(e.get('verdict'))}</span></a><code>{_e(_title(e))}</code> {_e(e.get('trial'))}</li>"
        for n, e in _ordered(experiments))
    return (f"<header><h1>pytest-nwtrials report</h1>"
            f"<p class=\"meta\">{against}; rootdir <code>{_e(report.get('rootdir'))}</code>; "
            f"created {_e(report.get('created'))}</p>"
            f"<ul class=\"summary\">{counts}</ul>"
            f"<ul class=\"index\">{index}</ul></header>")


def _ordered(experiments: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Numbered experiments, the ones needing attention first (the index lists them so)."""
    rank = {verdict: i for i, verdict in enumerate(VERDICT_ORDER)}
    numbered = list(enumerate(experiments, 1))
    return sorted(numbered, key=lambda pair: (rank.get(str(pair[1].get("verdict")), -1), pair[0]))


def _title(experiment: dict[str, Any]) -> str:
    argv = experiment.get("argv") or []
    return str(experiment.get("experiment", "?")) + ("".join(f" {a}" for a in argv))


def _section(number: int, experiment: dict[str, Any], trials: list[Trial] | None) -> str:
    verdict = experiment.get("verdict")
    parts = [f"<section id=\"experiment-{number}\" class=\"experiment {_verdict_class(verdict)}\">",
             f"<h2><span class=\"verdict\">{_e(verdict)}</span><code>{_e(_title(experiment))}</code></h2>"]
    trial = experiment.get("trial")
    line = "no trial"
    if trial:
        line = f"trial <b>{_e(trial)}</b> <small><code>{_e(experiment.get('trial_id'))}</code></small>"
    if experiment.get("against"):
        line += f", compared with {_e(experiment['against'])}"
    parts.append(f"<p class=\"meta\">{line}</p>")
    notes = [note for note in experiment.get("notes") or [] if note]
    if notes:  # worth saying even when it passed: a notebook run out of order, a fallback, an unstable tag
        parts.append("<ul class=\"notes\">" + "".join(f"<li>{_e(note)}</li>" for note in notes) + "</ul>")
    stability = experiment.get("stability")
    if isinstance(stability, dict):  # where the runs diverged: whole below, when drawn
        parts.append(_stability(stability, diverged=not experiment.get("why_title")))
    changes = experiment.get("changes") or []
    if changes:
        parts.append(f"<h3 id=\"changes-{number}\">Value changes</h3>" + _changes_table(changes))
    why = experiment.get("why") or []
    whole = experiment.get("why_folded")
    if isinstance(whole, dict) and whole.get("lines"):
        title = experiment.get("why_title") or "Why it changed"
        parts.append(f"<h3>{_e(title)}</h3>{why_html(whole, f'why-{number}')}")
    elif why:
        parts.append(f"<h3>Why it changed</h3><pre class=\"why\" id=\"why-{number}\">{_e(chr(10).join(why))}</pre>")
    for story, explanation in enumerate(experiment.get("explanations") or [], 1):
        if isinstance(explanation, dict):
            parts.append(explanation_html(explanation, f"{number}-{story}"))
    parts.append(code_html(experiment.get("code")))
    message = experiment.get("message")
    if message:
        opened = "" if changes else " open"
        parts.append(f"<details{opened}><summary>Full report</summary>"
                     f"<pre class=\"message\">{_linked_more(message, number, bool(changes), bool(why))}</pre></details>")
    tags = experiment.get("tags") or {}
    if tags:
        rows = "".join(f"<tr><td><code>{_e(name)}</code></td><td><code>{_e(value)}</code></td></tr>"
                       for name, value in tags.items())
        parts.append(f"<h3>Tagged values</h3><table class=\"tags\"><tbody>{rows}</tbody></table>")
    if trials is not None:
        parts.append(_plots(experiment, trials))
    parts.append("</section>")
    return "\n".join(parts)


_MORE = re.compile(r"^(?P<indent>\s*)(?P<text>\.\.\. and \d+ more(?P<changes> changes?)?)$")


def why_html(doc: dict[str, Any], ident: str) -> str:
    """The why-lines, each line a row of monospace text; the lines a `Fold` stands for are under
    a <details> whose summary is that line (``... and 40 more``), so the list can be opened."""
    lines = [str(line) for line in doc.get("lines") or []]
    folds: dict[int, int] = {}
    for fold in doc.get("folds") or []:
        if isinstance(fold, list) and len(fold) == 2 and all(type(n) is int and n >= 0 for n in fold):
            folds[fold[0]] = fold[1]

    def rows(start: int, stop: int) -> str:
        out, n = [], start
        while n < stop:
            if n in folds:
                end = min(stop, n + 1 + folds[n])
                out.append(f"<details class=\"more\"><summary>{_e(lines[n])}</summary>{rows(n + 1, end)}</details>")
                n = end
            else:
                out.append(f"<div>{_e(lines[n]) or ' '}</div>")
                n += 1
        return "".join(out)

    return f"<div class=\"why\" id=\"{_e(ident)}\">{rows(0, len(lines))}</div>"


def _linked_more(message: str, number: int, changes: bool, why: bool) -> str:
    """The failure text, its ``... and N more`` lines linking to where the list is whole: the
    value changes table, or the why-lines, whose cut-short parts open."""
    out = []
    for line in message.splitlines():
        more = _MORE.match(line)
        target = (f"changes-{number}" if more["changes"] else f"why-{number}") if more else None
        if more and ((changes and more["changes"]) or (why and not more["changes"])):
            out.append(f"{_e(more['indent'])}<a href=\"#{target}\">{_e(more['text'])}</a>")
        else:
            out.append(_e(line))
    return "\n".join(out)


def _stability(doc: dict[str, Any], diverged: bool = True) -> str:
    """The verdict of a group of repeated runs and a table of the paths whose values differed."""
    runs, trials = doc.get("runs"), ", ".join(str(t) for t in doc.get("trials") or [])
    if doc.get("stable"):
        verdict = f"stable across {_e(runs)} runs"
    elif doc.get("covered"):
        verdict = f"varied across {_e(runs)} runs, within tolerance"
    else:
        verdict = f"not reproducible: {_e(runs)} runs gave different values"
    parts = [f"<h3>Run-to-run variation</h3><p class=\"meta\"><b>{verdict}</b> ({_e(trials)})</p>"]
    spreads = doc.get("spread") or {}
    if isinstance(spreads, dict) and spreads:
        rows = []
        for path, spread in spreads.items():
            spread = spread if isinstance(spread, dict) else {}
            cells = "".join(f"<td>{_e(_number(spread.get(key)))}</td>" for key in ("low", "high", "deviation", "relative"))
            rows.append(f"<tr><td><code>{_e(path)}</code></td>{cells}<td>{_e(spread.get('detail') or '')}</td></tr>")
        parts.append("<table class=\"spread\"><thead><tr><th>path</th><th>min</th><th>max</th>"
                     "<th>largest deviation from the first run</th><th>relative spread</th><th>detail</th></tr></thead>"
                     f"<tbody>{''.join(rows)}</tbody></table>")
    lines = [*((doc.get("diverged") or []) if diverged else []), *(doc.get("proposal") or [])]
    if lines:
        parts.append(f"<pre class=\"stability\">{_e(chr(10).join(str(line) for line in lines))}</pre>")
    return "".join(parts)


def _number(value: Any) -> str:
    return f"{value:.6g}" if type(value) in (int, float) else ""


def _changes_table(changes: list[dict[str, Any]]) -> str:
    rows = []
    for change in changes:
        detail = change.get("detail") or ""
        detail_html = f"<pre>{_e(detail)}</pre>" if detail else ""
        rows.append(f"<tr><td><code>{_e(change.get('path'))}</code></td><td>{_e(change.get('kind'))}</td>"
                    f"<td><code>{_e(change.get('old'))}</code></td><td><code>{_e(change.get('new'))}</code></td>"
                    f"<td>{detail_html}</td></tr>")
    return ("<table class=\"changes\"><thead><tr><th>path</th><th>change</th><th>old</th><th>new</th>"
            f"<th>detail</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _numeric(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _plots(experiment: dict[str, Any], trials: list[Trial]) -> str:
    """PNG plots of each numeric tag across the stored trials of this experiment and argv."""
    names = [name for name, value in (experiment.get("tags") or {}).items() if _numeric(value)]
    if not names:
        return ""
    argv = tuple(str(a) for a in experiment.get("argv") or ())
    own = [t for t in trials if t.experiment == experiment.get("experiment") and t.argv == argv]
    figures, notes = [], []
    for name in names[:PLOTS_PER_EXPERIMENT]:
        having = [t for t in own if name in t.tags]
        try:
            png = _plot_png(name, having, _title(experiment))
        except (LookupError, ValueError, OSError, MissingExtra) as exc:  # MissingExtra: no matplotlib
            notes.append(f"<p class=\"note\">No plot of {_e(name)}: {_e(exc)}</p>")
            continue
        data = base64.b64encode(png).decode("ascii")
        caption = f"{name} across {len(having)} stored trial{'s' if len(having) != 1 else ''}"
        figures.append(f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{_e(caption)}\">"
                       f"<figcaption>{_e(caption)}</figcaption></figure>")
    hidden = names[PLOTS_PER_EXPERIMENT:]
    if hidden:
        notes.append(f"<p class=\"note\">Not plotted: {_e(', '.join(hidden))}</p>")
    return "<h3>History</h3>" + "".join(figures) + "".join(notes)


def _plot_png(tag: str, trials: list[Trial], title: str) -> bytes:
    from ..api import figure_png, plot_trials

    if not trials:
        raise LookupError("no stored trial of this experiment has it")
    figure = plot_trials(tag, trials, title=f"{tag}: {title}")
    figure.set_size_inches(6, 3)
    return figure_png(figure, dpi=80)
