"""Environment variables that look like credentials never reach the store."""
from __future__ import annotations

import gzip
import os

import pytest


@pytest.mark.parametrize("kind", ["script", "notebook"])
def test_secret_environment_values_are_not_stored(project, monkeypatch, kind):
    monkeypatch.setenv("MY_API_TOKEN", "tok-4f1c9e2a7b")
    monkeypatch.setenv("DB_PASSWORD", "pw-93b7c1d0e4")
    monkeypatch.setenv("COMPANY_VAULT", "vault-58e2a9c3f1")
    monkeypatch.setenv("HARMLESS_SETTING", "plain-7d3e1f")
    code = """
import os
from pytest_nwtrials import tag
token = os.environ["MY_API_TOKEN"]
header = "Bearer " + token
tag("token_seen", token.startswith("tok-") and len(token) == 14)
"""
    if kind == "script":
        project.ini("nw_env_redact = *_VAULT\n")
        project.experiment("env.py", code)
    else:
        import nbformat
        from nbformat.v4 import new_code_cell, new_notebook

        project.ini("nw_env_redact = *_VAULT\n", experiments="experiments/*.ipynb")
        (project.root / "experiments").mkdir()
        nbformat.write(new_notebook(cells=[new_code_cell(code)]), project.root / "experiments" / "env.ipynb")
    project.run().assert_outcomes(passed=1)
    [trial] = project.trials()
    assert trial["tags"]["token_seen"]["value"] is True  # the experiment saw the real value
    stored = b""
    for folder, _, files in os.walk(project.root / ".nwtrials"):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                data = handle.read()
            stored += gzip.decompress(data) if name.endswith(".gz") else data  # noWorkflow's database
    assert b"plain-7d3e1f" in stored  # the environment was recorded at all
    assert b"Bearer <redacted>" in stored  # values computed from a secret are masked, not dropped
    for secret in (b"tok-4f1c9e2a7b", b"pw-93b7c1d0e4", b"vault-58e2a9c3f1"):
        assert secret not in stored
