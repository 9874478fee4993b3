"""The schema as plain SQL (what a new database gets without importing sqlite-utils) is what
sqlite-utils writes from its typed column maps; a version-1 database (before the index on
memberships(prefix_id)) is still answered by readers, and upgraded by the next writer."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cache.db import open_db
from cache.schema import SCHEMA_VERSION
from cache.store import SaveOptions
from resolver.query import TagStore
from resolver.refresh import import_files
from resolver.sources import HttpSettings
from tests.helpers import synthetic_files


def _v1_through_sqlite_utils(conn: sqlite3.Connection) -> None:
    """Version 1 as it was written before: through sqlite-utils' typed column maps."""
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    db.table("snapshots").create(
        {
            "id": int,
            "cloud": str,
            "change_number": int,
            "file_date": str,
            "sha256": str,
            "content_digest": str,
            "source": str,
            "fetched_at": str,
            "etag": str,
            "last_modified": str,
            "size": int,
            "tag_count": int,
            "prefix_count": int,
            "quarantined": int,
            "quarantine_reason": str,
            "seq": int,
        },
        pk="id",
        not_null=[
            "cloud",
            "change_number",
            "sha256",
            "content_digest",
            "source",
            "fetched_at",
            "size",
            "tag_count",
            "prefix_count",
            "quarantined",
        ],
        defaults={"quarantined": 0},
    )
    db.table("snapshots").create_index(["cloud", "change_number", "content_digest"], unique=True)
    db.table("snapshots").create_index(["cloud", "seq"], unique=True)
    db.table("raw_files").create(
        {"snapshot_id": int, "encoding": str, "data": bytes},
        pk="snapshot_id",
        not_null=["encoding", "data"],
        foreign_keys=[("snapshot_id", "snapshots", "id")],
    )
    db.table("tags").create(
        {"id": int, "cloud": str, "name": str}, pk="id", not_null=["cloud", "name"]
    )
    db.table("tags").create_index(["cloud", "name"], unique=True)
    db.table("tag_versions").create(
        {
            "id": int,
            "tag_id": int,
            "from_seq": int,
            "to_seq": int,
            "change_number": int,
            "region": str,
            "region_id": int,
            "system_service": str,
            "network_features": str,
            "platform": str,
            "prefix_digest": str,
            "ipv4_count": int,
            "ipv6_count": int,
        },
        pk="id",
        not_null=[
            "tag_id",
            "from_seq",
            "change_number",
            "region",
            "region_id",
            "system_service",
            "platform",
            "prefix_digest",
            "ipv4_count",
            "ipv6_count",
        ],
        foreign_keys=[("tag_id", "tags", "id")],
    )
    db.table("tag_versions").create_index(["tag_id", "from_seq"], unique=True)
    db.table("prefixes").create(
        {"id": int, "prefix": str, "family": int, "length": int, "network": bytes},
        pk="id",
        not_null=["prefix", "family", "length", "network"],
    )
    db.table("prefixes").create_index(["prefix"], unique=True)
    conn.execute(
        "CREATE TABLE memberships (tag_id INTEGER NOT NULL REFERENCES tags(id), "
        "prefix_id INTEGER NOT NULL REFERENCES prefixes(id), from_seq INTEGER NOT NULL, "
        "to_seq INTEGER, PRIMARY KEY (tag_id, prefix_id, from_seq)) WITHOUT ROWID"
    )


def _schema(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
    ).fetchall()


def test_plain_sql_schema_is_what_sqlite_utils_writes(tmp_path):
    from cache.schema import _v1

    plain, typed = sqlite3.connect(tmp_path / "plain.db"), sqlite3.connect(tmp_path / "typed.db")
    _v1(plain)
    _v1_through_sqlite_utils(typed)
    assert _schema(plain) == _schema(typed) and len(_schema(plain)) == 11


def _store(folder: Path) -> Path:
    path = folder / "aztags.db"
    conn = open_db(path)
    try:
        imported = list(import_files(conn, synthetic_files(folder), HttpSettings(), SaveOptions()))
    finally:
        conn.close()
    assert all(getattr(r, "outcome", None) == "current" for _, r in imported), imported
    return path


def _make_v1(path: Path) -> None:
    raw = sqlite3.connect(path)
    for table in ("alert_deliveries", "alert_messages", "alert_events", "alert_channels"):
        raw.execute(f"DROP TABLE {table}")  # version 3
    raw.execute("DROP TABLE fetch_runs")
    raw.execute("DROP INDEX idx_memberships_prefix_id")  # version 2
    raw.execute("PRAGMA user_version = 1")
    raw.commit()
    raw.close()


def _answers(path: Path) -> list:
    store = TagStore.open(path, "public")
    try:
        return [
            store.lookup(["10.0.1.7", "30.0.0.0/23", "2001:db8::1"]),
            store.lookup(["10.0.1.7"], at="cn:1"),
            store.diff(),
        ]
    finally:
        store.conn.close()


def test_a_version_1_database_is_read_as_is_and_upgraded_by_the_next_writer(tmp_path):
    path = _store(tmp_path)
    expected = _answers(path)
    assert expected[0][0].result.containing  # the lookups find tags: not a vacuous comparison
    _make_v1(path)

    assert _answers(path) == expected  # read without the index, and not refused
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 1  # a reader changed nothing
    raw.close()

    open_db(path).close()  # the writer upgrades
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert ("idx_memberships_prefix_id",) in raw.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index'"
    ).fetchall()
    raw.close()
    assert _answers(path) == expected


def test_a_single_lookup_reads_no_table_whole(tmp_path):
    """Every statement `lookup ADDRESS` runs searches by an index: none scans memberships,
    prefixes or tags (the plan SQLite chose before version 2 read every membership row)."""
    path = _store(tmp_path)
    store = TagStore.open(path, "public")
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    try:
        assert store.lookup(["10.0.1.7"])[0].result.containing
    finally:
        store.conn.set_trace_callback(None)
    plans = []
    for sql in statements:
        if sql.lstrip().upper().startswith("SELECT"):
            plans += [row[-1] for row in store.conn.execute("EXPLAIN QUERY PLAN " + sql)]
    store.conn.close()
    assert any("idx_memberships_prefix_id" in p for p in plans), plans
    assert not [p for p in plans if p.startswith("SCAN") and "snapshots" not in p], plans
