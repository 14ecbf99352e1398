"""The package: what its extras declare and install, and what a core install says without them.

A missing extra is simulated in a subprocess whose ``sitecustomize`` sets ``sys.modules[name] =
None`` for each name in ``NW_TEST_BLOCK``, so importing it fails as if it were not installed;
capture processes inherit the environment, so the experiment's own process is blocked too.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import pytest_nwtrials
from pytest_nwtrials.extras import EXTRAS, MissingExtra, install_hint, require

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
OPTIONAL = PROJECT["optional-dependencies"]
BLOCKER = """
import os
import sys

for name in os.environ.get("NW_TEST_BLOCK", "").split(","):
    if name:
        sys.modules[name] = None
"""
FRAMES_MESSAGE = ("Storing and reading pandas DataFrames and Series needs pyarrow, from the 'frames' extra: "
                  "pip install 'pytest-nwtrials[frames]'")
PLOTS_MESSAGE = "Plotting tags needs matplotlib, from the 'plots' extra: pip install 'pytest-nwtrials[plots]'"


def blocked_env(tmp_path: Path, *modules: str) -> dict[str, str]:
    """The environment of a process in which `modules` cannot be imported."""
    folder = tmp_path / "blocker"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), env.get("PYTHONPATH")]))
    env["NW_TEST_BLOCK"] = ",".join(modules)
    return env


def literal(text: str) -> str:
    """`text` as an fnmatch pattern that matches only itself."""
    return re.sub(r"([\[\]*?])", r"[\1]", text)


def python(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def extra_distributions(extra: str) -> set[str]:
    """The distributions `extra` installs, following ``pytest-nwtrials[...]`` references."""
    names = set()
    for line in OPTIONAL[extra]:
        req = Requirement(line)
        if req.name == PROJECT["name"]:
            for inner in req.extras:
                names |= extra_distributions(inner)
        else:
            names.add(req.name)
    return names


# -- what the extras declare --------------------------------------------------------------------

def test_each_optional_module_has_its_extra_and_the_core_does_not_install_it() -> None:
    core = {Requirement(line).name for line in PROJECT["dependencies"]}
    for extra, modules in EXTRAS.items():
        assert set(modules) <= extra_distributions(extra), extra
        assert not set(modules) & core, f"{modules} are optional ({extra}) but the core installs them"


def test_all_and_test_extras_install_every_extra() -> None:
    for extra in EXTRAS:
        assert extra_distributions(extra) <= extra_distributions("all"), extra
    # .ci/run installs the test extra: the suite runs with every optional module
    assert extra_distributions("all") <= extra_distributions("test")


@pytest.mark.parametrize("extra", sorted(e for e in OPTIONAL if extra_distributions(e) <= extra_distributions("test")))
def test_the_extras_install_into_this_environment(extra: str) -> None:
    """The suite runs in a venv installed with the test extra: each requirement of every extra
    the test extra pulls in is installed here, at a version it accepts, and its modules import."""
    for line in OPTIONAL[extra]:
        req = Requirement(line)
        if req.name == PROJECT["name"]:
            continue
        version = metadata.version(req.name)
        assert req.specifier.contains(version, prereleases=True), f"{req.name} {version} is not {req.specifier}"
    for module in EXTRAS.get(extra, ()):
        require(module, extra, "This test")


def test_metadata_names_pythons_posix_and_urls_and_the_package_is_typed() -> None:
    classifiers = set(PROJECT["classifiers"])
    for version in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert {"Operating System :: POSIX", "Framework :: Pytest", "Typing :: Typed"} <= classifiers
    assert PROJECT["requires-python"] == ">=3.11"
    assert PROJECT["urls"]
    assert (Path(pytest_nwtrials.__file__).parent / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["pytest_nwtrials"]


def test_build_and_run_requirements() -> None:
    build = [Requirement(line) for line in PYPROJECT["build-system"]["requires"]]
    assert [(r.name, str(r.specifier)) for r in build] == [("setuptools", ">=77")]  # SPDX license
    # noWorkflow imports pkg_resources when a trial runs; setuptools 82 removed it
    setuptools = next(Requirement(line) for line in PROJECT["dependencies"] if line.startswith("setuptools"))
    assert not setuptools.specifier.contains("82.0.0") and setuptools.specifier.contains("71.1.0")


# -- what a core install says ---------------------------------------------------------------------

def test_require_names_the_extra_and_keeps_other_import_errors(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MissingExtra) as info:
        require("nwtrials_absent_module.sub", "frames", "Doing this")
    assert str(info.value) == ("Doing this needs nwtrials_absent_module, from the 'frames' extra: "
                               "pip install 'pytest-nwtrials[frames]'")
    assert isinstance(info.value, ImportError) and install_hint("plots") == "pip install 'pytest-nwtrials[plots]'"
    # an installed module whose own import fails: its error, not a wrong hint to install it
    (tmp_path / "nwtrials_broken_module.py").write_text("import nwtrials_absent_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as broken:
        require("nwtrials_broken_module", "plots", "Doing this")
    assert not isinstance(broken.value, MissingExtra) and broken.value.name == "nwtrials_absent_dependency"


def test_without_the_extras_the_plugin_the_api_and_the_cli_import(tmp_path: Path) -> None:
    done = python("""
        import sys
        import pytest_nwtrials, pytest_nwtrials.plugin.hooks, pytest_nwtrials.api, pytest_nwtrials.cli
        import pytest_nwtrials.noworkflow, pytest_nwtrials.render.html, pytest_nwtrials.compare.engine
        print(sorted(m for m in ("pyarrow", "matplotlib", "skops") if sys.modules.get(m) is not None))
        """, blocked_env(tmp_path, "pyarrow", "matplotlib", "skops"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_stored_frame_without_pyarrow_names_the_extra(tmp_path: Path) -> None:
    import pandas as pd

    from pytest_nwtrials.values.codec import BlobStore, encode

    doc = encode(pd.DataFrame({"a": [1.0, 2.0]}), BlobStore(tmp_path / "values"))
    (tmp_path / "doc.json").write_text(json.dumps({"value": doc}))
    done = python("""
        import json
        from pytest_nwtrials.extras import MissingExtra
        from pytest_nwtrials.store.record_fields import decode_tag
        from pytest_nwtrials.store.trial_store import StoreError
        from pytest_nwtrials.values.codec import BlobStore, decode

        tag = json.load(open("doc.json"))
        blobs = BlobStore("values")
        try:
            decode(tag["value"], blobs)
        except MissingExtra as exc:
            print("decode:", exc)
        try:
            decode_tag("frame", tag, blobs, "base.json", "restore it")
        except StoreError as exc:
            print("decode_tag:", exc)
        """, blocked_env(tmp_path, "pyarrow"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"decode: {FRAMES_MESSAGE}", f"decode_tag: base.json: tag 'frame': {FRAMES_MESSAGE}"]


def test_plots_without_matplotlib_name_the_extra(nw_project: Path, tmp_path: Path) -> None:
    env = blocked_env(tmp_path, "matplotlib")
    done = subprocess.run([sys.executable, "-m", "pytest_nwtrials.cli", "plot", "auc", "-o", str(tmp_path / "auc.png")],
                          cwd=nw_project, env=env, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"nwtrials: error: {PLOTS_MESSAGE}\n"
    done = python("""
        from pytest_nwtrials import plot
        from pytest_nwtrials.noworkflow import var_tag_plot
        for call in (lambda: plot("auc"), lambda: var_tag_plot("auc")):
            try:
                call()
            except ImportError as exc:
                print(type(exc).__name__, exc)
        """, env, nw_project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"MissingExtra {PLOTS_MESSAGE}"] * 2


def test_experiments_without_the_extras(pytester: pytest.Pytester, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Tagging a frame without pyarrow fails that experiment with the extra to install, at the
    tag() line; the HTML report without matplotlib notes it where the plots would be."""
    pytester.makefile(".ini", pytest="[pytest]\nnw_experiments = experiments/*.py\n")
    pytester.mkdir("experiments")
    (pytester.path / "experiments" / "plain.py").write_text("from pytest_nwtrials import tag\ntag('auc', 0.5)\n")
    (pytester.path / "experiments" / "frame.py").write_text(textwrap.dedent("""\
        import pandas as pd
        from pytest_nwtrials import tag

        tag("frame", pd.DataFrame({"a": [1.0, 2.0]}))
        """))
    env = blocked_env(tmp_path, "pyarrow", "matplotlib")
    for name in ("PYTHONPATH", "NW_TEST_BLOCK"):
        monkeypatch.setenv(name, env[name])
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--nw-report=report.html", timeout=240)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        literal(f"experiments/frame.py raised MissingExtra: {FRAMES_MESSAGE} (trial") + "*",
        "Traceback (most recent call last):",
        '  File "*experiments/frame.py", line 4, in <module>',
        literal('    tag("frame", pd.DataFrame({"a": [1.0, 2.0]}))'),
        literal(f"pytest_nwtrials.extras.MissingExtra: {FRAMES_MESSAGE}"),
    ])
    assert not re.search(r'File "[^"]*pytest_nwtrials', result.stdout.str())  # no frame of the plugin
    report = (pytester.path / "report.html").read_text(encoding="utf-8")
    assert "No plot of auc: Plotting tags needs matplotlib, from the &#x27;plots&#x27; extra" in report


def test_the_readme_pictures_are_committed_pngs_under_300_kb():
    readme = ROOT / "README.md"
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", readme.read_text(encoding="utf-8"))
    assert images, "the README shows no picture"
    for image in images:
        path = ROOT / image
        assert path.is_file(), f"{image} is not in the repository"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size < 300_000, image
