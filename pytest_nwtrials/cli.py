"""The `nwtrials` command: browse, compare, plot and prune the trials of a local store.

    nwtrials [--store PATH] [--baselines PATH] COMMAND [...]

Commands: list, show, diff, values, plot, baseline (list, show, delete), gc and serve; each has --help.
The store and the baselines are those pytest uses for the project at the working directory: ini
``nw_store`` and ``nw_baselines_dir`` at the rootdir (found as pytest finds it, store/project.py).
Exit status: 0 done; 1 the trials differ (diff only); 2 bad input (an unknown trial, tag or
baseline, an empty or missing store, a bad option), said in one line on stderr.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn, Sequence

from . import api
from .cli_show import baseline_lines, summary, table, trial_lines
from .compare.tolerance_rule import RULE, tolerance_from_text
from .extras import MissingExtra
from .printable import PrintableStream
from .store.baselines import BaselineStore
from .store.layout import BASELINES_DIR
from .store.project import baselines_beside, default_baselines
from .store.trial_store import StoreError, Trial, TrialStore

PROG = "nwtrials"
SERVE_PORT = 8765  # `nwtrials serve`'s port unless --port says another (serve.py is imported only to serve)


class UsageError(Exception):
    """Bad input; the message says what was wrong and what to do."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # one line, not argparse's usage block
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# -- context ----------------------------------------------------------------------------------

def _store(args: argparse.Namespace) -> TrialStore:
    given = getattr(args, "store", None)
    try:
        store = api.open_store(given)
    except LookupError as exc:
        hint = "" if given else ", or pass --store PATH"
        raise UsageError(f"{exc}{hint}") from None
    return store


def _trials(store: TrialStore) -> list[Trial]:
    trials = store.trials()
    for warning in store.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    if not trials:
        raise UsageError(f"no trials in {store.root} yet; run pytest on the experiments first")
    return trials


def _find(store: TrialStore, ref: str) -> Trial:
    found = store.find(ref)
    if len(found) == 1:
        return found[0]
    if found:
        listed = ", ".join(f"{t.name} ({t.id})" for t in found[:10])
        raise UsageError(f"trial reference {ref!r} is ambiguous: it matches {listed}; give more characters")
    hint = " (an id prefix needs at least 4 characters)" if len(ref) < 4 else ""
    raise UsageError(f"no trial {ref!r} in {store.root}{hint}; `{PROG} list` shows the trials")


def _baselines(args: argparse.Namespace) -> BaselineStore:
    if getattr(args, "baselines", None):
        return BaselineStore(Path(args.baselines))
    if getattr(args, "store", None) is not None:
        folder, project = baselines_beside(_store(args).root)
        return BaselineStore(folder, project=project)
    found = default_baselines()
    if found is None:
        raise UsageError(f"no {BASELINES_DIR} folder found in {Path.cwd().resolve()} or above it; "
                         "pass --baselines PATH")
    return BaselineStore(found[0], project=found[1])


def _when(trial: Trial) -> str:
    when = api.started_at(trial)
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else "?"



# -- commands ---------------------------------------------------------------------------------

def cmd_list(args: argparse.Namespace) -> int:
    store = _store(args)
    _trials(store)
    trials = api.select(store, args.experiment)
    rows = [["trial", "status", "started (UTC)", "duration", "experiment", "tags"]]
    for t in trials:
        experiment = t.experiment + "".join(f" {a}" for a in t.argv)
        rows.append([t.name, t.status, _when(t), f"{t.duration:.1f} s", experiment, ", ".join(t.tags)])
    print("\n".join(table(rows)))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = _store(args)
    _trials(store)
    print("\n".join(trial_lines(_find(store, args.ref))))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from .compare.diffing import diff_trials, provenance_notes
    from .compare.engine import Rules, Tolerance

    store = _store(args)
    _trials(store)
    old, new = _find(store, args.old), _find(store, args.new)
    # what pytest_nwtrials.trial_diff does, with trials already found in this store
    diff = diff_trials(old.name, new.name, old.values, new.values, Rules(default=Tolerance(args.rtol, args.atol)),
                       old.inputs, old.argv, new.inputs, new.argv, old.record(), new.record(), operations=args.ops)
    diff = replace(diff, notes=provenance_notes(old, new))
    if args.html:
        from .files import write_text_atomic
        from .render.html import html_page

        write_text_atomic(Path(args.html), html_page(f"{new.name} against {old.name}", diff._repr_html_()))
    if args.json:
        changes = [{"path": c.path, "kind": str(c.kind), "old": summary(c.old), "new": summary(c.new),
                    "detail": c.detail} for c in diff.values]
        print(json.dumps({"old": old.name, "new": new.name, "match": diff.empty,
                          "argv_changed": diff.argv_changed, "tags": list(diff.tags),
                          "changes": changes, "why": diff.why(outputs=args.outputs), "notes": list(diff.notes)}, indent=1))
    else:
        print(diff.text(outputs=args.outputs))
        if args.html:
            print(f"wrote {args.html}")
    return 0 if diff.empty else 1


def cmd_values(args: argparse.Namespace) -> int:
    store = _store(args)
    _trials(store)
    frame = api.values(args.tag, args.experiment, store=store)
    frame["argv"] = frame["argv"].map(" ".join)
    if args.csv:
        sys.stdout.write(frame.to_csv(index=False))
        return 0
    frame["started"] = frame["started"].dt.strftime("%Y-%m-%d %H:%M:%S")
    hidden = ["id"] + (["argv"] if not frame["argv"].any() else [])
    hidden += [column for column in api.SPREAD_COLUMNS if frame[column].isna().all()]
    print(frame.drop(columns=hidden).to_string(index=False))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    store = _store(args)
    _trials(store)
    baselines = _baselines(args).root if args.baseline else None
    figure = api.plot(args.tag, args.experiment, store=store, baseline=args.baseline, baselines=baselines)
    output = Path(args.output)
    try:
        figure.savefig(output)
    except ValueError as exc:  # an extension matplotlib cannot write
        raise UsageError(f"cannot write {output}: {exc}; use a .png, .svg or .pdf file name") from None
    print(f"wrote {output}")
    return 0


def cmd_baseline_list(args: argparse.Namespace) -> int:
    baselines = _baselines(args)
    names = baselines.names()
    if not names:
        print(f"no baselines in {baselines.root}; save one with pytest --nw-save-baseline=NAME")
        return 0
    rows = []
    for name in names:
        try:
            rows.append([name, f"{len(baselines.entry_files(name))} entries"])
        except StoreError as exc:  # a link leading out of it, a journal that cannot be completed
            rows.append([name, f"unusable: {exc}"])
    print("\n".join(table(rows)))
    return 0


def _existing(baselines: BaselineStore, name: str) -> str:
    if not baselines.exists(name):
        known = ", ".join(baselines.names()) or "none"
        raise UsageError(f"no baseline {name!r} in {baselines.root}; baselines: {known}")
    return name


def cmd_baseline_show(args: argparse.Namespace) -> int:
    baselines = _baselines(args)
    name = _existing(baselines, args.name)
    print("\n".join(baseline_lines(name, baselines.folder(name), baselines.entry_files(name))))
    return 0


def cmd_baseline_delete(args: argparse.Namespace) -> int:
    from .store.baseline_files import walk

    baselines = _baselines(args)
    folder = baselines.folder(_existing(baselines, args.name))  # refuses a link leading out of it
    if folder.is_symlink():
        raise UsageError(f"{folder} is a link to {os.path.realpath(folder)}; delete the link itself, or that folder")
    entries = sorted(baselines.entry_files(args.name).values())
    files = walk(folder)
    size = sum(p.lstat().st_size for p in files)
    shutil.rmtree(folder)  # removes links inside, never what they point to
    print(f"removed baseline '{args.name}' ({folder}): {len(entries)} entries, {len(files)} files, {size:,} bytes")
    for experiment in entries:
        print(f"  {experiment}")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    store = _store(args)
    _trials(store)
    if args.keep < 1:
        raise UsageError(f"--keep must be at least 1, got {args.keep}")
    result = api.collect_garbage(args.keep, store=store, dry_run=args.dry_run)
    for warning in result.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    if not (result.removed or result.value_files or result.leftover_files):
        print(f"nothing to remove: no experiment has more than {args.keep} trials")
        return 0
    verb = "would remove" if args.dry_run else "removed"
    if result.removed:
        names = ", ".join(t.name for t in result.removed)
        print(f"{verb} {len(result.removed)} trials: {names}")
    else:
        print(f"no experiment has more than {args.keep} trials; {verb} files no trial uses")
    print(f"  trial records and provenance: {result.record_files} files, {result.record_bytes:,} bytes")
    print(f"  value files: {result.value_files} files, {result.value_bytes:,} bytes")
    if result.leftover_files:
        print(f"  left by interrupted runs: {result.leftover_files} files, {result.leftover_bytes:,} bytes")
    print(f"{'would reclaim' if args.dry_run else 'reclaimed'} {result.reclaimed:,} bytes")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import serve

    store = _store(args)
    try:
        baselines: BaselineStore | None = _baselines(args)
    except UsageError:  # no folder of baselines found: the trials alone
        baselines = None
    return serve(store, baselines, args.port)


# -- parser -----------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--store", metavar="PATH", default=argparse.SUPPRESS,
                        help="The trial store: its folder or the project folder holding it (default: "
                             "ini nw_store of the project at the working directory, else the nearest "
                             ".nwtrials at or above it)")
    common.add_argument("--baselines", metavar="PATH", default=argparse.SUPPRESS,
                        help="The folder of named baselines (default: the project's ini nw_baselines_dir, "
                             "else nw-baselines next to the store)")
    parser = _Parser(prog=PROG, parents=[common], description="Browse, compare, plot and prune the trials "
                     "recorded by pytest-nwtrials. Exit status: 0 done, 1 trials differ (diff), 2 bad input.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help: str, run: Any, parent: Any = commands) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, help=help, description=help, parents=[common])
        sub.set_defaults(run=run)
        return sub

    sub = command("list", "List the trials, oldest first", cmd_list)
    sub.add_argument("--experiment", metavar="E", help="Only trials of experiment E (a path or glob)")
    sub = command("show", "Show a trial: metadata, tags and inputs", cmd_show)
    sub.add_argument("ref", metavar="REF", help="A trial name such as trial3, a trial id or a prefix of 4+ characters")
    sub = command("diff", "Compare trial NEW with trial OLD (exit status 1 when they differ)", cmd_diff)
    sub.add_argument("old", metavar="OLD", help="The trial compared with (name, id or id prefix)")
    sub.add_argument("new", metavar="NEW", help="The trial compared (name, id or id prefix)")
    sub.add_argument("--html", metavar="FILE", help="Also write the difference as a self-contained HTML file")
    sub.add_argument("--json", action="store_true", help="Print the difference as JSON instead of text")
    sub.add_argument("--rtol", type=_tolerance, metavar="RTOL", help="Relative tolerance (default 1e-7)")
    sub.add_argument("--atol", type=_tolerance, metavar="ATOL", help="Absolute tolerance (default 0)")
    sub.add_argument("--ops", action="store_true", help="Also compare the whole operation sequences")
    sub.add_argument("--outputs", action="store_true",
                     help="Also list the files the trials wrote with different content")
    sub = command("values", "Print a tag's values across trials", cmd_values)
    sub.add_argument("tag", metavar="TAG")
    sub.add_argument("--experiment", metavar="E", help="Only trials of experiment E (a path or glob)")
    sub.add_argument("--csv", action="store_true", help="Print CSV (with trial ids and full start times)")
    sub = command("plot", "Plot a numeric tag across trials, one line per experiment", cmd_plot)
    sub.add_argument("tag", metavar="TAG")
    sub.add_argument("-o", "--output", metavar="FILE", required=True, help="The image to write (.png, .svg, .pdf)")
    sub.add_argument("--experiment", metavar="E", help="Only trials of experiment E (a path or glob)")
    sub.add_argument("--baseline", metavar="NAME", help="Mark the value of baseline NAME")
    baseline = command("baseline", "List, show or delete named baselines", None)
    actions = baseline.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    command("list", "List the baselines", cmd_baseline_list, actions)
    command("show", "Show a baseline's entries and their values", cmd_baseline_show, actions).add_argument(
        "name", metavar="NAME")
    command("delete", "Delete a baseline's folder and say what was removed", cmd_baseline_delete,
            actions).add_argument("name", metavar="NAME")
    sub = command("gc", "Remove old trials, keeping the last N of each experiment, and files of "
                  "interrupted runs", cmd_gc)
    sub.add_argument("--keep", type=int, metavar="N", required=True, help="Trials to keep per experiment (1 or more)")
    sub.add_argument("--dry-run", action="store_true", help="Say what would be removed, remove nothing")
    sub = command("serve", "Browse the trials and baselines in a web browser: a read-only server on "
                  "127.0.0.1 only, until Ctrl-C", cmd_serve)
    sub.add_argument("--port", type=_port, default=SERVE_PORT, metavar="N",
                     help=f"The port (default {SERVE_PORT}; 0: any free port)")
    return parser


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {text!r}")
    return port


def _tolerance(text: str) -> float:
    value = tolerance_from_text(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected {RULE}, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    # everything it prints quotes names and values from the store and baselines
    with contextlib.redirect_stdout(PrintableStream(sys.stdout)), \
            contextlib.redirect_stderr(PrintableStream(sys.stderr)):
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        run = getattr(args, "run", None)
        if run is None:
            where = f"{PROG} baseline" if args.command else PROG
            raise UsageError(f"give a {'baseline action' if args.command else 'command'} (see `{where} --help`)")
        return run(args)
    except UsageError as exc:
        return _fail(str(exc))
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # quiet when piped into `head`
        return 0
    except KeyError as exc:
        return _fail(str(exc.args[0]) if exc.args else repr(exc))
    except (LookupError, ValueError, StoreError, OSError, MissingExtra) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
