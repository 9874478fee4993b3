"""File-name and URL rules.

``ServiceTags_<Cloud>_YYYYMMDD.json[.gz]`` gives a file's cloud and date: the files carry no date of
their own, the Monday in the name is the only one there is. URLs are shown and stored only
redacted (``redact_url``): user info and query strings may hold credentials or signatures.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from urllib.parse import unquote, urlsplit

_FILE_NAME = re.compile(r"ServiceTags_([A-Za-z]+)_([0-9]{8})\.json(?:\.gz)?", re.IGNORECASE)
# A URL inside free text (an exception's message): a scheme, then anything up to a space or quote.
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{0,15}://[^\s'\"<>]+")
_HIDDEN = "***"


def parse_file_name(name: str) -> tuple[str, date] | None:
    base = re.split(r"[/\\]", name)[-1]
    match = _FILE_NAME.fullmatch(base)
    if match is None:
        return None
    digits = match[2]
    try:  # not datetime.strptime: importing _strptime and calendar costs every ingest ~2 ms
        day = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None
    return match[1], day


def file_date_from_name(name: str) -> date | None:
    """The Monday in ``ServiceTags_<Cloud>_YYYYMMDD.json[.gz]`` (a name or a path), else None."""
    parsed = parse_file_name(name)
    return parsed[1] if parsed else None


def cloud_name_from_file_name(name: str) -> str | None:
    """``"Public"`` from ``"ServiceTags_Public_20250113.json.gz"`` (a name or a path), else None."""
    parsed = parse_file_name(name)
    return parsed[0] if parsed else None


def url_file_name(url: str) -> str:
    try:
        path = urlsplit(url).path
    except ValueError:  # an unbalanced [ in the host
        path = url.split("?", 1)[0].split("#", 1)[0]
    return unquote(path).rsplit("/", 1)[-1]


def shown_text(text: str) -> str:
    """``text`` as it can be printed and stored (SQLite takes UTF-8 only): the undecodable bytes
    of a file name (which Python holds as surrogate escapes) become ``\\xNN``, any other lone
    surrogate ``\\uNNNN``."""
    if text.isascii():
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def redact_url(url: str) -> str:
    """``url`` as it may be shown, logged or stored: scheme, host, port and path are kept; user
    info becomes ``***@``, a query ``?***`` and a fragment ``#***``.

    ``https://user:pw@host:8443/f.json?sig=x`` -> ``https://***@host:8443/f.json?***``
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    # Split by hand rather than with urlsplit: it must work on any text, also a URL urlsplit
    # refuses (an unbalanced [), and keep the host and path exactly as written.
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=-1)
    authority, tail = (rest, "") if cut < 0 else (rest[:cut], rest[cut:])
    if "@" in authority:
        authority = f"{_HIDDEN}@{authority.rpartition('@')[2]}"
    path, hash_mark, fragment = tail.partition("#")
    path, question, query = path.partition("?")
    shown = f"{scheme}{sep}{authority}{path}"
    if question:
        shown += f"?{_HIDDEN}" if query else "?"
    if hash_mark:
        shown += f"#{_HIDDEN}" if fragment else "#"
    return shown_text(shown)


def url_secrets(urls: Iterable[str | None]) -> list[str]:
    """The parts of ``urls`` that must not be shown: user info, password and query, raw and
    percent-decoded, longest first (so a password inside a user:password is replaced whole)."""
    found: set[str] = set()
    for url in urls:
        if not url:
            continue
        rest = url.partition("://")[2] or url
        authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
        if "@" in authority:
            userinfo = authority.rpartition("@")[0]
            found.update({userinfo, unquote(userinfo)})
            password = userinfo.partition(":")[2]
            found.update({password, unquote(password)})
        query = url.partition("?")[2].partition("#")[0]
        found.update({query, unquote(query)})
    return sorted((s for s in found if len(s) >= 3), key=len, reverse=True)


def scrub(text: str, secret_urls: Iterable[str | None] = ()) -> str:
    """``text`` with every URL in it redacted and every secret part of ``secret_urls`` (the URL
    requested, the proxies) replaced by ``***``, wherever it appears (an exception may quote a
    path and query without the host, or a proxy's user info on its own)."""
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m[0]), text)
    for secret in url_secrets(secret_urls):
        text = text.replace(secret, _HIDDEN)
    return shown_text(text)


def same_url(a: str, b: str) -> bool:
    """The same file: compared as shown (``redact_url``), in any case.

    A stored source is redacted, so a URL with a query or credentials is compared on its scheme,
    host and path. download.microsoft.com serves a folder in any case and newer pages write it in
    lower case, so the same file may be linked as /7/1/D/71D86715-... or /7/1/d/71d86715-...
    """
    return redact_url(a.strip()).casefold() == redact_url(b.strip()).casefold()
