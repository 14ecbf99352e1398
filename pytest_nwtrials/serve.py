"""`nwtrials serve`: a local, read-only trial browser over the store and the baselines.

    /                         the experiments with their trials, the baselines, a form to compare two
    /trial/<ref>              one trial (name, id or id prefix) as a section of the report
    /diff?old=<ref>&new=<ref> trial `new` compared with trial or baseline `old`: the report's page

The pages are those of ``pytest --nw-report`` (serve_pages.py). Standard library only: one
`ThreadingHTTPServer` bound to 127.0.0.1, never another address, so nothing beyond this machine
can reach it; a request whose Host header names anything but 127.0.0.1 or localhost at its port
is refused, so a web page cannot reach it through a name it rebinds to 127.0.0.1 (DNS rebinding).
GET and HEAD only; nothing writes to the store or the baselines. Every response forbids loading
anything (the report's Content-Security-Policy), sniffing, referrers and caching. No pytest in here.
"""
from __future__ import annotations

import errno
import signal
import socketserver
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, unquote

from .paths import OutsideError
from .render.html import CSP
from .serve_pages import PageError, Pages, error_page
from .store.baselines import BaselineStore
from .store.trial_store import TrialStore

__all__ = ["HOST", "make_server", "serve"]

HOST = "127.0.0.1"  # the only address served: no option binds another
ALLOWED = "GET, HEAD"
# what every response carries: the report's policy (no script, nothing loaded but inline styles
# and data: images), plus no framing by other pages and forms sent only here
HEADERS = {
    "Content-Security-Policy": f"{CSP}; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
TRIAL_PREFIX = "/trial/"


class _Server(ThreadingHTTPServer):
    def __init__(self, pages: Pages, port: int) -> None:
        self.pages = pages
        # pages are built one at a time: matplotlib's figures and the store's warnings are not
        # shared safely between threads; the threads only keep a slow client from holding up the others
        self.building = threading.Lock()
        super().__init__((HOST, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer's looks the host's name up in DNS; this one is offline and knows its name
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "nwtrials"
    timeout = 30  # a connection that sends no request is closed

    def do_GET(self) -> None:
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def _not_allowed(self) -> None:
        if self._host_ok():
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not allowed here: the trial browser "
                       "only reads (GET, HEAD)", head=False)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def version_string(self) -> str:
        return self.server_version  # not Python's version

    def end_headers(self) -> None:
        # on every response, the errors http.server sends itself included
        for name, value in HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        from .printable import printable

        sys.stderr.write(printable(f"{self.address_string()} - {format % args}") + "\n")

    def _host_ok(self) -> bool:
        """Whether the Host header names this server; a refusal is sent when it does not."""
        port = self.server.server_port
        hosts = self.headers.get_all("Host") or []
        allowed = {f"{HOST}:{port}", f"localhost:{port}"} | ({HOST, "localhost"} if port == 80 else set())
        if len(hosts) == 1 and hosts[0].strip().lower() in allowed:
            return True
        status = HTTPStatus.MISDIRECTED_REQUEST if len(hosts) == 1 else HTTPStatus.BAD_REQUEST
        self._send(status, f"this server answers only to http://{HOST}:{port}/ and http://localhost:{port}/",
                   head=self.command == "HEAD")
        return False

    def _respond(self, head: bool) -> None:
        if not self._host_ok():
            return
        try:
            status, page = HTTPStatus.OK, self._page()
        except PageError as exc:
            status, page = HTTPStatus(exc.status), error_page(exc.status, str(exc))
        except OutsideError as exc:  # a baseline or record whose path leads out of its folder
            status, page = HTTPStatus.BAD_REQUEST, error_page(400, f"refused: {exc}".splitlines()[0])
        except Exception as exc:  # a page that cannot be built; the server keeps serving
            message = f"cannot build this page: {type(exc).__name__}: {exc}".splitlines()[0][:500]
            self.log_error("%s", message)
            status, page = HTTPStatus.INTERNAL_SERVER_ERROR, error_page(500, message)
        self._send_page(status, page, head)

    def _page(self) -> str:
        """The page the request names; PageError for one it does not."""
        target = self.path.partition("#")[0]
        if not target.startswith("/"):
            raise PageError(400, "give a path on this server, such as /")
        path, _, query = target.partition("?")
        pages = self.server.pages
        with self.server.building:
            if path == "/":
                return pages.index()
            if path.startswith(TRIAL_PREFIX) and "/" not in path[len(TRIAL_PREFIX):]:
                return pages.trial(unquote(path[len(TRIAL_PREFIX):]))  # serve_pages.reference checks it
            if path == "/diff":
                try:
                    fields = parse_qs(query, max_num_fields=10)
                except ValueError:  # more fields than that
                    fields = {}
                refs = [fields.get(key, []) for key in ("old", "new")]
                if any(len(ref) != 1 for ref in refs):
                    raise PageError(400, "give one trial or baseline as old= and one trial as new=, as the form "
                                         "on / does")
                return pages.diff(refs[0][0], refs[1][0])
        raise PageError(404, f"no page {path[:80]!r} here; the trials are listed at /")

    def _send(self, status: HTTPStatus, message: str, head: bool) -> None:
        self._send_page(status, error_page(status.value, message), head)

    def _send_page(self, status: HTTPStatus, page: str, head: bool) -> None:
        body = page.encode("utf-8", errors="replace")
        self.send_response(status.value)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if status is HTTPStatus.METHOD_NOT_ALLOWED:
            self.send_header("Allow", ALLOWED)
        self.end_headers()
        if not head:
            self.wfile.write(body)


def make_server(store: TrialStore, baselines: BaselineStore | None, port: int) -> ThreadingHTTPServer:
    """The browser's server on 127.0.0.1:`port` (0: any free port), bound and not yet serving.

    `baselines` is read without completing an interrupted save (nothing is written). OSError with
    a one-line message when the port cannot be had.
    """
    rootdir = baselines.project if baselines is not None and baselines.project is not None else store.root.parent
    if baselines is not None:
        baselines = BaselineStore(baselines.root, baselines.project, complete_saves=False)
    try:
        server = _Server(Pages(store, baselines, Path(rootdir)), port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise OSError(f"port {port} is in use; pick another with --port N (--port 0: any free port)") from None
        raise OSError(f"cannot listen on {HOST}:{port} ({exc.strerror or exc}); pick another port with "
                      "--port N") from None
    return server


def serve(store: TrialStore, baselines: BaselineStore | None, port: int,
          out: TextIO | None = None) -> int:
    """Serve the browser until Ctrl-C (or SIGTERM), then close its socket; returns the exit status, 0."""
    server = make_server(store, baselines, port)
    previous = _stop_on_signals()
    try:
        print(f"serving {store.root} at http://{HOST}:{server.server_port}/ (Ctrl-C stops)",
              file=out or sys.stdout, flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


def _stop_on_signals() -> dict[int, Any]:
    """Make SIGINT and SIGTERM stop the server, even when started with SIGINT ignored (as a shell
    starts a command in the background); the handlers they had, to restore."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
