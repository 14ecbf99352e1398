"""The --nw-report page, opened in a real headless browser (Debian's chromium)."""
from __future__ import annotations

import json
import re

import pytest
from conftest import ARTIFACTS, CHROMIUM, FRAUD, NO_CHROMIUM, chromium
# counts the images the browser decoded, written into the page for --dump-dom to show
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const decoded = images.filter(img => img.complete && img.naturalWidth > 0).length;
  document.body.insertAdjacentHTML("beforeend", `<div id="probe">images ${images.length} decoded ${decoded}</div>`);
});
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_html_report_renders_verdicts_and_plots_in_chromium(project, tmp_path):
    project.experiment("steady.py", "from pytest_nwtrials import tag\ntag('auc', 0.9)\n")
    project.experiment("moving.py", "from pytest_nwtrials import tag\ntag('auc', 0.8)\ntag('loss', 0.3)\n")
    project.run("--nw-save-baseline=ref").assert_outcomes(passed=2)
    project.run("--nw-baseline=ref").assert_outcomes(passed=2)
    project.experiment("moving.py", "from pytest_nwtrials import tag\ntag('auc', 0.7)\ntag('loss', 0.4)\n")
    project.run("--nw-baseline=ref", "--nw-report=report.html").assert_outcomes(passed=1, failed=1)
    html = (project.root / "report.html").read_text()
    assert "http://" not in html and "https://" not in html  # self-contained
    csp = re.search(r'<meta http-equiv="Content-Security-Policy"[^>]*>', html)
    assert csp and "default-src 'none'" in csp.group(0)  # the report itself may load nothing
    page = tmp_path / "report-probe.html"  # a copy that lets the probe script run
    page.write_text(html.replace(csp.group(0), "").replace("</body>", PROBE + "</body>"))
    done = chromium(tmp_path / "profile", page.as_uri(), "--dump-dom")
    dom = done.stdout
    assert "<body" in dom, done.stderr[-2000:]
    text = re.sub(r"<[^>]+>", " ", dom)
    assert re.search(r"\bmatched\b", text) and re.search(r"\bchanged\b", text)
    assert "experiments/moving.py" in text and "experiments/steady.py" in text
    probe = re.search(r"images (\d+) decoded (\d+)", dom)
    assert probe, "the probe script did not run"
    images, decoded = map(int, probe.groups())
    assert images >= 1 and decoded == images


# what the page shows, measured by the browser: the graph's boxes, the root, the folded list
# before and after it is opened, the side-by-side code; written into the page for --dump-dom
PICTURES_PROBE = """<script>
window.addEventListener("load", () => {
  // the content of a closed <details> has boxes under `content-visibility: hidden`: checkVisibility sees that
  const shown = el => el.checkVisibility() && el.getClientRects().length > 0;
  const nodes = [...document.querySelectorAll("svg.slice-graph g.node")].filter(shown);
  const root = document.querySelector("svg.slice-graph g.node.root");
  const more = document.querySelector(".why details.more");
  const hidden = more.querySelector(":scope > div");
  const before = shown(hidden);
  more.open = true;
  const rows = [...document.querySelectorAll(".code-file .code-row")].filter(shown);
  const marked = [...document.querySelectorAll(".code-file .src.root")].map(el => el.textContent);
  const box = root.querySelector("rect").getBoundingClientRect();
  const result = {nodes: nodes.length, root: root.dataset.where, rootText: root.textContent,
                  rootWidth: box.width, rootColour: getComputedStyle(root.querySelector("rect")).fill,
                  hiddenBefore: !before, shownAfter: shown(hidden), hiddenText: hidden.textContent,
                  summary: more.querySelector("summary").textContent, rows: rows.length, marked: marked,
                  columns: rows.length ? getComputedStyle(rows[0]).gridTemplateColumns.split(" ").length : 0};
  document.body.insertAdjacentHTML("beforeend", `<pre id="probe">${JSON.stringify(result)}</pre>`);
});
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_the_slice_graph_the_folded_list_and_the_code_in_chromium(project, tmp_path):
    project.experiment("fraud.py", FRAUD.format(rate=0.1))
    project.run("--nw-save-baseline=ref").assert_outcomes(passed=1)
    project.experiment("fraud.py", FRAUD.format(rate=0.5))
    project.run("--nw-baseline=ref", "--nw-report=report.html").assert_outcomes(failed=1)
    html = (project.root / "report.html").read_text()
    csp = re.search(r'<meta http-equiv="Content-Security-Policy"[^>]*>', html)
    assert csp and "<script" not in html
    page = tmp_path / "report-probe.html"
    page.write_text(html.replace(csp.group(0), "").replace("</body>", PICTURES_PROBE + "</body>"))
    done = chromium(tmp_path / "profile", page.as_uri(), "--dump-dom")
    probe = re.search(r'<pre id="probe">(\{.*?)</pre>', done.stdout)
    assert probe, done.stderr[-2000:]
    seen = json.loads(probe.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&gt;", ">")
                      .replace("&lt;", "<"))
    assert seen["nodes"] >= 5  # the statements `weights` depends on, drawn
    assert seen["root"] == "fraud.py:4" and "LEARNING_RATE = 0.5" in seen["rootText"]
    assert "[0.1 -> 0.5]" in seen["rootText"] and seen["rootWidth"] > 100
    assert seen["rootColour"] == "rgb(255, 216, 181)"  # the root's highlight
    assert seen["hiddenBefore"] and seen["shownAfter"], seen  # the cut-short list opens
    assert re.fullmatch(r"\s*\.\.\. and \d+ more", seen["summary"]) and seen["hiddenText"].strip().startswith("~ ")
    assert seen["columns"] == 4 and seen["rows"] >= 3  # baseline and new trial side by side
    assert seen["marked"] == ["LEARNING_RATE = 0.1", "LEARNING_RATE = 0.5"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report-why-it-changed.png"
    chromium(tmp_path / "profile", page.as_uri(), f"--screenshot={shot}", "--window-size=1280,2000",
             "--hide-scrollbars")
    assert shot.stat().st_size > 10_000


NOTEBOOK_PROBE = """<script>
window.addEventListener("load", () => {
  const result = {
    notes: [...document.querySelectorAll("ul.notes li")].map(li => li.textContent),
    files: [...document.querySelectorAll(".code-file")].filter(el => el.checkVisibility()).map(el => el.dataset.file),
    folded: [...document.querySelectorAll(".code-file")].filter(el => !el.checkVisibility()).map(el => el.dataset.file),
    roots: [...document.querySelectorAll(".code-file .src.root")].map(el => el.textContent),
    graphRoot: document.querySelector("svg.slice-graph g.node.root").dataset.where};
  document.body.insertAdjacentHTML("beforeend", `<pre id="probe">${JSON.stringify(result)}</pre>`);
});
</script>"""


def notebook(path, rate: str, counts: tuple[int, int, int]) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    cells = [new_code_cell("from pytest_nwtrials import tag", execution_count=counts[0]),
             new_markdown_cell("The rate"),
             new_code_cell(f"RATE = {rate}\nscore = RATE * 3", execution_count=counts[1]),
             new_code_cell("tag('score', score)", execution_count=counts[2])]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_a_notebook_report_shows_its_cells_side_by_side_and_its_notes(project, tmp_path):
    project.ini(experiments="experiments/*.ipynb")
    (project.root / "experiments").mkdir(exist_ok=True)
    notebook(project.root / "experiments" / "nb.ipynb", "1", (1, 2, 3))
    project.run("--nw-save-baseline=ref").assert_outcomes(passed=1)
    notebook(project.root / "experiments" / "nb.ipynb", "2", (3, 1, 2))  # saved after running out of order
    project.run("--nw-baseline=ref", "--nw-report=report.html").assert_outcomes(failed=1)
    html = (project.root / "report.html").read_text()
    csp = re.search(r'<meta http-equiv="Content-Security-Policy"[^>]*>', html)
    assert csp
    page = tmp_path / "report-probe.html"
    page.write_text(html.replace(csp.group(0), "").replace("</body>", NOTEBOOK_PROBE + "</body>"))
    done = chromium(tmp_path / "profile", page.as_uri(), "--dump-dom")
    probe = re.search(r'<pre id="probe">(\{.*?)</pre>', done.stdout)
    assert probe, done.stderr[-2000:]
    seen = json.loads(probe.group(1).replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&"))
    assert any("saved outputs came from the order 3, 1, 2" in note for note in seen["notes"])
    assert seen["files"] == ["nb.ipynb#cell3", "nb.ipynb#cell4"]  # the cells whose operations changed
    assert seen["folded"] == ["nb.ipynb#cell1"]  # the same, with nothing marked
    assert seen["roots"] == ["RATE = 1", "RATE = 2"]
    assert seen["graphRoot"] == "nb.ipynb, cell 3, line 1"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report-notebook.png"
    chromium(tmp_path / "profile", page.as_uri(), f"--screenshot={shot}", "--window-size=1280,1600",
             "--hide-scrollbars")
    assert shot.stat().st_size > 10_000
