"""Local sources: a path (``.json`` or ``.json.gz``), standard input, or a URL handed to HTTP.

This is an I/O edge: it returns raw bytes and where they came from (``RawFile``) and never looks
inside them; ``resolver/parse.py`` decides whether the bytes are a valid file. Reading a local file
does not import requests: URLs go to ``resolver/sources/http.py`` only when one is given.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import sys
from pathlib import Path
from typing import BinaryIO

from resolver.errors import FetchError
from resolver.ingest import RawFile
from resolver.sources.base import HttpSettings, Progress, maybe_gunzip, read_stream
from resolver.sources.names import file_date_from_name, redact_url, shown_text

_LOG = logging.getLogger(__name__)


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
            raw = read_stream(stream, "standard input", settings, progress, None)
        except OSError as exc:
            raise FetchError(f"Cannot read standard input: {exc}.") from exc
        data, compressed = maybe_gunzip(raw, "standard input", settings)
        return RawFile(data=data, source="-", compressed=compressed)
    if re.match(r"https?://", spec, re.IGNORECASE):
        from resolver.sources.http import fetch_url

        fetched = fetch_url(spec, settings, progress=progress, log=log)
        if fetched is None:  # only possible with a KnownFile, which is never passed here
            raise FetchError(
                f"{redact_url(spec)} answered 304 Not Modified to a plain request; try again."
            )
        return fetched
    return _read_path(spec, settings, progress, log)


_SPECIAL = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _special(mode: int) -> str | None:
    """What kind of special file ``mode`` is, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _SPECIAL if test(mode)), "not a regular file")


def _read_path(
    spec: str, settings: HttpSettings, progress: Progress | None, log: logging.Logger
) -> RawFile:
    """A local file. Only a regular file is read: a FIFO with no writer, a device or a socket
    would block (or never end); standard input is ``-``. ``RawFile.source`` is the path as it
    can be shown and stored (``shown_text``: a file name need not be UTF-8)."""
    if "\0" in spec:
        raise FetchError(f"{shown_text(repr(spec))} is not a path: it holds a NUL character.")
    shown = shown_text(spec)
    try:
        path = Path(spec).expanduser()
    except RuntimeError:  # ~name of a user that does not exist: take it as written
        path = Path(spec)
    try:
        # Not opened yet: opening a FIFO waits for a writer, opening some devices does things.
        kind = "a directory" if path.is_dir() else _special(os.stat(path).st_mode)
        if kind is None:
            # O_NONBLOCK: if the path was swapped for a FIFO since, opening it does not wait.
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
            with open(fd, "rb") as fh:
                info = os.fstat(fd)
                kind = _special(info.st_mode)
                if kind is None:
                    os.set_blocking(fd, True)
                    raw = read_stream(fh, str(path), settings, progress, info.st_size)
    except FileNotFoundError as exc:
        raise FetchError(
            f"No such file: {shown}. Check the path, or leave out --source to download the "
            "current file."
        ) from exc
    except IsADirectoryError as exc:
        raise FetchError(f"{shown} is a directory, not a Service Tags file.") from exc
    except PermissionError as exc:
        raise FetchError(f"Cannot read {shown}: permission denied.") from exc
    except OSError as exc:
        raise FetchError(f"Cannot read {shown}: {exc.strerror or exc}.") from exc
    except ValueError as exc:  # a lone surrogate that the file system cannot take
        raise FetchError(f"{shown} is not a path this system can open ({exc}).") from exc
    if kind == "a directory":
        raise FetchError(
            f"{shown} is a directory, not a Service Tags file. Pass the .json or .json.gz file."
        )
    if kind is not None:
        raise FetchError(
            f"{shown} is {kind}, not a regular file; aztags reads only files, so that it never "
            "waits on a pipe or a device. Pass the file itself, or '-' to read standard input."
        )
    source = shown_text(str(path))
    data, compressed = maybe_gunzip(raw, source, settings)
    log.info("Read %s (%d bytes)", source, len(raw))
    return RawFile(
        data=data, source=source, file_date=file_date_from_name(path.name), compressed=compressed
    )
