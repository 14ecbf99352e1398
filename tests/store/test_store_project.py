"""ini ``nw_store`` and ``nw_baselines_dir`` mean the same folders to pytest, to the `nwtrials`
command and to the Python API, from the rootdir and from any folder below it.

The configuration file is found as pytest finds it; `test_the_configuration_file_is_the_one_pytest_uses`
asks pytest itself which file and rootdir it took.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_nwtrials.settings import SettingsError, resolve
from pytest_nwtrials.store.project import (
    ConfigError, baselines_beside, default_baselines, default_store, find_project)

INI = """
[pytest]
nw_experiments = experiments/*.py
nw_store = custom/store
nw_baselines_dir = custom/baselines
"""
TRAIN = """
from pytest_nwtrials import tag
run = int(open("../run.txt").read())
tag("auc", 0.9 - run / 100)
"""


def pytest_run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def nwtrials(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_nwtrials.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def configured_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose ini names its store and baselines: trial1 saved as baseline 'base', trial2 after it."""
    root = tmp_path_factory.mktemp("configured") / "project"
    (root / "experiments" / "deep").mkdir(parents=True)
    (root / "pytest.ini").write_text(INI)
    (root / "experiments" / "train.py").write_text(textwrap.dedent(TRAIN))
    for run, args in enumerate([("--nw-save-baseline=base",), ()]):
        (root / "run.txt").write_text(str(run))
        done = pytest_run(root, "-q", *args)
        assert done.returncode == 0, done.stdout + done.stderr
    return root


@pytest.fixture
def configured(configured_template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(configured_template, tmp_path / "project"))


def test_pytest_records_into_the_configured_folders(configured):
    assert sorted(p.name for p in (configured / "custom" / "store" / "trials").iterdir()) == ["trial1.json",
                                                                                               "trial2.json"]
    assert (configured / "custom" / "baselines" / "base" / "experiments" / "train.py.json").is_file()
    assert not (configured / ".nwtrials").exists() and not (configured / "nw-baselines").exists()


@pytest.mark.parametrize("where", [".", "experiments/deep"])
def test_the_command_finds_the_configured_store(configured, where):
    cwd = configured / where
    listed = nwtrials("list", cwd=cwd)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ["trial1", "trial2"]
    shown = nwtrials("show", "trial2", cwd=cwd)
    assert shown.returncode == 0 and shown.stdout.startswith("trial2  experiments/train.py  finished"), shown.stderr
    differ = nwtrials("diff", "trial1", "trial2", cwd=cwd)
    assert differ.returncode == 1 and "auc: changed: 0.9 -> 0.89" in differ.stdout, differ.stderr


@pytest.mark.parametrize("where", [".", "experiments/deep"])
def test_the_command_finds_the_configured_baselines(configured, where):
    cwd = configured / where
    listed = nwtrials("baseline", "list", cwd=cwd)
    assert listed.returncode == 0 and listed.stdout.split() == ["base", "1", "entries"], listed.stderr
    shown = nwtrials("baseline", "show", "base", cwd=cwd)
    assert shown.returncode == 0, shown.stderr
    assert f"baseline 'base' in {configured / 'custom' / 'baselines' / 'base'}" in shown.stdout
    # the configured folder goes with the store when it is named by hand, too
    other = nwtrials("--store", str(configured / "custom" / "store"), "baseline", "list", cwd=configured.parent)
    assert other.returncode == 0 and other.stdout.split() == ["base", "1", "entries"], other.stderr
    deleted = nwtrials("baseline", "delete", "base", cwd=cwd)
    assert deleted.returncode == 0, deleted.stderr
    assert not (configured / "custom" / "baselines" / "base").exists()


@pytest.mark.parametrize("where", [".", "experiments/deep"])
def test_the_api_finds_the_configured_store_and_baselines(configured, where, monkeypatch):
    from pytest_nwtrials import list_trials, load_baseline, load_trial, tag_values, trial_diff

    monkeypatch.chdir(configured / where)
    assert list(list_trials()["name"]) == ["trial1", "trial2"]
    assert list(tag_values("auc")["value"]) == [0.9, 0.89]
    assert load_trial("trial2").values == {"auc": 0.89}
    assert not trial_diff("trial1", "trial2").empty
    assert load_baseline("base", "experiments/train.py") == {"auc": 0.9}
    assert list(list_trials(store=configured)["name"]) == ["trial1", "trial2"]  # the project folder names it


def test_no_store_yet_names_the_configured_folder(configured, monkeypatch):
    from pytest_nwtrials import list_trials

    shutil.rmtree(configured / "custom" / "store")
    store = configured / "custom" / "store"
    monkeypatch.chdir(configured / "experiments")
    with pytest.raises(LookupError, match=re.escape(f"no trial store at {store} (ini nw_store = custom/store in "
                                                    f"{configured / 'pytest.ini'})")):
        list_trials()
    done = nwtrials("list", cwd=configured / "experiments")
    assert done.returncode == 2 and f"no trial store at {store}" in done.stderr and "--store PATH" in done.stderr


def test_a_store_outside_the_rootdir_is_refused_as_pytest_refuses_it(tmp_path):
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "pytest.ini").write_text("[pytest]\nnw_store = ../elsewhere\n")
    (tmp_path / "elsewhere" / "trials").mkdir(parents=True)
    done = nwtrials("list", cwd=tmp_path / "project")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    with pytest.raises(SettingsError) as raised:
        resolve(tmp_path / "project", {}, {"nw_store": "../elsewhere"})
    assert done.stderr.strip() == f"nwtrials: error: {raised.value}"
    assert "ini nw_store = ../elsewhere leads outside the rootdir" in done.stderr


def test_settings_and_the_command_resolve_a_relative_folder_alike(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\nnw_store = a/../b/store\nnw_baselines_dir = ./c\n")
    project = find_project(tmp_path / "deeper" / "still")
    settings = resolve(tmp_path, {}, dict(project.ini))
    assert (project.store, project.baselines) == (settings.store, settings.baselines_dir)
    assert (project.store, project.baselines) == (tmp_path.resolve() / "b" / "store", tmp_path.resolve() / "c")


# -- finding the configuration file as pytest does ----------------------------------------------

LAYOUTS = {
    "pytest.ini beats pyproject.toml": {"pytest.ini": "[pytest]\n", "pyproject.toml": "[tool.pytest.ini_options]\n"},
    ".pytest.ini without a section": {".pytest.ini": "", "tox.ini": "[pytest]\n"},
    "pyproject.toml beats tox.ini": {"pyproject.toml": "[tool.pytest.ini_options]\nnw_store = 's'\n",
                                     "tox.ini": "[pytest]\n"},
    "native [tool.pytest]": {"pyproject.toml": "[tool.pytest]\nnw_store = 's'\n"},
    "tox.ini without [pytest] is skipped": {"tox.ini": "[tox]\n", "setup.cfg": "[tool:pytest]\nnw_store = s\n"},
    "a nearer file wins": {"pytest.ini": "[pytest]\n", "sub/tox.ini": "[pytest]\n"},
    "a farther configuration beats a nearer bare pyproject.toml": {
        "sub/pyproject.toml": "[project]\nname = 'x'\n", "setup.cfg": "[tool:pytest]\n"},
    "a bare pyproject.toml when nothing else": {"sub/pyproject.toml": "[project]\nname = 'x'\n"},
}


@pytest.mark.parametrize("files", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_the_configuration_file_is_the_one_pytest_uses(tmp_path, files):
    root = tmp_path / "root"
    (root / "sub" / "deep").mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    done = pytest_run(root / "sub" / "deep", "--collect-only", "-p", "no:nwtrials")
    rootdir = re.search(r"^rootdir: (.*?)(?:,|$)", done.stdout, re.MULTILINE)
    config = re.search(r"^configfile: (\S+)|, configfile: (\S+)", done.stdout, re.MULTILINE)
    assert rootdir and config, done.stdout + done.stderr
    project = find_project(root / "sub" / "deep")
    assert project is not None
    assert str(project.rootdir) == rootdir.group(1)
    assert project.config == project.rootdir / (config.group(1) or config.group(2))
    if "nw_store" in files.get(project.config.relative_to(root).as_posix(), ""):
        assert project.store == project.rootdir.resolve() / "s"


def test_without_a_configuration_file_the_nearest_store_is_used(tmp_path):
    (tmp_path / ".nwtrials" / "trials").mkdir(parents=True)
    (tmp_path / "sub").mkdir()
    assert find_project(tmp_path / "sub") is None
    assert default_store(tmp_path / "sub") == tmp_path / ".nwtrials"
    assert default_baselines(tmp_path / "sub") == (tmp_path / "nw-baselines", tmp_path)
    assert baselines_beside(tmp_path / ".nwtrials") == (tmp_path / "nw-baselines", tmp_path)


def test_an_unreadable_configuration_file_is_named(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options\n")
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'pyproject.toml'}: cannot be read")):
        find_project(tmp_path)
    done = nwtrials("list", cwd=tmp_path)
    assert done.returncode == 2 and "pyproject.toml: cannot be read" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
