"""A hostile download server: every misbehaviour ends in one FetchError sentence, in bounded time.

Each scenario is a raw socket handler (what ``tests/httpserver.py`` cannot do: trickle, hang,
stream forever, lie in its headers). Each is run through the real CLI (``aztags fetch --source
URL``) with a short deadline; the time each took to give up is printed (``pytest -s``) and not
asserted: the deadline bounds it, the tests check the outcome.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pytest
from click.testing import CliRunner

from cli import main
from resolver.clouds import get_cloud
from resolver.errors import FetchError
from resolver.sources import HttpSettings
from resolver.sources.discovery import fetch_current
from resolver.sources.http import fetch_url
from tests.helpers import simple_snapshot

# Every scenario waits for a deadline or a timeout on purpose: seconds each, little CPU.
pytestmark = pytest.mark.slow

GOOD = simple_snapshot(7, {"Storage": ["10.0.0.0/16"]})

ARGS = ["--deadline", "2", "--timeout", "1", "--connect-timeout", "1", "--retries", "1"]


@pytest.fixture(autouse=True)
def _no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("AZTAGS_CONFIG", raising=False)


# --------------------------------------------------------------------------------------------
# The server


class Conn:
    """One accepted connection, as a handler sees it."""

    def __init__(self, sock: socket.socket, stopping: threading.Event):
        self.sock = sock
        self.stopping = stopping
        self.path = ""

    def read_request(self) -> str:
        data = b""
        self.sock.settimeout(5)
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            data += chunk
        self.path = data.split(b" ", 2)[1].decode() if data.count(b" ") >= 2 else ""
        return self.path

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def head(self, status: str = "200 OK", *headers: str) -> None:
        self.send(f"HTTP/1.1 {status}\r\n".encode() + "".join(h + "\r\n" for h in headers).encode())
        self.send(b"Connection: close\r\n\r\n")

    def wait(self, seconds: float) -> bool:
        """Sleep; False once the server is stopping."""
        return not self.stopping.wait(seconds)


Handler = Callable[[Conn], None]


class HostileServer:
    def __init__(self, handler: Handler, *, accept: bool = True):
        self.handler = handler
        self.accept = accept
        self.stopping = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.clients: list[socket.socket] = []
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def __enter__(self) -> HostileServer:
        if self.accept:
            threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.listener.close()
        for client in self.clients:
            with contextlib.suppress(OSError):
                client.close()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.clients.append(sock)
            self.requests += 1
            threading.Thread(target=self._handle, args=(sock,), daemon=True).start()

    def _handle(self, sock: socket.socket) -> None:
        try:
            self.handler(Conn(sock, self.stopping))
        except OSError:
            pass  # the client gave up: expected
        finally:
            with contextlib.suppress(OSError):
                sock.close()


# --------------------------------------------------------------------------------------------
# Scenarios: (name, handler, what the error says)


def trickle_body(c: Conn) -> None:
    c.read_request()
    c.head("200 OK", f"Content-Length: {len(GOOD)}")
    for byte in GOOD:
        if not c.wait(0.5):
            return
        c.send(bytes([byte]))


def trickle_headers(c: Conn) -> None:
    c.read_request()
    c.send(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    while c.wait(0.5):
        c.send(b"a")


def trickle_status_line(c: Conn) -> None:
    c.read_request()
    while c.wait(0.5):
        c.send(b"H")


def hang_after_request(c: Conn) -> None:
    c.read_request()
    while c.wait(1):
        pass


def hang_without_reading(c: Conn) -> None:
    while c.wait(1):
        pass


def hang_mid_body(c: Conn) -> None:
    c.read_request()
    c.head("200 OK", f"Content-Length: {len(GOOD)}")
    c.send(GOOD[:100])
    while c.wait(1):
        pass


def huge_content_length(c: Conn) -> None:
    c.read_request()
    c.head("200 OK", "Content-Length: 1000000000000000")
    while c.wait(1):
        pass


def endless_body(c: Conn) -> None:
    c.read_request()
    c.head("200 OK", "Content-Type: application/json")
    block = b" " * 65536
    while not c.stopping.is_set():
        c.send(block)


def endless_chunked(c: Conn) -> None:
    c.read_request()
    c.head("200 OK", "Transfer-Encoding: chunked")
    chunk = b"10000\r\n" + b" " * 65536 + b"\r\n"
    while not c.stopping.is_set():
        c.send(chunk)


def redirect_loop(c: Conn) -> None:
    path = c.read_request()
    c.head("302 Found", f"Location: {path}", "Content-Length: 0")


def redirect_with_endless_body(c: Conn) -> None:
    if c.read_request().startswith("/ok/"):
        c.head("200 OK", f"Content-Length: {len(GOOD)}")
        c.send(GOOD)
        return
    c.head("302 Found", "Location: /ok/ServiceTags_Public_20250113.json")
    while not c.stopping.is_set():
        c.send(b"x" * 65536)


def redirect_elsewhere(c: Conn) -> None:
    c.read_request()
    c.head("302 Found", "Location: file:///etc/passwd", "Content-Length: 0")


def server_errors_with_endless_bodies(c: Conn) -> None:
    c.read_request()
    c.head("503 Service Unavailable")
    while not c.stopping.is_set():
        c.send(b"x" * 65536)


def slow_server_errors(c: Conn) -> None:
    c.read_request()
    c.wait(0.9)
    c.head("500 Internal Server Error", "Content-Length: 0")


def html_instead_of_json(c: Conn) -> None:
    c.read_request()
    body = b"<!DOCTYPE html><html><body>Please sign in to the proxy</body></html>"
    c.head("200 OK", "Content-Type: text/html", f"Content-Length: {len(body)}")
    c.send(body)


def not_http(c: Conn) -> None:
    c.read_request()
    c.send(b"SSH-2.0-OpenSSH_9.6\r\n")


def reset(c: Conn) -> None:
    c.read_request()
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def close_before_answer(c: Conn) -> None:
    c.read_request()


def short_body(c: Conn) -> None:
    c.read_request()
    c.head("200 OK", f"Content-Length: {len(GOOD)}")
    c.send(GOOD[: len(GOOD) // 2])


def too_many_headers(c: Conn) -> None:
    c.read_request()
    c.head("200 OK", *(f"X-{i}: {i}" for i in range(500)))


def endless_header_line(c: Conn) -> None:
    c.read_request()
    c.send(b"HTTP/1.1 200 OK\r\nX-Long: ")
    while not c.stopping.is_set():
        c.send(b"a" * 65536)


def bad_content_length(c: Conn) -> None:
    c.read_request()
    c.head("200 OK", "Content-Length: -5")
    c.send(GOOD)


def unknown_encoding(c: Conn) -> None:
    c.read_request()
    c.head("200 OK", "Content-Encoding: br", f"Content-Length: {len(GOOD)}")
    c.send(GOOD)


def gzip_bomb(c: Conn) -> None:
    c.read_request()
    body = gzip.compress(b"\0" * 50_000_000)
    c.head("200 OK", "Content-Encoding: gzip", f"Content-Length: {len(body)}")
    c.send(body)


def not_gzip(c: Conn) -> None:
    c.read_request()
    body = b"\x1f\x8b" + b"definitely not deflate" * 10
    c.head("200 OK", f"Content-Length: {len(body)}")
    c.send(body)


@dataclass(frozen=True)
class Scenario:
    name: str
    handler: Handler
    says: tuple[str, ...]  # one of these is in the error sentence
    stored: bool = False  # not an error: the file arrives whole and is stored


SCENARIOS = [
    Scenario("trickle one byte per 0.5 s", trickle_body, ("deadline",)),
    Scenario("trickle the headers", trickle_headers, ("deadline",)),
    Scenario("trickle the status line", trickle_status_line, ("deadline",)),
    Scenario("accept, read, never answer", hang_after_request, ("timed out", "deadline")),
    Scenario("accept, never read", hang_without_reading, ("timed out", "deadline")),
    Scenario("stop in the middle of the body", hang_mid_body, ("timed out", "deadline")),
    Scenario("huge Content-Length", huge_content_length, ("more than the limit",)),
    Scenario("endless body", endless_body, ("more than the limit",)),
    Scenario("endless chunked body", endless_chunked, ("more than the limit",)),
    Scenario("redirect loop", redirect_loop, ("more than 10 redirects",)),
    Scenario("redirect with an endless body", redirect_with_endless_body, (), stored=True),
    Scenario("redirect to file://", redirect_elsewhere, ("not an http(s) URL",)),
    Scenario("503s with endless bodies", server_errors_with_endless_bodies, ("HTTP 503",)),
    Scenario("slow 500s", slow_server_errors, ("HTTP 500", "deadline")),
    Scenario("HTML instead of JSON", html_instead_of_json, ("HTML, not JSON",)),
    Scenario("not HTTP at all", not_http, ("the answer is not HTTP (it starts 'SSH-2.0",)),
    Scenario("connection reset", reset, ("the server reset the connection",)),
    Scenario("closed before answering", close_before_answer, ("closed the connection without",)),
    Scenario("body shorter than Content-Length", short_body, ("truncated",)),
    Scenario("500 headers", too_many_headers, ("not valid HTTP (got more than 100 headers)",)),
    Scenario("endless header line", endless_header_line, ("not valid HTTP (got more than 65536",)),
    # http.client ignores a negative length and reads to the end: the whole file arrives.
    Scenario("negative Content-Length", bad_content_length, (), stored=True),
    Scenario("Content-Encoding br", unknown_encoding, ("cannot decode",)),
    Scenario("gzip bomb", gzip_bomb, ("more than the limit",)),
    Scenario("gzip magic, then garbage", not_gzip, ("gzip stream",)),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_every_hostile_answer_ends_in_one_sentence(tmp_path, scenario):
    with HostileServer(scenario.handler) as srv:
        url = srv.url + "/x/ServiceTags_Public_20250113.json"
        started = time.monotonic()
        result = CliRunner().invoke(
            main,
            ["fetch", "--source", url, "--db", str(tmp_path / "h.db"), "--max-size-mb", "1", *ARGS],
        )
        took = time.monotonic() - started
    print(f"\n{scenario.name}: gave up after {took:.1f}s: {result.stderr.strip()[:200]}")
    # sys.exit, not an escaped exception (CliRunner keeps those in result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    if scenario.stored:
        assert result.exit_code == 0, result.output
        assert "now current" in result.stdout
        return
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("aztags: ")
    assert any(s in result.stderr for s in scenario.says), result.stderr


def _settings(base: str, **overrides: float) -> HttpSettings:
    values: dict[str, object] = dict(
        download_base=base,
        details_base=base + "/en-us/download",
        connect_timeout=1.0,
        read_timeout=60.0,  # the deadline, not the read timeout, must end these
        deadline=2.0,
        retries=3,
        backoff=0.5,
        probe_weeks=5,
    )
    values.update(overrides)
    return HttpSettings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "handler", [trickle_body, trickle_headers, hang_after_request, hang_mid_body]
)
def test_the_deadline_ends_a_download_whatever_the_read_timeout(handler):
    with HostileServer(handler) as srv:
        started = time.monotonic()
        with pytest.raises(FetchError, match=r"deadline of 2s \(--deadline\)") as caught:
            fetch_url(srv.url + "/ServiceTags_Public_20250113.json", _settings(srv.url))
        took = time.monotonic() - started
    print(f"\n{handler.__name__} with a 60 s read timeout: gave up after {took:.1f}s")
    assert "--source FILE" in str(caught.value)


def test_the_deadline_covers_discovery_and_download_of_a_cloud():
    """Every step of the chain hangs: the cloud fails as one, within its deadline, and says so."""
    with HostileServer(hang_after_request) as srv:
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            fetch_current(get_cloud("public"), _settings(srv.url), today=date(2025, 1, 15))
        took = time.monotonic() - started
    print(f"\ndiscovery against a hanging server: gave up after {took:.1f}s")
    message = str(caught.value)
    assert "within the deadline of 2s (--deadline)" in message
    assert "1. probe" in message and "gave up" in message


def test_fetch_all_clouds_against_a_hanging_server_reports_each(tmp_path):
    with HostileServer(hang_after_request) as srv:
        started = time.monotonic()
        result = CliRunner().invoke(
            main,
            [
                "fetch",
                "--cloud",
                "all",
                "--db",
                str(tmp_path / "h.db"),
                "--download-base",
                srv.url,
                "--details-base",
                srv.url,
                "--deadline",
                "1",
                "--timeout",
                "30",
            ],
        )
        took = time.monotonic() - started
    print(f"\nfetch --cloud all against a hanging server: gave up after {took:.1f}s")
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1
    lines = result.stderr.splitlines()  # one line per cloud, then one hint (issue 8)
    for line, name in zip(
        lines[:4], ("Public", "AzureGovernment", "China", "AzureGermany"), strict=True
    ):
        assert line.startswith(f"aztags: {name}: could not find the current file: ")
        assert "the deadline of 1s" in line
    assert len(lines) == 5 and lines[4].startswith("aztags: hint: ")


def test_a_host_that_never_accepts_is_asked_once(monkeypatch):
    """The listener's queue is full and nobody accepts: connecting times out (not refused), and
    is not tried again (the system already resent the request within the connect timeout)."""
    import urllib3.util.connection

    attempts: list[object] = []
    real = urllib3.util.connection.create_connection

    def counting(address, *args, **kwargs):
        attempts.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", counting)
    with HostileServer(hang_without_reading, accept=False) as srv:
        fillers = []
        for _ in range(300):  # fill the accept queue so that new connections wait
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(srv.listener.getsockname())
            fillers.append(s)
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            fetch_url(
                srv.url + "/ServiceTags_Public_20250113.json",
                _settings(srv.url, read_timeout=1.0, deadline=10.0, backoff=0.0),
            )
        took = time.monotonic() - started
        for s in fillers:
            s.close()
    print(f"\na host that never accepts: gave up after {took:.1f}s: {caught.value}")
    assert "timed out connecting (connect timeout 1s)" in str(caught.value)
    assert len(attempts) == 1
