"""The alerts outbox: events, their deliveries per channel, the messages that carry them.

Nothing here decides anything; resolver/alerts says what to write. The tables (schema version 3):

- ``alert_events``: one row per event (``queued`` 0: recorded only, below the watch's
  ``min_change`` or with no channel; 1: delivered to its channels).
- ``alert_deliveries``: one row per (event, channel); ``message_id`` NULL until a delivery
  round groups it into a message.
- ``alert_messages``: what one channel is sent in one post: ``pending`` (with ``attempts`` and
  ``next_attempt_at``), ``sent`` or ``dead``.
- ``alert_channels``: channels disabled by their receiver (410 Gone).
- ``fetch_runs``: per cloud, failed scheduled fetches in a row and what was already alerted.

Times are ISO 8601 UTC text (``2026-11-30T06:00:00.123456+00:00``), which sorts as time.
Callers hold the transaction (cache.db.transaction) around writes that belong together.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from resolver.alerts.event import Event, EventType

if TYPE_CHECKING:
    from cache.outbox_rows import DeliveryRow as DeliveryRow
    from cache.outbox_rows import FetchRuns as FetchRuns
    from cache.outbox_rows import MessageRow as MessageRow
    from cache.outbox_rows import StoredEvent as StoredEvent

# The rows of stored events, messages, deliveries and scheduled fetches: defined in
# cache.outbox_rows and loaded on first use, so that recording events at ingest (which reads a
# stored event only to extend it) does not build their classes.
_ROWS = ("DeliveryRow", "FetchRuns", "MessageRow", "StoredEvent")


def __getattr__(name: str) -> Any:
    """``MessageRow``, ``DeliveryRow``, ``FetchRuns`` and ``StoredEvent``, from
    cache.outbox_rows (PEP 562)."""
    if name in _ROWS:
        from cache import outbox_rows

        return getattr(outbox_rows, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _t(moment: datetime) -> str:
    return moment.isoformat()


def has_outbox(conn: sqlite3.Connection) -> bool:
    """Whether the database has the outbox tables (a reader of a version-2 file: not yet)."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alert_events'"
    ).fetchone()
    return row is not None


# -- events ----------------------------------------------------------------------------------------


def add_event(
    conn: sqlite3.Connection,
    event: Event,
    channels: Sequence[str],
    *,
    from_snapshot: int | None = None,
    to_snapshot: int | None = None,
    queued: bool = True,
) -> None:
    """Store an event and, when ``queued`` and there are channels, one pending delivery per
    channel (an event of a watch without channels is recorded, never queued)."""
    queued = queued and bool(channels)
    conn.execute(
        "INSERT INTO alert_events (id, type, created_at, cloud, watch, from_snapshot, "
        "to_snapshot, summary, data, queued) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.id,
            str(event.type),
            _t(event.created),
            event.cloud,
            event.watch,
            from_snapshot,
            to_snapshot,
            event.summary,
            json.dumps(event.data, separators=(",", ":")),
            int(queued),
        ),
    )
    if queued:
        conn.executemany(
            "INSERT INTO alert_deliveries (event_id, channel) VALUES (?, ?)",
            [(event.id, c) for c in dict.fromkeys(channels)],
        )


def update_event(
    conn: sqlite3.Connection,
    event: Event,
    channels: Sequence[str],
    *,
    to_snapshot: int | None,
    queued: bool,
) -> None:
    """Replace an event that no delivery round has taken yet (see :func:`mergeable_events`)."""
    conn.execute(
        "UPDATE alert_events SET to_snapshot = ?, summary = ?, data = ?, queued = ? WHERE id = ?",
        (
            to_snapshot,
            event.summary,
            json.dumps(event.data, separators=(",", ":")),
            int(queued),
            event.id,
        ),
    )
    conn.execute("DELETE FROM alert_deliveries WHERE event_id = ?", (event.id,))
    if queued:
        conn.executemany(
            "INSERT INTO alert_deliveries (event_id, channel) VALUES (?, ?)",
            [(event.id, c) for c in dict.fromkeys(channels)],
        )


def delete_event(conn: sqlite3.Connection, event_id: str) -> None:
    conn.execute("DELETE FROM alert_deliveries WHERE event_id = ?", (event_id,))
    conn.execute("DELETE FROM alert_events WHERE id = ?", (event_id,))


def _event(row: sqlite3.Row | tuple[object, ...]) -> StoredEvent:
    from cache.outbox_rows import StoredEvent

    id_, type_, created, cloud, watch, from_s, to_s, summary, data, queued = row
    return StoredEvent(
        Event(
            str(id_),
            EventType(str(type_)),
            datetime.fromisoformat(str(created)),
            str(cloud),
            str(watch),
            str(summary),
            json.loads(str(data)),
        ),
        None if from_s is None else int(str(from_s)),
        None if to_s is None else int(str(to_s)),
        bool(queued),
    )


_EVENT_COLUMNS = (
    "e.id, e.type, e.created_at, e.cloud, e.watch, e.from_snapshot, e.to_snapshot, e.summary, "
    "e.data, e.queued"
)


def mergeable_events(
    conn: sqlite3.Connection, cloud: str, to_snapshot: int, types: Iterable[EventType]
) -> dict[tuple[str, str], StoredEvent]:
    """By (watch, type): the newest event of that watch and type (one of ``types``) that ends
    at ``to_snapshot`` and that no delivery round has taken yet (none of its deliveries is in a
    message): the next step of the same import extends it instead of raising a second event.
    One query for every watch of a step."""
    wanted = [str(t) for t in types]
    rows = conn.execute(
        f"SELECT {_EVENT_COLUMNS} FROM alert_events e WHERE e.cloud = ? AND e.to_snapshot = ? "
        f"AND e.type IN ({', '.join('?' * len(wanted))}) AND NOT EXISTS (SELECT 1 FROM "
        "alert_deliveries d WHERE d.event_id = e.id AND d.message_id IS NOT NULL) "
        "ORDER BY e.created_at, e.rowid",
        (cloud, to_snapshot, *wanted),
    )
    found = {}
    for row in rows:  # oldest first: the newest of each (watch, type) stays
        stored = _event(row)
        found[(stored.event.watch, str(stored.event.type))] = stored
    return found


def load_events(conn: sqlite3.Connection) -> list[tuple[StoredEvent, list[str]]]:
    """Every event, oldest first, with the channels it is (or was) delivered to."""
    channels: dict[str, list[str]] = {}
    for event_id, channel in conn.execute(
        "SELECT event_id, channel FROM alert_deliveries ORDER BY channel"
    ):
        channels.setdefault(str(event_id), []).append(str(channel))
    rows = conn.execute(
        f"SELECT {_EVENT_COLUMNS} FROM alert_events e ORDER BY e.created_at, e.rowid"
    )
    return [(s, channels.get(s.event.id, [])) for s in map(_event, rows)]


def events_of_message(conn: sqlite3.Connection, message_id: str) -> list[Event]:
    rows = conn.execute(
        f"SELECT {_EVENT_COLUMNS} FROM alert_events e JOIN alert_deliveries d "
        "ON d.event_id = e.id WHERE d.message_id = ? ORDER BY e.created_at, e.rowid",
        (message_id,),
    )
    return [_event(r).event for r in rows]


# -- messages --------------------------------------------------------------------------------------


def unassigned_channels(conn: sqlite3.Connection) -> list[str]:
    """Channels with deliveries that no message carries yet."""
    rows = conn.execute(
        "SELECT DISTINCT channel FROM alert_deliveries WHERE message_id IS NULL ORDER BY channel"
    )
    return [str(c) for (c,) in rows]


def unassigned_events(conn: sqlite3.Connection, channel: str) -> list[str]:
    rows = conn.execute(
        "SELECT d.event_id FROM alert_deliveries d JOIN alert_events e ON e.id = d.event_id "
        "WHERE d.channel = ? AND d.message_id IS NULL ORDER BY e.created_at, e.rowid",
        (channel,),
    )
    return [str(e) for (e,) in rows]


def add_message(
    conn: sqlite3.Connection,
    message_id: str,
    channel: str,
    event_ids: Iterable[str],
    now: datetime,
    *,
    state: str = "pending",
    error: str | None = None,
) -> None:
    """A message of ``channel`` carrying ``event_ids``, due now (or dead at once, ``state``)."""
    conn.execute(
        "INSERT INTO alert_messages (id, channel, created_at, state, attempts, next_attempt_at, "
        "last_error, finished_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
        (
            message_id,
            channel,
            _t(now),
            state,
            _t(now),
            error,
            None if state == "pending" else _t(now),
        ),
    )
    conn.executemany(
        "UPDATE alert_deliveries SET message_id = ? WHERE event_id = ? AND channel = ?",
        [(message_id, e, channel) for e in event_ids],
    )


def _message(row: tuple[object, ...]) -> MessageRow:
    from cache.outbox_rows import MessageRow

    id_, channel, created, state, attempts, next_at, error, finished = row
    return MessageRow(
        str(id_),
        str(channel),
        datetime.fromisoformat(str(created)),
        str(state),
        int(str(attempts)),
        datetime.fromisoformat(str(next_at)),
        None if error is None else str(error),
        None if finished is None else datetime.fromisoformat(str(finished)),
    )


_MESSAGE_COLUMNS = (
    "id, channel, created_at, state, attempts, next_attempt_at, last_error, finished_at"
)


def due_messages(conn: sqlite3.Connection, now: datetime) -> list[MessageRow]:
    """Pending messages whose next attempt is due, oldest first."""
    rows = conn.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM alert_messages WHERE state = 'pending' "
        "AND next_attempt_at <= ? ORDER BY created_at, rowid",
        (_t(now),),
    )
    return [_message(r) for r in rows]


def pending_rows(conn: sqlite3.Connection) -> list[MessageRow]:
    """Every pending message, due or not."""
    rows = conn.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM alert_messages WHERE state = 'pending' "
        "ORDER BY next_attempt_at"
    )
    return [_message(r) for r in rows]


def claim_message(
    conn: sqlite3.Connection, message_id: str, now: datetime, lease_until: datetime
) -> int | None:
    """Take a due message for one attempt: count the attempt and push ``next_attempt_at`` to
    ``lease_until``, so that another process delivering at the same time skips it (and, if this
    one dies mid-attempt, retries it after the lease). Returns the attempt number, or None when
    another process took it first."""
    cur = conn.execute(
        "UPDATE alert_messages SET attempts = attempts + 1, next_attempt_at = ? "
        "WHERE id = ? AND state = 'pending' AND next_attempt_at <= ?",
        (_t(lease_until), message_id, _t(now)),
    )
    if cur.rowcount != 1:
        return None
    row = conn.execute("SELECT attempts FROM alert_messages WHERE id = ?", (message_id,)).fetchone()
    return int(row[0])


def finish_message(
    conn: sqlite3.Connection, message_id: str, state: str, now: datetime, error: str | None
) -> None:
    """``sent`` or ``dead``."""
    conn.execute(
        "UPDATE alert_messages SET state = ?, finished_at = ?, last_error = ? WHERE id = ?",
        (state, _t(now), error, message_id),
    )


def postpone_message(
    conn: sqlite3.Connection, message_id: str, next_attempt: datetime, error: str
) -> None:
    conn.execute(
        "UPDATE alert_messages SET next_attempt_at = ?, last_error = ? WHERE id = ?",
        (_t(next_attempt), error, message_id),
    )


def pending_messages_of(conn: sqlite3.Connection, channel: str) -> list[str]:
    rows = conn.execute(
        "SELECT id FROM alert_messages WHERE channel = ? AND state = 'pending' ORDER BY id",
        (channel,),
    )
    return [str(m) for (m,) in rows]


def requeue_messages(
    conn: sqlite3.Connection, ids: Sequence[str] | None, now: datetime
) -> list[MessageRow]:
    """Dead messages back to pending, due now with a fresh attempt count: those named (message
    ids, or ids of events they carry), or every dead one. Returns what was requeued."""
    if ids is None:
        rows = conn.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM alert_messages WHERE state = 'dead'"
        ).fetchall()
    else:
        rows = []
        for ident in ids:
            rows += conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM alert_messages WHERE state = 'dead' AND (id = ? "
                "OR id IN (SELECT message_id FROM alert_deliveries WHERE event_id = ?))",
                (ident, ident),
            ).fetchall()
    found = list({m.id: m for m in map(_message, rows)}.values())
    conn.executemany(
        "UPDATE alert_messages SET state = 'pending', attempts = 0, next_attempt_at = ?, "
        "finished_at = NULL WHERE id = ?",
        [(_t(now), m.id) for m in found],
    )
    return found


def message_ids_and_events(conn: sqlite3.Connection) -> set[str]:
    """Every message id and event id (to tell a mistyped id from one that is not dead)."""
    ids = {str(i) for (i,) in conn.execute("SELECT id FROM alert_messages")}
    return ids | {str(i) for (i,) in conn.execute("SELECT id FROM alert_events")}


# -- listing ---------------------------------------------------------------------------------------


def list_deliveries(conn: sqlite3.Connection, state: str | None, limit: int) -> list[DeliveryRow]:
    """Newest first. ``state``: ``pending`` (not sent yet, in a message or not), ``dead``, or
    None (everything, recorded events included)."""
    where = {
        None: "",
        "pending": "WHERE d.channel IS NOT NULL AND (m.state IS NULL OR m.state = 'pending')",
        "dead": "WHERE m.state = 'dead'",
    }[state]
    m_cols = ", ".join(f"m.{c.strip()}" for c in _MESSAGE_COLUMNS.split(","))
    rows = conn.execute(
        f"SELECT {_EVENT_COLUMNS}, d.channel, {m_cols} FROM alert_events e "
        "LEFT JOIN alert_deliveries d ON d.event_id = e.id "
        f"LEFT JOIN alert_messages m ON m.id = d.message_id {where} "
        "ORDER BY e.created_at DESC, e.rowid DESC, d.channel LIMIT ?",
        (limit,),
    )
    from cache.outbox_rows import DeliveryRow

    found = []
    for row in rows:
        stored = _event(row[:10])
        channel = None if row[10] is None else str(row[10])
        message = None if row[11] is None else _message(row[11:])
        found.append(DeliveryRow(stored.event, stored.queued, channel, message))
    return found


# -- channels --------------------------------------------------------------------------------------


def disabled_channels(conn: sqlite3.Connection) -> dict[str, tuple[datetime, str]]:
    return {
        str(n): (datetime.fromisoformat(str(at)), str(reason))
        for n, at, reason in conn.execute("SELECT name, disabled_at, reason FROM alert_channels")
    }


def disable_channel(conn: sqlite3.Connection, name: str, now: datetime, reason: str) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO alert_channels (name, disabled_at, reason) VALUES (?, ?, ?)",
        (name, _t(now), reason),
    )


def enable_channels(conn: sqlite3.Connection, names: Iterable[str]) -> None:
    conn.executemany("DELETE FROM alert_channels WHERE name = ?", [(n,) for n in names])


# -- scheduled fetches -----------------------------------------------------------------------------


def load_fetch_runs(conn: sqlite3.Connection, cloud: str) -> FetchRuns:
    from cache.outbox_rows import FetchRuns

    row = conn.execute(
        "SELECT failures, last_error, last_attempt_at, last_success_at, failing_alerted, "
        "stale_alerted_snapshot FROM fetch_runs WHERE cloud = ?",
        (cloud,),
    ).fetchone()
    if row is None:
        return FetchRuns(cloud)
    failures, error, attempt, success, alerted, stale = row
    return FetchRuns(
        cloud,
        int(failures),
        error,
        None if attempt is None else datetime.fromisoformat(attempt),
        None if success is None else datetime.fromisoformat(success),
        bool(alerted),
        stale,
    )


def save_fetch_runs(conn: sqlite3.Connection, runs: FetchRuns) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO fetch_runs (cloud, failures, last_error, last_attempt_at, "
        "last_success_at, failing_alerted, stale_alerted_snapshot) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            runs.cloud,
            runs.failures,
            runs.last_error,
            None if runs.last_attempt is None else _t(runs.last_attempt),
            None if runs.last_success is None else _t(runs.last_success),
            int(runs.failing_alerted),
            runs.stale_alerted_snapshot,
        ),
    )


def count_events(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM alert_events").fetchone()[0])


# -- for the server's /metrics ---------------------------------------------------------------------


def all_fetch_runs(conn: sqlite3.Connection) -> list[FetchRuns]:
    """Every cloud's scheduled-fetch record (none before the scheduler's first run)."""
    clouds = [str(c) for (c,) in conn.execute("SELECT cloud FROM fetch_runs ORDER BY cloud")]
    return [load_fetch_runs(conn, c) for c in clouds]


def delivery_counts(conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
    """(channel, state) -> deliveries, for ``pending`` (not sent yet, in a message or not) and
    ``dead``, as ``aztags alerts list --pending/--dead`` count them."""
    rows = conn.execute(
        "SELECT d.channel, coalesce(m.state, 'pending'), count(*) FROM alert_deliveries d "
        "LEFT JOIN alert_messages m ON m.id = d.message_id "
        "WHERE m.state IS NULL OR m.state IN ('pending', 'dead') GROUP BY 1, 2"
    )
    return {(str(channel), str(state)): int(n) for channel, state, n in rows}


def events_of_watch(conn: sqlite3.Connection, watch: str, limit: int) -> list[StoredEvent]:
    """A watch's events, newest first (the per-watch Atom feed of ``aztags serve``)."""
    rows = conn.execute(
        f"SELECT {_EVENT_COLUMNS} FROM alert_events e WHERE e.watch = ? "
        "ORDER BY e.created_at DESC, e.rowid DESC LIMIT ?",
        (watch, limit),
    )
    return [_event(r) for r in rows]
