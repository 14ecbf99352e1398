"""``now_variable``, noWorkflow's older name of ``now_tag_variable`` (the name the noWorkflow
tutorial's notebooks use), in scripts and notebooks, with and without capture."""
from __future__ import annotations

import pytest

nbformat = pytest.importorskip("nbformat")
from nbformat.v4 import new_code_cell, new_notebook  # noqa: E402

CELLS = ["pca_components = now_variable('pca_components', {n})",
         "doubled = now_variable('doubled', pca_components * 2)\nsame = now_tag_variable('same', doubled)"]


def _write(project, kind: str, n: int) -> str:
    folder = project.root / "experiments"
    folder.mkdir(exist_ok=True)
    cells = [cell.format(n=n) for cell in CELLS]
    if kind == "script":
        (folder / "older.py").write_text("\n".join(cells) + "\n", encoding="utf-8")
        project.ini(experiments="experiments/*.py")
        return "experiments/older.py"
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), folder / "older.ipynb")
    project.ini(experiments="experiments/*.ipynb")
    return "experiments/older.ipynb"


@pytest.mark.parametrize("capture", ["fine", "off"])
@pytest.mark.parametrize("kind", ["script", "notebook"])
def test_now_variable_tags_and_returns_its_value(project, kind, capture):
    experiment = _write(project, kind, 3)
    project.run(f"--nw-capture={capture}").assert_outcomes(passed=1)
    trial = project.trials()[-1]
    assert trial["experiment"] == experiment
    assert {name: doc["value"] for name, doc in trial["tags"].items()} == {"pca_components": 3, "doubled": 6, "same": 6}


@pytest.mark.parametrize("kind", ["script", "notebook"])
def test_a_value_tagged_with_now_variable_is_explained(project, kind):
    _write(project, kind, 3)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    _write(project, kind, 5)
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(failed=1)
    report = result.stdout.str().split("short test summary info")[0]
    assert "in the provenance of doubled" in report, report
    assert "root cause:" in report and "3 -> 5" in report.split("root cause:")[1].splitlines()[0], report
