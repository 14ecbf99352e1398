"""Secrets (environment variables named like credentials, secret arguments) are never stored
or reported: not in the store, the baselines, the reports, the JUnit XML or the terminal.

The pytest runs happen in subprocesses that get the secrets in their environment; the inner
project's files never contain them, so any byte of a secret found afterwards was written by
the plugin.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_nwtrials.values import codec as values
from pytest_nwtrials.store.baselines import entry_path
from pytest_nwtrials.redaction import REDACTED, Secrets, is_secret_option

ENCODINGS = ("utf-8", "utf-16-le", "utf-32-le")


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stored_bytes(path: Path) -> list[bytes]:
    """The bytes of a file as stored, and as read back where the format compresses them."""
    data = path.read_bytes()
    found = [data]
    if path.name.endswith(".gz"):
        found.append(gzip.decompress(data))  # noWorkflow's database
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        found.append(repr(pq.read_table(path).to_pylist()).encode())
    return found


def assert_nowhere(secrets: list[str], folders: list[Path], *texts: str) -> int:
    """No secret, in any of `ENCODINGS`, in any file under `folders` or in `texts`; returns how
    many files were searched."""
    searched = []
    for folder in folders:
        for dirpath, _, names in os.walk(folder):
            for name in names:
                path = Path(dirpath, name)
                searched += [(str(path), data) for data in stored_bytes(path)]
    searched += [(f"output {i}", text.encode()) for i, text in enumerate(texts)]
    for secret in secrets:
        for encoding in ENCODINGS:
            pattern = secret.encode(encoding)
            leaks = [where for where, data in searched if pattern in data]
            assert not leaks, f"secret {secret!r} ({encoding}) found in {leaks}"
    return len(searched)


# -- recognising secrets ------------------------------------------------------------------------

@pytest.mark.parametrize("option, secret", [
    ("--token", True), ("--api-key", True), ("--apiKey", True), ("--apikey", True), ("--PASSWORD", True),
    ("--db-password", True), ("--access_token", True), ("--client-secret", True), ("--auth", True),
    ("db.password", True), ("--pass", True),
    ("--max-tokens", False), ("--tokenizer", False), ("--passes", False), ("--author", False),
    ("--lr", False), ("--keyword", False),
])
def test_option_names_that_hold_secrets(option, secret):
    assert is_secret_option(option) is secret


def test_secret_arguments_are_masked_in_every_form_and_stay_stable_when_they_change():
    def run(token: str, key: str, password: str) -> tuple[str, ...]:
        secrets = Secrets.from_environment({"MY_API_TOKEN": token, "HOME": "/home/me"}, (),
                                           ["--api-key=" + key, "--password", password])
        return secrets.mask_argv(["--api-key=" + key, "--password", password, "--Token", "abc",
                                  "--url", f"https://me:{token}@db", "--max-tokens", "512", "db.password=" + key,
                                  "--lr", "0.5"])

    first = run("tok-4f1c9e2a7b", "key-93b7c1d0e4", "x")
    assert first == ("--api-key=<redacted>", "--password", REDACTED, "--Token", REDACTED,
                     "--url", "https://me:<redacted>@db", "--max-tokens", "512", "db.password=<redacted>",
                     "--lr", "0.5")
    second = run("tok-0000000000", "key-1111111111", "y")
    assert second == first
    assert entry_path("exp.py", first) == entry_path("exp.py", second)


def test_short_values_are_masked_as_arguments_but_not_searched_for_in_values():
    secrets = Secrets.from_environment({"DB_PASSWORD": "abc12", "API_TOKEN": "abcdef"}, (), ["--password", "x"])
    assert set(secrets.sources) == {"abcdef"}
    assert secrets.mask_text("x abc12 abcdef") == f"x abc12 {REDACTED}"
    assert secrets.mask_argv(["--password", "x"]) == ("--password", REDACTED)


class Holder:
    def __init__(self, value):
        self.value = value


def test_values_holding_a_secret_are_stored_masked_or_as_their_summary_only(tmp_path):
    token = "tok-4f1c9e2a7b"
    secrets = Secrets.from_environment({"MY_API_TOKEN": token})
    frame = pd.DataFrame({"who": [token, "x"], token: [1, 2]}, index=pd.Index([token, "b"], name=token))
    frame["kind"] = pd.Categorical([token, "z"])
    frame["s"] = pd.array([token, "w"], dtype="string")
    frame["o"] = pd.Series([token, "v"], dtype=object, index=frame.index)
    value = {
        "header": "Bearer " + token, ("key", token): token.encode(), "words": np.array(["a", token]),
        "rows": np.array([f"row{i}-{token}" for i in range(40)]), "raw": np.array([token.encode()]),
        "mixed": np.array([token, 1, None], dtype=object), "frame": frame,
        "columns": pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", token), ("b", "c")])),
        "series": pd.Series([token], name=token), "holder": Holder(token), "scalar": np.str_(token),
        "records": np.array([(1, token)], dtype=[("a", "i4"), ("b", "U20")]),
        "bytes": np.frombuffer(token.encode(), dtype=np.uint8), "index": pd.Index([token, "q"], name="i"),
    }
    blobs = values.BlobStore(tmp_path / "values")
    hits: set[str] = set()
    doc = values.encode(value, blobs, secrets, hits)
    assert "MY_API_TOKEN" in hits
    assert_nowhere([token], [tmp_path], json.dumps(doc))
    back = values.decode(doc, blobs)
    assert back["header"] == "Bearer <redacted>"
    assert back[("key", REDACTED)] == b"<redacted>"
    assert back["frame"].index.tolist() == [REDACTED, "b"] and back["frame"].index.name == REDACTED
    assert back["frame"]["who"].tolist() == [REDACTED, "x"] and list(back["frame"].columns)[1] == REDACTED
    assert back["frame"]["kind"].tolist() == [REDACTED, "z"] and back["frame"]["s"].tolist() == [REDACTED, "w"]
    assert list(map(str, back["frame"].dtypes)) == list(map(str, frame.dtypes))  # each column keeps its dtype
    assert back["rows"][3] == "row3-<redacted>" and back["mixed"].tolist() == [REDACTED, 1, None]
    for name in ("holder", "records", "bytes"):
        assert isinstance(back[name], values.OpaqueValue) and "secret" in back[name].note, name
    assert values.decode(doc, blobs, allow_pickle=True)[("key", REDACTED)] == b"<redacted>"
    assert values.decode(doc, blobs, allow_pickle=True)["index"].tolist() == [REDACTED, "q"]
    # a value without secrets is stored exactly as before
    plain = {"a": np.array(["x", "y"]), "f": pd.DataFrame({"c": ["u", "v"]})}
    plain_back = values.decode(values.encode(plain, blobs, secrets), blobs)
    assert plain_back["a"].tolist() == ["x", "y"] and plain_back["f"].equals(plain["f"])


TOKEN = "tok-4f1c9e2a7b"
# text that may hold the secret: plain words with the secret spliced in
texts = st.lists(st.sampled_from(["a", "b c", "\u00e9", "'", "\\", TOKEN]), max_size=4).map("".join)
plain_values = st.recursive(
    st.none() | st.integers() | st.floats(allow_nan=False) | texts | texts.map(str.encode)
    | st.lists(texts, min_size=1, max_size=5).map(np.array),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=plain_values)
def test_any_value_is_stored_without_its_secrets_and_unchanged_without_them(tmp_path, value):
    secrets = Secrets.from_environment({"MY_API_TOKEN": TOKEN})
    folder = tmp_path / f"values-{uuid.uuid4().hex}"
    blobs = values.BlobStore(folder)
    doc = values.encode(value, blobs, secrets)
    if folder.exists():
        assert_nowhere([TOKEN], [folder])
    assert_nowhere([TOKEN], [], json.dumps(doc))
    if TOKEN not in repr(value):  # a value without the secret is kept exactly
        assert values.value_digest(values.decode(doc, blobs)) == values.value_digest(value)


# -- nothing stored or reported, end to end ---------------------------------------------------

EXPERIMENT = """
import argparse, hashlib, os, sys
import numpy as np
import pandas as pd
from pytest_nwtrials import tag

parser = argparse.ArgumentParser()
for option in ("--api-key", "--password", "--url"):
    parser.add_argument(option, default="")
args = parser.parse_args()
token = os.environ["MY_API_TOKEN"]
run = int(os.environ["RUN_NUMBER"])
secret = args.api_key or token


class Holder:
    def __init__(self, value):
        self.value = value


def digest(text):
    return hashlib.sha256(text.encode()).hexdigest()[:16]


tag("used", {"token": digest(token), "api_key": digest(args.api_key), "password": digest(args.password),
             "url": digest(args.url), "argv": digest(" ".join(sys.argv[1:]))})
tag("header", "Bearer " + secret + ("" if run == 1 else " (v2)"))
tag("nested", {"auth": ["Bearer " + args.password, {secret: secret.encode()}], "pair": (secret, run)})
tag("words", np.array(["a", secret, "b-" + secret]))
tag("rows", np.array([f"row{i}-{secret}" for i in range(40)]))
tag("raw", np.array([secret.encode()]))
tag("mixed", np.array([secret, 1, None], dtype=object))
frame = pd.DataFrame({"who": [secret, "x"], "n": [1, run], secret: ["y", "z"]},
                     index=pd.Index([secret, "b"], name="id-" + secret))
frame["kind"] = pd.Categorical([secret, "z"])
frame["s"] = pd.array([secret, "w"], dtype="string")
tag("frame", frame)
tag("series", pd.Series(["v-" + secret], name=secret))
tag("holder", Holder(secret))
tag("named-" + secret, run)
print("stdout shows", secret, token, args.password)
print("stderr shows", secret, file=sys.stderr)
if run == 2 and not args.api_key:
    raise RuntimeError(f"refused token {token}")
"""

# the secret arguments come from a file outside the project, so that they are secrets only as
# arguments (an environment variable named like a credential would be one anyway)
TEST_WITH_ARGUMENTS = """
import json
import os


def test_secret_arguments(nw_trial):
    with open(os.environ["ARGUMENTS_FILE"]) as handle:
        key, password = json.load(handle)
    trial = nw_trial.run("experiments/exp.py", "--api-key=" + key, "--password", password,
                         "--url", "https://me:" + os.environ["MY_API_TOKEN"] + "@db.example")
    nw_trial.assert_matches(trial, baseline="ref")
"""


def plant(monkeypatch, folder: Path, run: int, suffix: str) -> dict[str, str]:
    """The secrets of one run: in the environment pytest's subprocess gets, and in the file
    of arguments outside the project."""
    planted = {"MY_API_TOKEN": f"tok{run}-4f1c9e2a7b{suffix}", "key": f"key{run}-93b7c1d0e4{suffix}",
               "password": f"pw{run}-58e2a9c3f1{suffix}"}
    monkeypatch.setenv("MY_API_TOKEN", planted["MY_API_TOKEN"])
    monkeypatch.setenv("RUN_NUMBER", str(run))
    arguments = folder / "arguments.json"
    arguments.write_text(json.dumps([planted["key"], planted["password"]]))
    monkeypatch.setenv("ARGUMENTS_FILE", str(arguments))
    return planted


def outputs(project, run: int) -> list[str]:
    return ["--nw-baseline=ref", f"--nw-report=out/report{run}.html", f"--nw-json=out/report{run}.json",
            f"--junitxml=out/junit{run}.xml"]


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["one process", "xdist"])
def test_no_secret_reaches_store_baselines_reports_or_terminal(project, monkeypatch, tmp_path_factory, workers):
    project.ini("nw_keep_database = true")  # masked in noWorkflow's database too, when it is kept
    project.experiment("exp.py", EXPERIMENT)
    project.pytester.makepyfile(test_args=TEST_WITH_ARGUMENTS)
    outside = tmp_path_factory.mktemp("outside")
    first = plant(monkeypatch, outside, 1, "")
    saved = project.run("--nw-save-baseline=ref", "-rA", *workers)
    saved.assert_outcomes(passed=2)
    second = plant(monkeypatch, outside, 2, "-rotated")  # every secret changes
    changed = project.run("-rA", "-v", *workers, *outputs(project, 2))
    changed.assert_outcomes(failed=2)
    texts = [saved.stdout.str(), saved.stderr.str(), changed.stdout.str(), changed.stderr.str()]
    assert_nowhere([*first.values(), *second.values()], [project.root], *texts)

    out = changed.stdout.str()
    # the arguments are masked in place, so the run found its baseline entry after the rotation
    assert "--api-key=<redacted> --password <redacted> --url https://me:<redacted>@db.example" in out
    assert "tagged values differ from baseline 'ref'" in out and "is not in baseline" not in out
    assert "Bearer <redacted>' -> 'Bearer <redacted> (v2)'" in out
    assert "RuntimeError: refused token <redacted>" in out and "stdout shows <redacted>" in out
    assert "secret values masked as <redacted>" in out  # the summary says what was masked, and whose
    entries = sorted(p.name for p in (project.root / "nw-baselines" / "ref" / "experiments").glob("exp.py*.json")
                     if not p.name.endswith(".provenance.json"))
    assert len(entries) == 2  # the item's and the argument run's, one each

    # the experiment saw the real values: their digests are what it tagged
    trials = project.trials()
    run_with_args = [t for t in trials if t["argv"]][-1]
    used = run_with_args["tags"]["used"]["value"]
    assert used["token"] == digest(second["MY_API_TOKEN"]) and used["api_key"] == digest(second["key"])
    assert used["password"] == digest(second["password"])
    real_argv = (f"--api-key={second['key']} --password {second['password']} "
                 f"--url https://me:{second['MY_API_TOKEN']}@db.example")
    assert used["argv"] == digest(real_argv)
    assert run_with_args["argv"] == ["--api-key=<redacted>", "--password", REDACTED, "--url",
                                     "https://me:<redacted>@db.example"]
    assert run_with_args["tags"]["header"]["value"] == "Bearer <redacted> (v2)"
    assert run_with_args["tags"]["holder"]["value"]["blob"] is None
    # noWorkflow's own record of the command line is masked, not dropped
    database = gzip.decompress((project.root / ".nwtrials" / run_with_args["provenance"]).read_bytes())
    assert b"run " in database and b"--api-key=<redacted> --password <redacted>" in database
    junit = (project.root / "out" / "junit2.xml").read_text()
    assert 'name="nw_tag_header" value="Bearer &lt;redacted&gt; (v2)"' in junit


def test_a_secret_held_by_a_committed_baseline_is_not_reported(project, monkeypatch):
    """A baseline written by hand, or before secrets were masked, may hold one in clear: the
    failure, the reports and the JUnit XML still do not show it."""
    token = "tok-4f1c9e2a7b"
    monkeypatch.setenv("MY_API_TOKEN", token)
    project.experiment("exp.py", "import os\nfrom pytest_nwtrials import tag\n"
                                 "tag('header', 'Bearer ' + os.environ['MY_API_TOKEN'])\n")
    project.run("--nw-save-baseline=ref").assert_outcomes(passed=1)
    entry = project.root / "nw-baselines" / "ref" / "experiments" / "exp.py.json"
    doc = json.loads(entry.read_text())
    doc["tags"]["header"]["value"] = f"Bearer {token} (old)"
    entry.write_text(json.dumps(doc))
    result = project.run("--nw-baseline=ref", "--nw-report=out/report.html", "--nw-json=out/report.json",
                         "--junitxml=out/junit.xml")
    result.assert_outcomes(failed=1)
    assert "'Bearer <redacted> (old)' -> 'Bearer <redacted>'" in result.stdout.str()
    assert_nowhere([token], [project.root / "out", project.root / ".nwtrials"], result.stdout.str(),
                   result.stderr.str())


NOTEBOOK_CELLS = [
    "import os\nimport hashlib\nimport pandas as pd\nfrom pytest_nwtrials import tag\n"
    "token = os.environ['MY_API_TOKEN']\nrun = int(os.environ['RUN_NUMBER'])",
    "tag('used', hashlib.sha256(token.encode()).hexdigest()[:16])\n"
    "tag('header', 'Bearer ' + token + ('' if run == 1 else ' (v2)'))\n"
    "tag('frame', pd.DataFrame({'who': [token, 'x'], 'n': [1, run]}))\n"
    "now_tag_variable('seen', 'seen ' + token)\n"
    "print('cell output shows', token)\ntoken",
    "if run == 2:\n    raise RuntimeError(f'refused token {token}')",
]


def test_no_secret_of_a_notebook_reaches_store_baselines_reports_or_terminal(project, monkeypatch, tmp_path):
    pytest.importorskip("nbclient", reason="notebook capture needs nbclient")
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    project.ini(experiments="experiments/*.ipynb")
    (project.root / "experiments").mkdir()
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in NOTEBOOK_CELLS]),
                   project.root / "experiments" / "nb.ipynb")
    first = plant(monkeypatch, tmp_path, 1, "")
    saved = project.run("--nw-save-baseline=ref")
    saved.assert_outcomes(passed=1)
    second = plant(monkeypatch, tmp_path, 2, "-rotated")
    changed = project.run("-rA", *outputs(project, 2))
    changed.assert_outcomes(failed=1)
    texts = [saved.stdout.str(), saved.stderr.str(), changed.stdout.str(), changed.stderr.str()]
    assert_nowhere([first["MY_API_TOKEN"], second["MY_API_TOKEN"]], [project.root], *texts)
    assert "RuntimeError: refused token <redacted>" in changed.stdout.str()
    first_trial, second_trial = project.trials()
    assert first_trial["tags"]["used"]["value"] == digest(first["MY_API_TOKEN"])
    assert second_trial["tags"]["used"]["value"] == digest(second["MY_API_TOKEN"])
    assert first_trial["tags"]["header"]["value"] == "Bearer <redacted>"


@pytest.mark.parametrize("kind", ["script", "script without capture", "notebook"])
def test_secret_environment_values_are_not_stored(project, monkeypatch, kind):
    monkeypatch.setenv("MY_API_TOKEN", "tok-4f1c9e2a7b")
    monkeypatch.setenv("DB_PASSWORD", "pw-93b7c1d0e4")
    monkeypatch.setenv("COMPANY_VAULT", "vault-58e2a9c3f1")
    monkeypatch.setenv("HARMLESS_SETTING", "plain-7d3e1f")
    monkeypatch.setenv("DATABASE_URL", "postgres://me:pw-93b7c1d0e4@db")  # not a secret's name, holds one
    code = """
import os
from pytest_nwtrials import tag
token = os.environ["MY_API_TOKEN"]
header = "Bearer " + token
tag("token_seen", token.startswith("tok-") and len(token) == 14)
tag("header", header)
"""
    if kind.startswith("script"):
        # noWorkflow's database, environment table included, is masked when it is kept
        project.ini("nw_env_redact = *_VAULT\n" + ("nw_capture = off\n" if "without" in kind
                                                    else "nw_keep_database = true\n"))
        project.experiment("env.py", code)
    else:
        import nbformat
        from nbformat.v4 import new_code_cell, new_notebook

        project.ini("nw_env_redact = *_VAULT\nnw_keep_database = true\n", experiments="experiments/*.ipynb")
        (project.root / "experiments").mkdir()
        nbformat.write(new_notebook(cells=[new_code_cell(code)]), project.root / "experiments" / "env.ipynb")
    result = project.run()
    result.assert_outcomes(passed=1)
    [trial] = project.trials()
    assert trial["tags"]["token_seen"]["value"] is True  # the experiment saw the real value
    stored = b""
    for folder, _, files in os.walk(project.root / ".nwtrials"):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                data = handle.read()
            stored += gzip.decompress(data) if name.endswith(".gz") else data  # noWorkflow's database
    assert b"Bearer <redacted>" in stored  # values computed from a secret are masked, not dropped
    if "without" not in kind:  # noWorkflow's environment table
        assert b"plain-7d3e1f" in stored  # the environment was recorded at all
        assert b"postgres://me:<redacted>@db" in stored
    assert_nowhere(["tok-4f1c9e2a7b", "pw-93b7c1d0e4", "vault-58e2a9c3f1"], [project.root],
                   result.stdout.str(), result.stderr.str())
