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

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from datetime import date, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import requests

from resolver.clouds import Cloud
from resolver.errors import FetchError
from resolver.models import RawFile
from resolver.sources.base import HttpSettings, KnownFile, Progress
from resolver.sources.http import (
    decode_wire,
    describe,
    fetch_url,
    read_body,
    session_scope,
    timeouts,
)
from resolver.sources.names import parse_file_name, url_file_name

_LOG = logging.getLogger(__name__)

# Any absolute URL of a Service Tags file, on any host (step 4; tests serve from 127.0.0.1).
_FILE_URL = re.compile(
    r"https?://[^\s\"'<>()\\]+?/ServiceTags_[A-Za-z]+_\d{8}\.json(?!\w|\.\w)", re.IGNORECASE
)
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
    with session_scope(session, settings) as sess:
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
        parsed = parse_file_name(url_file_name(url))
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
            with session.get(url, stream=True, timeout=timeouts(settings)) as resp:
                status = resp.status_code
                content_type = resp.headers.get("Content-Type", "").lower()
        except requests.RequestException as exc:
            why = describe(exc, settings)
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
        with session.get(url, timeout=timeouts(settings), stream=True) as resp:
            if resp.status_code != 200:
                step.fail(f"HTTP {resp.status_code} {resp.reason or ''}".strip(), log)
                return None
            wire = read_body(resp, url, settings, None)
            content_encoding = resp.headers.get("Content-Encoding")
            charset = resp.encoding if "charset" in resp.headers.get("Content-Type", "") else None
    except requests.RequestException as exc:
        step.fail(describe(exc, settings), log)
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
