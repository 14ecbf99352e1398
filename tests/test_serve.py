"""`nwtrials serve`: the trial browser, over real HTTP on loopback, on a store recorded by real pytest runs."""
from __future__ import annotations

import html
import http.client
import json
import re
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import snapshot

from pytest_nwtrials.serve import HOST, make_server
from pytest_nwtrials.store.baselines import BaselineStore
from pytest_nwtrials.store.layout import SAVING_PREFIX
from pytest_nwtrials.store.trial_store import TrialStore

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class Served:
    """A browser server running in a thread of this process, on a free port of 127.0.0.1."""

    def __init__(self, project: Path, baselines: bool = True) -> None:
        folder = BaselineStore(project / "nw-baselines", project) if baselines else None
        self.server = make_server(TrialStore(project / ".nwtrials"), folder, port=0)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def request(self, path: str, method: str = "GET", headers: dict[str, str] | None = None,
                host: str | None = None) -> tuple[int, http.client.HTTPMessage, str]:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=60)
        try:
            connection.putrequest(method, path, skip_host=host is not None, skip_accept_encoding=True)
            if host:
                connection.putheader("Host", host)
            for name, value in (headers or {}).items():
                connection.putheader(name, value)
            connection.endheaders()
            response = connection.getresponse()
            return response.status, response.headers, response.read().decode("utf-8")
        finally:
            connection.close()

    def get(self, path: str) -> str:
        status, _, body = self.request(path)
        assert status == 200, body
        return body

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=30)


@pytest.fixture
def served(nw_project: Path) -> Iterator[Served]:
    served = Served(nw_project)
    yield served
    served.close()


def text_of(page: str) -> str:
    """The text a reader sees: the body without its tags, entities decoded."""
    body = page[max(page.find("<body"), 0):]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def trial_id(project: Path, name: str) -> str:
    return json.loads((project / ".nwtrials" / "trials" / f"{name}.json").read_text())["id"]


def assert_one_line_page(body: str, *fragments: str) -> None:
    assert "Traceback" not in body and 'File "' not in body
    message = re.search(r'<p class="error">(.*?)</p>', body, re.S)
    assert message and "\n" not in message.group(1), body
    for fragment in fragments:
        assert fragment in text_of(body), text_of(body)


# -- where it listens -------------------------------------------------------------------------

def machine_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (a UDP socket's connect sends nothing)."""
    found = set()
    try:
        found |= {str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    except OSError:
        pass
    for probe in ("192.0.2.1", "10.255.255.255", "198.51.100.1"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.connect((probe, 9))
                found.add(udp.getsockname()[0])
            except OSError:
                pass
    return sorted(a for a in found if not a.startswith("127.") and a != "0.0.0.0")


def test_binds_loopback_only(served):
    assert served.server.server_address[0] == "127.0.0.1"
    assert served.server.socket.getsockname()[0] == "127.0.0.1"
    others = machine_addresses()
    if not others:
        pytest.skip("this machine has no address but loopback")
    for address in others:
        with pytest.raises(OSError):
            socket.create_connection((address, served.port), timeout=5).close()
    assert served.request("/")[0] == 200  # while loopback answers


# -- pages ------------------------------------------------------------------------------------

def test_index_lists_experiments_trials_baselines_and_a_compare_form(served):
    page = served.get("/")
    text = text_of(page)
    assert "experiments/prep.py" in text and "experiments/train.py" in text
    train = page[page.index("experiments/train.py"):]
    train = train[:train.index("</section>")]
    assert re.findall(r'href="/trial/(trial\d+)"', train) == ["trial6", "trial4", "trial2"]  # newest first
    assert re.search(r'<td class="status-failed">failed</td>', page)  # trial5
    assert "auc, summary, model, epochs, weights" in train
    form = re.search(r'<form class="compare" method="get" action="/diff">(.*?)</form>', train, re.S)
    assert form, train
    assert re.search(r'<select name="new">.*<option value="trial6" selected>', form.group(1), re.S)
    old = re.search(r'<select name="old">(.*?)</select>', form.group(1), re.S)
    assert old and re.findall(r'value="([^"]+)"', old.group(1)) == ["reference", "trial6", "trial4", "trial2"]
    baselines = page[page.index("<h2>Baselines</h2>"):]
    assert "reference" in baselines and "recorded in trial2" in text_of(baselines)
    assert "<script" not in page and "http://" not in page and "https://" not in page


def test_trial_page(served, nw_project):
    page = served.get("/trial/trial6")
    text = text_of(page)
    assert "experiments/train.py" in text and "trial6" in text
    assert re.search(r'<span class="verdict">recorded</span>', page)
    assert re.search(r"<code>auc</code></td><td><code>0\.88</code>", page)
    assert "<h3>History</h3>" in page and "data:image/png;base64," in page  # the plot of a numeric tag
    assert '<a href="/">All trials</a>' in page
    by_prefix = served.get("/trial/" + trial_id(nw_project, "trial5")[:8])
    assert re.search(r'<span class="verdict">failed</span>', by_prefix) and "exit code 3" in text_of(by_prefix)


def test_diff_against_a_baseline_and_a_trial(served):
    page = served.get("/diff?old=reference&new=trial6")
    text = text_of(page)
    assert re.search(r'<span class="verdict">changed</span><code>experiments/train.py</code>', page)
    assert "compared with baseline 'reference' (recorded in trial2)" in text
    changed = re.findall(r"<tr><td><code>([^<]+)</code></td><td>changed</td>", page)
    assert "auc" in changed and "weights" in changed
    assert "Why it changed" in text and "run.txt" in text  # the input file behind the change
    same = served.get("/diff?old=trial6&new=trial6")
    assert re.search(r'<span class="verdict">matched</span>', same) and "compared with trial6" in text_of(same)
    prep = served.get("/diff?old=trial1&new=trial3")
    assert "<code>rows</code></td><td>changed</td>" in prep


def test_bad_references_are_one_line_404s(served):
    for path, fragments in [
        ("/trial/nope", ["no trial 'nope'"]),
        ("/trial/no", ["no trial 'no'", "(an id prefix needs at least 4 characters)"]),
        ("/trial/trial99", ["no trial 'trial99'"]),
        ("/diff?old=nope&new=trial6", ["no trial 'nope'"]),
        ("/diff?old=reference&new=reference", ["no trial 'reference'"]),
        ("/nothing-here", ["no page '/nothing-here'"]),
    ]:
        status, _, body = served.request(path)
        assert status == 404, (path, body)
        assert_one_line_page(body, *fragments)
    status, _, body = served.request("/diff?old=trial4")
    assert status == 400
    assert_one_line_page(body, "old= and one trial as new=")


def test_a_page_that_cannot_be_built_is_a_500_and_the_server_goes_on(served, nw_project):
    record = json.loads((nw_project / ".nwtrials" / "trials" / "trial4.json").read_text())
    blob = nw_project / ".nwtrials" / "values" / record["tags"]["weights"]["value"]["blob"]
    blob.write_bytes(b"damaged")
    status, _, body = served.request("/diff?old=trial4&new=trial6")
    assert status == 500, body
    assert_one_line_page(body, str(blob))
    assert served.request("/")[0] == 200
    assert served.request("/diff?old=reference&new=trial6")[0] == 200


# -- refusals ---------------------------------------------------------------------------------

TRAVERSALS = [
    "/../../etc/passwd",
    "/etc/passwd",
    "//etc/passwd",
    "/trial/../../etc/passwd",
    "/trial/..%2F..%2Fetc%2Fpasswd",
    "/trial/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/trial/..%252F..%252Fetc%252Fpasswd",  # encoded twice
    "/trial/%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "/trial/%2Fetc%2Fpasswd",  # absolute
    "/trial//etc/passwd",
    "/trial/..\\..\\etc\\passwd",  # backslashes
    "/trial/..%5C..%5Cetc%5Cpasswd",
    "/trial/..%255C..%255Cetc%255Cpasswd",
    "/trial/trial1%00",
    "/trial/..",
    "/trial/%2e%2e",
    "/trial/..%2F..%2Fsecret.txt",
    "/diff?old=..%2F..%2Fetc%2Fpasswd&new=trial6",
    "/diff?old=/etc/passwd&new=trial6",
    "/diff?old=reference&new=..%252F..%252Fsecret.txt",
    "/diff?old=..%2Fnw-baselines%2Freference&new=trial6",
    "/diff?old=..\\secret.txt&new=trial6",
    "/diff?old=%00&new=trial6",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_paths_outside_are_refused_and_never_read(served, nw_project, path):
    secret = "a line only a file outside the store holds"
    (nw_project.parent / "secret.txt").write_text(secret)
    status, _, body = served.request(path)
    assert status in (400, 404), (status, body)
    assert "root:x:0:0" not in body and secret not in body
    passwd = Path("/etc/passwd")
    if passwd.is_file():
        first = passwd.read_text().splitlines()[0]
        assert first not in body


def test_a_baseline_linked_outside_is_refused(served, nw_project, tmp_path):
    outside = tmp_path / "elsewhere"
    (outside / "experiments").mkdir(parents=True)
    entry = nw_project / "nw-baselines" / "reference" / "experiments" / "train.py.json"
    (outside / "experiments" / "train.py.json").write_text(entry.read_text().replace("trial2", "trial-outside"))
    (nw_project / "nw-baselines" / "evil").symlink_to(outside, target_is_directory=True)
    status, _, body = served.request("/diff?old=evil&new=trial6")
    assert status == 400, body
    assert_one_line_page(body, "leads outside")
    assert "trial-outside" not in body
    index = served.get("/")
    assert "unusable:" in text_of(index) and "trial-outside" not in index


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_only_get_and_head(served, method):
    status, headers, body = served.request("/", method=method, headers={"Content-Length": "0"})
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"
    assert "only reads" in text_of(body)


def test_head_has_the_headers_and_no_body(served):
    status, headers, body = served.request("/", method="HEAD")
    assert status == 200 and body == ""
    assert int(headers["Content-Length"]) > 1000


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:{other}", "localhost.evil:{port}",
                                  "192.0.2.2:{port}", ""])
def test_a_foreign_host_header_is_refused(served, host):
    status, _, body = served.request("/", host=host.format(port=served.port, other=served.port + 1) or " ")
    assert status in (421, 400), body
    assert "trial6" not in body and "answers only to" in text_of(body)


def test_host_header_missing_or_doubled_is_refused_and_loopback_names_are_served(served):
    connection = http.client.HTTPConnection(HOST, served.port, timeout=60)
    connection.putrequest("GET", "/", skip_host=True)
    connection.endheaders()
    assert connection.getresponse().status == 400
    connection.close()
    connection = http.client.HTTPConnection(HOST, served.port, timeout=60)
    connection.putrequest("GET", "/", skip_host=True)
    connection.putheader("Host", f"127.0.0.1:{served.port}")
    connection.putheader("Host", "evil.example")
    connection.endheaders()
    assert connection.getresponse().status == 400
    connection.close()
    for host in (f"127.0.0.1:{served.port}", f"localhost:{served.port}", f"LocalHost:{served.port}"):
        assert served.request("/", host=host)[0] == 200


@pytest.mark.parametrize("path", ["/", "/trial/trial6", "/trial/nope", "/diff?old=reference&new=trial6"])
def test_security_headers_on_every_response(served, path):
    for method in ("GET", "POST"):
        _, headers, _ = served.request(path, method=method, headers={"Content-Length": "0"})
        for name, value in SECURITY_HEADERS.items():
            assert headers[name].startswith(value), (name, headers[name])
        assert headers["Content-Type"] == "text/html; charset=utf-8"
    _, headers, _ = served.request(path, host="evil.example")
    assert headers["Content-Security-Policy"].startswith(SECURITY_HEADERS["Content-Security-Policy"])


# -- read-only --------------------------------------------------------------------------------

def test_browsing_every_page_writes_nothing(served, nw_project):
    # a save of a baseline stopped before its journal: completing or removing it is a writer's job
    (nw_project / "nw-baselines" / f"{SAVING_PREFIX}reference").mkdir()
    store, baselines = snapshot(nw_project / ".nwtrials"), snapshot(nw_project / "nw-baselines")
    index = served.get("/")
    names = sorted(set(re.findall(r'href="/trial/(trial\d+)"', index)))
    assert names == [f"trial{n}" for n in range(1, 7)]
    for name in names:
        served.get(f"/trial/{name}")
        for old in ("reference", "trial1", "trial2"):
            served.request(f"/diff?old={old}&new={name}")
    for path in TRAVERSALS + ["/trial/nope", "/diff?old=trial4"]:
        served.request(path)
    for method in ("POST", "PUT", "DELETE"):
        served.request("/diff?old=reference&new=trial6", method=method, headers={"Content-Length": "0"})
    assert snapshot(nw_project / ".nwtrials") == store
    assert snapshot(nw_project / "nw-baselines") == baselines


def test_pages_load_while_a_pytest_run_holds_the_store_lock(served, nw_project):
    from pytest_nwtrials.store.staging import store_lock

    lock = store_lock(nw_project / ".nwtrials")
    lock.acquire()
    try:
        assert "trial6" in served.get("/")
        assert "auc" in served.get("/diff?old=reference&new=trial6")
    finally:
        lock.release()


# -- the command ------------------------------------------------------------------------------

def nwtrials_serve(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pytest_nwtrials.cli", "serve", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_command_serves_until_ctrl_c(nw_project):
    process = nwtrials_serve("--port", "0", cwd=nw_project / "experiments")
    try:
        ready, _, _ = select.select([process.stdout], [], [], 120)
        assert ready, "the command printed nothing"
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"serving (.+) at http://127\.0\.0\.1:(\d+)/ \(Ctrl-C stops\)\n", line)
        assert match, line
        assert match.group(1) == str(nw_project / ".nwtrials")
        port = int(match.group(2))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.status == 200 and "trial6" in response.read().decode()
        connection.close()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert process.stderr is not None and "Traceback" not in process.stderr.read()


def test_a_port_in_use_is_one_line(nw_project):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = nwtrials_serve("--port", str(port), cwd=nw_project)
        out, err = process.communicate(timeout=120)
    assert process.returncode == 2, (out, err)
    assert err == f"nwtrials: error: port {port} is in use; pick another with --port N (--port 0: any free port)\n"
    for bad in ("70000", "-1", "http"):
        process = nwtrials_serve("--port", bad, cwd=nw_project)
        out, err = process.communicate(timeout=120)
        assert process.returncode == 2 and len(err.splitlines()) == 1 and "--port" in err, err


def test_without_baselines_the_trials_alone(nw_project):
    served = Served(nw_project, baselines=False)
    try:
        page = served.get("/")
        assert "no folder of baselines" in text_of(page) and "trial6" in page
        assert '<option value="reference"' not in page
        status, _, body = served.request("/diff?old=reference&new=trial6")
        assert status == 404 and "no trial 'reference'" in text_of(body)
    finally:
        served.close()


def test_help(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pytest_nwtrials.cli", "serve", "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: nwtrials serve") and "127.0.0.1" in done.stdout and "--port N" in done.stdout


def test_an_ambiguous_id_prefix_is_a_404_naming_both(served, nw_project):
    trials = nw_project / ".nwtrials" / "trials"
    doc = json.loads((trials / "trial6.json").read_text())
    prefix = doc["id"][:6]
    (trials / "trial7.json").write_text(json.dumps({**doc, "name": "trial7", "id": prefix + "-copy"}))
    status, _, body = served.request(f"/trial/{prefix}")
    assert status == 404
    assert_one_line_page(body, f"trial '{prefix}' is ambiguous: it matches trial6", "trial7", "give more characters")
    assert served.request(f"/trial/{prefix}-copy")[0] == 200
