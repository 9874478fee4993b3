"""Save a parsed snapshot into the store, writing its history (cache/history.py reads it back).

``save_snapshot`` is the one place where history is written. A snapshot is placed in its cloud's
timeline by (changeNumber, file date, content digest), so files can arrive in any order: a file
older than the newest is spliced into the middle of the history (backfill), and the stored
intervals come out the same whatever the import order. It writes inside the caller's transaction
(``resolver.refresh.store_file`` opens it), so that what else belongs to the same file commits
with it or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from cache.history import (
    SNAPSHOT_COLUMNS,
    features_from_text,
    snapshot_at,
    snapshot_info,
    snapshot_row,
)
from resolver.ingest import IngestResult, Outcome, RawFile, TagChange
from resolver.models import PROPERTY_FIELDS, ChangeKind, ServiceTag, Snapshot, SnapshotInfo
from resolver.prefixes import count, parse_prefix, sort_prefixes

Row = tuple[Any, ...]  # a row as SQLite returns it; also a tag's stored properties (a version key)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class SaveOptions:
    """How a file is stored: raw copy kept, the quarantine threshold, and what may be forced."""

    keep_raw: bool = True  # keep the file, gzip-compressed, so history can be rebuilt
    quarantine_drop: float = 0.20  # a new latest file losing more than this share is quarantined
    force: bool = False  # accept a file that would be quarantined
    allow_empty: bool = False  # accept a file that lists no tags (never plausible otherwise)


# -- digests ---------------------------------------------------------------------------------------


def features_text(features: frozenset[str] | None) -> str | None:
    """networkFeatures as stored: NULL for JSON null, "" for an empty list, else sorted names."""
    return None if features is None else ",".join(sorted(features))


def _version_key(tag: ServiceTag, digest: str | None = None) -> Row:
    """The stored properties of a tag, in tag_versions column order (after tag_id).
    ``digest``: the sha1 of its prefix lines when the parser computed it already."""
    if digest is None:
        import hashlib  # here: a read-only command does not import it

        digest = hashlib.sha1("\n".join(tag.prefixes).encode()).hexdigest()
    v4, v6 = count(tag.prefixes)
    return (
        tag.change_number,
        tag.region,
        tag.region_id,
        tag.system_service,
        features_text(tag.network_features),
        tag.platform,
        digest,
        v4,
        v6,
    )


_VERSION_COLUMNS = (
    "change_number",
    "region",
    "region_id",
    "system_service",
    "network_features",
    "platform",
    "prefix_digest",
    "ipv4_count",
    "ipv6_count",
)
_DIGEST = _VERSION_COLUMNS.index("prefix_digest")
_FEATURES = _VERSION_COLUMNS.index("network_features")
_PROPERTIES = tuple((name, _VERSION_COLUMNS.index(name)) for name in PROPERTY_FIELDS)


def content_digest(versions: Iterable[tuple[str, Row]]) -> str:
    """A digest of a snapshot's content: the same tags, properties and prefixes give the same one,
    whatever the line endings or key order of the file."""
    import hashlib

    h = hashlib.sha256()
    for name, key in sorted(versions):
        h.update(repr((name, key)).encode())
    return h.hexdigest()


def known_prefix_digests(conn: sqlite3.Connection) -> frozenset[str]:
    """The digests of every prefix list stored (any cloud, any version): lists that were
    validated when stored, which the parser need not validate again (resolver.parse)."""
    return frozenset(d for (d,) in conn.execute("SELECT DISTINCT prefix_digest FROM tag_versions"))


# -- saving ----------------------------------------------------------------------------------------


# A prefix text -> (family, network bytes, length, canonical text), as the parser computed it.
Networks = Mapping[str, tuple[int, bytes, int, str]]


def save_snapshot(
    conn: sqlite3.Connection,
    snapshot: Snapshot,
    raw: RawFile,
    options: SaveOptions = SaveOptions(),
    now: datetime | None = None,
    *,
    digests: Mapping[str, str] | None = None,
    networks: Networks | None = None,
) -> IngestResult:
    """Store a snapshot and its history, inside the caller's write transaction
    (``with cache.db.transaction(conn):``); raises RuntimeError when there is none.

    Outcomes: ``current`` (the newest of its cloud), ``backfill`` (older than the newest: stored as
    history), ``duplicate`` (already stored: nothing written), ``quarantined`` (would become current
    but lost more than ``options.quarantine_drop`` of the current file's prefix entries; kept for
    inspection, not current, unless ``options.force``). The result says what changed per tag
    relative to the snapshot before it in the timeline (see :class:`IngestResult`).

    ``digests`` (tag name -> prefix digest) and ``networks`` (see :data:`Networks`): what the
    parser computed already (resolver.parse.ParsedFile), so it is not computed again; anything
    they lack is computed here.
    """
    if not conn.in_transaction:
        raise RuntimeError(
            "save_snapshot writes inside the caller's transaction: call it within "
            "'with cache.db.transaction(conn):' (resolver.refresh.store_file does)"
        )
    now = now or datetime.now(UTC)
    known = digests or {}
    versions = {tag.name: _version_key(tag, known.get(tag.name)) for tag in snapshot.tags}
    digest = content_digest(versions.items())
    file_date = raw.file_date.isoformat() if raw.file_date else None
    existing = conn.execute(
        f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots "
        "WHERE cloud = ? AND change_number = ? AND content_digest = ?",
        (snapshot.cloud, snapshot.change_number, digest),
    ).fetchone()
    if existing is not None and not (existing[12] and options.force):
        info = snapshot_info(existing)
        outcome = Outcome.QUARANTINED if info.quarantined else Outcome.DUPLICATE
        return IngestResult(info, outcome, notes=_dup_note(info))
    order = (snapshot.change_number, file_date or "", digest)
    s, n = _position(conn, snapshot.cloud, order)
    previous = snapshot_at(conn, snapshot.cloud, s - 1) if s > 1 else None
    if n is None and previous is not None and not options.force:
        lost = previous.prefix_count - snapshot.prefix_count
        if previous.prefix_count and lost > options.quarantine_drop * previous.prefix_count:
            reason = (
                f"it has {snapshot.prefix_count} prefix entries, {lost} "
                f"({lost / previous.prefix_count:.0%}) fewer than the current file "
                f"(changeNumber {previous.change_number}, {previous.prefix_count} entries); "
                f"the limit is {options.quarantine_drop:.0%}"
            )
            if existing is None:
                snapshot_id = _insert_snapshot(conn, snapshot, raw, digest, now, None, reason)
                _save_raw(conn, snapshot_id, raw, options)
            else:
                snapshot_id = existing[0]
            info = snapshot_info(snapshot_row(conn, snapshot_id))
            return IngestResult(info, Outcome.QUARANTINED, notes=(reason,))

    if n is not None:
        _shift(conn, snapshot.cloud, s)
        n = s + 1
    if existing is None:
        snapshot_id = _insert_snapshot(conn, snapshot, raw, digest, now, s, None)
        _save_raw(conn, snapshot_id, raw, options)
    else:  # a quarantined file accepted with force
        snapshot_id = existing[0]
        conn.execute(
            "UPDATE snapshots SET quarantined = 0, quarantine_reason = NULL, seq = ? WHERE id = ?",
            (s, snapshot_id),
        )
    counts, changes = _splice_history(conn, snapshot, versions, s, n, networks or {})
    info = snapshot_info(snapshot_row(conn, snapshot_id))
    outcome = Outcome.CURRENT if n is None else Outcome.BACKFILL
    return IngestResult(info, outcome, *counts, changes=changes)


def _dup_note(info: SnapshotInfo) -> tuple[str, ...]:
    if info.quarantined:
        return ("it is quarantined; use --force to accept it",)
    return ()


def _position(conn: sqlite3.Connection, cloud: str, order: Row) -> tuple[int, int | None]:
    """The seq the new snapshot takes, and the seq of the one after it (before shifting)."""
    rows = conn.execute(
        "SELECT change_number, coalesce(file_date, ''), content_digest, seq FROM snapshots "
        "WHERE cloud = ? AND seq IS NOT NULL ORDER BY seq",
        (cloud,),
    ).fetchall()
    for row in rows:
        if tuple(row[:3]) > order:
            return row[3], row[3]
    return len(rows) + 1, None


def _shift(conn: sqlite3.Connection, cloud: str, s: int) -> None:
    """Make room at seq ``s``: every seq >= s moves up by one (snapshots and interval bounds).

    Two steps (negate, then restore) so that no unique index sees a transient duplicate.
    """
    tags = "tag_id IN (SELECT id FROM tags WHERE cloud = ?)"
    for table, column, where in (
        ("snapshots", "seq", "cloud = ?"),
        ("tag_versions", "from_seq", tags),
        ("tag_versions", "to_seq", tags),
        ("memberships", "from_seq", tags),
        ("memberships", "to_seq", tags),
    ):
        conn.execute(
            f"UPDATE {table} SET {column} = -({column} + 1) WHERE {column} >= ? AND {where}",
            (s, cloud),
        )
        conn.execute(f"UPDATE {table} SET {column} = -{column} WHERE {column} < 0")


def _insert_snapshot(
    conn: sqlite3.Connection,
    snapshot: Snapshot,
    raw: RawFile,
    digest: str,
    now: datetime,
    seq: int | None,
    reason: str | None,
) -> int:
    import hashlib

    cur = conn.execute(
        "INSERT INTO snapshots (cloud, change_number, file_date, sha256, content_digest, source, "
        "fetched_at, etag, last_modified, size, tag_count, prefix_count, quarantined, "
        "quarantine_reason, seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            snapshot.cloud,
            snapshot.change_number,
            raw.file_date.isoformat() if raw.file_date else None,
            hashlib.sha256(raw.data).hexdigest(),
            digest,
            raw.source,
            now.isoformat(timespec="seconds"),
            raw.etag,
            raw.last_modified,
            len(raw.data),
            len(snapshot.tags),
            snapshot.prefix_count,
            1 if reason else 0,
            reason,
            seq,
        ),
    )
    return int(cur.lastrowid or 0)


def _save_raw(
    conn: sqlite3.Connection, snapshot_id: int, raw: RawFile, options: SaveOptions
) -> None:
    if not options.keep_raw:
        return
    # The original gzip bytes when the file came gzipped; else level 1 (about 4x faster to
    # write than level 6, and the archive is read only to rebuild history).
    data = raw.compressed
    if data is None:
        import gzip

        data = gzip.compress(raw.data, compresslevel=1, mtime=0)
    conn.execute(
        "INSERT INTO raw_files (snapshot_id, encoding, data) VALUES (?, 'gzip', ?)",
        (snapshot_id, data),
    )


def _splice_history(
    conn: sqlite3.Connection,
    snapshot: Snapshot,
    versions: dict[str, Row],
    s: int,
    n: int | None,
    networks: Networks,
) -> tuple[tuple[int, int, int, int, int], tuple[TagChange, ...]]:
    """Write the snapshot at seq ``s`` into the interval tables; ``n`` is the next seq or None.

    After the shift every interval that covers ``s - 1`` also covers ``s``. So: items present at
    ``s - 1`` but not in the new snapshot are cut at ``s`` (and re-opened at ``n`` when the next
    snapshot has them); new items either extend an interval that starts at ``n`` back to ``s``, or
    get a new one ``[s, n)``. Only tags whose properties or prefix digest changed are touched.
    """
    cloud = snapshot.cloud
    tag_ids = _ensure_tags(conn, cloud, versions)
    before = {
        row[0]: (row[1], row[2], tuple(row[3:]))
        for row in conn.execute(
            f"SELECT tag_id, from_seq, to_seq, {', '.join(_VERSION_COLUMNS)} FROM tag_versions "
            "WHERE tag_id IN (SELECT id FROM tags WHERE cloud = ?) "
            "AND from_seq < ? AND (to_seq IS NULL OR to_seq > ?)",
            (cloud, s, s),
        )
    }
    new = {tag_ids[name]: key for name, key in versions.items()}
    if not before and n is None:  # the cloud's first snapshot: every tag and pair is new
        return _first_history(conn, snapshot, new, tag_ids, s, networks)
    changed_versions = [
        t for t in new.keys() | before.keys() if before.get(t, (0, 0, None))[2] != new.get(t)
    ]
    _splice(
        conn,
        "tag_versions",
        ("tag_id", *_VERSION_COLUMNS),
        old={(t, *before[t][2]): before[t][:2] for t in changed_versions if t in before},
        new={(t, *new[t]) for t in changed_versions if t in new},
        groups=changed_versions,
        s=s,
        n=n,
    )
    # Memberships change only where the prefix digest differs (or the tag came or went), and
    # then only for the prefixes that came or went: those are compared as text, and only they
    # are looked up (ids, intervals) and written.
    changed = [
        t
        for t in changed_versions
        if t not in before or t not in new or before[t][2][_DIGEST] != new[t][_DIGEST]
    ]
    by_id = {tag_ids[tag.name]: tag for tag in snapshot.tags}
    old_texts = _member_texts(conn, [t for t in changed if t in before], s)
    gone: dict[int, set[str]] = {}
    arriving: dict[int, set[str]] = {}
    for t in changed:
        had = old_texts.get(t, set())
        has = set(by_id[t].prefixes) if t in by_id else set()
        gone[t] = had - has
        arriving[t] = has - had
    prefix_ids = _ensure_prefixes(conn, set().union(*arriving.values()), networks)
    prefix_ids.update(_prefix_ids(conn, set().union(*gone.values()) - prefix_ids.keys()))
    old_pairs = _intervals_at(conn, [(t, prefix_ids[p]) for t in changed for p in gone[t]], s)
    new_pairs = {(t, prefix_ids[p]) for t in changed for p in arriving[t]}
    added, removed = _splice(
        conn,
        "memberships",
        ("tag_id", "prefix_id"),
        old=old_pairs,
        new=new_pairs,
        groups=changed,
        s=s,
        n=n,
    )
    changes = _changes(tag_ids, before, new, changed_versions, by_id, old_texts, gone, arriving)
    # (tags added, removed, changed; pairs added, removed): IngestResult's field order
    counts = (
        len(new.keys() - before.keys()),
        len(before.keys() - new.keys()),
        sum(1 for t in changed if t in before and t in new),
        added,
        removed,
    )
    return counts, changes


def _first_history(
    conn: sqlite3.Connection,
    snapshot: Snapshot,
    new: dict[int, Row],
    tag_ids: dict[str, int],
    s: int,
    networks: Networks,
) -> tuple[tuple[int, int, int, int, int], tuple[TagChange, ...]]:
    """:func:`_splice_history` when nothing of the cloud is stored before or after seq ``s``:
    every version and membership is a new interval ``[s, NULL)``, written in index order
    without comparing anything to what is stored."""
    _insert_intervals(
        conn, "tag_versions", ("tag_id", *_VERSION_COLUMNS), [(t, *new[t], s, None) for t in new]
    )
    prefix_ids = _ensure_prefixes(
        conn, {p for tag in snapshot.tags for p in tag.prefixes}, networks
    )
    groups = sorted((tag_ids[tag.name], tag.prefixes) for tag in snapshot.tags)
    pairs = _bulk_insert_memberships(
        conn, [(t, sorted([prefix_ids[p] for p in prefixes])) for t, prefixes in groups], s
    )
    changes = tuple(
        TagChange(tag.name, ChangeKind.ADDED, added=tag.prefixes) for tag in snapshot.tags
    )
    return (len(new), 0, 0, pairs, 0), changes


_BULK = 20_000  # memberships rows from which an empty table is filled before its index is built


def _bulk_insert_memberships(
    conn: sqlite3.Connection, groups: list[tuple[int, list[int]]], s: int
) -> int:
    """Insert the memberships ``[s, NULL)`` of each (tag id, its prefix ids), both ascending
    (primary-key order, so SQLite appends); returns how many.

    Each tag's ids go in one statement, as a JSON array SQLite reads itself (json_each): about
    a third of the cost of binding the rows one by one with executemany. Into an empty table,
    many rows go in before the prefix_id index is built: building it once costs a fraction of
    keeping it up to date row by row, and the transaction keeps that invisible."""
    total = sum(len(ids) for _, ids in groups)
    index = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'idx_memberships_prefix_id'"
    ).fetchone()
    rebuild = (
        index is not None
        and total >= _BULK
        and conn.execute("SELECT 1 FROM memberships LIMIT 1").fetchone() is None
    )
    if rebuild:
        conn.execute("DROP INDEX idx_memberships_prefix_id")
    if _has_json(conn):
        for t, ids in groups:
            if ids:
                conn.execute(
                    "INSERT INTO memberships (tag_id, prefix_id, from_seq, to_seq) "
                    "SELECT ?, value, ?, NULL FROM json_each(?)",
                    (t, s, f"[{','.join(map(str, ids))}]"),
                )
    else:
        conn.executemany(
            "INSERT INTO memberships (tag_id, prefix_id, from_seq, to_seq) VALUES (?,?,?,?)",
            [(t, prefix_id, s, None) for t, ids in groups for prefix_id in ids],
        )
    if rebuild:
        conn.execute(index[0])
    return total


def _has_json(conn: sqlite3.Connection) -> bool:
    """Whether this SQLite has the JSON functions (built in since 3.38, an option before)."""
    try:
        conn.execute("SELECT count(*) FROM json_each('[1]')").fetchone()
    except sqlite3.OperationalError:
        return False
    return True


def _changes(
    tag_ids: dict[str, int],
    before: dict[int, tuple[int, int | None, Row]],
    new: dict[int, Row],
    changed_versions: list[int],
    by_id: dict[int, ServiceTag],
    old_texts: dict[int, set[str]],
    gone: dict[int, set[str]],
    arriving: dict[int, set[str]],
) -> tuple[TagChange, ...]:
    """Per tag, what the splice changed relative to seq ``s - 1``, by tag name.

    ``old_texts``: the prefixes at ``s - 1`` of every tag whose prefixes changed; ``gone`` and
    ``arriving``: the prefixes those tags lost and gained."""
    names = {i: name for name, i in tag_ids.items()}
    changes = []
    for t in changed_versions:
        if t not in before:
            changes.append(TagChange(names[t], ChangeKind.ADDED, added=by_id[t].prefixes))
            continue
        if t not in new:
            removed = sort_prefixes(old_texts.get(t, ()))
            changes.append(TagChange(names[t], ChangeKind.REMOVED, removed=removed))
            continue
        removed = sort_prefixes(gone.get(t, ()))
        old_key, new_key = before[t][2], new[t]
        added: tuple[str, ...] = ()
        if t in arriving:  # else the memberships were not touched
            came = arriving[t]
            added = tuple(p for p in by_id[t].prefixes if p in came)
        properties = tuple(
            (name, _property(old_key, i), _property(new_key, i))
            for name, i in _PROPERTIES
            if old_key[i] != new_key[i]
        )
        if added or removed or properties:
            changes.append(TagChange(names[t], ChangeKind.CHANGED, added, removed, properties))
    return tuple(sorted(changes, key=lambda c: c.name))


def _member_texts(conn: sqlite3.Connection, tags: list[int], s: int) -> dict[int, set[str]]:
    """The prefixes of each of these tags at seq ``s - 1`` (what covers ``s`` after a shift),
    as text: one row per tag, joined by SQLite."""
    texts: dict[int, set[str]] = {}
    for t in tags:
        (joined,) = conn.execute(
            "SELECT group_concat(p.prefix, ' ') FROM memberships m "
            "JOIN prefixes p ON p.id = m.prefix_id WHERE m.tag_id = ? "
            "AND m.from_seq < ? AND (m.to_seq IS NULL OR m.to_seq > ?)",
            (t, s, s),
        ).fetchone()
        texts[t] = set(joined.split(" ")) if joined else set()
    return texts


def _intervals_at(
    conn: sqlite3.Connection, pairs: list[tuple[int, int]], s: int
) -> dict[Row, tuple[int, int | None]]:
    """(from_seq, to_seq) of the membership interval of each (tag_id, prefix_id) covering
    ``s - 1``."""
    found: dict[Row, tuple[int, int | None]] = {}
    for pair in pairs:
        row = conn.execute(
            "SELECT from_seq, to_seq FROM memberships WHERE tag_id = ? AND prefix_id = ? "
            "AND from_seq < ? AND (to_seq IS NULL OR to_seq > ?)",
            (*pair, s, s),
        ).fetchone()
        found[pair] = (row[0], row[1])
    return found


def _property(key: Row, index: int) -> object:
    """A stored property as ServiceTag holds it (networkFeatures back to a frozenset)."""
    return features_from_text(key[index]) if index == _FEATURES else key[index]


def _prefix_ids(conn: sqlite3.Connection, prefixes: set[str]) -> dict[str, int]:
    """The ids of stored prefixes."""
    ids: dict[str, int] = {}
    for chunk in _chunks(sorted(prefixes), 500):
        marks = ",".join("?" * len(chunk))
        ids.update(
            conn.execute(f"SELECT prefix, id FROM prefixes WHERE prefix IN ({marks})", chunk)
        )
    return ids


def _splice(
    conn: sqlite3.Connection,
    table: str,
    columns: Sequence[str],
    *,
    old: dict[Row, tuple[int, int | None]],
    new: set[Row],
    groups: Sequence[int],
    s: int,
    n: int | None,
) -> tuple[int, int]:
    """Apply one snapshot's items to an interval table. ``old`` maps each item present at ``s - 1``
    to its interval's (from_seq, to_seq); ``columns[0]`` is tag_id, the group the item belongs to.
    Returns (items added, items removed) relative to ``s - 1``."""
    match = " AND ".join(f"{c} IS ?" for c in columns)
    gone = [item for item in old if item not in new]
    conn.executemany(
        f"UPDATE {table} SET to_seq = ? WHERE {match} AND from_seq = ?",
        [(s, *item, old[item][0]) for item in gone],
    )
    if n is not None:  # still present in the next snapshot: the interval goes on from there
        reopen = [(*item, n, old[item][1]) for item in gone if old[item][1] != n]
        _insert_intervals(conn, table, columns, reopen)
    arriving = [item for item in new if item not in old]
    if n is not None and arriving:
        starting_at_n = _items_starting_at(conn, table, columns, groups, n)
        extend = [item for item in arriving if item in starting_at_n]
        conn.executemany(
            f"UPDATE {table} SET from_seq = ? WHERE {match} AND from_seq = ?",
            [(s, *item, n) for item in extend],
        )
        arriving = [item for item in arriving if item not in starting_at_n]
    _insert_intervals(conn, table, columns, [(*item, s, n) for item in arriving])
    return len(new) - (len(old) - len(gone)), len(gone)


def _items_starting_at(
    conn: sqlite3.Connection, table: str, columns: Sequence[str], groups: Sequence[int], n: int
) -> set[Row]:
    found: set[Row] = set()
    for chunk in _chunks(list(groups), 500):
        marks = ",".join("?" * len(chunk))
        found.update(
            tuple(row)
            for row in conn.execute(
                f"SELECT {', '.join(columns)} FROM {table} "
                f"WHERE from_seq = ? AND tag_id IN ({marks})",
                (n, *chunk),
            )
        )
    return found


def _insert_intervals(
    conn: sqlite3.Connection, table: str, columns: Sequence[str], rows: list[Row]
) -> None:
    if rows:
        rows.sort()  # in index order, SQLite appends to the B-tree instead of seeking (3x faster)
        names = ", ".join((*columns, "from_seq", "to_seq"))
        marks = ",".join("?" * (len(columns) + 2))
        conn.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)


def _ensure_tags(conn: sqlite3.Connection, cloud: str, names: Iterable[str]) -> dict[str, int]:
    ids = dict(conn.execute("SELECT name, id FROM tags WHERE cloud = ?", (cloud,)).fetchall())
    missing = [(cloud, name) for name in names if name not in ids]
    if missing:
        conn.executemany("INSERT INTO tags (cloud, name) VALUES (?, ?)", missing)
        ids = dict(conn.execute("SELECT name, id FROM tags WHERE cloud = ?", (cloud,)).fetchall())
    return ids


def _ensure_prefixes(
    conn: sqlite3.Connection, prefixes: set[str], networks: Networks
) -> dict[str, int]:
    """Ids for these prefixes, inserting the ones never seen before (their family, length and
    network from ``networks`` where the parser has them)."""
    if len(prefixes) > 2000:
        ids = dict(conn.execute("SELECT prefix, id FROM prefixes").fetchall())
    else:
        ids = {}
        for chunk in _chunks(sorted(prefixes), 500):
            marks = ",".join("?" * len(chunk))
            ids.update(
                conn.execute(f"SELECT prefix, id FROM prefixes WHERE prefix IN ({marks})", chunk)
            )
    missing = sorted(p for p in prefixes if p not in ids)
    if missing:
        first = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM prefixes").fetchone()[0]
        rows = []
        for number, p in enumerate(missing, start=first):
            # Canonical text the parser validated already: not re-checked, only packed again
            # when the parser's result is not at hand.
            known = networks.get(p)
            if known is not None and known[3] == p:
                rows.append((number, p, known[0], known[2], known[1]))
            else:
                fam, packed, length, _ = parse_prefix(p)
                rows.append((number, p, fam, length, packed))
            ids[p] = number
        conn.executemany(
            "INSERT INTO prefixes (id, prefix, family, length, network) VALUES (?,?,?,?,?)", rows
        )
    return ids


def _chunks(items: list[_T], size: int) -> Iterable[list[_T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
