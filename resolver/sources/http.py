"""HTTP downloads: one session with bounded retries, size caps, truncation checks and ETags.

    raw = fetch_url("https://.../ServiceTags_Public_20250113.json", HttpSettings())

Every failure is a ``FetchError`` naming the URL, what happened and what to try.
"""

from __future__ import annotations

import contextvars
import http.client
import logging
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urljoin

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager
from urllib3.util.retry import Retry

from resolver.errors import FetchError
from resolver.ingest import RawFile
from resolver.sources.base import (
    CHUNK,
    GZIP_MAGIC,
    NETWORK_ADVICE,
    HttpSettings,
    KnownFile,
    Progress,
    gunzip,
    maybe_gunzip,
    too_big,
)
from resolver.sources.names import (
    file_date_from_name,
    redact_url,
    same_url,
    scrub,
    url_file_name,
)

_LOG = logging.getLogger(__name__)
_RETRY_STATUSES = (500, 502, 503, 504)
MAX_REDIRECTS = 10


# --------------------------------------------------------------------------------------------
# The overall deadline
#
# A read timeout bounds one wait for the next bytes; a server that trickles one byte every half
# second never hits it. The deadline bounds the whole download: every socket the download uses is
# registered with it, and when it passes a timer thread shuts those sockets down, so a read that
# is waiting (for headers or for the body) returns at once and the download fails with a sentence
# that names the deadline. Retries stop and their backoff is cut short too.


class Deadline:
    """The end of the time one download (or one cloud's discovery and download) may take."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._passed = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    @property
    def passed(self) -> bool:
        return self._passed or time.monotonic() >= self.end

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def watch(self, sock: socket.socket | None) -> None:
        """Shut ``sock`` down when the deadline passes (at once if it has)."""
        if sock is None:
            return
        with self._lock:
            if not self._passed:
                self._sockets.append(sock)
                return
        _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self._passed = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._sockets.clear()


def _shut(sock: socket.socket) -> None:
    # socket.socket's own shutdown, also for an SSLSocket: the TLS state is left to the thread
    # that is reading; it sees the end of the stream and fails. A closed socket raises OSError.
    with suppress(OSError, TypeError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_ACTIVE: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "aztags_deadline", default=None
)


@contextmanager
def deadline_scope(settings: HttpSettings) -> Iterator[Deadline]:
    """The deadline in force: the caller's when there is one (discovery, then the download,
    share one), else a new one of ``settings.deadline`` seconds for the ``with`` block."""
    current = _ACTIVE.get()
    if current is not None:
        yield current
        return
    deadline = Deadline(settings.deadline)
    token = _ACTIVE.set(deadline)
    deadline.start()
    try:
        yield deadline
    finally:
        deadline.stop()
        _ACTIVE.reset(token)


def deadline_passed() -> bool:
    deadline = _ACTIVE.get()
    return deadline is not None and deadline.passed


def deadline_error(url: str, settings: HttpSettings, got: int | None = None) -> FetchError:
    received = f", after {got} bytes" if got else ""
    deadline = _ACTIVE.get()
    seconds = deadline.seconds if deadline is not None else settings.deadline
    return FetchError(
        f"Gave up on {redact_url(url)}: it took longer than the deadline of {seconds:g}s "
        f"(--deadline){received}; the server answers too slowly or not at all. {NETWORK_ADVICE}"
    )


class _WatchedConnection(HTTPConnection):
    """A connection whose socket is shut down when the active deadline passes."""

    def connect(self) -> None:
        super().connect()
        _watch(self)

    def getresponse(self):  # type: ignore[no-untyped-def]
        _watch(self)  # a reused connection, or one that connected before the deadline started
        return super().getresponse()


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _watch(self)

    def getresponse(self):  # type: ignore[no-untyped-def]
        _watch(self)
        return super().getresponse()


def _watch(conn: HTTPConnection) -> None:
    deadline = _ACTIVE.get()
    if deadline is not None:
        deadline.watch(conn.sock)


class _WatchedPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS: dict[str, Any] = {"http": _WatchedPool, "https": _WatchedHTTPSPool}


class _Adapter(HTTPAdapter):
    """requests' adapter with watched connections, also through an HTTP(S) proxy."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, PoolManager) and not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOLS
        return manager


class _Retry(Retry):
    """urllib3's Retry, bounded by the active deadline.

    Final at once: a name that does not resolve, and a connect timeout (the system has already
    resent the connection request several times within it; another try costs the whole timeout
    again, and an unreachable cloud must fail in well under a minute).
    """

    def increment(  # type: ignore[no-untyped-def]
        self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None
    ):
        u3 = urllib3.exceptions
        if isinstance(error, u3.NameResolutionError) or (
            isinstance(error, u3.ConnectTimeoutError)
            and not isinstance(error, u3.NewConnectionError)
        ):
            raise u3.MaxRetryError(_pool, url, error) from error
        if response is not None:
            # A 5xx to retry: close it unread. urllib3 would read ("drain") the whole body
            # first, and a hostile server's body never ends.
            response.close()
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def is_exhausted(self) -> bool:
        return deadline_passed() or super().is_exhausted()

    def get_backoff_time(self) -> float:
        backoff = super().get_backoff_time()
        deadline = _ACTIVE.get()
        return min(backoff, deadline.remaining()) if deadline is not None else backoff


# --------------------------------------------------------------------------------------------
# Session and error wording


class _Session(requests.Session):
    """requests' Session, minus its redirect following: ``open_url`` follows redirects itself.

    Even with ``allow_redirects=False``, requests reads the body of a redirect whole (to prepare
    the next request); a hostile server's redirect body never ends.
    """

    def resolve_redirects(self, *args: Any, **kwargs: Any) -> Iterator[Any]:  # type: ignore[override]
        return iter(())


def _user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"aztags/{version('aztags')}"
    except PackageNotFoundError:
        return "aztags/0+unknown"


def make_session(settings: HttpSettings) -> requests.Session:
    """A session with bounded retries and aztags' User-Agent.

    ``trust_env`` stays on, so HTTPS_PROXY, HTTP_PROXY, NO_PROXY and REQUESTS_CA_BUNDLE apply.
    Retries cover timeouts waiting for the response and HTTP 500/502/503/504, with exponential
    backoff (``backoff`` * 2**n seconds); a refused connection is tried once more at most, a
    connect timeout or a host name that does not resolve not again. Retry-After is not obeyed,
    and no retry outlives the deadline (``deadline_scope``), so the total wait stays bounded.
    At most 10 redirects are followed.
    """
    retry = _Retry(
        total=settings.retries,
        connect=min(settings.retries, 1),
        read=settings.retries,
        status=settings.retries,
        other=0,
        backoff_factor=settings.backoff,
        status_forcelist=_RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD"}),
        raise_on_status=False,  # hand back the last 5xx so the error names the status
        respect_retry_after_header=False,
    )
    session = _Session()
    session.max_redirects = MAX_REDIRECTS
    adapter = _Adapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = _user_agent()
    # Only gzip is decoded here (by hand, so sizes and truncation are checked on the wire bytes).
    session.headers["Accept-Encoding"] = "gzip"
    return session


@contextmanager
def session_scope(
    session: requests.Session | None, settings: HttpSettings
) -> Iterator[requests.Session]:
    if session is not None:
        yield session
        return
    own = make_session(settings)
    try:
        yield own
    finally:
        own.close()


def timeouts(settings: HttpSettings) -> tuple[float, float]:
    """(connect, read) timeouts for one request, cut to what is left of the active deadline."""
    connect, read = settings.connect_timeout, settings.read_timeout
    deadline = _ACTIVE.get()
    if deadline is not None:
        left = max(deadline.remaining(), 0.01)
        connect, read = min(connect, left), min(read, left)
    return (connect, read)


def _proxy_urls() -> list[str]:
    return list(urllib.request.getproxies().values())


def shown(text: str, *urls: str | None) -> str:
    """``text`` fit to show: URLs redacted, and no secret of ``urls`` or of a proxy setting."""
    return scrub(text, [*urls, *_proxy_urls()])


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost reason inside requests' and urllib3's wrappers."""
    seen: set[int] = set()
    current: BaseException = exc
    while id(current) not in seen:
        seen.add(id(current))
        inner = getattr(current, "reason", None) or getattr(current, "original_error", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in current.args if isinstance(a, BaseException)), None)
        if inner is None:
            break
        current = inner
    return current


def _cause_text(cause: BaseException) -> str:
    """The cause in a few words; what a server sent (a status line) comes quoted and cut."""
    if isinstance(cause, urllib3.exceptions.NewConnectionError):
        # "HTTPConnection(host='h', port=1): Failed to establish a new connection: [Errno 111] x"
        conn = cause.conn
        why = re.sub(r"^.*new connection:\s*", "", str(cause), flags=re.IGNORECASE)
        why = re.sub(r"\[Errno -?\d+\]\s*", "", why)
        return f"{getattr(conn, 'host', '?')}:{getattr(conn, 'port', '?')} ({why})"
    if isinstance(cause, http.client.BadStatusLine):
        return repr(str(getattr(cause, "line", cause))[:60])
    # urllib3 prefixes "<urllib3.connection.HTTPConnection object at 0x...>: "; drop it.
    text = re.sub(r"^<[^>]*>:\s*", "", str(cause)) or type(cause).__name__
    return text if text.isprintable() and len(text) <= 300 else repr(text[:300])


def describe(exc: BaseException, settings: HttpSettings, url: str | None = None) -> str:
    """What went wrong, in a few words, for one failed request to ``url``; no secrets."""
    return shown(_describe(exc, settings), url)


def _describe(exc: BaseException, settings: HttpSettings) -> str:
    u3 = urllib3.exceptions
    cause = _root_cause(exc)
    if isinstance(exc, requests.exceptions.ConnectTimeout) or (
        isinstance(cause, u3.ConnectTimeoutError) and not isinstance(cause, u3.NewConnectionError)
    ):
        return f"timed out connecting (connect timeout {settings.connect_timeout:g}s)"
    if isinstance(exc, requests.exceptions.ReadTimeout) or isinstance(cause, u3.ReadTimeoutError):
        return f"timed out waiting for the server (read timeout {settings.read_timeout:g}s)"
    if isinstance(exc, requests.exceptions.ProxyError):
        return f"could not go through the proxy: {_cause_text(cause)}"
    if isinstance(exc, requests.exceptions.SSLError):
        return (
            f"the TLS connection failed ({_cause_text(cause)}); if a proxy re-signs TLS, "
            "point REQUESTS_CA_BUNDLE at its CA certificate"
        )
    if isinstance(cause, u3.NameResolutionError):
        host = getattr(cause.conn, "host", None) or "the host"
        return f"could not resolve {host} (no DNS answer)"
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return f"more than {MAX_REDIRECTS} redirects (a redirect loop?)"
    # The connection was made, the answer was not HTTP or never came whole.
    if isinstance(cause, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(cause, ConnectionResetError):
        return "the server reset the connection"
    if isinstance(cause, http.client.BadStatusLine):
        return f"the answer is not HTTP (it starts {_cause_text(cause)[:60]})"
    if isinstance(cause, http.client.HTTPException):
        return f"the answer is not valid HTTP ({_cause_text(cause)})"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"could not connect to {_cause_text(cause)}"
    if isinstance(
        exc,
        requests.exceptions.InvalidURL
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema,
    ):
        return f"the URL is not valid ({exc})"
    return f"{type(exc).__name__}: {_cause_text(cause)}"


def unreachable(exc: BaseException) -> bool:
    """True when ``exc`` says no connection could be made (no DNS answer, refused, timed out
    connecting, or the proxy could not be reached): the host will not answer a second request."""
    u3 = urllib3.exceptions
    cause = _root_cause(exc)
    return isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.ProxyError) or (
        isinstance(exc, requests.exceptions.ConnectionError)
        and isinstance(cause, u3.NewConnectionError | u3.ConnectTimeoutError)
    )


def _retry_count(resp: requests.Response) -> int:
    retries = getattr(resp.raw, "retries", None)
    return len(getattr(retries, "history", ()) or ())


def _status_error(url: str, resp: requests.Response) -> FetchError:
    status = resp.status_code
    what = f"HTTP {status} {resp.reason or ''}".strip()
    if status >= 500:
        tries = _retry_count(resp) + 1
        advice = (
            f"The server failed {tries} time{'s' if tries != 1 else ''}; try again later, "
            "or pass a file you downloaded with --source FILE."
        )
    elif status in (404, 410):
        advice = (
            "The file is gone or was renamed; run again without --source to discover the "
            "current URL, or pass a file with --source FILE."
        )
    elif status == 407:
        advice = (
            "The proxy wants credentials: put them in HTTPS_PROXY (http://user:pass@host:port)."
        )
    elif status == 403:
        advice = (
            "Access was refused; a proxy or firewall may block the host. Check the proxy "
            "settings (HTTPS_PROXY, NO_PROXY) or pass a file with --source FILE."
        )
    elif 300 <= status < 400:
        advice = "The redirect has no usable Location; check the URL or pass a file with --source."
    else:
        advice = "Check the URL, or pass a file you downloaded with --source FILE."
    return FetchError(shown(f"Downloading {redact_url(url)} failed: {what}. {advice}", url))


def _content_length(resp: requests.Response) -> int | None:
    value = resp.headers.get("Content-Length")
    if value is None:
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 20:
        return None
    return int(value)


def read_body(
    resp: requests.Response, url: str, settings: HttpSettings, progress: Progress | None
) -> bytes:
    """The body as sent on the wire (not content-decoded), checked for size and truncation,
    within the active deadline."""
    shown_url = redact_url(url)
    total = _content_length(resp)
    if total is not None and total > settings.max_bytes:
        raise too_big(shown_url, total, settings)
    body = bytearray()
    try:
        for chunk in resp.raw.stream(CHUNK, decode_content=False):
            body += chunk
            if len(body) > settings.max_bytes:
                raise too_big(shown_url, None, settings)
            if deadline_passed():
                raise deadline_error(url, settings, len(body))
            if progress is not None:
                progress(len(body), total)
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError, ValueError) as exc:
        got = len(body)
        if deadline_passed():
            raise deadline_error(url, settings, got) from exc
        if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
            raise FetchError(
                f"Downloading {shown_url} timed out after {got} of {total if total else '?'} "
                f"bytes (read timeout {settings.read_timeout:g}s). {NETWORK_ADVICE}"
            ) from exc
        if total is not None and got < total:
            raise _truncated(shown_url, got, total) from exc
        raise FetchError(
            shown(
                f"The connection broke after {got} bytes while downloading {shown_url} ({exc}). "
                f"{NETWORK_ADVICE}",
                url,
            )
        ) from exc
    if deadline_passed():  # the body ended because the deadline shut the connection
        raise deadline_error(url, settings, len(body))
    if total is not None and len(body) < total:
        raise _truncated(shown_url, len(body), total)
    return bytes(body)


def _truncated(url: str, got: int, total: int) -> FetchError:
    return FetchError(
        f"Download truncated: got {got} of {total} bytes from {url}, try again "
        "(or pass a file you downloaded with --source FILE)."
    )


def decode_wire(
    wire: bytes, content_encoding: str | None, url: str, settings: HttpSettings
) -> tuple[bytes, bytes | None]:
    url = redact_url(url)
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return maybe_gunzip(wire, url, settings)
    if encoding in ("gzip", "x-gzip"):
        data = gunzip(wire, url, settings)
        if data[:2] == GZIP_MAGIC:  # a .json.gz file, sent gzip-encoded once more
            return gunzip(data, url, settings), data
        return data, wire
    raise FetchError(
        f"{url} was sent with Content-Encoding {encoding[:40]!r}, which aztags cannot decode. "
        "A proxy may be rewriting the response; check the proxy settings or use --source FILE."
    )


def open_url(
    session: requests.Session,
    url: str,
    settings: HttpSettings,
    log: logging.Logger,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """GET ``url`` (streamed: the body is left unread), following at most 10 redirects.

    Redirects are followed here rather than by requests so that each one is logged (redacted)
    and no redirect body is read: requests reads each one whole, however long it is. Raises what
    ``session.get`` raises, ``TooManyRedirects`` and ``InvalidSchema`` for a redirect elsewhere
    than http(s).
    """
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        try:
            resp = session.get(
                current,
                headers=headers,
                timeout=timeouts(settings),
                stream=True,
                allow_redirects=False,
            )
        except (urllib3.exceptions.LocationValueError, ValueError) as exc:
            # What requests lets through: urllib3's "label empty or too long", http.client's
            # InvalidURL, a host that is not IDNA...
            raise requests.exceptions.InvalidURL(str(exc)) from exc
        if deadline_passed():
            # The deadline shut the socket while the headers were read: what was parsed up to
            # the cut (http.client takes the end of the stream for the end of the headers) is
            # not an answer.
            resp.close()
            raise requests.exceptions.ReadTimeout("the deadline passed")
        target = session.get_redirect_target(resp)
        if target is None:
            return resp
        resp.close()
        try:
            following = urljoin(current, target)
        except ValueError as exc:  # an unbalanced [ in the Location
            raise requests.exceptions.InvalidURL(f"a redirect to {target!r}: {exc}") from exc
        log.info("Redirected from %s to %s", redact_url(current), redact_url(following))
        if not re.match(r"https?://", following, re.IGNORECASE):
            raise requests.exceptions.InvalidSchema(
                f"a redirect to {redact_url(following)}, which is not an http(s) URL"
            )
        current = following
    raise requests.exceptions.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")


# --------------------------------------------------------------------------------------------
# Download


def fetch_url(
    url: str,
    settings: HttpSettings,
    *,
    known: KnownFile | None = None,
    progress: Progress | None = None,
    log: logging.Logger | None = None,
    session: requests.Session | None = None,
) -> RawFile | None:
    """Download one file. None when ``known`` is this URL and the server says 304 Not Modified.

    A gzip body (magic bytes, or Content-Encoding: gzip) is decompressed; the gzip bytes are kept
    in ``RawFile.compressed``. The bytes are not checked to be JSON. The whole download (retries
    included) ends by ``settings.deadline``, or the deadline of the enclosing ``deadline_scope``.

    ``RawFile.source`` is ``url`` redacted (``redact_url``): no user info, no query. The file date
    comes from the name of the URL the file was finally served from (after redirects), else from
    ``url``'s.
    """
    log = log or _LOG
    shown_url = redact_url(url)
    headers: dict[str, str] = {}
    if known is not None and same_url(known.url, url):
        if known.etag:
            headers["If-None-Match"] = known.etag
        if known.last_modified:
            headers["If-Modified-Since"] = known.last_modified
    conditional = bool(headers)
    with deadline_scope(settings), session_scope(session, settings) as sess:
        if deadline_passed():
            raise deadline_error(url, settings)
        try:
            resp = open_url(sess, url, settings, log, headers)
        except requests.RequestException as exc:
            if deadline_passed():
                raise deadline_error(url, settings) from exc
            raise FetchError(
                f"Could not download {shown_url}: {describe(exc, settings, url)}. {NETWORK_ADVICE}"
            ) from exc
        with resp:
            if resp.status_code == 304 and conditional:
                log.info("%s has not changed since the last download (HTTP 304)", shown_url)
                return None
            if resp.status_code != 200:
                raise _status_error(url, resp)
            wire = read_body(resp, url, settings, progress)
            etag = resp.headers.get("ETag")
            last_modified = resp.headers.get("Last-Modified")
            content_encoding = resp.headers.get("Content-Encoding")
            final_url = resp.url or url
    data, compressed = decode_wire(wire, content_encoding, url, settings)
    log.info("Downloaded %s (%d bytes)", shown_url, len(wire))
    return RawFile(
        data=data,
        source=shown_url,
        file_date=file_date_from_name(url_file_name(final_url))
        or file_date_from_name(url_file_name(url)),
        etag=etag,
        last_modified=last_modified,
        compressed=compressed,
    )


class _RedactingFilter(logging.Filter):
    """urllib3 logs request paths with their query (at -vv): redact them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(a) for a in record.args)
        return True


def _redact_arg(value: object) -> object:
    if not isinstance(value, str):
        return value
    return redact_url(value) if value.startswith("/") else shown(value)


for _name in (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
):
    logging.getLogger(_name).addFilter(_RedactingFilter())
