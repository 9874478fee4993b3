"""Tables, indexes and migrations. The schema is versioned with ``PRAGMA user_version``.

An aztags database is marked with ``PRAGMA application_id = 0x417A5447`` (:data:`APPLICATION_ID`,
the ASCII bytes "AzTG"), so ``file(1)`` and aztags itself can tell it from another application's
SQLite file; aztags refuses to write to any file that is not one of its own. Databases written
before the mark existed (application_id 0, ``user_version`` >= 1 and the tables in
:data:`TABLES`) are accepted, and the writer marks them when it next opens them.

History is stored as intervals over each cloud's timeline, not as copies per snapshot: a
snapshot has a ``seq`` (its rank among the cloud's accepted snapshots, ordered by changeNumber),
and a membership row ``(tag, prefix, from_seq, to_seq)`` says the prefix was in the tag in every
snapshot with ``from_seq <= seq < to_seq`` (``to_seq`` NULL: still present). Tag properties are
kept the same way in ``tag_versions``. Rows therefore grow with the changes, not with
snapshots x prefixes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


def _v1(conn: sqlite3.Connection) -> None:
    # sqlite-utils writes the DDL from typed column maps: one place that names every column, its
    # type, nullability and foreign keys, readable by anyone who knows Python dicts.
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    db.table("snapshots").create(
        {
            "id": int,
            "cloud": str,  # "Public", "AzureGovernment", "China", "AzureGermany"
            "change_number": int,
            "file_date": str,  # YYYY-MM-DD from the file name; NULL when unknown (stdin)
            "sha256": str,  # of the JSON bytes as published
            "content_digest": str,  # of the parsed content; identifies a snapshot with cloud + cn
            "source": str,  # URL or path it came from
            "fetched_at": str,  # ISO-8601 UTC
            "etag": str,
            "last_modified": str,
            "size": int,  # bytes of JSON
            "tag_count": int,
            "prefix_count": int,  # (tag, prefix) entries
            "quarantined": int,  # 1: kept for inspection, not part of the timeline
            "quarantine_reason": str,
            "seq": int,  # rank in the cloud's timeline (1 = oldest); NULL while quarantined
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
            "to_seq": int,  # NULL: still current
            "change_number": int,  # the tag's own changeNumber
            "region": str,
            "region_id": int,
            "system_service": str,
            "network_features": str,  # NULL = JSON null; "" = empty list; else "API,FW,NSG"
            "platform": str,
            "prefix_digest": str,  # sha1 of the sorted prefixes: finds changed tags cheaply
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
    # WITHOUT ROWID (which sqlite-utils cannot declare): the primary key is the only B-tree, so the
    # 86k rows of a first ingest are written once, and the table is a third smaller.
    conn.execute(
        "CREATE TABLE memberships (tag_id INTEGER NOT NULL REFERENCES tags(id), "
        "prefix_id INTEGER NOT NULL REFERENCES prefixes(id), from_seq INTEGER NOT NULL, "
        "to_seq INTEGER, PRIMARY KEY (tag_id, prefix_id, from_seq)) WITHOUT ROWID"
    )


APPLICATION_ID = 0x417A5447  # "AzTG"
TABLES = frozenset({"snapshots", "raw_files", "tags", "tag_versions", "prefixes", "memberships"})

MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1,)
SCHEMA_VERSION = len(MIGRATIONS)
