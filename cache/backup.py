"""A consistent copy of the store while a writer runs, for read-only replicas.

The copy is made with SQLite's online backup API in one step (one read transaction on the
source: a writer committing meanwhile is in the copy whole or not at all), switched to the
rollback journal (one self-contained file, no ``-wal`` beside it), flushed to disk, and renamed
over ``dest``. A server reading ``dest`` sees the new inode and reopens it
(resolver/server/database.py); a reader that has the old file open finishes on it.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

from cache.db import open_db
from resolver.errors import StoreError


def backup_to(source: Path, dest: Path) -> str:
    """Copy ``source`` to ``dest`` with SQLite's online backup API (one consistent state, even
    while another process writes), into a temporary file beside ``dest`` renamed into place.
    Returns a short description of what was copied."""
    source, dest = Path(source), Path(dest)
    if _same_file(source, dest):
        raise StoreError(
            f"Cannot back up {source} onto itself: give DEST a path of its own (the replica's "
            "copy), which is replaced whole."
        )
    src = open_db(source, readonly=True, allow_immutable=False)
    folder = dest.parent if str(dest.parent) else Path(".")
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        src.close()
        raise StoreError(
            f"Cannot write beside {dest}: {e.strerror or e}. The copy is written in DEST's "
            "folder and renamed into place, so this user must be able to create files there."
        ) from None
    os.close(fd)
    try:
        out = sqlite3.connect(temp)
        try:
            src.backup(out)  # pages=-1: the whole database in one step, one read transaction
            out.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            snapshots = out.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]
        finally:
            out.close()
        os.chmod(temp, 0o644)
        _flush(Path(temp))
        os.replace(temp, dest)
        _flush(folder)  # the rename itself
    except (OSError, sqlite3.Error) as e:
        Path(temp).unlink(missing_ok=True)
        raise StoreError(f"Cannot back up {source} to {dest}: {e}.") from None
    except BaseException:  # interrupted: no half-written copy left behind
        Path(temp).unlink(missing_ok=True)
        raise
    finally:
        src.close()
    return f"{snapshots} snapshot(s), {dest.stat().st_size:,} bytes"


def _same_file(source: Path, dest: Path) -> bool:
    try:
        return dest.exists() and os.path.samefile(source, dest)
    except OSError:
        return False


def _flush(path: Path) -> None:
    """fsync a file or a folder, so that a crash after the rename cannot leave an empty copy."""
    flags = (os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)) if path.is_dir() else os.O_RDONLY
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
