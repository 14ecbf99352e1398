"""The --nw-report page, opened in a real headless browser (Debian's chromium)."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# counts the images the browser decoded, written into the page for --dump-dom to show
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const decoded = images.filter(img => img.complete && img.naturalWidth > 0).length;
  document.body.insertAdjacentHTML("beforeend", `<div id="probe">images ${images.length} decoded ${decoded}</div>`);
});
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (Debian package 'chromium'; .ci/run installs it)")
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
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
         page.as_uri()],
        capture_output=True, text=True, timeout=120)
    dom = done.stdout
    assert "<body" in dom, done.stderr[-2000:]
    text = re.sub(r"<[^>]+>", " ", dom)
    assert re.search(r"\bmatched\b", text) and re.search(r"\bchanged\b", text)
    assert "experiments/moving.py" in text and "experiments/steady.py" in text
    probe = re.search(r"images (\d+) decoded (\d+)", dom)
    assert probe, "the probe script did not run"
    images, decoded = map(int, probe.groups())
    assert images >= 1 and decoded == images
