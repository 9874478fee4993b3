"""Open the SQLite store: WAL for one writer beside many readers, migrations applied on open.

Safety rules, checked before anything is written:

- only our own files: a file that is not an aztags database (another application's SQLite file,
  or not SQLite at all) is refused with a sentence saying what it is, and left byte-for-byte as
  it was (no tables added, journal mode untouched). An empty file or a new path becomes a store.
- any path: files are opened through a ``file:`` URI built with :meth:`Path.as_uri`, which
  escapes ``#``, ``?`` and ``%``, so the file named is the file opened.
- first runs at once: the schema is created or upgraded under ``BEGIN IMMEDIATE`` and the version
  is checked again once the lock is held, so two processes creating one store do not collide.
- readers of a store they may not write: opened ``mode=ro``; when SQLite cannot create the WAL
  index (``-shm``) beside the file, the reader falls back to ``immutable=1`` and says that writes
  made meanwhile are not visible (a long-running server passes ``allow_immutable=False``).
  Permission problems are reported as such, never as "not an aztags database".
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cache.schema import APPLICATION_ID, MIGRATIONS, READABLE_SINCE, SCHEMA_VERSION, TABLES
from resolver.errors import EmptyStoreError, StoreError

log = logging.getLogger("aztags")

_SQLITE_MAGIC = b"SQLite format 3\x00"
_BUSY_TIMEOUT = 30.0  # seconds a writer waits for another one's lock
# What SQLite reports when a read-only connection cannot create or map the WAL index (-shm).
_WAL_INDEX_ERRORS = frozenset(
    {
        "SQLITE_CANTOPEN",
        "SQLITE_READONLY",
        "SQLITE_READONLY_CANTINIT",
        "SQLITE_READONLY_CANTLOCK",
        "SQLITE_READONLY_DIRECTORY",
        "SQLITE_READONLY_RECOVERY",
    }
)
# Errors of the environment (permissions, disk, locks) rather than of the code: shown as sentences.
_PERMISSION_ERRORS = ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")
_ENVIRONMENT_ERRORS = (*_PERMISSION_ERRORS, "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_BUSY")


class StoreConnection(sqlite3.Connection):
    """A connection to the store. ``immutable``: opened with ``immutable=1`` because this user
    cannot create the WAL index, so writes made while it is open are not visible; ``note`` is the
    sentence saying so (also logged as a warning on the ``aztags`` logger)."""

    immutable: bool = False
    note: str | None = None


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


def open_db(
    path: Path | str, *, readonly: bool = False, allow_immutable: bool = True
) -> StoreConnection:
    """Open the store. The writer creates and migrates it; a reader needs it to exist.

    Connections are in autocommit mode: writes happen inside :func:`transaction` only. A reader
    that cannot create the WAL index falls back to an immutable view (``conn.immutable``, with a
    warning logged) unless ``allow_immutable`` is False, as a long-running server should pass:
    it would never see new snapshots.
    """
    path = Path(path)
    if readonly:
        return _open_reader(path, allow_immutable)
    return _open_writer(path)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: everything inside commits together or not at all.

    ``BEGIN IMMEDIATE`` takes the write lock at once (waiting up to the connection's timeout for
    another writer). A write the environment refuses (read-only file, full disk, lock timeout)
    becomes a :class:`StoreError` sentence after the rollback; any other exception propagates.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as e:
        if error := _environment_error(conn, e):
            raise error from None
        raise
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException as e:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(e, sqlite3.OperationalError) and (error := _environment_error(conn, e)):
            raise error from None
        raise


@contextmanager
def snapshot_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """The write transaction that stores one snapshot: :func:`transaction` without SQLite
    checking foreign keys row by row (about 100 ms of a 0.7 s first ingest). The store writes
    parents before children in one transaction, and the tests check ``PRAGMA
    foreign_key_check`` after real ingests; the pragma cannot change inside a transaction, so
    it is switched off before BEGIN and back on after COMMIT or ROLLBACK."""
    conn.execute("PRAGMA foreign_keys=OFF")
    try:
        with transaction(conn):
            yield conn
    finally:
        conn.execute("PRAGMA foreign_keys=ON")


# -- opening ---------------------------------------------------------------------------------------


def _connect(uri: str, **kwargs: Any) -> StoreConnection:
    """The one place a connection is made (tests replace it to simulate what SQLite refuses)."""
    return sqlite3.connect(
        uri,
        uri=True,
        isolation_level=None,
        check_same_thread=False,
        factory=StoreConnection,
        **kwargs,
    )


def _uri(path: Path, query: str) -> str:
    # as_uri() percent-encodes '#', '?', '%' and the rest, so SQLite opens exactly this file.
    return f"{path.absolute().as_uri()}?{query}"


def _open_writer(path: Path) -> StoreConnection:
    _sniff(path, reading=False)  # a file that is not SQLite is refused before anything is made
    if path.exists() and not os.access(path, os.W_OK):
        raise _cannot_write(path)
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(
            f"Cannot create the folder {folder} for the aztags database at {path}: "
            f"{e.strerror or e}. Point --db / AZTAGS_DB at a path in a folder you may write."
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK) and not _sidecars_writable(path):
        raise _cannot_write(path, folder=True)
    try:
        conn = _connect(_uri(path, "mode=rwc"), timeout=_BUSY_TIMEOUT)
    except sqlite3.Error as e:
        raise _open_error(path, e, writing=True) from None
    try:
        seen = _identify(conn, path)  # reads only: a file that is not ours is left unchanged
        _use_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        _migrate(conn, path, seen)
    except sqlite3.Error as e:
        conn.close()
        raise _open_error(path, e, writing=True) from None
    except BaseException:
        conn.close()
        raise
    return conn


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL. SQLite answers SQLITE_BUSY at once, without waiting, while another process
    holds a lock on a database that is not in WAL mode yet (two first runs at once): retry."""
    deadline = time.monotonic() + _BUSY_TIMEOUT
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            busy = (getattr(e, "sqlite_errorname", "") or "").startswith("SQLITE_BUSY")
            if not busy or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _open_reader(path: Path, allow_immutable: bool) -> StoreConnection:
    if not path.exists():
        raise EmptyStoreError(
            f"No aztags database at {path}. Run 'aztags fetch' (or 'aztags import FILE') "
            "first, or point --db / AZTAGS_DB at an existing one."
        )
    _sniff(path, reading=True)
    try:
        return _open_checked(path, "mode=ro")
    except sqlite3.OperationalError as e:
        if getattr(e, "sqlite_errorname", None) not in _WAL_INDEX_ERRORS:
            raise _open_error(path, e, writing=False) from None
    except sqlite3.Error as e:
        raise _open_error(path, e, writing=False) from None
    # SQLite could not create the WAL index (-shm) beside the file: this user may read the
    # database but not write in its folder (another owner, a read-only mount).
    shm = path.with_name(path.name + "-shm")
    why = f"this user may not create its WAL index ({shm.name}) in {path.parent}"
    if not allow_immutable:
        raise StoreError(
            f"Cannot read the aztags database at {path} safely: permission denied ({why}; "
            f"{_owner(path.parent)}), and a long-running reader needs it to see new snapshots. "
            "Give this user write access to that folder, or run as the database's owner."
        )
    try:
        conn = _open_checked(path, "mode=ro&immutable=1")
    except sqlite3.Error as e:
        raise _open_error(path, e, writing=False) from None
    conn.immutable = True
    conn.note = (
        f"reading {path} as an unchanging file: {why}, so writes made while this runs "
        "(and any the writer has not yet checkpointed) are not visible"
    )
    log.warning(conn.note)
    return conn


def _open_checked(path: Path, query: str) -> StoreConnection:
    """A read-only connection to an aztags store that this version can read."""
    conn = _connect(_uri(path, query))
    try:
        version, _ = _identify(conn, path)
        if version == 0:
            raise EmptyStoreError(
                f"The aztags database at {path} is empty. Run 'aztags fetch' (or 'aztags import "
                "FILE') first."
            )
        if version < READABLE_SINCE:  # an older schema that only adds indexes is read as is
            raise StoreError(
                f"The database at {path} has an older schema ({version}); run 'aztags fetch' or "
                "'aztags import' once to upgrade it."
            )
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: StoreConnection, path: Path, seen: tuple[int, int]) -> None:
    """Create or upgrade the schema, and mark the file as ours. ``seen``: (user_version,
    application_id) read before the lock; they are read again under it, because another process
    may have created the schema meanwhile."""
    if seen == (SCHEMA_VERSION, APPLICATION_ID):
        return
    with transaction(conn):
        version, application_id = _identify(conn, path)
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            migration(conn)
            conn.execute(f"PRAGMA user_version = {number}")
        if application_id != APPLICATION_ID:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")


# -- is it ours? -----------------------------------------------------------------------------------


def _sniff(path: Path, *, reading: bool) -> None:
    """Refuse a file that is not SQLite (saying what it is) or that cannot be read; a missing or
    empty file passes."""
    try:
        with path.open("rb") as f:
            head = f.read(100)
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise StoreError(
            f"{path} is a folder, not an aztags database file. Point --db / AZTAGS_DB at a file "
            f"in it, for example {path / 'aztags.db'}."
        ) from None
    except PermissionError:
        raise _cannot_read(path) if reading else _cannot_write(path) from None
    except OSError as e:
        raise StoreError(f"Cannot read the aztags database at {path}: {e.strerror or e}.") from None
    if head and not head.startswith(_SQLITE_MAGIC):
        raise _not_ours(path, _describe(head))


def _describe(head: bytes) -> str:
    if head.startswith(b"\x1f\x8b"):
        return "a gzip file, not SQLite"
    text = head.lstrip()
    if text[:1] in (b"{", b"["):
        return (
            "a JSON file, not SQLite (to store a Service Tags file, use 'aztags import PATH' "
            "or 'aztags fetch --source PATH')"
        )
    try:
        decoded = head.decode()
    except UnicodeDecodeError:
        decoded = ""
    if decoded and all(c.isprintable() or c in "\t\r\n" for c in decoded):
        return "a text file, not SQLite"
    return f"not SQLite (it starts with the bytes {head[:8].hex(' ')})"


def _identify(conn: sqlite3.Connection, path: Path) -> tuple[int, int]:
    """(user_version, application_id) of an aztags store, a blank database giving (0, 0).
    Raises StoreError for another application's database or a newer aztags. Reads only."""
    application_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if application_id == APPLICATION_ID:
        pass
    elif application_id != 0:
        tables = _tables(conn)
        raise _not_ours(
            path,
            f"an SQLite database of another application (application_id 0x{application_id:08X}"
            + (f"; tables: {', '.join(tables)}" if tables else "")
            + ")",
        )
    else:
        schema = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        tables = _tables(conn)
        blank = version == 0 and schema == 0
        older_aztags = version >= 1 and set(tables) >= TABLES
        if not (blank or older_aztags):
            listed = ", ".join(tables[:10]) + (", ..." if len(tables) > 10 else "")
            raise _not_ours(
                path,
                "an SQLite database of another application "
                f"(tables: {listed or 'none'}; user_version {version})",
            )
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"The database at {path} was written by a newer aztags (schema {version}, this one "
            f"knows {SCHEMA_VERSION}). Upgrade aztags."
        )
    return version, application_id


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]


# -- sentences -------------------------------------------------------------------------------------


def _not_ours(path: Path, what: str) -> StoreError:
    return StoreError(
        f"{path} is not an aztags database: it is {what}. Nothing was changed. Point --db / "
        "AZTAGS_DB at an aztags database, or at a new path to start one."
    )


def _owner(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return "owner unknown"
    try:
        import pwd

        owner = pwd.getpwuid(st.st_uid).pw_name
    except (ImportError, KeyError):
        owner = f"uid {st.st_uid}"
    return f"owned by {owner}, mode {stat.S_IMODE(st.st_mode):04o}"


def _cannot_read(path: Path) -> StoreError:
    return StoreError(
        f"Cannot read the aztags database at {path}: permission denied (the file is "
        f"{_owner(path)}). Run aztags as a user who may read it, or ask its owner to make it "
        "readable."
    )


def _cannot_write(path: Path, *, folder: bool = False) -> StoreError:
    if folder:
        why = (
            f"this user may not create files in {path.parent} ({_owner(path.parent)}), where "
            "SQLite keeps the database's -wal and -shm files"
        )
    else:
        why = f"the file is {_owner(path)}"
    return StoreError(
        f"Cannot write to the aztags database at {path}: permission denied ({why}). Run this "
        "command as a user who may write it (queries such as 'aztags cidrs' only need to read "
        "it), or point --db / AZTAGS_DB at a database of your own."
    )


def _sidecars_writable(path: Path) -> bool:
    """The -wal and -shm files exist and may be written (then the folder need not be)."""
    return all(
        os.access(path.with_name(path.name + suffix), os.W_OK) for suffix in ("-wal", "-shm")
    )


def _open_error(path: Path, e: sqlite3.Error, *, writing: bool) -> StoreError:
    name = getattr(e, "sqlite_errorname", "") or ""
    if name.startswith(_PERMISSION_ERRORS):
        if not writing:
            return _cannot_read(path)
        folder = not os.access(path.parent, os.W_OK | os.X_OK)
        return _cannot_write(path, folder=folder)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreError(
            f"The aztags database at {path} is busy: another process held its write lock for "
            "30 s. Try again when the other fetch or import has finished."
        )
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return StoreError(
            f"The aztags database at {path} is damaged ({e}). Restore it from a backup, or "
            "point --db / AZTAGS_DB at a new path and import the files again."
        )
    return StoreError(f"Cannot open the aztags database at {path}: {e}.")


def _environment_error(conn: sqlite3.Connection, e: sqlite3.OperationalError) -> StoreError | None:
    """A sentence for a write that the environment refused, or None for anything else."""
    name = getattr(e, "sqlite_errorname", "") or ""
    if not name.startswith(_ENVIRONMENT_ERRORS):
        return None
    try:
        row = conn.execute("PRAGMA database_list").fetchone()
        where = Path(row[2]) if row and row[2] else None
    except sqlite3.Error:
        where = None
    place = f" at {where}" if where else ""
    if name.startswith(_PERMISSION_ERRORS):
        return StoreError(
            f"Cannot write to the aztags database{place}: {e}. Check that this user may write "
            "the file and its folder, or point --db / AZTAGS_DB at a database of your own."
        )
    if name.startswith("SQLITE_FULL"):
        return StoreError(
            f"Cannot write to the aztags database{place}: the disk is full. Nothing of this "
            "file was stored; free some space and run the command again."
        )
    if name.startswith("SQLITE_BUSY"):
        return StoreError(
            f"The aztags database{place} is busy: another process held its write lock for 30 s. "
            "Try again when the other fetch or import has finished."
        )
    return StoreError(f"Cannot write to the aztags database{place}: {e}.")


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
