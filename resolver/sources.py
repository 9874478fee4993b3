"""Where a Service Tags file's bytes come from: a local path, stdin, or a URL (via download.py).

This is an I/O edge: it returns raw bytes and where they came from (``RawFile``) and never looks
inside them; ``resolver/parse.py`` decides whether the bytes are a valid file. Every failure is a
``FetchError`` whose message names the path or URL, says what happened and what to try.

HTTP (the Download Center discovery chain and downloads) lives in ``resolver/download.py``, so
commands that read local files do not pay for importing requests.
"""

from __future__ import annotations

import logging
import re
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from resolver.errors import FetchError
from resolver.models import RawFile

_LOG = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]
"""Called after every chunk with (bytes so far, total bytes or None when the size is unknown)."""

_CHUNK = 64 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_FILE_NAME = re.compile(r"ServiceTags_([A-Za-z]+)_(\d{8})\.json(?:\.gz)?", re.IGNORECASE)

_NETWORK_ADVICE = (
    "Check the network and the proxy settings (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, "
    "REQUESTS_CA_BUNDLE), try again later, or download the file yourself and pass it with "
    "--source FILE."
)


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """How to reach Microsoft's servers. The defaults are the real ones; tests use 127.0.0.1."""

    download_base: str = "https://download.microsoft.com"  # where the stable folders live
    # details.aspx and confirmation.aspx live under it
    details_base: str = "https://www.microsoft.com/en-us/download"
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retries: int = 3  # bounded retries, exponential backoff, on timeouts, connection errors, 5xx
    backoff: float = 0.5
    max_bytes: int = 64 * 1024 * 1024  # a larger body (or decompressed file) is refused
    probe_weeks: int = 5  # how many Mondays back step 1 probes


@dataclass(frozen=True, slots=True)
class KnownFile:
    """The last stored file of a cloud: enough to ask the server "has it changed?"."""

    url: str
    etag: str | None
    last_modified: str | None


# --------------------------------------------------------------------------------------------
# File names


def _parse_file_name(name: str) -> tuple[str, date] | None:
    base = re.split(r"[/\\]", name)[-1]
    match = _FILE_NAME.fullmatch(base)
    if match is None:
        return None
    try:
        day = datetime.strptime(match[2], "%Y%m%d").date()
    except ValueError:
        return None
    return match[1], day


def file_date_from_name(name: str) -> date | None:
    """The Monday in ``ServiceTags_<Cloud>_YYYYMMDD.json[.gz]`` (a name or a path), else None."""
    parsed = _parse_file_name(name)
    return parsed[1] if parsed else None


def cloud_name_from_file_name(name: str) -> str | None:
    """``"Public"`` from ``"ServiceTags_Public_20250113.json.gz"`` (a name or a path), else None."""
    parsed = _parse_file_name(name)
    return parsed[0] if parsed else None


def _url_file_name(url: str) -> str:
    return unquote(urlsplit(url).path).rsplit("/", 1)[-1]


def _same_url(a: str, b: str) -> bool:
    # download.microsoft.com serves a folder in any case and newer pages write it in lower case,
    # so the same file may be linked as /7/1/D/71D86715-... or /7/1/d/71d86715-...
    return a.strip().casefold() == b.strip().casefold()


# --------------------------------------------------------------------------------------------
# Bodies: size cap, truncation, gzip


def _too_big(where: str, size: int | None, settings: HttpSettings) -> FetchError:
    what = f"is {size} bytes, more than" if size is not None else "is more than"
    return FetchError(
        f"{where} {what} the limit of {settings.max_bytes} bytes (max_bytes). A Service Tags "
        "file is a few MB; check the URL, or raise max_bytes if the file really is that large."
    )


def _gunzip(blob: bytes, where: str, settings: HttpSettings) -> bytes:
    """Decompress every gzip member in ``blob``; refuse output over ``max_bytes``."""
    limit = settings.max_bytes
    out = bytearray()
    rest = blob
    try:
        while rest:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            out += inflater.decompress(rest, limit + 1 - len(out))
            if len(out) > limit:
                raise _too_big(f"The decompressed gzip stream from {where}", None, settings)
            if not inflater.eof:
                raise FetchError(
                    f"The gzip stream from {where} is damaged: it ends before its end marker "
                    "(the file is cut short). Download it again."
                )
            rest = inflater.unused_data
            if not rest.strip(b"\x00"):  # gzip tools tolerate zero padding at the end
                break
    except zlib.error as exc:
        raise FetchError(
            f"The gzip stream from {where} is damaged ({exc}). Download it again, or pass the "
            "uncompressed .json file."
        ) from exc
    return bytes(out)


def _maybe_gunzip(raw: bytes, where: str, settings: HttpSettings) -> tuple[bytes, bytes | None]:
    """(uncompressed data, the gzip bytes or None); gzip is decided by the magic bytes."""
    if raw[:2] == _GZIP_MAGIC:
        return _gunzip(raw, where, settings), raw
    return raw, None


# --------------------------------------------------------------------------------------------
# --source: a path, a URL or stdin


def _read_stream(
    stream: BinaryIO,
    where: str,
    settings: HttpSettings,
    progress: Progress | None,
    total: int | None,
) -> bytes:
    data = bytearray()
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        data += chunk
        if len(data) > settings.max_bytes:
            raise _too_big(where, None, settings)
        if progress is not None:
            progress(len(data), total)
    return bytes(data)


def read_source(
    spec: str,
    settings: HttpSettings,
    *,
    stdin: BinaryIO | None = None,
    progress: Progress | None = None,
    log: logging.Logger | None = None,
) -> RawFile:
    """Read ``--source``: a local .json or .json.gz path, an http(s) URL, or ``-`` for stdin.

    Gzip is recognised by its magic bytes, not by the name. ``file_date`` comes from a name
    like ServiceTags_Public_20250113.json[.gz], else None.
    """
    log = log or _LOG
    if spec == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        try:
            raw = _read_stream(stream, "standard input", settings, progress, None)
        except OSError as exc:
            raise FetchError(f"Cannot read standard input: {exc}.") from exc
        data, compressed = _maybe_gunzip(raw, "standard input", settings)
        return RawFile(data=data, source="-", compressed=compressed)
    if re.match(r"https?://", spec, re.IGNORECASE):
        from resolver.download import fetch_url

        fetched = fetch_url(spec, settings, progress=progress, log=log)
        if fetched is None:  # only possible with a KnownFile, which is never passed here
            raise FetchError(f"{spec} answered 304 Not Modified to a plain request; try again.")
        return fetched
    path = Path(spec).expanduser()
    if path.is_dir():
        raise FetchError(
            f"{spec} is a directory, not a Service Tags file. Pass the .json or .json.gz file."
        )
    try:
        with path.open("rb") as fh:
            size = path.stat().st_size
            raw = _read_stream(fh, str(path), settings, progress, size)
    except FileNotFoundError as exc:
        raise FetchError(
            f"No such file: {spec}. Check the path, or leave out --source to download the "
            "current file."
        ) from exc
    except IsADirectoryError as exc:
        raise FetchError(f"{spec} is a directory, not a Service Tags file.") from exc
    except PermissionError as exc:
        raise FetchError(f"Cannot read {spec}: permission denied.") from exc
    except OSError as exc:
        raise FetchError(f"Cannot read {spec}: {exc.strerror or exc}.") from exc
    data, compressed = _maybe_gunzip(raw, str(path), settings)
    log.info("Read %s (%d bytes)", path, len(raw))
    return RawFile(
        data=data, source=str(path), file_date=file_date_from_name(path.name), compressed=compressed
    )
