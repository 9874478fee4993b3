"""A real threaded HTTP server on 127.0.0.1 for tests: routes, a request log, faults, a proxy.

    from httpserver import LocalServer  # pytest puts tests/ on sys.path (no tests/__init__.py)

    with LocalServer() as srv:
        srv.route("/file.json", b'{"values": []}', headers={"ETag": '"v1"'})
        srv.route("/flaky", b"ok", status=[500, 500, 200])     # one per request, last repeats
        srv.route("/slow", b"ok", delay=2.0)                   # wait before answering (timeouts)
        srv.route("/cut", b"x" * 100, truncate_at=10)          # Content-Length 100, 10 bytes, close
        requests.get(srv.url + "/file.json")
        assert srv.requests_to("/file.json")[0].headers["user-agent"].startswith("python")

API (all of it):

- ``LocalServer()``: a context manager; ``start()``/``stop()`` do the same by hand.
  ``url`` is ``http://127.0.0.1:PORT`` (no trailing slash).
- ``route(path, body=b"", *, status=200, headers=None, content_type=..., delay=0.0,
  truncate_at=None, send_length=True)`` registers (or replaces) what ``path`` answers. ``path`` may
  include a query (``/details.aspx?id=1``); a request matches the exact path and query first, then
  the path alone. Unknown paths answer 404.
  ``status`` is an int or a list used one per request, the last one repeating.
  ``headers`` are sent as given; when they hold an ``ETag`` (or ``Last-Modified``) and the request
  sends the same value in ``If-None-Match`` (or ``If-Modified-Since``), a 200 becomes 304 without
  a body. ``truncate_at=N`` sends the full Content-Length but only N body bytes, then closes.
  ``send_length=False`` leaves out Content-Length (the body ends when the connection closes).
- ``requests``: every request seen, in order, as ``Recorded(method, path, target, headers,
  proxied)``; ``path`` includes the query, ``headers`` has lower-case names, ``target`` is the
  request line's target as sent. ``requests_to(path)`` filters them by ``path``.
- Proxy: a request in absolute form (``GET http://azure.invalid/x HTTP/1.1``, what clients send
  to an HTTP proxy) is served from the routes by its path and recorded with ``proxied=True``, so a
  test can set ``HTTP_PROXY=srv.url`` and use any host name. CONNECT (HTTPS proxying) is not
  supported.

HEAD answers like GET without the body. The server speaks HTTP/1.0: one request per connection.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

__all__ = ["LocalServer", "Recorded"]


@dataclass(frozen=True)
class Recorded:
    """One request the server received."""

    method: str
    path: str  # path and query, also for a proxied request
    target: str  # as on the request line: "/x?y" or "http://azure.invalid/x?y" through a proxy
    headers: dict[str, str]  # lower-case names
    proxied: bool


@dataclass
class _Route:
    body: bytes
    statuses: list[int]
    headers: dict[str, str]
    delay: float
    truncate_at: int | None
    send_length: bool
    served: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_status(self) -> int:
        with self.lock:
            status = self.statuses[min(self.served, len(self.statuses) - 1)]
            self.served += 1
            return status

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name), None)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        self.server.owner._serve(self, head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self.server.owner._serve(self, head=True)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output clean
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: LocalServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up (timeouts, truncation tests) is expected here


class LocalServer:
    """See the module docstring."""

    def __init__(self) -> None:
        self._routes: dict[str, _Route] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._log: list[Recorded] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LocalServer:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        # stop() waits for the loop's next poll: keep it short, there are ~70 servers a run
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a delay
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("LocalServer is not running; use it as a context manager")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- routes and the log ------------------------------------------------------------------

    def route(
        self,
        path: str,
        body: bytes = b"",
        *,
        status: int | Sequence[int] = 200,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/octet-stream",
        delay: float = 0.0,
        truncate_at: int | None = None,
        send_length: bool = True,
    ) -> None:
        statuses = [status] if isinstance(status, int) else list(status)
        if not statuses:
            raise ValueError("status needs at least one value")
        all_headers = {"Content-Type": content_type, **(headers or {})}
        with self._lock:
            self._routes[path] = _Route(
                body, statuses, all_headers, delay, truncate_at, send_length
            )

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._log)

    def requests_to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    # -- serving -----------------------------------------------------------------------------

    def _serve(self, handler: _Handler, *, head: bool) -> None:
        target = handler.path
        proxied = target.lower().startswith(("http://", "https://"))
        path = target
        if proxied:
            parts = urlsplit(target)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self._log.append(Recorded(handler.command, path, target, headers, proxied))
            route = self._routes.get(path) or self._routes.get(path.split("?", 1)[0])
        if route is None:
            self._answer(handler, head, 404, {"Content-Type": "text/plain"}, b"not found\n")
            return
        status = route.next_status()
        if route.delay:
            self._stopping.wait(route.delay)
        if status == 200 and self._not_modified(route, headers):
            status = 304
        self._answer(
            handler, head, status, route.headers, route.body, route.truncate_at, route.send_length
        )

    @staticmethod
    def _not_modified(route: _Route, headers: dict[str, str]) -> bool:
        etag = route.header("etag")
        if etag is not None and headers.get("if-none-match") == etag:
            return True
        modified = route.header("last-modified")
        return modified is not None and headers.get("if-modified-since") == modified

    @staticmethod
    def _answer(
        handler: _Handler,
        head: bool,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        truncate_at: int | None = None,
        send_length: bool = True,
    ) -> None:
        with_body = status not in (204, 304) and not (100 <= status < 200)
        try:
            handler.send_response(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            if with_body and send_length:
                handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            if with_body and not head:
                handler.wfile.write(body if truncate_at is None else body[:truncate_at])
            handler.wfile.flush()
        except OSError:
            pass  # the client gave up (a timeout test); nothing to tell it
        handler.close_connection = True
