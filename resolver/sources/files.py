"""Local sources: a path (``.json`` or ``.json.gz``), standard input, or a URL handed to HTTP.

This is an I/O edge: it returns raw bytes and where they came from (``RawFile``) and never looks
inside them; ``resolver/parse.py`` decides whether the bytes are a valid file. Reading a local file
does not import requests: URLs go to ``resolver/sources/http.py`` only when one is given.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import BinaryIO

from resolver.errors import FetchError
from resolver.models import RawFile
from resolver.sources.base import HttpSettings, Progress, maybe_gunzip, read_stream
from resolver.sources.names import file_date_from_name

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
            raw = read_stream(fh, str(path), settings, progress, size)
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
    data, compressed = maybe_gunzip(raw, str(path), settings)
    log.info("Read %s (%d bytes)", path, len(raw))
    return RawFile(
        data=data, source=str(path), file_date=file_date_from_name(path.name), compressed=compressed
    )
