"""HTTP: the Download Center discovery chain and downloads, with retries, caps and ETags.

    session = make_session(HttpSettings())
    raw = fetch_current(get_cloud("public"), HttpSettings(), today=date.today(), session=session)

The discovery chain (docs/domain.md, "Where the files come from"), tried in this order:

1. probe the stable folder on download.microsoft.com for the last few Mondays, newest first;
2. the Download Center details page (``AcOEt_DownloadUrl``, the download button,
   ``__DLCDetails__``);
3. the older confirmation page (the ``failoverLink`` anchor, a meta refresh);
4. a URL pattern over the text of every page fetched in 2 and 3, newest date wins.

Every failure is a ``FetchError`` naming the URL, what happened and what to try.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import date, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from resolver.clouds import Cloud
from resolver.errors import FetchError
from resolver.models import RawFile
from resolver.sources import (  # the parts shared with local files
    _CHUNK,
    _GZIP_MAGIC,
    _NETWORK_ADVICE,
    HttpSettings,
    KnownFile,
    Progress,
    _gunzip,
    _maybe_gunzip,
    _parse_file_name,
    _same_url,
    _too_big,
    _url_file_name,
    file_date_from_name,
)

_LOG = logging.getLogger(__name__)
_RETRY_STATUSES = (500, 502, 503, 504)
# Any absolute URL of a Service Tags file, on any host (step 4; tests serve from 127.0.0.1).
_FILE_URL = re.compile(
    r"https?://[^\s\"'<>()\\]+?/ServiceTags_[A-Za-z]+_\d{8}\.json(?!\w|\.\w)", re.IGNORECASE
)
_ACOET = re.compile(r"""AcOEt_DownloadUrl\s*=\s*(?:"((?:[^"\\\n]|\\.)*)"|'((?:[^'\\\n]|\\.)*)')""")
_DLC_DETAILS = re.compile(r"window\.__DLCDetails__\s*=\s*")
_REFRESH_URL = re.compile(r"url\s*=\s*['\"]?\s*([^'\"\s>]+)", re.IGNORECASE)


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
def _session_scope(
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


def _timeouts(settings: HttpSettings) -> tuple[float, float]:
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


def _describe(exc: BaseException, settings: HttpSettings) -> str:
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


def _read_body(
    resp: requests.Response, url: str, settings: HttpSettings, progress: Progress | None
) -> bytes:
    """The body as sent on the wire (not content-decoded), checked for size and truncation."""
    total = _content_length(resp)
    if total is not None and total > settings.max_bytes:
        raise _too_big(url, total, settings)
    body = bytearray()
    try:
        for chunk in resp.raw.stream(_CHUNK, decode_content=False):
            body += chunk
            if len(body) > settings.max_bytes:
                raise _too_big(url, None, settings)
            if progress is not None:
                progress(len(body), total)
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
        got = len(body)
        if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
            raise FetchError(
                f"Downloading {url} timed out after {got} of {total if total else '?'} bytes "
                f"(read timeout {settings.read_timeout:g}s). {_NETWORK_ADVICE}"
            ) from exc
        if total is not None and got < total:
            raise _truncated(url, got, total) from exc
        raise FetchError(
            f"The connection broke after {got} bytes while downloading {url} ({exc}). "
            f"{_NETWORK_ADVICE}"
        ) from exc
    if total is not None and len(body) < total:
        raise _truncated(url, len(body), total)
    return bytes(body)


def _truncated(url: str, got: int, total: int) -> FetchError:
    return FetchError(
        f"Download truncated: got {got} of {total} bytes from {url}, try again "
        "(or pass a file you downloaded with --source FILE)."
    )


def _decode_wire(
    wire: bytes, content_encoding: str | None, url: str, settings: HttpSettings
) -> tuple[bytes, bytes | None]:
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return _maybe_gunzip(wire, url, settings)
    if encoding in ("gzip", "x-gzip"):
        data = _gunzip(wire, url, settings)
        if data[:2] == _GZIP_MAGIC:  # a .json.gz file, sent gzip-encoded once more
            return _gunzip(data, url, settings), data
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
    if known is not None and _same_url(known.url, url):
        if known.etag:
            headers["If-None-Match"] = known.etag
        if known.last_modified:
            headers["If-Modified-Since"] = known.last_modified
    conditional = bool(headers)
    with _session_scope(session, settings) as sess:
        try:
            resp = sess.get(url, headers=headers, timeout=_timeouts(settings), stream=True)
        except requests.RequestException as exc:
            raise FetchError(
                f"Could not download {url}: {_describe(exc, settings)}. {_NETWORK_ADVICE}"
            ) from exc
        with resp:
            if resp.status_code == 304 and conditional:
                log.info("%s has not changed since the last download (HTTP 304)", url)
                return None
            if resp.status_code != 200:
                raise _status_error(url, resp)
            wire = _read_body(resp, url, settings, progress)
            etag = resp.headers.get("ETag")
            last_modified = resp.headers.get("Last-Modified")
            content_encoding = resp.headers.get("Content-Encoding")
    data, compressed = _decode_wire(wire, content_encoding, url, settings)
    log.info("Downloaded %s (%d bytes)", url, len(wire))
    return RawFile(
        data=data,
        source=url,
        file_date=file_date_from_name(_url_file_name(url)),
        etag=etag,
        last_modified=last_modified,
        compressed=compressed,
    )


def fetch_current(
    cloud: Cloud,
    settings: HttpSettings,
    *,
    today: date,
    known: KnownFile | None = None,
    progress: Progress | None = None,
    log: logging.Logger | None = None,
    session: requests.Session | None = None,
) -> RawFile | None:
    """Find the cloud's current file (``discover_url``) and download it.

    None when the current file is ``known`` and the server answers 304 Not Modified.
    """
    log = log or _LOG
    with _session_scope(session, settings) as sess:
        url = discover_url(cloud, settings, sess, today, log)
        return fetch_url(url, settings, known=known, progress=progress, log=log, session=sess)


# --------------------------------------------------------------------------------------------
# Discovery


class _Step:
    """One step of the chain: what it tried and, when it failed, why."""

    def __init__(self, number: int, what: str):
        self.number = number
        self.what = what
        self.reason = ""

    def fail(self, reason: str, log: logging.Logger) -> None:
        self.reason = reason
        log.info("Discovery step %d (%s) failed: %s", self.number, self.what, reason)

    def __str__(self) -> str:
        return f"{self.number}. {self.what}: {self.reason}"


def _pick(
    cloud: Cloud, urls: Iterable[str], step: _Step, log: logging.Logger
) -> tuple[str | None, str]:
    """The newest URL that is this cloud's file, else (None, why none was taken)."""
    best: tuple[date, str] | None = None
    other_clouds: list[str] = []
    not_ours: list[str] = []
    for url in dict.fromkeys(u.strip() for u in urls if u.strip()):
        parsed = _parse_file_name(_url_file_name(url))
        if parsed is None:
            not_ours.append(url)
            continue
        name, day = parsed
        if name.casefold() != cloud.name.casefold():
            log.info(
                "Discovery step %d: rejected %s: it is the %s file, not %s",
                step.number,
                url,
                name,
                cloud.name,
            )
            other_clouds.append(name)
            continue
        if best is None or day > best[0]:
            best = (day, url)
    if best is not None:
        return best[1], ""
    if other_clouds:
        names = ", ".join(dict.fromkeys(other_clouds))
        return None, f"only links for another cloud ({names}), none for {cloud.name}"
    if not_ours:
        return None, (
            f"the link found is not a ServiceTags_{cloud.name}_YYYYMMDD.json file ({not_ours[0]})"
        )
    return None, "no link found in page"


def _probe(
    cloud: Cloud,
    settings: HttpSettings,
    session: requests.Session,
    today: date,
    step: _Step,
    log: logging.Logger,
) -> str | None:
    if settings.probe_weeks <= 0:
        step.fail("skipped (probe_weeks is 0)", log)
        return None
    monday = today - timedelta(days=today.weekday())
    mondays = [monday - timedelta(weeks=n) for n in range(settings.probe_weeks)]
    misses: list[tuple[str, str]] = []
    for day in mondays:
        stamp = day.strftime("%Y%m%d")
        url = f"{settings.download_base.rstrip('/')}{cloud.folder}{cloud.file_name(stamp)}"
        try:
            # A GET with stream=True, closed at once (only the headers are read), not a HEAD:
            # it is the very request the download makes, so a 200 here means the download is
            # served too, and some proxies and CDNs answer HEAD differently from GET.
            with session.get(url, stream=True, timeout=_timeouts(settings)) as resp:
                status = resp.status_code
                content_type = resp.headers.get("Content-Type", "").lower()
        except requests.RequestException as exc:
            why = _describe(exc, settings)
            step.fail(f"{why} at the {stamp} probe; older Mondays not tried", log)
            return None
        if status == 200 and "html" not in content_type:
            return url
        # A 200 with an HTML page is a "not available" page or a proxy's block page, not the file.
        misses.append((stamp, f"HTTP {status}" + (" (an HTML page)" if status == 200 else "")))
    answers = {why for _, why in misses}
    if len(answers) == 1:
        reason = f"{answers.pop()} for all {len(misses)} Mondays"
    else:
        reason = ", ".join(f"{stamp}: {why}" for stamp, why in misses)
    step.fail(f"no file found ({reason})", log)
    return None


def _get_page(
    url: str, settings: HttpSettings, session: requests.Session, step: _Step, log: logging.Logger
) -> str | None:
    try:
        with session.get(url, timeout=_timeouts(settings), stream=True) as resp:
            if resp.status_code != 200:
                step.fail(f"HTTP {resp.status_code} {resp.reason or ''}".strip(), log)
                return None
            wire = _read_body(resp, url, settings, None)
            content_encoding = resp.headers.get("Content-Encoding")
            charset = resp.encoding if "charset" in resp.headers.get("Content-Type", "") else None
    except requests.RequestException as exc:
        step.fail(_describe(exc, settings), log)
        return None
    except FetchError as exc:
        step.fail(str(exc), log)
        return None
    try:
        body, _ = _decode_wire(wire, content_encoding, url, settings)
    except FetchError as exc:
        step.fail(str(exc), log)
        return None
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name
        return body.decode("utf-8", errors="replace")


class _Tags(HTMLParser):
    """Collects the attributes of every <a> and <meta> tag."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("a", "meta"):
            self.found.append((tag, {k.lower(): (v or "") for k, v in attrs}))


def _tags(text: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Tags()
    with suppress(Exception):  # a broken page still yields the tags seen before the break
        parser.feed(text)
        parser.close()
    return parser.found


def _classes(attrs: dict[str, str]) -> set[str]:
    return {c.lower() for c in attrs.get("class", "").split()}


def _js_string(quoted: str) -> str:
    try:
        value = json.loads(f'"{quoted}"')
    except ValueError:
        return quoted.replace("\\/", "/")
    return value if isinstance(value, str) else quoted


def _download_file_urls(node: Any) -> Iterator[str]:
    """Every ``downloadFile[].url`` anywhere in the __DLCDetails__ object."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.lower() == "downloadfile" and isinstance(value, list):
                for item in value:
                    if isinstance(item, dict) and isinstance(item.get("url"), str):
                        yield item["url"]
            else:
                yield from _download_file_urls(value)
    elif isinstance(node, list):
        for value in node:
            yield from _download_file_urls(value)


def _details_links(text: str, page_url: str) -> list[str]:
    links: list[str] = []
    for match in _ACOET.finditer(text):
        links.append(_js_string(match[1] if match[1] is not None else match[2]))
    for tag, attrs in _tags(text):
        if tag == "a" and "dlcdetail__download-btn" in _classes(attrs) and attrs.get("href"):
            links.append(attrs["href"])
    decoder = json.JSONDecoder()
    for match in _DLC_DETAILS.finditer(text):
        try:
            details, _ = decoder.raw_decode(text, match.end())
        except (ValueError, RecursionError):
            continue
        links.extend(_download_file_urls(details))
    return [urljoin(page_url, link.strip()) for link in links]


def _confirmation_links(text: str, page_url: str) -> list[str]:
    links: list[str] = []
    for tag, attrs in _tags(text):
        if tag == "a" and "failoverlink" in _classes(attrs) and attrs.get("href"):
            links.append(attrs["href"])
        elif tag == "meta" and attrs.get("http-equiv", "").lower() == "refresh":
            match = _REFRESH_URL.search(attrs.get("content", ""))
            if match:
                links.append(match[1])
    return [urljoin(page_url, link.strip()) for link in links]


def _page_step(
    cloud: Cloud,
    url: str,
    extract: Callable[[str, str], list[str]],
    settings: HttpSettings,
    session: requests.Session,
    step: _Step,
    pages: list[str],
    log: logging.Logger,
) -> str | None:
    text = _get_page(url, settings, session, step, log)
    if text is None:
        return None
    pages.append(text)
    found, why = _pick(cloud, extract(text, url), step, log)
    if found is None:
        step.fail(why, log)
    return found


def discover_url(
    cloud: Cloud,
    settings: HttpSettings,
    session: requests.Session,
    today: date,
    log: logging.Logger,
) -> str:
    """The URL of the cloud's current Service Tags file, by the four-step chain (module doc).

    Each failed step logs one INFO line saying why; when all fail, the FetchError names every
    step and its reason.
    """
    folder_url = f"{settings.download_base.rstrip('/')}{cloud.folder}"
    details_url = f"{settings.details_base.rstrip('/')}/details.aspx?id={cloud.download_id}"
    confirm_url = f"{settings.details_base.rstrip('/')}/confirmation.aspx?id={cloud.download_id}"
    steps = [
        _Step(
            1,
            f"probe {folder_url}{cloud.file_name('YYYYMMDD')} for the last "
            f"{settings.probe_weeks} Mondays",
        ),
        _Step(2, f"details page {details_url}"),
        _Step(3, f"confirmation page {confirm_url}"),
        _Step(4, f"ServiceTags_{cloud.name}_YYYYMMDD.json URLs in the text of the pages"),
    ]
    pages: list[str] = []
    found = _probe(cloud, settings, session, today, steps[0], log)
    if found is None:
        found = _page_step(
            cloud, details_url, _details_links, settings, session, steps[1], pages, log
        )
    if found is None:
        found = _page_step(
            cloud, confirm_url, _confirmation_links, settings, session, steps[2], pages, log
        )
    if found is None:
        if not pages:
            steps[3].fail("no page was fetched in steps 2 and 3", log)
        else:
            text = "\n".join(pages).replace("\\/", "/")
            found, why = _pick(cloud, _FILE_URL.findall(text), steps[3], log)
            if found is None:
                steps[3].fail(why if why != "no link found in page" else "no such URL found", log)
    if found is not None:
        step = next(s for s in steps if not s.reason)
        log.info("Found %s (discovery step %d: %s)", found, step.number, step.what)
        return found
    raise FetchError(
        f"Could not find the current Service Tags file for {cloud.name} "
        f"(Download Center id {cloud.download_id}). Tried:\n  "
        + "\n  ".join(str(s) for s in steps)
        + "\nTry again later, check the proxy settings (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, "
        "REQUESTS_CA_BUNDLE), or download the file yourself and pass it with --source FILE."
    )
