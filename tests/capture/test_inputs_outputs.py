"""Inputs and outputs: a file the experiment writes is never reported as a changed input.

Real captures of the ways experiments write files (`open(..., "w")`, `Path.write_text`, pandas
`to_csv`, a `shelve` it reopens every run, a counter it reads and rewrites), and of bytes paths.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from pytest_nwtrials.capture.file_access import path_name
from pytest_nwtrials.compare.explain import InputChange, input_changes, why_lines

WRITER = """
import shelve
from pathlib import Path
import pandas as pd
from pytest_nwtrials import tag

SCORE = {score}
with open("results.txt", "w") as handle:
    handle.write(f"score {{SCORE}}\\n")
Path("summary.txt").write_text(f"summary {{SCORE}}\\n")
pd.DataFrame({{"score": [SCORE, 2 * SCORE]}}).to_csv("results.csv", index=False)
with shelve.open("state") as shelf:
    shelf["score"] = SCORE
runs = int(open("runs.txt").read()) if Path("runs.txt").exists() else 0
with open("runs.txt", "w") as handle:
    handle.write(str(runs + 1))
with open("params.txt") as handle:
    factor = float(handle.read())
tag("score", SCORE * factor)
"""
WRITTEN = ["results.txt", "summary.txt", "results.csv", "state.dat", "state.dir", "runs.txt"]


def report(result) -> str:
    """The failure report, without pytest's short summary (which repeats it in full under CI=true)."""
    return result.stdout.str().split("short test summary info")[0]


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def writer(project, score: float) -> None:
    project.experiment("writer.py", WRITER.format(score=score))
    (project.root / "experiments" / "params.txt").write_text("2.0")


def test_files_the_experiment_writes_are_outputs_shown_only_with_verbose(project):
    writer(project, 1.0)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    # the shelve and the counter now exist; under fine capture, as a gate that matches under auto records no files
    project.run("--nw-baseline=base", "--nw-capture=fine").assert_outcomes(passed=1)
    [_, again] = project.trials()
    files = again["inputs"]["files"]
    # Path.write_text of the same content: written, not read (noWorkflow alone records mode "r")
    assert files["experiments/summary.txt"] == {"read": None, "written": sha1(b"summary 1.0\n")}
    # bytes paths (shelve's dbm.dumb files) are recorded as the paths they name, with their hashes
    assert files["experiments/state.dat"]["written"] and "experiments/b'state.dat'" not in files
    assert files["experiments/runs.txt"] == {"read": sha1(b"1"), "written": sha1(b"2")}

    writer(project, 3.0)
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*score: changed: 2.0 -> 6.0*", "Why it changed:",
                                 "*root cause: writer.py:*SCORE = 1.0 -> 3.0*"])
    why = result.stdout.str().split("Why it changed:")[1]
    assert "input file" not in why and "wrote a different" not in why

    verbose = project.run("--nw-baseline=base", "-v")
    verbose.assert_outcomes(failed=1)
    verbose.stdout.fnmatch_lines([f"*wrote a different experiments/{name} (sha1 *" for name in
                                  ["results.csv", "results.txt", "state.dat", "summary.txt"]])
    assert "input file" not in verbose.stdout.str()
    cli = subprocess.run([sys.executable, "-m", "pytest_nwtrials.cli", "diff", "trial1", "trial3", "--outputs"],
                         cwd=project.root, capture_output=True, text=True, timeout=120)
    assert "wrote a different experiments/results.csv (sha1 " in cli.stdout, cli.stderr
    assert "input file" not in cli.stdout


def test_a_changed_data_file_next_to_written_files_is_still_the_input_named(project):
    writer(project, 1.0)
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    (project.root / "experiments" / "params.txt").write_text("4.0")
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*input file experiments/params.txt changed (sha1 {sha1(b'2.0')[:10]} -> "
                                 f"{sha1(b'4.0')[:10]})*"])
    out = report(result)
    assert not [name for name in WRITTEN if f"input file experiments/{name}" in out]
    # the inputs list names it, and the headline names it as what the read of it returned
    assert out.count("input file experiments/params.txt changed") == 2
    assert "root cause: input file experiments/params.txt changed" in out


BYTES_READER = """
import os
from pytest_nwtrials import tag

with open(b"data.csv") as handle:
    rows = handle.read().split()
with open({outside!r}, "rb") as handle:
    extra = handle.read()
tag("total", sum(float(row) for row in rows) + len(extra))
"""


def test_bytes_paths_are_the_paths_they_name_with_their_hashes(project, tmp_path):
    outside = tmp_path / "elsewhere" / "lookup-é.txt"
    outside.parent.mkdir()
    outside.write_text("xy")
    project.experiment("reader.py", BYTES_READER.format(outside=os.fsencode(outside)))
    data = project.root / "experiments" / "data.csv"
    data.write_text("1\n2\n")
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    [trial] = project.trials()
    # inside the rootdir, and outside it where the script names it (as a bytes literal)
    assert trial["inputs"]["files"] == {
        "experiments/data.csv": {"read": sha1(b"1\n2\n"), "written": None, "tags": ["total"]},
        outside.as_posix(): {"read": sha1(b"xy"), "written": None, "tags": ["total"]},
    }
    data.write_text("1\n5\n")
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(failed=1)
    old, new = sha1(b"1\n2\n")[:10], sha1(b"1\n5\n")[:10]
    result.stdout.fnmatch_lines([f"*input file experiments/data.csv changed (sha1 {old} -> {new})*"])


# -- the pure rule ------------------------------------------------------------------------------

hashes = st.one_of(st.none(), st.sampled_from(["a" * 40, "b" * 40, "c" * 40]))
files = st.dictionaries(st.sampled_from(["in.csv", "out.csv", "state.db"]),
                        st.fixed_dictionaries({"read": hashes, "written": hashes}), max_size=3)


@given(files, files)
def test_a_file_either_trial_wrote_is_never_a_changed_input(old, new):
    changes = input_changes({"files": old}, (), {"files": new}, ())
    written = {path for side in (old, new) for path, f in side.items() if f["written"]}
    inputs = {c.name for c in changes if c.what == "input file"}
    assert not inputs & written
    read_only = {path for side in (old, new) for path, f in side.items() if f["read"]} - written
    assert inputs == {path for path in read_only if old.get(path, {}).get("read") != new.get(path, {}).get("read")}


def test_output_changes_are_listed_only_when_asked():
    changes = [InputChange("input file", "in.csv", "a" * 40, "b" * 40),
               InputChange("output file", "out.csv", "a" * 40, "b" * 40),
               InputChange("output file", "new.csv", None, "b" * 40)]
    assert why_lines(changes, []) == ["  input file in.csv changed (sha1 aaaaaaaaaa -> bbbbbbbbbb)"]
    assert why_lines(changes, [], outputs=True)[1:] == [
        "  wrote a different out.csv (sha1 aaaaaaaaaa -> bbbbbbbbbb)",
        "  now writes new.csv (sha1 absent -> bbbbbbbbbb)"]


def test_a_bytes_path_is_recorded_as_the_text_it_names_when_it_decodes():
    assert path_name(b"data/train.csv") == "data/train.csv"
    assert path_name(os.fsencode("données.csv")) == "données.csv"
    assert path_name(b"\xff.csv") == b"\xff.csv"  # not text: noWorkflow's own spelling is kept
    assert path_name("x.csv") == "x.csv" and path_name(3) == 3


TIED = """
import pandas as pd
from pytest_nwtrials import tag

with open("data.csv") as handle:
    rows = [float(line) for line in handle]
frame = pd.read_csv("table.csv")
notes = open("notes.txt").read()
print(notes)
tag("total", sum(rows) + float(frame["x"].sum()))
tag("n", 3)
"""


def test_a_changed_input_file_names_the_changed_tags_whose_slices_read_it(project):
    project.experiment("tied.py", TIED)
    folder = project.root / "experiments"
    (folder / "data.csv").write_text("1\n2\n")
    (folder / "table.csv").write_text("x\n1\n")
    (folder / "notes.txt").write_text("first")
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    files = project.trials()[0]["inputs"]["files"]
    assert files["experiments/data.csv"]["tags"] == files["experiments/table.csv"]["tags"] == ["total"]
    assert "tags" not in files["experiments/notes.txt"]  # printed, not in any tag's slice
    show = subprocess.run([sys.executable, "-m", "pytest_nwtrials.cli", "show", "trial1"], cwd=project.root,
                          capture_output=True, text=True, timeout=120).stdout
    data_sha1 = sha1(b"1\n2\n")[:10]
    assert f"file experiments/data.csv: read sha1 {data_sha1}; in the provenance of total" in show
    assert "file experiments/notes.txt: read sha1 " in show
    for name, text in (("data.csv", "1\n5\n"), ("table.csv", "x\n4\n"), ("notes.txt", "second")):
        (folder / name).write_text(text)
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*input file experiments/data.csv changed (sha1 *), in the provenance of total",
                                 "*input file experiments/notes.txt changed (sha1 *)",
                                 "*input file experiments/table.csv changed (sha1 *), in the provenance of total"])
    tied = [line for line in report(result).splitlines() if line.endswith(", in the provenance of total")]
    assert len(tied) == 2 and not any("notes.txt" in line for line in tied)


def test_in_a_notebook_written_files_are_outputs_and_bytes_paths_are_named(project):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    def notebook(scale: str) -> None:
        nb = new_notebook(cells=[new_code_cell(source) for source in [
            "from pathlib import Path\nfrom pytest_nwtrials import tag",
            f"SCALE = {scale}\nwith open(b'data.csv') as handle:\n    rows = [float(x) for x in handle]",
            "total = tag('total', sum(rows) * SCALE)\nPath('summary.txt').write_text(f'total {total}')",
        ]])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, project.root / "experiments" / "run.ipynb")

    project.ini(experiments="experiments/*.ipynb")
    (project.root / "experiments").mkdir(exist_ok=True)
    (project.root / "experiments" / "data.csv").write_text("1\n2\n")
    notebook("2")
    project.run("--nw-save-baseline=base").assert_outcomes(passed=1)
    # summary.txt rewritten, same content; under fine capture, as a gate that matches under auto records no files
    project.run("--nw-baseline=base", "--nw-capture=fine").assert_outcomes(passed=1)
    files = project.trials()[1]["inputs"]["files"]
    assert files["experiments/summary.txt"] == {"read": None, "written": sha1(b"total 6.0")}
    assert files["experiments/data.csv"]["read"] == sha1(b"1\n2\n")
    (project.root / "experiments" / "data.csv").write_text("1\n3\n")
    result = project.run("--nw-baseline=base")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*input file experiments/data.csv changed (sha1 *), in the provenance of total"])
    assert "summary.txt" not in result.stdout.str()
