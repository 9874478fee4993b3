"""Which timeline a snapshot belongs to: the published file of a cloud, or its Discovery API.

The two are not the same data (the API lags the file by up to four weeks and numbers its answers
in a series of its own), so each cloud has two timelines in the store. A timeline is identified
by its storage key, the value of ``snapshots.cloud`` and ``tags.cloud``: the cloud's file name for
the file (``"Public"``), and ``"<Name>@api"`` for the API's answers (``"Public@api"``). Every
read and write in ``cache/`` takes that key where it takes a cloud, so no schema change was
needed; a database without API answers is exactly what it was.
"""

from __future__ import annotations

from resolver.clouds import CLOUDS, Cloud
from resolver.errors import EmptyStoreError, NotFoundError, UsageError

FILE = "file"
API = "api"
SOURCES = (FILE, API)
API_SUFFIX = "@api"


def check_source(source: str) -> str:
    """``source`` ("file" or "api", any case), else a UsageError naming both."""
    wanted = source.strip().lower()
    if wanted not in SOURCES:
        raise UsageError(
            f"Unknown source {source[:40]!r}: use 'file' (the published file, the default) or "
            "'api' (the Service Tag Discovery API's answers)."
        )
    return wanted


def timeline_key(cloud: Cloud, source: str = FILE) -> str:
    """The storage key of a cloud's timeline: ``"Public"`` (file) or ``"Public@api"``."""
    return cloud.name + API_SUFFIX if check_source(source) == API else cloud.name


def split_key(key: str) -> tuple[Cloud, str]:
    """(cloud, source) of a storage key: ``"Public@api"`` -> (Public, "api")."""
    name, suffix, rest = key.partition("@")
    source = API if suffix and rest == "api" else FILE
    for cloud in CLOUDS:
        if cloud.name == name and (not suffix or source == API):
            return cloud, source
    raise NotFoundError(f"{key!r} is not the key of any cloud's timeline.")


def describe(cloud: Cloud, source: str) -> str:
    """How a timeline is named to users: "the Public file" or "the Public Discovery API"."""
    return f"the {cloud.name} Discovery API" if source == API else f"the {cloud.name} file"


def nothing_stored(source: str) -> EmptyStoreError:
    """The error for a ``source`` timeline with no snapshot in any of the clouds asked about,
    saying how to store one."""
    if source == API:
        return EmptyStoreError(
            "No Discovery API answer is stored yet. Run 'aztags fetch --api --subscription "
            "ID' (or 'aztags import FILE' with az or PowerShell output) first."
        )
    return EmptyStoreError("No snapshot is stored yet. Run 'aztags fetch' first.")
