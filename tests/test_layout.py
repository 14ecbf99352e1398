"""The package's layout: imports flow one way, only the plugin imports pytest, modules stay small.

The imports are read from the source (module level and inside functions alike), so a circle
that only closes when a function runs is found too.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_nwtrials"
LONGEST = 400


def modules(root: Path = PACKAGE) -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def imports(root: Path = PACKAGE) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """The package's own modules each module imports, and the outside packages it imports."""
    known = modules(root)
    inside: dict[str, set[str]] = {name: set() for name in known}
    outside: dict[str, set[str]] = {name: set() for name in known}
    for name, (path, is_package) in known.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = name.split(".") if is_package else name.split(".")[:-1]
                if node.level:
                    base = base[:len(base) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                # `from . import values` imports the module; `from .store import Trial` imports store
                targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
                           for alias in node.names]
            for target in targets:
                (inside if target in known else outside)[name].add(target if target in known else target.split(".")[0])
            inside[name].discard(name)
    return inside, outside


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for succ in edges:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_circle_finder_finds_a_circle_through_a_function_level_import(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text("def later():\n    from .c import thing\n")
    (package / "c.py").write_text("from .a import b as again\nthing = 1\n")
    (package / "d.py").write_text("from . import a\n")
    inside, _ = imports(package)
    assert circles(inside) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_no_import_circle_at_any_level():
    inside, _ = imports()
    assert circles(inside) == []


def test_only_the_plugin_package_imports_pytest():
    _, outside = imports()
    importers = sorted(name for name, packages in outside.items()
                       if packages & {"pytest", "_pytest", "xdist", "pluggy"}
                       and not name.startswith("pytest_nwtrials.plugin"))
    assert importers == []


def test_the_pure_core_runs_without_pytest():
    core = sorted(name for name in modules() if not name.startswith("pytest_nwtrials.plugin")
                  and name not in ("pytest_nwtrials.capture.kernel", "pytest_nwtrials.capture.kernel_shell"))
    code = ("import importlib, sys\n"
            f"for name in {core!r}:\n"
            "    importlib.import_module(name)\n"
            "print(sorted(m for m in ('pytest', '_pytest') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("name", sorted(modules()))
def test_a_module_stays_small_or_says_why(name):
    path, _ = modules()[name]
    lines = len(path.read_text().splitlines())
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert lines <= LONGEST or "Longer than" in docstring, (
        f"{path.name} has {lines} lines: split it along a concern, or say in its docstring why it is "
        f"longer than {LONGEST} lines")
