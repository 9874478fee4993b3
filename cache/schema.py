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

# Version 1, as plain SQL: the exact text sqlite-utils wrote from typed column maps (the
# README's schema section, and tests/test_schema_ddl.py, which builds it through sqlite-utils and
# compares). Executed directly because importing sqlite-utils (and its plugin scan) cost a first
# ingest 130-210 ms, against about 2 ms for these statements.
_V1 = """\
CREATE TABLE "snapshots" (
   "id" INTEGER PRIMARY KEY,
   "cloud" TEXT NOT NULL,
   "change_number" INTEGER NOT NULL,
   "file_date" TEXT,
   "sha256" TEXT NOT NULL,
   "content_digest" TEXT NOT NULL,
   "source" TEXT NOT NULL,
   "fetched_at" TEXT NOT NULL,
   "etag" TEXT,
   "last_modified" TEXT,
   "size" INTEGER NOT NULL,
   "tag_count" INTEGER NOT NULL,
   "prefix_count" INTEGER NOT NULL,
   "quarantined" INTEGER NOT NULL DEFAULT 0,
   "quarantine_reason" TEXT,
   "seq" INTEGER
);
CREATE UNIQUE INDEX "idx_snapshots_cloud_change_number_content_digest"
    ON "snapshots" ("cloud", "change_number", "content_digest");
CREATE UNIQUE INDEX "idx_snapshots_cloud_seq"
    ON "snapshots" ("cloud", "seq");
CREATE TABLE "raw_files" (
   "snapshot_id" INTEGER PRIMARY KEY REFERENCES "snapshots"("id"),
   "encoding" TEXT NOT NULL,
   "data" BLOB NOT NULL
);
CREATE TABLE "tags" (
   "id" INTEGER PRIMARY KEY,
   "cloud" TEXT NOT NULL,
   "name" TEXT NOT NULL
);
CREATE UNIQUE INDEX "idx_tags_cloud_name"
    ON "tags" ("cloud", "name");
CREATE TABLE "tag_versions" (
   "id" INTEGER PRIMARY KEY,
   "tag_id" INTEGER NOT NULL REFERENCES "tags"("id"),
   "from_seq" INTEGER NOT NULL,
   "to_seq" INTEGER,
   "change_number" INTEGER NOT NULL,
   "region" TEXT NOT NULL,
   "region_id" INTEGER NOT NULL,
   "system_service" TEXT NOT NULL,
   "network_features" TEXT,
   "platform" TEXT NOT NULL,
   "prefix_digest" TEXT NOT NULL,
   "ipv4_count" INTEGER NOT NULL,
   "ipv6_count" INTEGER NOT NULL
);
CREATE UNIQUE INDEX "idx_tag_versions_tag_id_from_seq"
    ON "tag_versions" ("tag_id", "from_seq");
CREATE TABLE "prefixes" (
   "id" INTEGER PRIMARY KEY,
   "prefix" TEXT NOT NULL,
   "family" INTEGER NOT NULL,
   "length" INTEGER NOT NULL,
   "network" BLOB NOT NULL
);
CREATE UNIQUE INDEX "idx_prefixes_prefix"
    ON "prefixes" ("prefix");
CREATE TABLE memberships (tag_id INTEGER NOT NULL REFERENCES tags(id), \
prefix_id INTEGER NOT NULL REFERENCES prefixes(id), from_seq INTEGER NOT NULL, to_seq INTEGER, \
PRIMARY KEY (tag_id, prefix_id, from_seq)) WITHOUT ROWID
"""


def _v1(conn: sqlite3.Connection) -> None:
    for statement in _V1.split(";\n"):
        conn.execute(statement.strip())


def _v2(conn: sqlite3.Connection) -> None:
    # A reverse lookup reads the memberships of a few prefixes: without this index, every
    # membership row (issue 9: 40-59 ms of a 230-260 ms `aztags lookup IP`). Readers of a
    # version-1 database answer the same, only slower (READABLE_SINCE).
    conn.execute('CREATE INDEX "idx_memberships_prefix_id" ON "memberships" ("prefix_id")')


# Version 3: the alerts outbox (resolver/alerts). Events are written in the transaction that
# stores the snapshot they are about; a delivery row per (event, channel) waits until a delivery
# round groups it into a message for its channel; a message keeps its id across attempts.
_V3 = """\
CREATE TABLE alert_events (id TEXT PRIMARY KEY, type TEXT NOT NULL, created_at TEXT NOT NULL, \
cloud TEXT NOT NULL, watch TEXT NOT NULL, from_snapshot INTEGER, to_snapshot INTEGER, \
summary TEXT NOT NULL, data TEXT NOT NULL, queued INTEGER NOT NULL);
CREATE INDEX idx_alert_events_cloud_watch ON alert_events (cloud, watch, to_snapshot);
CREATE TABLE alert_messages (id TEXT PRIMARY KEY, channel TEXT NOT NULL, \
created_at TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL, \
next_attempt_at TEXT NOT NULL, last_error TEXT, finished_at TEXT);
CREATE INDEX idx_alert_messages_state ON alert_messages (state, next_attempt_at);
CREATE TABLE alert_deliveries (event_id TEXT NOT NULL REFERENCES alert_events(id), \
channel TEXT NOT NULL, message_id TEXT REFERENCES alert_messages(id), \
PRIMARY KEY (event_id, channel)) WITHOUT ROWID;
CREATE INDEX idx_alert_deliveries_message_id ON alert_deliveries (message_id);
CREATE TABLE alert_channels (name TEXT PRIMARY KEY, disabled_at TEXT NOT NULL, \
reason TEXT NOT NULL);
CREATE TABLE fetch_runs (cloud TEXT PRIMARY KEY, failures INTEGER NOT NULL, last_error TEXT, \
last_attempt_at TEXT, last_success_at TEXT, failing_alerted INTEGER NOT NULL, \
stale_alerted_snapshot INTEGER)"""


def _v3(conn: sqlite3.Connection) -> None:
    for statement in _V3.split(";\n"):
        conn.execute(statement.strip())


APPLICATION_ID = 0x417A5447  # "AzTG"
TABLES = frozenset({"snapshots", "raw_files", "tags", "tag_versions", "prefixes", "memberships"})

MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2, _v3)
SCHEMA_VERSION = len(MIGRATIONS)
# The oldest schema a reader answers queries from unchanged (later versions add an index and
# the alerts tables, which readers of older files treat as empty).
READABLE_SINCE = 1
