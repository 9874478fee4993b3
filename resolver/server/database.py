"""The server's read-only view of the store: one connection per worker thread, reopened when
the database file is replaced (a new copy renamed into place), one read view per request, and
what is worth keeping between requests.

Never opened with SQLite's ``immutable`` flag: the server must see the snapshots a writer
(``aztags run``) stores while it runs. A request reads inside one read transaction, so an
ingest committing meanwhile is seen whole or not at all.

Replaced files: every request compares the file at ``path`` (device and inode) with the one
its thread's connection has open; when they differ (``aztags backup`` renamed a new copy into
place), the thread opens the new file. A request in progress finishes on the file it started
on; a worker thread that answers nothing more lets go of the old file when it is retired.

Caches (:class:`ServedStore`): a snapshot's content never changes once stored (its id is
fixed; a backfill moves its ``seq`` only), so what is computed from one snapshot (its tag
summaries and region index, a whole-snapshot lookup index, the answer to a ``cidrs`` question)
is kept per database file and snapshot, and reused by every thread. Which snapshot a request
reads is still looked up in SQLite per request, inside its read view, so a new snapshot is
seen at once; a replaced file starts with empty caches.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cache import history
from cache.db import open_db, read_view
from cache.history import load_current
from resolver.clouds import get_cloud
from resolver.errors import StoreError
from resolver.lookup import LookupAnswer
from resolver.models import SnapshotInfo
from resolver.query import At, CidrAnswer, TagStore
from resolver.timelines import timeline_key

if TYPE_CHECKING:
    from resolver.lookup import LookupIndex
    from resolver.models import TagSummary
    from resolver.regions import RegionIndex
    from resolver.server.batch import KeptIndex

Identity = tuple[int, int]  # (st_dev, st_ino) of the database file
T = TypeVar("T")

# Lookups of more addresses than this are answered from the snapshot's whole lookup index
# (built once per snapshot, about 0.3 s, then kept) instead of probing SQLite per address.
WHOLE_INDEX_FROM = 64


class _Lru:
    """A small thread-safe least-recently-used map."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]  # type: ignore[no-any-return]
        value = build()  # outside the lock: two threads may build one value, both are equal
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


class _SummaryCache(dict):  # type: ignore[type-arg]
    """``TagStore._summaries`` shared by the stores of one file: snapshot id -> summaries,
    the oldest dropped beyond ``size`` entries (a dict, as TagStore expects)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self._lock = threading.Lock()

    def __setitem__(self, key: int, value: list[TagSummary]) -> None:
        with self._lock:
            super().__setitem__(key, value)
            while len(self) > self.size:
                try:
                    super().__delitem__(next(iter(self)))
                except (StopIteration, KeyError, RuntimeError):
                    break


@dataclasses.dataclass
class FileCaches:
    """What is kept for one database file (one identity), shared by every thread."""

    summaries: _SummaryCache = dataclasses.field(default_factory=lambda: _SummaryCache(16))
    regions: _Lru = dataclasses.field(default_factory=lambda: _Lru(16))
    answers: _Lru = dataclasses.field(default_factory=lambda: _Lru(512))
    indexes: _Lru = dataclasses.field(default_factory=lambda: _Lru(2))  # tens of MB each


@dataclasses.dataclass
class ServedStore(TagStore):
    """A :class:`TagStore` whose per-snapshot work is kept in the file's :class:`FileCaches`.
    Answers are the same as TagStore's (tests/test_server_scale.py compares them)."""

    caches: FileCaches = dataclasses.field(default_factory=FileCaches, repr=False)

    def regions(self, snapshot: SnapshotInfo) -> RegionIndex:
        build = super().regions
        return self.caches.regions.get(
            (self.cloud.name, snapshot.id, snapshot.sha256), lambda: build(snapshot)
        )

    def cidrs(
        self,
        names: Sequence[str] = (),
        *,
        region: str | None = None,
        profile: str | None = None,
        family: int | None = None,
        aggregate: bool = False,
        at: At = None,
        profile_dirs: Iterable[Path] = (),
        direction: str | None = None,
        protocol: str | None = None,
        port: int | None = None,
    ) -> CidrAnswer:
        with read_view(self.conn):
            snapshot = self.snapshot(at)
            folders = tuple(Path(p) for p in profile_dirs)
            key = (
                self.cloud.name,
                snapshot.id,
                snapshot.sha256,
                tuple(names),
                region,
                profile,
                family,
                aggregate,
                direction,
                protocol,
                port,
                profiles_state(folders) if profile else (),
            )
            answer = self.caches.answers.get(
                key,
                lambda: TagStore.cidrs(
                    self,
                    names,
                    region=region,
                    profile=profile,
                    family=family,
                    aggregate=aggregate,
                    at=at,
                    profile_dirs=folders,
                    direction=direction,
                    protocol=protocol,
                    port=port,
                ),
            )
        # the snapshot as read now: a backfill since the answer was kept may have moved its seq
        return dataclasses.replace(answer, snapshot=snapshot)

    def lookup(self, queries: Sequence[str], at: At = None) -> list[LookupAnswer]:
        if len(queries) <= WHOLE_INDEX_FROM:
            return super().lookup(queries, at)
        with read_view(self.conn):
            snapshot = self.snapshot(at)
            index = self.whole_index(snapshot)
        return index.answers(queries)

    def lookup_document(self, queries: Sequence[str], at: At = None) -> bytes:
        """The API's JSON document of a lookup of many queries (resolver/server/batch.py),
        from the snapshot's kept index, read in one view: byte for byte what the query layer's
        ``lookup_report`` gives, rendered as the API renders every document."""
        from resolver.server.batch import lookup_document

        with read_view(self.conn):
            snapshot = self.snapshot(at)
            kept = self.kept_index(snapshot)
            details = self.tag_details(snapshot)  # every tag: its summaries are kept
            freshness = self.freshness(snapshot, at)
        return lookup_document(kept, queries, snapshot, details, freshness)

    def whole_index(self, snapshot: SnapshotInfo) -> LookupIndex:
        """The snapshot's reverse-lookup index of every prefix, kept (call inside a read view)."""
        return self.kept_index(snapshot).index

    def kept_index(self, snapshot: SnapshotInfo) -> KeptIndex:
        """The snapshot's whole index with what batch lookups rendered from it (resolver/server/
        batch.py), kept per database file and snapshot (call inside a read view)."""

        def build() -> KeptIndex:
            from resolver.lookup import LookupIndex
            from resolver.server.batch import KeptIndex

            pairs = history.load_pairs(self.conn, self.cloud.name, self._seq(snapshot))
            return KeptIndex(LookupIndex.build(pairs))

        return self.caches.indexes.get((self.cloud.name, snapshot.id, snapshot.sha256), build)


def profiles_state(folders: tuple[Path, ...]) -> tuple[object, ...]:
    """What the user profile folders hold now (names, sizes, modification times): a kept
    answer about a profile is used again only while its files are unchanged."""
    state: list[object] = []
    for folder in folders:
        try:
            entries = sorted(os.scandir(Path(folder).expanduser()), key=lambda e: e.name)
        except OSError:
            state.append((str(folder), None))
            continue
        for entry in entries:
            if entry.name.endswith(".toml"):
                try:
                    info = entry.stat()
                except OSError:
                    continue
                state.append((entry.path, info.st_size, info.st_mtime_ns))
    return tuple(state)


def profiles_digest(folders: tuple[Path, ...]) -> str:
    """A digest of what the user profile files hold (names and bytes, not paths or times), for
    ETags: replicas with the same profiles give the same ETag. Read again only when
    :func:`profiles_state` says a file changed."""
    return _digest(profiles_state(folders))


@functools.lru_cache(maxsize=32)
def _digest(state: tuple[object, ...]) -> str:
    digest = hashlib.sha256()
    for entry in state:
        if isinstance(entry, tuple) and len(entry) == 3:
            path = Path(str(entry[0]))
            digest.update(path.name.encode() + b"\0")
            try:
                digest.update(path.read_bytes())
            except OSError:
                digest.update(b"\0unreadable")
    return digest.hexdigest()


class Database:
    def __init__(self, path: Path, *, max_age_days: int = 14):
        self.path = Path(path)
        self.max_age_days = max_age_days
        self._local = threading.local()
        self._caches: dict[Identity, FileCaches] = {}
        self._lock = threading.Lock()

    def _identity(self) -> Identity:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            raise StoreError(
                f"No aztags database at {self.path}: the server answers once one is there."
            ) from None
        return info.st_dev, info.st_ino

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, reopened when the file at ``path`` is another file now."""
        identity = self._identity()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.identity != identity:
            if conn is not None:
                self._local.conn = None
                conn.close()
            conn = open_db(self.path, readonly=True, allow_immutable=False)
            # stat'ed before the open: if the file was replaced in between, the identity is
            # the older one and the next request opens the file again (never the reverse)
            self._local.conn, self._local.identity = conn, identity
        return conn

    def current(self, cloud: str) -> SnapshotInfo | None:
        """The current snapshot of a cloud's file timeline, or None when it has none: one
        statement, which reads one state of the database without a read view around it (the
        feeds' shortcut asks this per request; a name that is no cloud raises NotFoundError)."""
        return load_current(self.connection(), timeline_key(get_cloud(cloud)))

    @contextmanager
    def view(self) -> Iterator[sqlite3.Connection]:
        """One consistent state of the database for a whole request."""
        conn = self.connection()
        with read_view(conn):
            yield conn

    def caches(self, identity: Identity) -> FileCaches:
        """The caches of one database file; those of files replaced since are dropped."""
        with self._lock:
            found = self._caches.get(identity)
            if found is None:
                found = self._caches[identity] = FileCaches()
                for old in list(self._caches)[:-2]:  # the newest two: one may be finishing
                    del self._caches[old]
            return found

    def store(self, conn: sqlite3.Connection, cloud: str = "public") -> TagStore:
        """Queries of one cloud on ``conn`` (a connection from :meth:`view`)."""
        if conn is getattr(self._local, "conn", None):
            caches = self.caches(self._local.identity)
            return ServedStore(
                conn,
                get_cloud(cloud),
                caches.summaries,
                max_age_days=self.max_age_days,
                caches=caches,
            )
        return TagStore(conn, get_cloud(cloud), max_age_days=self.max_age_days)
