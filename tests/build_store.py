"""Import files into a new store: for conftest.py, in the test process or in one of its own.

    python -m tests.build_store DB RESULTS FILE...

imports each FILE in order into DB (created) and pickles the list of IngestResults to RESULTS;
conftest.py runs it this way to build the weekly store on the other core while tests run.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path


def import_into(db: Path, files: list[Path]) -> list:
    """import_files (as ``aztags import`` does) of files in order into db; every file must
    become current. The IngestResult of each, in order."""
    from cache.db import open_db
    from cache.store import SaveOptions
    from resolver.refresh import import_files
    from resolver.sources import HttpSettings

    conn = open_db(db)
    try:
        imported = list(import_files(conn, files, HttpSettings(), SaveOptions()))
    finally:
        conn.close()  # the only connection: SQLite checkpoints the WAL into the file
    outcomes = [(p.name, getattr(r, "outcome", r)) for p, r in imported]
    assert [o for _, o in outcomes] == ["current"] * len(files), outcomes
    return [r for _, r in imported]


def main(argv: list[str]) -> None:
    db, results, *files = argv
    imported = import_into(Path(db), [Path(f) for f in files])
    Path(results).write_bytes(pickle.dumps(imported))


if __name__ == "__main__":
    main(sys.argv[1:])
