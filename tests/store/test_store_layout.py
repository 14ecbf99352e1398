"""The names of the store's and the baselines' files and folders are spelled once, in store/layout.py."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest_nwtrials
from pytest_nwtrials.store import layout as store_layout

# names no other module has a reason to spell (common words such as "values" are JSON keys too)
SPELLED_ONCE = {store_layout.STORE_DIR, store_layout.BASELINES_DIR, store_layout.RECORD_EXTENSION,
                store_layout.SAVING_PREFIX, store_layout.MAKING_PREFIX, store_layout.JOURNAL, store_layout.PINNED,
                store_layout.STORE_KEY, store_layout.BASELINES_KEY}


def test_folder_and_file_names_are_spelled_only_in_store_layout():
    package = Path(pytest_nwtrials.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        if path == Path(store_layout.__file__):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in SPELLED_ONCE:
                found.append(f"{path.relative_to(package)}:{node.lineno} {node.value!r}")
    assert not found, "use the names of store/layout.py instead: " + ", ".join(found)
