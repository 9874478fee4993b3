"""HTTP downloads: one session with bounded retries, size caps, truncation checks and ETags.

    raw = fetch_url("https://.../ServiceTags_Public_20250113.json", HttpSettings())

Every failure is a ``FetchError`` naming the URL, what happened and what to try.
"""

from __future__ import annotations

import http.client
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from resolver.errors import FetchError
from resolver.models import RawFile
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
from resolver.sources.names import file_date_from_name, same_url, url_file_name

_LOG = logging.getLogger(__name__)
_RETRY_STATUSES = (500, 502, 503, 504)


# --------------------------------------------------------------------------------------------
# Session and error wording


def _user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"aztags/{version('aztags')}"
    except PackageNotFoundError:
        return "aztags/0+unknown"


def make_session(settings: HttpSettings) -> requests.Session:
    """A session with bounded retries and aztags' User-Agent.

    ``trust_env`` stays on, so HTTPS_PROXY, HTTP_PROXY, NO_PROXY and REQUESTS_CA_BUNDLE apply.
    Retries cover connection errors, timeouts waiting for the response and HTTP 500/502/503/504,
    with exponential backoff (``backoff`` * 2**n seconds). Retry-After is not obeyed so that the
    total wait stays bounded by the settings.
    """
    retry = Retry(
        total=settings.retries,
        connect=settings.retries,
        read=settings.retries,
        status=settings.retries,
        other=0,
        backoff_factor=settings.backoff,
        status_forcelist=_RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD"}),
        raise_on_status=False,  # hand back the last 5xx so the error names the status
        respect_retry_after_header=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
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
    return (settings.connect_timeout, settings.read_timeout)


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
    if isinstance(cause, urllib3.exceptions.NewConnectionError):
        # "HTTPConnection(host='h', port=1): Failed to establish a new connection: [Errno 111] x"
        conn = cause.conn
        why = re.sub(r"^.*new connection:\s*", "", str(cause), flags=re.IGNORECASE)
        why = re.sub(r"\[Errno -?\d+\]\s*", "", why)
        return f"{getattr(conn, 'host', '?')}:{getattr(conn, 'port', '?')} ({why})"
    # urllib3 prefixes "<urllib3.connection.HTTPConnection object at 0x...>: "; drop it.
    return re.sub(r"^<[^>]*>:\s*", "", str(cause)) or type(cause).__name__


def describe(exc: BaseException, settings: HttpSettings) -> str:
    """What went wrong, in a few words, for one failed request."""
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
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"could not connect to {_cause_text(cause)}"
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return f"the URL is not valid ({exc})"
    return f"{type(exc).__name__}: {_cause_text(cause)}"


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
    else:
        advice = "Check the URL, or pass a file you downloaded with --source FILE."
    return FetchError(f"Downloading {url} failed: {what}. {advice}")


def _content_length(resp: requests.Response) -> int | None:
    value = resp.headers.get("Content-Length")
    if value is None:
        return None
    try:
        length = int(value.strip())
    except ValueError:
        return None
    return length if length >= 0 else None


def read_body(
    resp: requests.Response, url: str, settings: HttpSettings, progress: Progress | None
) -> bytes:
    """The body as sent on the wire (not content-decoded), checked for size and truncation."""
    total = _content_length(resp)
    if total is not None and total > settings.max_bytes:
        raise too_big(url, total, settings)
    body = bytearray()
    try:
        for chunk in resp.raw.stream(CHUNK, decode_content=False):
            body += chunk
            if len(body) > settings.max_bytes:
                raise too_big(url, None, settings)
            if progress is not None:
                progress(len(body), total)
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
        got = len(body)
        if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
            raise FetchError(
                f"Downloading {url} timed out after {got} of {total if total else '?'} bytes "
                f"(read timeout {settings.read_timeout:g}s). {NETWORK_ADVICE}"
            ) from exc
        if total is not None and got < total:
            raise _truncated(url, got, total) from exc
        raise FetchError(
            f"The connection broke after {got} bytes while downloading {url} ({exc}). "
            f"{NETWORK_ADVICE}"
        ) from exc
    if total is not None and len(body) < total:
        raise _truncated(url, len(body), total)
    return bytes(body)


def _truncated(url: str, got: int, total: int) -> FetchError:
    return FetchError(
        f"Download truncated: got {got} of {total} bytes from {url}, try again "
        "(or pass a file you downloaded with --source FILE)."
    )


def decode_wire(
    wire: bytes, content_encoding: str | None, url: str, settings: HttpSettings
) -> tuple[bytes, bytes | None]:
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return maybe_gunzip(wire, url, settings)
    if encoding in ("gzip", "x-gzip"):
        data = gunzip(wire, url, settings)
        if data[:2] == GZIP_MAGIC:  # a .json.gz file, sent gzip-encoded once more
            return gunzip(data, url, settings), data
        return data, wire
    raise FetchError(
        f"{url} was sent with Content-Encoding {encoding!r}, which aztags cannot decode. "
        "A proxy may be rewriting the response; check the proxy settings or use --source FILE."
    )


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
    in ``RawFile.compressed``. The bytes are not checked to be JSON.
    """
    log = log or _LOG
    headers: dict[str, str] = {}
    if known is not None and same_url(known.url, url):
        if known.etag:
            headers["If-None-Match"] = known.etag
        if known.last_modified:
            headers["If-Modified-Since"] = known.last_modified
    conditional = bool(headers)
    with session_scope(session, settings) as sess:
        try:
            resp = sess.get(url, headers=headers, timeout=timeouts(settings), stream=True)
        except requests.RequestException as exc:
            raise FetchError(
                f"Could not download {url}: {describe(exc, settings)}. {NETWORK_ADVICE}"
            ) from exc
        with resp:
            if resp.status_code == 304 and conditional:
                log.info("%s has not changed since the last download (HTTP 304)", url)
                return None
            if resp.status_code != 200:
                raise _status_error(url, resp)
            wire = read_body(resp, url, settings, progress)
            etag = resp.headers.get("ETag")
            last_modified = resp.headers.get("Last-Modified")
            content_encoding = resp.headers.get("Content-Encoding")
    data, compressed = decode_wire(wire, content_encoding, url, settings)
    log.info("Downloaded %s (%d bytes)", url, len(wire))
    return RawFile(
        data=data,
        source=url,
        file_date=file_date_from_name(url_file_name(url)),
        etag=etag,
        last_modified=last_modified,
        compressed=compressed,
    )
