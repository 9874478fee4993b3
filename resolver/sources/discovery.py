"""Finding the current file of a cloud on Microsoft's Download Center, then downloading it.

    raw = fetch_current(get_cloud("public"), HttpSettings(), today=date.today())

The chain, tried in this order (Microsoft publishes no stable "latest" URL):

1. probe the stable folder on download.microsoft.com for the last few Mondays, newest first;
2. the Download Center details page (``AcOEt_DownloadUrl``, the download button,
   ``__DLCDetails__``);
3. the older confirmation page (the ``failoverLink`` anchor, a meta refresh);
4. a URL pattern over the text of every page fetched in 2 and 3, newest date wins.

Every failure is a ``FetchError`` naming each step and why it failed.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from datetime import date, timedelta
from typing import Any
from urllib.parse import urljoin

import requests

from resolver.clouds import Cloud
from resolver.errors import FetchError
from resolver.ingest import RawFile
from resolver.sources.base import HttpSettings, KnownFile, Progress
from resolver.sources.http import (
    deadline_passed,
    deadline_scope,
    decode_wire,
    describe,
    fetch_url,
    open_url,
    read_body,
    session_scope,
    unreachable,
)
from resolver.sources.names import parse_file_name, redact_url, scrub, url_file_name

_LOG = logging.getLogger(__name__)

# Step 4: any absolute URL of a Service Tags file, on any host (tests serve from 127.0.0.1):
# ``https?://`` and URL characters up to the first ``/ServiceTags_<Cloud>_<8 digits>.json``.
# Matched in three linear passes (``_file_urls``), not as one pattern: a lazy ``https?://.+?/...``
# is retried from every ``http`` in a long run of URL characters, which is quadratic.
_URL_RUN = re.compile(r"[^\s\"'<>()\\]+")
_SCHEME = re.compile(r"https?://", re.IGNORECASE)
_FILE_NAME_IN_URL = re.compile(r"/ServiceTags_[A-Za-z]+_[0-9]{8}\.json(?!\w|\.\w)", re.IGNORECASE)
_ACOET = re.compile(r"""AcOEt_DownloadUrl\s*=\s*(?:"((?:[^"\\\n]|\\.)*)"|'((?:[^'\\\n]|\\.)*)')""")
_DLC_DETAILS = re.compile(r"window\.__DLCDetails__\s*=\s*")
_REFRESH_URL = re.compile(r"url\s*=\s*['\"]?\s*([^'\"\s>]+)", re.IGNORECASE)


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
    with deadline_scope(settings), session_scope(session, settings) as sess:
        url = discover_url(cloud, settings, sess, today, log)
        return fetch_url(url, settings, known=known, progress=progress, log=log, session=sess)


def _file_urls(text: str) -> list[str]:
    """Every ``https?://...`` URL ending in ``/ServiceTags_<Cloud>_<YYYYMMDD>.json`` in ``text``,
    as ``re.findall`` of the lazy pattern would give them, in time linear in ``len(text)``.

    Within one run of URL characters the leftmost match starts at the first scheme and ends at
    the first file name after it; the next one is looked for after that file name.
    """
    found: list[str] = []
    for run in _URL_RUN.finditer(text):
        pos, end = run.start(), run.end()
        while pos < end:
            scheme = _SCHEME.search(text, pos, end)
            if scheme is None:
                break
            # at least one character between "://" and "/ServiceTags_"
            name = _FILE_NAME_IN_URL.search(text, scheme.end() + 1, end)
            if name is None:
                break
            found.append(text[scheme.start() : name.end()])
            pos = name.end()
    return found


# --------------------------------------------------------------------------------------------
# Discovery


class DiscoveryError(FetchError):
    """Every discovery step failed. ``summary``: why, in one line, for a report of several clouds
    (the message names every step)."""

    def __init__(self, message: str, summary: str):
        super().__init__(message)
        self.summary = summary


class _Step:
    """One step of the chain: what it tried and, when it failed, why."""

    def __init__(self, number: int, what: str):
        self.number = number
        self.what = what
        self.reason = ""

    def fail(self, reason: str, log: logging.Logger) -> None:
        self.reason = reason = scrub(reason)
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
        parsed = parse_file_name(url_file_name(url))
        if parsed is None:
            not_ours.append(url)
            continue
        name, day = parsed
        if name.casefold() != cloud.name.casefold():
            log.info(
                "Discovery step %d: rejected %s: it is the %s file, not %s",
                step.number,
                redact_url(url),
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
            f"the link found is not a ServiceTags_{cloud.name}_YYYYMMDD.json file "
            f"({redact_url(not_ours[0])[:200]})"
        )
    return None, "no link found in page"


class _Hosts:
    """Hosts that could not be reached during one discovery: later steps on them are skipped
    (a host that timed out connecting would cost the connect timeout again)."""

    def __init__(self) -> None:
        self.down: dict[str, tuple[int, str]] = {}

    @staticmethod
    def key(url: str) -> str:
        rest = url.partition("://")[2]
        return re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2].lower()

    def note(self, url: str, exc: BaseException, step: _Step, why: str) -> None:
        if unreachable(exc):
            self.down.setdefault(self.key(url), (step.number, why))

    def skip(self, url: str, step: _Step, log: logging.Logger) -> bool:
        seen = self.down.get(self.key(url))
        if seen is None:
            return False
        step.fail(
            f"skipped: {self.key(url)} could not be reached in step {seen[0]} ({seen[1]})", log
        )
        return True


def _failed_request(
    exc: BaseException,
    url: str,
    settings: HttpSettings,
    step: _Step,
    hosts: _Hosts,
) -> str:
    """Why a request of ``step`` failed, noting an unreachable host."""
    if deadline_passed():
        return _gave_up(settings)
    why = describe(exc, settings, url)
    hosts.note(url, exc, step, why)
    return why


def _gave_up(settings: HttpSettings) -> str:
    return f"gave up: the deadline of {settings.deadline:g}s (--deadline) passed"


def _probe(
    cloud: Cloud,
    settings: HttpSettings,
    session: requests.Session,
    today: date,
    step: _Step,
    hosts: _Hosts,
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
        if deadline_passed():
            step.fail(_gave_up(settings), log)
            return None
        try:
            # A GET with stream=True, closed at once (only the headers are read), not a HEAD:
            # it is the very request the download makes, so a 200 here means the download is
            # served too, and some proxies and CDNs answer HEAD differently from GET.
            with open_url(session, url, settings, log) as resp:
                status = resp.status_code
                content_type = resp.headers.get("Content-Type", "").lower()
        except requests.RequestException as exc:
            why = _failed_request(exc, url, settings, step, hosts)
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
    url: str,
    settings: HttpSettings,
    session: requests.Session,
    step: _Step,
    hosts: _Hosts,
    log: logging.Logger,
) -> str | None:
    if hosts.skip(url, step, log):
        return None
    if deadline_passed():
        step.fail(_gave_up(settings), log)
        return None
    try:
        with open_url(session, url, settings, log) as resp:
            if resp.status_code != 200:
                step.fail(f"HTTP {resp.status_code} {resp.reason or ''}".strip()[:200], log)
                return None
            wire = read_body(resp, url, settings, None)
            content_encoding = resp.headers.get("Content-Encoding")
            charset = resp.encoding if "charset" in resp.headers.get("Content-Type", "") else None
    except requests.RequestException as exc:
        step.fail(_failed_request(exc, url, settings, step, hosts), log)
        return None
    except FetchError as exc:
        step.fail(str(exc), log)
        return None
    try:
        body, _ = decode_wire(wire, content_encoding, url, settings)
    except FetchError as exc:
        step.fail(str(exc), log)
        return None
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name
        return body.decode("utf-8", errors="replace")


# The <a> and <meta> tags of a page, found in one linear pass. Not html.parser: on the Python this
# runs on it takes quadratic time (or worse) on pages such as "<a " * 20000 or many "<!--",
# and a page is as large as max_bytes. Comments and the content of <script> and <style> are
# skipped, as a browser does; a quoted attribute value left open runs to the end of the page.
_NEXT_TAG = re.compile(r"<!--|<(script|style)(?=[\s/>])|<(a|meta)(?=[\s/>])", re.IGNORECASE)
_ATTRIBUTE = re.compile(
    r"""[\s/]*([^\s/>][^\s/>=]*)(?:\s*=\s*(?:"([^"]*)("?)|'([^']*)('?)|([^\s>]*)))?"""
)
_TAG_END = re.compile(r"[\s/]*>")


def _tags(text: str) -> list[tuple[str, dict[str, str]]]:
    """(tag name, attributes) of every <a> and <meta> tag; names lower-case, values unescaped,
    the first of a repeated attribute wins."""
    found: list[tuple[str, dict[str, str]]] = []
    pos = 0
    while (start := _NEXT_TAG.search(text, pos)) is not None:
        if start[0] == "<!--":
            close_at = text.find("-->", start.end())
            if close_at < 0:
                break  # the rest of the page is a comment
            pos = close_at + 3
            continue
        if start[1] is not None:  # <script> or <style>: raw text up to its end tag
            close = re.compile(rf"</{start[1]}(?=[\s/>])", re.IGNORECASE).search(text, start.end())
            if close is None:
                break
            pos = close.end()
            continue
        attrs: dict[str, str] = {}
        pos = start.end()
        while (match := _ATTRIBUTE.match(text, pos)) is not None:
            name, dq, dq_end, sq, sq_end, bare = match.groups()
            if (dq is not None and not dq_end) or (sq is not None and not sq_end):
                return found  # an open quote: the value runs to the end of the page
            value = dq if dq is not None else sq if sq is not None else bare
            attrs.setdefault(name.lower(), html.unescape(value or ""))
            pos = match.end()
        end = _TAG_END.match(text, pos)
        if end is None:
            break  # the page ends inside the tag
        pos = end.end()
        found.append((start[2].lower(), attrs))
    return found


def _classes(attrs: dict[str, str]) -> set[str]:
    return {c.lower() for c in attrs.get("class", "").split()}


def _js_string(quoted: str) -> str:
    try:
        value = json.loads(f'"{quoted}"')
    except ValueError:
        return quoted.replace("\\/", "/")
    return value if isinstance(value, str) else quoted


def _download_file_urls(node: Any) -> Iterator[str]:
    """Every ``downloadFile[].url`` anywhere in the __DLCDetails__ object, in document order.

    Walked with a stack of iterators, not recursion: the page decides how deep the object is.
    """
    stack: list[Iterator[Any]] = [iter((node,))]
    while stack:
        child = next(stack[-1], _END)
        if child is _END:
            stack.pop()
        elif isinstance(child, _FileList):
            for item in child.items:
                if isinstance(item, dict) and isinstance(item.get("url"), str):
                    yield item["url"]
        elif isinstance(child, dict | list):
            stack.append(_children(child))


_END = object()


class _FileList:
    def __init__(self, items: list[Any]):
        self.items = items


def _children(node: dict[str, Any] | list[Any]) -> Iterator[Any]:
    if isinstance(node, list):
        yield from node
        return
    for key, value in node.items():
        is_files = key.lower() == "downloadfile" and isinstance(value, list)
        yield _FileList(value) if is_files else value


def _details_links(text: str, page_url: str) -> list[str]:
    links: list[str] = []
    for match in _ACOET.finditer(text):
        links.append(_js_string(match[1] if match[1] is not None else match[2]))
    for tag, attrs in _tags(text):
        if tag == "a" and "dlcdetail__download-btn" in _classes(attrs) and attrs.get("href"):
            links.append(attrs["href"])
    decoder = json.JSONDecoder()
    starts = [m.end() for m in _DLC_DETAILS.finditer(text)]
    for start, stop in zip(starts, [*starts[1:], len(text)], strict=False):
        # Each object is decoded from its own slice of the page, up to the next marker: a
        # JSON error's message counts the lines before it, which over the whole page, once per
        # marker, is quadratic.
        try:
            details, _ = decoder.raw_decode(text[start:stop])
        except (ValueError, RecursionError):
            continue
        links.extend(_download_file_urls(details))
    return _absolute(page_url, links)


def _absolute(page_url: str, links: list[str]) -> list[str]:
    """The links made absolute against the page; a link that is not a URL at all (an unbalanced
    ``[``) is left out."""
    found = []
    for link in links:
        with suppress(ValueError):
            found.append(urljoin(page_url, link.strip()))
    return found


def _confirmation_links(text: str, page_url: str) -> list[str]:
    links: list[str] = []
    for tag, attrs in _tags(text):
        if tag == "a" and "failoverlink" in _classes(attrs) and attrs.get("href"):
            links.append(attrs["href"])
        elif tag == "meta" and attrs.get("http-equiv", "").lower() == "refresh":
            match = _REFRESH_URL.search(attrs.get("content", ""))
            if match:
                links.append(match[1])
    return _absolute(page_url, links)


def _page_step(
    cloud: Cloud,
    url: str,
    extract: Callable[[str, str], list[str]],
    settings: HttpSettings,
    session: requests.Session,
    step: _Step,
    pages: list[str],
    hosts: _Hosts,
    log: logging.Logger,
) -> str | None:
    text = _get_page(url, settings, session, step, hosts, log)
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
    details_url = f"{settings.details_base.rstrip('/')}/details.aspx?id={cloud.download_id}"
    confirm_url = f"{settings.details_base.rstrip('/')}/confirmation.aspx?id={cloud.download_id}"
    # As shown: the bases (a mirror's) redacted, aztags' own ?id= kept.
    download_shown = redact_url(settings.download_base).rstrip("/")
    details_shown = redact_url(settings.details_base).rstrip("/")
    steps = [
        _Step(
            1,
            f"probe {download_shown}{cloud.folder}{cloud.file_name('YYYYMMDD')} for the last "
            f"{settings.probe_weeks} Mondays",
        ),
        _Step(2, f"details page {details_shown}/details.aspx?id={cloud.download_id}"),
        _Step(3, f"confirmation page {details_shown}/confirmation.aspx?id={cloud.download_id}"),
        _Step(4, f"ServiceTags_{cloud.name}_YYYYMMDD.json URLs in the text of the pages"),
    ]
    pages: list[str] = []
    hosts = _Hosts()
    found = _probe(cloud, settings, session, today, steps[0], hosts, log)
    if found is None:
        found = _page_step(
            cloud, details_url, _details_links, settings, session, steps[1], pages, hosts, log
        )
    if found is None:
        found = _page_step(
            cloud, confirm_url, _confirmation_links, settings, session, steps[2], pages, hosts, log
        )
    if found is None:
        if not pages:
            steps[3].fail("no page was fetched in steps 2 and 3", log)
        else:
            text = "\n".join(pages).replace("\\/", "/")
            found, why = _pick(cloud, _file_urls(text), steps[3], log)
            if found is None:
                steps[3].fail(why if why != "no link found in page" else "no such URL found", log)
    if found is not None:
        step = next(s for s in steps if not s.reason)
        log.info("Found %s (discovery step %d: %s)", redact_url(found), step.number, step.what)
        return found
    within = (
        f" within the deadline of {settings.deadline:g}s (--deadline)" if deadline_passed() else ""
    )
    reasons = [s.reason for s in steps[:3] if s.reason and not s.reason.startswith("skipped")]
    raise DiscoveryError(
        f"Could not find the current Service Tags file for {cloud.name} "
        f"(Download Center id {cloud.download_id}){within}. Tried:\n  "
        + "\n  ".join(str(s) for s in steps)
        + "\nTry again later, check the proxy settings (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, "
        "REQUESTS_CA_BUNDLE), or download the file yourself and pass it with --source FILE.",
        "; ".join(dict.fromkeys(reasons or [steps[3].reason]))
        + ("" if any("deadline" in r for r in reasons) else within),
    )
