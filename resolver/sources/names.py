"""File-name rules: ``ServiceTags_<Cloud>_YYYYMMDD.json[.gz]`` gives a file's cloud and date.

The files carry no date of their own: the Monday in the name is the only one there is.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from urllib.parse import unquote, urlsplit

_FILE_NAME = re.compile(r"ServiceTags_([A-Za-z]+)_(\d{8})\.json(?:\.gz)?", re.IGNORECASE)


def parse_file_name(name: str) -> tuple[str, date] | None:
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
    parsed = parse_file_name(name)
    return parsed[1] if parsed else None


def cloud_name_from_file_name(name: str) -> str | None:
    """``"Public"`` from ``"ServiceTags_Public_20250113.json.gz"`` (a name or a path), else None."""
    parsed = parse_file_name(name)
    return parsed[0] if parsed else None


def url_file_name(url: str) -> str:
    return unquote(urlsplit(url).path).rsplit("/", 1)[-1]


def same_url(a: str, b: str) -> bool:
    # download.microsoft.com serves a folder in any case and newer pages write it in lower case,
    # so the same file may be linked as /7/1/D/71D86715-... or /7/1/d/71d86715-...
    return a.strip().casefold() == b.strip().casefold()
