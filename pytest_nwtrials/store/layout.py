"""Where pytest-nwtrials keeps things on disk: every name of the local store's and the baselines'
files and folders, spelled once.

The local store, ``.nwtrials/`` at the rootdir unless ini ``nw_store`` names another folder::

    .gitignore, README.md      the folder is local state, never committed
    trials/trialN.json         one record per trial, N counting up within this store (store/trial_store.py)
    records/<sha256>.json.gz   content-addressed, compressed provenance records shared by the trials
                               that name them (store/records.py); older trials have records/<trial id>.json
    values/<sha256>.<ext>      content-addressed value files (arrays, frames, pickles)
    provenance/<id>.sqlite.gz  the trial's noWorkflow database, compressed (store/archive.py):
                               kept only with ini nw_keep_database, and by older trials
    tmp/<session>/run<N>/      the files of trials being recorded by a running session, with
    tmp/<session>.lock         its lock and the trials it recorded (store/staging.py)
    lock                       the store lock

The folder of baselines, ``nw-baselines/`` at the rootdir unless ini ``nw_baselines_dir`` names
another, is meant to be committed::

    README.md
    <NAME>/<experiment>.json             the entry of an experiment (store/baseline_entries.py); with
                                         arguments <experiment>.<argv digest>.json
    <NAME>/<experiment>.provenance.json  its provenance record
    <NAME>/values/<sha256>.<ext>         the value files the entries reference
    .saving-<pid>-<random>/              a save in progress, with its journal (store/baseline_files.py)

Which folders a project uses is found by store/project.py, for the plugin and the command alike.
"""
from __future__ import annotations

import re
from pathlib import Path

# the two roots, each an ini key naming a folder relative to the rootdir, and its default
STORE_KEY = "nw_store"
STORE_DIR = ".nwtrials"
BASELINES_KEY = "nw_baselines_dir"
BASELINES_DIR = "nw-baselines"

# -- the local store ------------------------------------------------------------------------------
TRIALS = "trials"
RECORDS = "records"
VALUES = "values"  # in the store, in a baseline and in a run's staging folder alike
PROVENANCE = "provenance"
TMP = "tmp"
LOCK = "lock"
README = "README.md"
GITIGNORE = ".gitignore"
TRIAL_NAME = re.compile(r"^trial([0-9]+)$")  # a trial's short name, and its record's file name
TRIAL_GLOB = "trial*.json"
# in tmp/: a session's folder and its lock; in the session's folder: the trials it recorded and
# one folder per run, holding the STAGED folders
SESSION_LOCK_SUFFIX = ".lock"
PINNED = "pinned.json"
RUN_PREFIX = "run"
STAGED = (VALUES, RECORDS, PROVENANCE)

STORE_GITIGNORE = "# local trial store of pytest-nwtrials: not meant to be committed\n*\n"
STORE_README = """# pytest-nwtrials local store

This folder holds the trials recorded by pytest-nwtrials on this machine: one JSON record per
trial in `trials/`, the tagged values in `values/`, their operations and slices in `records/`
(and noWorkflow's databases in `provenance/` when kept); `tmp/` holds the files of trials a
running pytest session is recording, and `lock` keeps sessions that record at once from getting
in each other's way. It is local state: it is ignored by git, and deleting it loses only history
(do not delete it while pytest runs).
`nwtrials gc --keep N` removes old trials and what interrupted runs left behind. Baselines
meant to be shared are saved with `pytest --nw-save-baseline=NAME`.
"""

# -- the folder of baselines ----------------------------------------------------------------------
ENTRY_EXTENSION = ".json"
RECORD_EXTENSION = ".provenance.json"  # replaces ENTRY_EXTENSION beside the entry
# a save stages its files in a folder beside the baselines, made under MAKING_PREFIX and renamed
# to SAVING_PREFIX once its lock (SAVE_LOCK, inside it) is held; JOURNAL lists what it will do
SAVING_PREFIX = ".saving-"
MAKING_PREFIX = ".making-"
JOURNAL = "journal.json"
SAVE_LOCK = ".lock"
SAVE_GITIGNORE = "# a save of pytest-nwtrials in progress: never committed\n*\n"
BASELINES_README = """# Baselines of pytest-nwtrials

Each folder here is a named baseline: one JSON entry per experiment, recording the values the
experiment tagged, and `values/` with the arrays and frames they reference. Compare new trials
with one by running `pytest --nw-baseline=NAME`; accept new values with
`pytest --nw-save-baseline=NAME`. These files are meant to be committed and reviewed.

An entry saved with `--nw-repeat=N` also records, under "spread", how far the values of the N
runs were apart; a later value inside that spread is matched.
"""


def trial_file(root: Path, name: str) -> Path:
    """The record of trial `name` (``trialN``) in the store at `root`."""
    return root / TRIALS / f"{name}.json"


def record_file(root: Path, record_name: str, trial_id: str) -> Path:
    """A trial's provenance record in the store at `root`: its compressed file `record_name`, or
    for a trial written before those, ``records/<trial id>.json``."""
    return root / RECORDS / (record_name or f"{trial_id}.json")


def is_store(folder: Path) -> bool:
    """Whether `folder` is a local store a session has recorded into (it has ``trials/``)."""
    return (folder / TRIALS).is_dir()


def entry_record(entry_file: Path) -> Path:
    """The provenance record saved next to a baseline entry: ``train.py.json`` -> ``train.py.provenance.json``."""
    return entry_file.with_name(entry_file.name[: -len(ENTRY_EXTENSION)] + RECORD_EXTENSION)
