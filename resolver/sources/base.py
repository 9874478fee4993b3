"""What every source shares: download settings, progress callbacks, size caps and gzip.

Every failure is a ``FetchError`` whose message names the path or URL, says what happened and what
to try.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from resolver.errors import FetchError

Progress = Callable[[int, int | None], None]
"""Called after every chunk with (bytes so far, total bytes or None when the size is unknown)."""

CHUNK = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"
_FIRST_FEED = 64  # bytes of a gzip member fed to zlib at first; doubled until the member ends

NETWORK_ADVICE = (
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
    # One download (and, for fetch_current, discovery plus download) gives up after this many
    # seconds, whatever the server does: a trickle of one byte per read never hits read_timeout.
    deadline: float = 180.0
    # Bounded retries with exponential backoff on read timeouts and 5xx answers; a refused
    # connection is tried once more at most, a connect timeout or a name that does not resolve
    # never (an unreachable cloud fails in connect_timeout per host).
    retries: int = 3
    backoff: float = 0.5
    max_bytes: int = 64 * 1024 * 1024  # a larger body (or decompressed file) is refused
    probe_weeks: int = 5  # how many Mondays back step 1 probes


@dataclass(frozen=True, slots=True)
class KnownFile:
    """The last stored file of a cloud: enough to ask the server "has it changed?"."""

    url: str
    etag: str | None
    last_modified: str | None


def too_big(where: str, size: int | None, settings: HttpSettings) -> FetchError:
    what = f"is {size} bytes, more than" if size is not None else "is more than"
    return FetchError(
        f"{where} {what} the limit of {settings.max_bytes} bytes (max_bytes). A Service Tags "
        "file is a few MB; check the URL, or raise max_bytes if the file really is that large."
    )


def gunzip(blob: bytes, where: str, settings: HttpSettings) -> bytes:
    """Decompress every gzip member in ``blob``; refuse output over ``max_bytes``.

    Linear in the input whatever its shape: each member is fed in chunks that start small and
    double, so a file of many tiny (or empty) members does not copy the rest of the input once per
    member (zlib hands back the unused input as a new bytes object).
    """
    limit = settings.max_bytes
    out = bytearray()
    view = memoryview(blob)
    pos, end = 0, len(blob)
    try:
        while pos < end:
            if blob[pos] == 0 and blob.count(0, pos) == end - pos:
                break  # gzip tools tolerate zero padding at the end
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            size = _FIRST_FEED
            while not inflater.eof:
                if pos >= end:
                    raise FetchError(
                        f"The gzip stream from {where} is damaged: it ends before its end marker "
                        "(the file is cut short). Download it again."
                    )
                chunk = view[pos : pos + size]
                out += inflater.decompress(chunk, limit + 1 - len(out))
                if len(out) > limit:
                    raise too_big(f"The decompressed gzip stream from {where}", None, settings)
                pos += len(chunk) - len(inflater.unused_data)
                size = min(size * 2, CHUNK * 16)
    except zlib.error as exc:
        raise FetchError(
            f"The gzip stream from {where} is damaged ({exc}). Download it again, or pass the "
            "uncompressed .json file."
        ) from exc
    return bytes(out)


def maybe_gunzip(raw: bytes, where: str, settings: HttpSettings) -> tuple[bytes, bytes | None]:
    """(uncompressed data, the gzip bytes or None); gzip is decided by the magic bytes."""
    if raw[:2] == GZIP_MAGIC:
        return gunzip(raw, where, settings), raw
    return raw, None


def read_stream(
    stream: BinaryIO,
    where: str,
    settings: HttpSettings,
    progress: Progress | None,
    total: int | None,
) -> bytes:
    data = bytearray()
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        data += chunk
        if len(data) > settings.max_bytes:
            raise too_big(where, None, settings)
        if progress is not None:
            progress(len(data), total)
    return bytes(data)
