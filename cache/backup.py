"""A consistent copy of the store while a writer runs, for read-only replicas."""

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
    src = open_db(source, readonly=True, allow_immutable=False)
    folder = dest.parent if str(dest.parent) else Path(".")
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        src.close()
        raise StoreError(f"Cannot write beside {dest}: {e.strerror or e}.") from None
    os.close(fd)
    try:
        out = sqlite3.connect(temp)
        try:
            src.backup(out)
            out.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            snapshots = out.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]
        finally:
            out.close()
        os.chmod(temp, 0o644)
        os.replace(temp, dest)
    except (OSError, sqlite3.Error) as e:
        Path(temp).unlink(missing_ok=True)
        raise StoreError(f"Cannot back up {source} to {dest}: {e}.") from None
    finally:
        src.close()
    return f"{snapshots} snapshot(s), {dest.stat().st_size:,} bytes"
