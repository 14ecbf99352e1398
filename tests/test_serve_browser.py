"""The trial browser's pages in a real headless browser (Debian's chromium), over real HTTP on loopback."""
from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from urllib.parse import urlencode

import pytest
from conftest import ARTIFACTS, CHROMIUM, NO_CHROMIUM, chromium

from pytest_nwtrials.serve import make_server
from pytest_nwtrials.store.baselines import BaselineStore
from pytest_nwtrials.store.trial_store import TrialStore

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)


@pytest.fixture
def url(nw_project: Path) -> Iterator[str]:
    server = make_server(TrialStore(nw_project / ".nwtrials"), BaselineStore(nw_project / "nw-baselines", nw_project),
                         port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=30)


def dom(tmp_path: Path, address: str) -> str:
    done = chromium(tmp_path / "profile", address, "--no-proxy-server", "--dump-dom")
    assert "<body" in done.stdout, done.stderr[-2000:]
    return done.stdout


def screenshot(tmp_path: Path, address: str, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    path.unlink(missing_ok=True)
    done = chromium(tmp_path / "profile", address, "--no-proxy-server", f"--screenshot={path}", "--window-size=1280,900")
    assert path.is_file() and path.stat().st_size > 0, done.stderr[-2000:]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


def text_of(fragment: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


def selected(form: str, name: str) -> str:
    """The value a <select> of `form` would send, as the browser shows it chosen."""
    choice = re.search(rf'<select name="{name}">(.*?)</select>', form, re.S)
    assert choice, form
    chosen = re.search(r'<option value="([^"]+)" selected', choice.group(1))
    return unescape(chosen.group(1) if chosen else re.findall(r'value="([^"]+)"', choice.group(1))[0])


def test_index_and_a_comparison_in_chromium(url, tmp_path):
    index = dom(tmp_path, url + "/")
    sections = {text_of(m.group(1)): m.group(2) for m in
                re.finditer(r'<section[^>]*class="experiment"[^>]*><h2>(.*?)</h2>(.*?)</section>', index, re.S)}
    assert set(sections) == {"experiments/prep.py", "experiments/train.py"}
    train = sections["experiments/train.py"]
    rows = [text_of(row) for row in re.findall(r"<tr>(.*?)</tr>", train, re.S)[1:]]
    assert [row.split()[:2] for row in rows] == [["trial6", "finished"], ["trial4", "finished"], ["trial2", "finished"]]
    assert re.findall(r'<a href="/trial/(trial\d+)">', sections["experiments/prep.py"]) == ["trial5", "trial3", "trial1"]
    form = re.search(r'<form class="compare" method="get" action="/diff">(.*?)</form>', train, re.S)
    assert form, train
    assert "<script" not in index
    # what submitting the form sends: its two chosen values, as a GET query
    choice = {"new": selected(form.group(1), "new"), "old": selected(form.group(1), "old")}
    assert choice == {"new": "trial6", "old": "reference"}
    screenshot(tmp_path, url + "/", "serve-index.png")

    address = f"{url}/diff?{urlencode(choice)}"
    page = dom(tmp_path, address)
    section = re.search(r'<section id="experiment-1" class="experiment verdict-changed">(.*?)</section>', page, re.S)
    assert section, page[-3000:]
    assert re.search(r'<span class="verdict">changed</span><code>experiments/train.py</code>', section.group(1))
    assert "compared with baseline 'reference' (recorded in trial2)" in text_of(section.group(1))
    changes = re.search(r'<table class="changes">(.*?)</table>', section.group(1), re.S)
    assert changes
    changed = {text_of(cells[0]): text_of(cells[1]) for cells in
               (re.findall(r"<td>(.*?)</td>", row, re.S) for row in re.findall(r"<tr>(.*?)</tr>", changes.group(1), re.S))
               if cells}
    assert changed["auc"] == "changed" and changed["weights"] == "changed"
    # why, drawn: the slice graph with its root highlighted, and the code of both trials side by side
    root = re.search(r'<svg class="slice-graph".*?<g class="node root"[^>]*data-where="([^"]+)"[^>]*>', page, re.S)
    assert root and root.group(1) == "train.py:4", page[-3000:]
    assert re.search(r'<g class="node changed[^"]*"[^>]*data-where="train.py:6"', page)
    assert re.search(r'class="code-file[^"]*"[^>]*data-file="train.py"', page), page[-3000:]
    assert '<a href="/">All trials</a>' in page
    screenshot(tmp_path, address, "serve-diff.png")
