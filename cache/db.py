"""Open the SQLite store: WAL for one writer beside many readers, migrations applied on open."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cache.schema import MIGRATIONS, SCHEMA_VERSION
from resolver.errors import EmptyStoreError, StoreError


def default_db_path() -> Path:
    """``$AZTAGS_DB`` if set, else ``aztags.db`` in the per-user data directory."""
    if env := os.environ.get("AZTAGS_DB"):
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "aztags" / "aztags.db"


def open_db(path: Path | str, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the store. The writer creates and migrates it; a reader needs it to exist.

    Connections are in autocommit mode: writes happen inside :func:`transaction` only.
    """
    path = Path(path)
    try:
        if readonly:
            if not path.exists():
                raise EmptyStoreError(
                    f"No aztags database at {path}. Run 'aztags fetch' (or 'aztags import FILE') "
                    "first, or point --db / AZTAGS_DB at an existing one."
                )
            conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
            _check_version(conn, path, readonly=True)
            return conn
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        _migrate(conn, path)
        return conn
    except sqlite3.DatabaseError as e:
        raise StoreError(
            f"Cannot open the aztags database at {path}: {e}. Is it an aztags database? "
            "Point --db / AZTAGS_DB at another file to start afresh."
        ) from None
    except OSError as e:
        raise StoreError(f"Cannot create the aztags database at {path}: {e}") from None


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: everything inside commits together or not at all."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _check_version(conn: sqlite3.Connection, path: Path, *, readonly: bool) -> int:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"The database at {path} was written by a newer aztags (schema {version}, this one "
            f"knows {SCHEMA_VERSION}). Upgrade aztags."
        )
    if readonly and version == 0:
        raise EmptyStoreError(
            f"The aztags database at {path} is empty. Run 'aztags fetch' (or 'aztags import "
            "FILE') first."
        )
    if readonly and version < SCHEMA_VERSION:
        raise StoreError(
            f"The database at {path} has an older schema ({version}); run 'aztags fetch' or "
            "'aztags import' once to upgrade it."
        )
    return version


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = _check_version(conn, path, readonly=False)
    if version == SCHEMA_VERSION:
        return
    with transaction(conn):
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            migration(conn)
            conn.execute(f"PRAGMA user_version = {number}")


@contextmanager
def read_view(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One consistent state of the database for every read inside: one read transaction.

    Connections are in autocommit, so without this each SELECT sees the database as it is at
    that moment, and a writer committing between two SELECTs (a backfill shifts ``seq``) makes
    one answer mix two states. Use it around one call (a command, a request), never across
    calls: an open read transaction keeps WAL checkpoints from finishing. Re-entrant: inside
    another read view or a write transaction it adds nothing.
    """
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if conn.in_transaction:
        conn.execute("COMMIT")
