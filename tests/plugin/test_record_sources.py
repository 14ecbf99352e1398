"""The experiment's own code in its trial's provenance record, as it ran: keyed as its operations
name their file, secrets masked, and not kept when it changed during the run or is too large."""
from __future__ import annotations

import gzip

import nbformat
from conftest import record_doc
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from pytest_nwtrials.plugin.run_record import SOURCES_LIMIT
from pytest_nwtrials.store.baselines import BaselineStore
from pytest_nwtrials.store.records import ProvenanceRecord
from pytest_nwtrials.store.trial_store import TrialStore
from pytest_nwtrials.values.redaction import REDACTED

SECRET = "s3cr3t-7f2a9c41"
FRAUD = f"""\
from pytest_nwtrials import tag

ENDPOINT_TOKEN = "{SECRET}"  # written in the script, as people do
LEARNING_RATE = 0.1
weights = [LEARNING_RATE * step for step in range(3)]
tag("total", sum(weights))
"""


def stored_bytes(root) -> bytes:
    """Every file of the store and the baselines, decompressed."""
    files = [p for folder in (".nwtrials", "nw-baselines") for p in (root / folder).rglob("*") if p.is_file()]
    return b"".join(gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes() for p in files)


def test_a_script_keeps_its_code_by_its_operations_file_name_with_secrets_masked(project, monkeypatch):
    monkeypatch.setenv("FRAUD_API_TOKEN", SECRET)
    project.experiment("fraud.py", FRAUD)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    [trial] = project.trials()
    record = ProvenanceRecord.from_json(record_doc(project.root / ".nwtrials", trial))
    assert {op.file for op in record.operations} == {"fraud.py"} == set(record.sources)
    code = record.sources["fraud.py"]
    assert code == FRAUD.replace(SECRET, REDACTED)
    [rate] = [op for op in record.operations if op.kind == "literal" and op.code == "0.1"]
    assert code.splitlines()[rate.line - 1] == "LEARNING_RATE = 0.1"
    assert SECRET.encode() not in stored_bytes(project.root)

    # a baseline copies the record; its entry reads the code back
    loaded = TrialStore(project.root / ".nwtrials").find("trial1")[0].record()
    assert loaded is not None and loaded.sources == record.sources
    entry = BaselineStore(project.root / "nw-baselines").entry("base", "experiments/fraud.py", ())
    assert entry is not None and entry.record is not None and '"sources"' in entry.record.read_text()
    saved = entry.provenance()
    assert saved is not None and saved.sources == record.sources


def notebook(path, *cells) -> None:
    nb = new_notebook(cells=[new_markdown_cell(c[4:]) if c.startswith("# md") else new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_a_notebook_keeps_each_code_cell_by_its_number_over_all_cells(project):
    project.ini(experiments="experiments/*.ipynb")
    cells = ["# md # Training", "from pytest_nwtrials import tag", "# md more words",
             "\n\n# blank lines above, which IPython drops\nLEARNING_RATE = 0.5\nw = LEARNING_RATE * 2",
             "tag('w', w)"]
    notebook(project.root / "experiments" / "train.ipynb", *cells)
    project.run().assert_outcomes(passed=1)
    [trial] = project.trials()
    record = ProvenanceRecord.from_json(record_doc(project.root / ".nwtrials", trial))
    assert set(record.sources) == {"train.ipynb#cell2", "train.ipynb#cell4", "train.ipynb#cell5"}
    assert {op.file for op in record.operations} - {""} <= set(record.sources)
    assert record.sources["train.ipynb#cell5"] == "tag('w', w)"
    [rate] = [op for op in record.operations if op.kind == "literal" and op.code == "0.5"]
    assert rate.file == "train.ipynb#cell4"
    assert record.sources[rate.file].splitlines()[rate.line - 1] == "LEARNING_RATE = 0.5"


def test_code_edited_during_the_run_or_too_large_is_not_kept_and_not_warned_about(project):
    project.experiment("edits.py", """\
        from pytest_nwtrials import tag
        tag("x", 1)
        with open(__file__, "a") as own:  # the file on disk is no longer the code that ran
            own.write("# edited\\n")
    """)
    padding = "# generated\n" * (SOURCES_LIMIT // 12 + 1)
    project.experiment("large.py", f"from pytest_nwtrials import tag\ntag('y', 2)\n{padding}")
    project.experiment("small.py", "from pytest_nwtrials import tag\ntag('z', 3)\n")
    result = project.run("-n", "2")  # recorded by pytest-xdist workers, their records sent to the controller
    result.assert_outcomes(passed=3)
    assert "warning" not in result.stdout.str().lower()
    store = project.root / ".nwtrials"
    sources = {t["experiment"]: ProvenanceRecord.from_json(record_doc(store, t)).sources for t in project.trials()}
    assert sources == {"experiments/edits.py": {}, "experiments/large.py": {},
                       "experiments/small.py": {"small.py": "from pytest_nwtrials import tag\ntag('z', 3)\n"}}
