"""The server's read-only view of the store: one connection per worker thread, reopened when
the database file is replaced (a new copy renamed into place), one read view per request.

Never opened with SQLite's ``immutable`` flag: the server must see the snapshots a writer
(``aztags run``) stores while it runs. A request reads inside one read transaction, so an
ingest committing meanwhile is seen whole or not at all.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cache.db import open_db, read_view
from resolver.clouds import get_cloud
from resolver.errors import StoreError
from resolver.query import TagStore


class Database:
    def __init__(self, path: Path, *, max_age_days: int = 14):
        self.path = Path(path)
        self.max_age_days = max_age_days
        self._local = threading.local()

    def _identity(self) -> tuple[int, int]:
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
                conn.close()
            conn = open_db(self.path, readonly=True, allow_immutable=False)
            self._local.conn, self._local.identity = conn, identity
        return conn

    @contextmanager
    def view(self) -> Iterator[sqlite3.Connection]:
        """One consistent state of the database for a whole request."""
        conn = self.connection()
        with read_view(conn):
            yield conn

    def store(self, conn: sqlite3.Connection, cloud: str = "public") -> TagStore:
        return TagStore(conn, get_cloud(cloud), max_age_days=self.max_age_days)
