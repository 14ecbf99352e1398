"""Shared fixtures: a pytester project with experiments, run in a pytest subprocess.

Capture patches builtins process-wide, so every pytest run of the plugin happens in a subprocess
(`runpytest_subprocess`), and every experiment in a child process of that.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

INI = """
[pytest]
nw_experiments =
    {experiments}
{extra}
"""


class Project:
    """An experiment project inside pytester's temporary folder."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.root = Path(pytester.path)

    def ini(self, extra: str = "", experiments: str = "experiments/*.py") -> None:
        self.pytester.makefile(".ini", pytest=INI.format(experiments=experiments, extra=textwrap.dedent(extra)))

    def experiment(self, name: str, code: str) -> Path:
        path = self.root / "experiments" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(code), encoding="utf-8")
        return path

    def run(self, *args: str, timeout: float = 240) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=timeout)

    def trials(self) -> list[dict]:
        folder = self.root / ".nwtrials" / "trials"
        paths = sorted(folder.glob("trial*.json"), key=lambda p: int(p.stem[5:]))
        return [json.loads(p.read_text()) for p in paths]

    def baseline_entry(self, name: str, experiment: str) -> dict:
        return json.loads((self.root / "nw-baselines" / name / f"{experiment}.json").read_text())


@pytest.fixture
def project(pytester: pytest.Pytester) -> Project:
    project = Project(pytester)
    project.ini()
    return project
