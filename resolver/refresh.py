"""The main job's pipeline: fetch -> parse and validate -> store snapshot and history.

One file is one transaction, opened here (:func:`store_file`): the snapshot and its history
(cache.store.save_snapshot), and whatever an ``after_save`` callback writes for the same file,
commit together or not at all. Nothing is written for a file that does not validate.
"""

from __future__ import annotations

import gc
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from cache.db import snapshot_transaction
from cache.history import load_snapshots
from cache.store import SaveOptions, known_prefix_digests, save_snapshot
from resolver.clouds import CLOUDS, Cloud, get_cloud
from resolver.errors import AztagsError, FetchError, NotFoundError, UsageError
from resolver.ingest import IngestResult, Outcome, RawFile
from resolver.models import Snapshot, SnapshotInfo
from resolver.parse import parse_file
from resolver.timelines import split_key

if TYPE_CHECKING:
    from resolver.sources import HttpSettings

log = logging.getLogger("aztags")
Progress = Callable[[int, int | None], None]
# Runs inside the file's write transaction, after the snapshot is saved: see store_file.
AfterSave = Callable[[sqlite3.Connection, IngestResult, Snapshot], None]


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """One cloud's refresh: where its file came from and what storing it did."""

    cloud: Cloud
    source: str
    ingest: IngestResult | None  # None: the server said the file is unchanged (304)


def refresh_cloud(
    conn: sqlite3.Connection,
    cloud: Cloud | None,
    http: HttpSettings,
    options: SaveOptions,
    *,
    source: str | None = None,
    stdin: BinaryIO | None = None,
    today: date | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
    after_save: AfterSave | None = None,
) -> RefreshResult:
    """Fetch the cloud's current file (or read ``source``), validate it and store it.

    ``cloud`` None (only with ``source``): the file's own ``cloud`` field says which, as for
    :func:`import_files`; a cloud given must be the file's. ``after_save``: see
    :func:`store_file`; not called when the server says the file is unchanged (nothing is
    stored then)."""
    from resolver.sources import KnownFile, read_source
    from resolver.sources.discovery import fetch_current  # requests: only when downloading

    now = now or datetime.now(UTC)
    if source is not None:
        raw = read_source(source, http, stdin=stdin, progress=progress, log=log)
    elif cloud is None:
        raise UsageError("Name the cloud to fetch with --cloud, or give a file with --source.")
    else:
        last = None if options.force else _last_download(conn, cloud)
        known = KnownFile(last.source, last.etag, last.last_modified) if last else None
        fetched = fetch_current(
            cloud, http, today=today or now.date(), known=known, progress=progress, log=log
        )
        if fetched is None:  # 304: a conditional request, so `last` is set
            assert last is not None
            if last.quarantined:  # unchanged, but still not accepted: say so again
                reason = (
                    f"{last.quarantine_reason} (the file is unchanged on the server since: "
                    "still quarantined)"
                )
                return RefreshResult(
                    cloud, last.source, IngestResult(last, Outcome.QUARANTINED, notes=(reason,))
                )
            return RefreshResult(cloud, last.source, None)
        raw = fetched
    result = store_file(conn, raw, options, cloud, now=now, after_save=after_save)
    return RefreshResult(cloud or split_key(result.snapshot.cloud)[0], raw.source, result)


def store_file(
    conn: sqlite3.Connection,
    raw: RawFile,
    options: SaveOptions,
    cloud: Cloud | None = None,
    *,
    now: datetime | None = None,
    after_save: AfterSave | None = None,
) -> IngestResult:
    """Parse and validate one file, then save it in one write transaction opened here.
    ``cloud``: the cloud it must belong to.

    ``after_save(conn, result, snapshot)`` runs inside that transaction once the snapshot is
    saved, for every outcome (``duplicate`` and ``quarantined`` too: check ``result.outcome``);
    ``snapshot`` is the parsed file (its tags' properties, without reading them back). What it
    writes commits with the snapshot; an exception it raises rolls the whole file back (the
    database is left as it was) and propagates to the caller.
    """
    with _no_cycle_collection():
        parsed = parse_file(
            raw.data,
            raw.source,
            cloud.name if cloud else None,
            allow_empty=options.allow_empty,
            validated=known_prefix_digests(conn),  # unchanged tags are not parsed again
        )
        snapshot = parsed.snapshot
        with snapshot_transaction(conn):  # parsed first: the write lock is held only while writing
            result = save_snapshot(
                conn, snapshot, raw, options, now, digests=parsed.digests, networks=parsed.networks
            )
            if after_save is not None:
                after_save(conn, result, snapshot)
    return result


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Python's cycle collector paused while one file is parsed and stored: that makes some
    hundred thousand tuples and strings, none in a cycle, and the collector would walk all
    of them again and again as they pile up (about 25 ms of a first ingest). Whatever was
    enabled is enabled again afterwards; reference counting frees memory as ever."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _last_download(conn: sqlite3.Connection, cloud: Cloud) -> SnapshotInfo | None:
    """The snapshot stored from the most recent download: its URL and ETag make the next
    request conditional."""
    fetched = [s for s in load_snapshots(conn, cloud.name) if s.source.startswith("http")]
    return max(fetched, key=lambda s: s.id) if fetched else None


IMPORT_NAMES = ("ServiceTags_*.json", "ServiceTags_*.json.gz")  # what a folder's files must match


@dataclass(frozen=True, slots=True)
class ImportPaths:
    """The files an import reads, and the files of the folders named that it does not read
    (not named ``ServiceTags_*.json[.gz]``), so a user can be told."""

    files: list[Path]
    skipped: list[Path]


def expand_paths(specs: Iterable[str]) -> list[Path]:
    """The files of :func:`find_import_files`, without the skipped ones."""
    return find_import_files(specs).files


def find_import_files(specs: Iterable[str]) -> ImportPaths:
    """Files named by the user: paths, folders (their ServiceTags_*.json[.gz]) and quoted globs.

    Sorted by file date where the name has one, so a backfill mostly appends. The other regular
    files of a folder are listed as skipped. Unknown paths raise FetchError naming each one.
    """
    files: list[Path] = []
    skipped: list[Path] = []
    missing: list[str] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = sorted(path.glob(IMPORT_NAMES[0])) + sorted(path.glob(IMPORT_NAMES[1]))
            chosen = set(found)
            others = sorted(p for p in path.iterdir() if p.is_file() and p not in chosen)
            skipped.extend(others)
            if not found:
                also = f"; {len(others)} other file(s) there" if others else ""
                missing.append(f"{spec} (a folder with no ServiceTags_*.json[.gz] files{also})")
            files.extend(found)
        elif path.exists() and not path.is_file():
            missing.append(f"{spec} (not a regular file: a FIFO, device or socket)")
        elif path.is_file():
            files.append(path)
        elif any(c in spec for c in "*?["):
            import glob  # only for a pattern the shell left quoted

            matched = [Path(p) for p in sorted(glob.glob(spec)) if Path(p).is_file()]
            if not matched:
                missing.append(f"{spec} (the pattern matches no file)")
            files.extend(matched)
        else:
            missing.append(f"{spec} (no such file)")
    if missing:
        raise FetchError("Nothing to import from: " + "; ".join(missing) + ".")
    unique = list(dict.fromkeys(p.resolve() for p in files))
    from resolver.sources import file_date_from_name

    ordered = sorted(unique, key=lambda p: (file_date_from_name(p.name) or date.min, p.name))
    taken = set(ordered)
    left = [p for p in dict.fromkeys(p.resolve() for p in skipped) if p not in taken]
    return ImportPaths(ordered, left)


def import_files(
    conn: sqlite3.Connection,
    paths: Iterable[Path],
    http: HttpSettings,
    options: SaveOptions,
    *,
    now: datetime | None = None,
    after_save: AfterSave | None = None,
) -> Iterator[tuple[Path, IngestResult | AztagsError]]:
    """Store each file in its own transaction; a bad file is reported and the rest go on.
    ``after_save``: see :func:`store_file` (an AztagsError it raises counts as the file's)."""
    from resolver.sources import read_source

    for path in paths:
        try:
            raw = read_source(str(path), http, log=log)
            yield (
                path,
                store_file(conn, raw, options, _cloud_of(path), now=now, after_save=after_save),
            )
        except AztagsError as e:
            yield path, e
        except Exception as e:  # noqa: BLE001 - one file's surprise must not stop the others
            log.debug("Unexpected error importing %s", path, exc_info=True)
            yield (
                path,
                AztagsError(
                    f"unexpected error: {type(e).__name__}: {e}; the file was not stored and the "
                    "others go on. This is a bug, please report it with -v output."
                ),
            )


def _cloud_of(path: Path) -> Cloud | None:
    """The cloud a file's name claims (``ServiceTags_China_...``), checked against the file."""
    from resolver.sources import cloud_name_from_file_name

    named = cloud_name_from_file_name(path.name)
    if named is None:
        return None
    try:
        return get_cloud(named)
    except NotFoundError:
        raise FetchError(
            f"{path.name} names cloud {named!r}, which is none of "
            f"{', '.join(c.name for c in CLOUDS)}; rename the file or check where it came from."
        ) from None
