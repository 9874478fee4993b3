"""Reads of the store: snapshot metadata, and point-in-time reads over the interval tables (what
a cloud's tags held at any stored snapshot). cache/store.py writes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from resolver.models import ServiceTag, SnapshotInfo, TagSummary
from resolver.prefixes import BITS

if TYPE_CHECKING:
    from resolver.history import TagVersion

# -- snapshot metadata -----------------------------------------------------------------------------

SNAPSHOT_COLUMNS = (
    "id, cloud, change_number, file_date, sha256, source, fetched_at, etag, last_modified, size, "
    "tag_count, prefix_count, quarantined, seq, quarantine_reason"
)


def features_from_text(text: str | None) -> frozenset[str] | None:
    return None if text is None else frozenset(f for f in text.split(",") if f)


def snapshot_row(conn: sqlite3.Connection, snapshot_id: int) -> tuple[Any, ...]:
    """A snapshot's row of ``snapshots`` (SNAPSHOT_COLUMNS), for :func:`snapshot_info`."""
    row: tuple[Any, ...] = conn.execute(
        f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE id = ?", (snapshot_id,)
    ).fetchone()
    return row


def snapshot_info(row: Sequence[Any], current_id: int | None = None) -> SnapshotInfo:
    """A snapshot's metadata from its row (SNAPSHOT_COLUMNS); ``current_id``: the cloud's
    current snapshot."""
    return SnapshotInfo(
        id=row[0],
        cloud=row[1],
        change_number=row[2],
        file_date=date.fromisoformat(row[3]) if row[3] else None,
        sha256=row[4],
        source=row[5],
        fetched_at=datetime.fromisoformat(row[6]),
        etag=row[7],
        last_modified=row[8],
        size=row[9],
        tag_count=row[10],
        prefix_count=row[11],
        quarantined=bool(row[12]),
        seq=row[13],
        quarantine_reason=row[14],
        is_current=row[0] == current_id,
    )


def snapshot_at(conn: sqlite3.Connection, cloud: str, seq: int) -> SnapshotInfo | None:
    """The snapshot at ``seq`` of a cloud's timeline, if any."""
    row = conn.execute(
        f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE cloud = ? AND seq = ?", (cloud, seq)
    ).fetchone()
    return snapshot_info(row) if row else None


def load_snapshots(conn: sqlite3.Connection, cloud: str | None = None) -> list[SnapshotInfo]:
    """Every stored snapshot (quarantined ones too), by cloud, then timeline order."""
    where, args = ("WHERE cloud = ?", (cloud,)) if cloud else ("", ())
    rows = conn.execute(
        f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots {where} "
        "ORDER BY cloud, seq IS NULL, seq, change_number, id",
        args,
    ).fetchall()
    current = {
        c: i
        for c, i in conn.execute(
            "SELECT cloud, id FROM snapshots s WHERE seq = "
            "(SELECT max(seq) FROM snapshots WHERE cloud = s.cloud)"
        )
    }
    return [snapshot_info(row, current.get(row[1])) for row in rows]


def load_current(conn: sqlite3.Connection, cloud: str) -> SnapshotInfo | None:
    """The newest accepted snapshot of a cloud, or None when nothing is stored."""
    row = conn.execute(
        f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE cloud = ? AND seq IS NOT NULL "
        "ORDER BY seq DESC LIMIT 1",
        (cloud,),
    ).fetchone()
    return snapshot_info(row, row[0]) if row else None


def load_raw(conn: sqlite3.Connection, snapshot_id: int) -> bytes | None:
    """The stored file, uncompressed, or None when raw files are not kept."""
    row = conn.execute(
        "SELECT encoding, data FROM raw_files WHERE snapshot_id = ?", (snapshot_id,)
    ).fetchone()
    import gzip

    return gzip.decompress(row[1]) if row else None


# -- tags at a snapshot ----------------------------------------------------------------------------

# An interval [from_seq, to_seq) covers seq when:
_COVERS = "{t}.from_seq <= :seq AND ({t}.to_seq IS NULL OR {t}.to_seq > :seq)"


def timeline(conn: sqlite3.Connection, cloud: str) -> list[SnapshotInfo]:
    """A cloud's accepted snapshots (quarantined ones left out), in timeline order (``seq``)."""
    return [s for s in load_snapshots(conn, cloud) if s.seq is not None]


def snapshot_seq(conn: sqlite3.Connection, snapshot_id: int) -> int | None:
    """Where a snapshot stands in its cloud's timeline now (a backfill moves it); None while
    quarantined or when no such snapshot is stored."""
    row = conn.execute("SELECT seq FROM snapshots WHERE id = ?", (snapshot_id,)).fetchone()
    return None if row is None else int(row[0]) if row[0] is not None else None


def tag_names(conn: sqlite3.Connection, cloud: str) -> list[str]:
    """Every tag name ever stored for a cloud, in or out of the current snapshot."""
    return [name for (name,) in conn.execute("SELECT name FROM tags WHERE cloud = ?", (cloud,))]


def load_tags(
    conn: sqlite3.Connection, cloud: str, seq: int, names: Iterable[str] | None = None
) -> list[ServiceTag]:
    """The tags (with their prefixes, sorted) as they were at ``seq``; all of them, or ``names``."""
    params: dict[str, object] = {"cloud": cloud, "seq": seq}
    name_filter = ""
    if names is not None:
        wanted = sorted(set(names))
        marks = ",".join(f":n{i}" for i in range(len(wanted)))
        params.update({f"n{i}": n for i, n in enumerate(wanted)})
        name_filter = f"AND t.name IN ({marks})"
    versions = conn.execute(
        "SELECT t.id, t.name, v.change_number, v.region, v.region_id, v.system_service, "
        "v.network_features, v.platform FROM tags t JOIN tag_versions v ON v.tag_id = t.id "
        f"WHERE t.cloud = :cloud AND {_COVERS.format(t='v')} {name_filter} ORDER BY t.name",
        params,
    ).fetchall()
    prefixes: dict[int, list[str]] = {row[0]: [] for row in versions}
    for tag_id, prefix in _memberships(conn, params, name_filter):
        prefixes[tag_id].append(prefix)
    return [_service_tag(row[1:], prefixes[row[0]]) for row in versions]


def _memberships(
    conn: sqlite3.Connection, params: dict[str, object], name_filter: str
) -> Iterator[tuple[int, str]]:
    yield from conn.execute(
        "SELECT m.tag_id, p.prefix FROM tags t JOIN memberships m ON m.tag_id = t.id "
        "JOIN prefixes p ON p.id = m.prefix_id "
        f"WHERE t.cloud = :cloud AND {_COVERS.format(t='m')} {name_filter} "
        "ORDER BY m.tag_id, p.family, p.network, p.length",
        params,
    )


def changed_tag_ids(conn: sqlite3.Connection, cloud: str, low: int, high: int) -> list[int]:
    """The tags that may differ between seq ``low`` and seq ``high`` (``low <= high``): those with
    a tag_versions interval starting or ending in (low, high]. A new version starts whenever the
    tag's properties, changeNumber or prefix digest change (cache.store), so every tag whose
    prefixes or properties differ is among them; read from tag_versions alone, no prefix row."""
    return [
        tag_id
        for (tag_id,) in conn.execute(
            "SELECT DISTINCT v.tag_id FROM tag_versions v JOIN tags t ON t.id = v.tag_id "
            "WHERE t.cloud = :cloud AND ((v.from_seq > :low AND v.from_seq <= :high) "
            "OR (v.to_seq > :low AND v.to_seq <= :high)) ORDER BY v.tag_id",
            {"cloud": cloud, "low": low, "high": high},
        )
    ]


def _service_tag(row: Sequence[Any], prefixes: Iterable[str]) -> ServiceTag:
    """A tag from its tag_versions row (name, change_number, region, region_id, system_service,
    network_features, platform) and its prefixes, already in order."""
    name, cn, region, region_id, service, features, platform = row
    return ServiceTag(
        name=name,
        region=region,
        region_id=region_id,
        system_service=service,
        network_features=features_from_text(features),
        change_number=cn,
        prefixes=tuple(prefixes),
        platform=platform,
    )


Span = tuple[int, tuple[int, int]]  # (family, (first, last)) of a prefix


def _id_chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), 500):  # SQLite may allow as few as 999 parameters
        yield ids[start : start + 500]


def load_pairs(conn: sqlite3.Connection, cloud: str, seq: int) -> list[tuple[str, str]]:
    """Every (tag name, prefix) at ``seq``: the input of the reverse-lookup index."""
    return conn.execute(
        "SELECT t.name, p.prefix FROM tags t JOIN memberships m ON m.tag_id = t.id "
        "JOIN prefixes p ON p.id = m.prefix_id "
        f"WHERE t.cloud = :cloud AND {_COVERS.format(t='m')}",
        {"cloud": cloud, "seq": seq},
    ).fetchall()


def load_tag_summaries(
    conn: sqlite3.Connection, cloud: str, seq: int, names: Iterable[str] | None = None
) -> list[TagSummary]:
    """Every tag at ``seq`` (or only ``names``) with its counts, by name: read from tag_versions
    alone, no prefix rows."""
    params: dict[str, object] = {"cloud": cloud, "seq": seq}
    name_filter = ""
    if names is not None:
        wanted = sorted(set(names))
        if len(wanted) > 500:  # SQLite may allow as few as 999 parameters
            chosen = set(wanted)
            return [t for t in load_tag_summaries(conn, cloud, seq) if t.name in chosen]
        if not wanted:
            return []
        params.update({f"n{i}": n for i, n in enumerate(wanted)})
        name_filter = f"AND t.name IN ({','.join(f':n{i}' for i in range(len(wanted)))})"
    return [
        TagSummary(name, region, region_id, service, features_from_text(features), cn, v4, v6)
        for name, region, region_id, service, features, cn, v4, v6 in conn.execute(
            "SELECT t.name, v.region, v.region_id, v.system_service, v.network_features, "
            "v.change_number, v.ipv4_count, v.ipv6_count FROM tags t "
            "JOIN tag_versions v ON v.tag_id = t.id "
            f"WHERE t.cloud = :cloud AND {_COVERS.format(t='v')} {name_filter} ORDER BY t.name",
            params,
        )
    ]


def tag_names_at(conn: sqlite3.Connection, cloud: str, seq: int) -> list[str]:
    """The names of the tags at ``seq``, sorted: what a name lookup needs, without building a
    summary per tag."""
    return [
        name
        for (name,) in conn.execute(
            "SELECT t.name FROM tags t JOIN tag_versions v ON v.tag_id = t.id "
            f"WHERE t.cloud = :cloud AND {_COVERS.format(t='v')} ORDER BY t.name",
            {"cloud": cloud, "seq": seq},
        )
    ]


def load_tag_history(conn: sqlite3.Connection, cloud: str, name: str) -> list[TagVersion]:
    """Every version of a tag, oldest first, with how many prefixes each one added and removed."""
    from resolver.history import TagVersion  # only `history` needs it: not at every start-up

    snapshots = {s.seq: s for s in load_snapshots(conn, cloud) if s.seq is not None}
    rows = conn.execute(
        "SELECT v.from_seq, v.to_seq, v.change_number, v.region, v.system_service, "
        "v.network_features, v.ipv4_count, v.ipv6_count, v.tag_id FROM tag_versions v "
        "JOIN tags t ON t.id = v.tag_id WHERE t.cloud = ? AND t.name = ? ORDER BY v.from_seq",
        (cloud, name),
    ).fetchall()
    # Prefixes added and removed at each seq, for every version at once: one pass over the
    # tag's membership rows (not one query per version), so the time does not grow with
    # versions x rows.
    moved: dict[int, list[int]] = {}
    if rows:
        for seq, added, removed in conn.execute(
            "SELECT s, sum(a), sum(r) FROM (SELECT from_seq AS s, 1 AS a, 0 AS r FROM memberships "
            "WHERE tag_id = :t UNION ALL SELECT to_seq, 0, 1 FROM memberships WHERE tag_id = :t "
            "AND to_seq IS NOT NULL) GROUP BY s",
            {"t": rows[0][8]},
        ):
            moved[seq] = [added, removed]
    starts = {r[0] for r in rows}
    versions = []
    for from_seq, to_seq, cn, region, service, features, v4, v6, _ in rows:
        added, removed = moved.get(from_seq, (0, 0))
        gone = to_seq is not None and to_seq not in starts
        versions.append(
            TagVersion(
                snapshot=snapshots[from_seq],
                change_number=cn,
                region=region,
                system_service=service,
                network_features=features_from_text(features),
                ipv4_count=v4,
                ipv6_count=v6,
                prefixes_added=added or 0,
                prefixes_removed=removed or 0,
                ended=snapshots[to_seq] if gone else None,
            )
        )
    return versions


def prefix_lengths(conn: sqlite3.Connection, family: int) -> list[int]:
    """The prefix lengths that occur in the store for a family (IPv4: about 20)."""
    return [
        r[0]
        for r in conn.execute("SELECT DISTINCT length FROM prefixes WHERE family = ?", (family,))
    ]


def load_pairs_for(
    conn: sqlite3.Connection,
    cloud: str,
    seq: int,
    prefixes: Iterable[str] = (),
    within: tuple[int, bytes, bytes, int] | None = None,
) -> list[tuple[str, str]]:
    """(tag, prefix) pairs at ``seq`` for exactly these prefixes, and, with ``within`` =
    (family, first, last, length), for every prefix longer than ``length`` whose network lies in
    [first, last]. The candidates of a reverse lookup, read without loading the whole snapshot."""
    select = (
        # CROSS JOIN fixes the order: from the few candidate prefixes to their memberships
        # (idx_memberships_prefix_id) to their tags. Left to itself, the planner starts from
        # every tag of the cloud and reads all of their memberships.
        "SELECT t.name, p.prefix FROM prefixes p CROSS JOIN memberships m ON m.prefix_id = p.id "
        "CROSS JOIN tags t ON t.id = m.tag_id "
        f"WHERE t.cloud = :cloud AND {_COVERS.format(t='m')} AND "
    )
    return _rows_for(conn, select, {"cloud": cloud, "seq": seq}, prefixes, within)


def _rows_for(
    conn: sqlite3.Connection,
    select: str,
    params: dict[str, object],
    prefixes: Iterable[str],
    within: tuple[int, bytes, bytes, int] | None,
) -> list[Any]:
    """Rows of ``select`` (which ends in ``AND ``, with ``p`` the prefixes table) for exactly
    these prefixes, and with ``within`` = (family, first, last, length) for every prefix longer
    than ``length`` whose network lies in [first, last]."""
    rows: list[Any] = []
    wanted = list(prefixes)
    for start in range(0, len(wanted), 500):  # SQLite may allow as few as 999 parameters
        chunk = {f"p{i}": p for i, p in enumerate(wanted[start : start + 500])}
        rows += conn.execute(
            select + f"p.prefix IN ({','.join(':' + k for k in chunk)})", {**params, **chunk}
        ).fetchall()
    if within is not None:
        bounds = dict(zip(("family", "first", "last", "length"), within, strict=True))
        rows += conn.execute(
            select + "p.family = :family AND p.network BETWEEN :first AND :last "
            "AND p.length > :length",
            {**params, **bounds},
        ).fetchall()
    return rows


def first_seen(
    conn: sqlite3.Connection, cloud: str, seq: int, pairs: set[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """For (tag, prefix) pairs present at ``seq``: the seq from which each has been there
    without a break (the start of the interval covering ``seq``)."""
    found: dict[tuple[str, str], int] = {}
    for tag in sorted({tag for tag, _ in pairs}):
        for prefix, from_seq in conn.execute(
            "SELECT p.prefix, m.from_seq FROM tags t JOIN memberships m ON m.tag_id = t.id "
            "JOIN prefixes p ON p.id = m.prefix_id "
            f"WHERE t.cloud = :cloud AND t.name = :tag AND {_COVERS.format(t='m')}",
            {"cloud": cloud, "tag": tag, "seq": seq},
        ):
            if (tag, prefix) in pairs:
                found[(tag, prefix)] = from_seq
    return found


def prefix_spans(
    conn: sqlite3.Connection,
    cloud: str,
    prefixes: Iterable[str] = (),
    within: tuple[int, bytes, bytes, int] | None = None,
) -> list[tuple[str, str, int, int | None]]:
    """Every (tag, prefix, from_seq, to_seq) interval of a cloud's whole timeline for exactly
    these prefixes and, with ``within`` = (family, first, last, length), for every prefix longer
    than ``length`` whose network lies in [first, last]: the history of an address or a CIDR.
    Ordered by from_seq, then longest prefix first, then tag."""
    select = (
        "SELECT t.name, p.prefix, m.from_seq, m.to_seq, p.length FROM prefixes p "
        "JOIN memberships m ON m.prefix_id = p.id JOIN tags t ON t.id = m.tag_id "
        "WHERE t.cloud = :cloud AND "
    )
    rows = _rows_for(conn, select, {"cloud": cloud}, prefixes, within)
    rows.sort(key=lambda r: (r[2], -r[4], r[0], r[1]))
    return [(tag, prefix, from_seq, to_seq) for tag, prefix, from_seq, to_seq, _ in rows]


# -- a diff read in proportion to the change ------------------------------------------------------

# The prefixes a tag keeps from one snapshot to the other are read for a diff only when they may
# overlap one that it gained or lost: those in the same bucket (the network's first bytes: an
# IPv4 /16, an IPv6 /40) as a changed one, and every prefix shorter than a bucket. A changed
# prefix shorter than a bucket names each bucket it covers (at most 2**_MAX_SPREAD of them, else
# every kept prefix of its tag is read). Two CIDR blocks overlap only when one holds the other,
# so a kept prefix that shares no bucket with a changed one overlaps none of them. (Azure's
# IPv6 prefixes are /40 or longer; IPv6 /32 buckets read about twice as many kept IPv6 prefixes,
# none of which overlapped a change in the 24 Public files.)
_BUCKET_BYTES = {4: 2, 6: 5}
_MAX_SPREAD = 8


def load_tag_changes(
    conn: sqlite3.Connection,
    low: int,
    high: int,
    tag_ids: list[int],
    names: Iterable[str] | None = None,
) -> tuple[list[ServiceTag], list[ServiceTag], dict[str, Span], dict[tuple[str, str], int]]:
    """What :func:`resolver.diff.diff_tags` needs to compare the tags ``tag_ids`` (or those of
    them named in ``names``) at seq ``low`` and at seq ``high`` (``low <= high``), read in
    proportion to the change rather than to the tags' size.

    Returns the tags present at ``low`` and at ``high``, each prefix's (family, (first, last)),
    and for every (tag name, prefix) at ``high`` that arrived after ``low`` the seq from which it
    has been there without a break (as :func:`first_seen`). A tag present at only one of the two
    seqs holds all of its prefixes, sorted; a tag present at both holds the prefixes it gained
    or lost (sorted, as diff_tags sorts fastest) and then, of those it kept, only the ones that
    may overlap a gained or lost one (resolver.diff.diff_tags: the others change neither its
    prefix lists nor its address counts)."""
    wanted = None if names is None else set(names)
    old_rows: dict[int, tuple[Any, ...]] = {}
    new_rows: dict[int, tuple[Any, ...]] = {}
    for marks, params in _chunk_params(tag_ids, low, high):
        for row in conn.execute(
            "SELECT v.tag_id, v.from_seq, v.to_seq, t.name, v.change_number, v.region, "
            "v.region_id, v.system_service, v.network_features, v.platform FROM tag_versions v "
            "JOIN tags t ON t.id = v.tag_id WHERE v.from_seq <= :high "
            f"AND (v.to_seq IS NULL OR v.to_seq > :low) AND v.tag_id IN ({marks})",
            params,
        ):
            if wanted is not None and row[3] not in wanted:
                continue
            tag_id, first, end = row[0], row[1], row[2]
            if first <= low and (end is None or end > low):
                old_rows[tag_id] = row[3:]
            if end is None or end > high:
                new_rows[tag_id] = row[3:]
    ids = sorted(old_rows.keys() | new_rows.keys())
    names_of = {t: row[0] for rows in (old_rows, new_rows) for t, row in rows.items()}
    at_low: dict[int, list[str]] = {}
    at_high: dict[int, list[str]] = {}
    intervals: dict[str, Span] = {}
    since: dict[tuple[str, str], int] = {}
    # Pass 1: the membership intervals that start or end between the two seqs and hold their
    # prefix at one of them (not those that began and ended in between); and the buckets of the
    # prefixes that a tag present at both seqs gained or lost (see _BUCKET_BYTES).
    both = old_rows.keys() & new_rows.keys()
    buckets: set[tuple[int, bytes]] = set()
    every: set[int] = set()  # tags whose kept prefixes are all read
    for marks, params in _chunk_params(ids, low, high):
        for tag_id, first, prefix, network, length in conn.execute(
            "SELECT m.tag_id, m.from_seq, p.prefix, p.network, p.length "
            "FROM memberships m JOIN prefixes p ON p.id = m.prefix_id "
            f"WHERE m.tag_id IN ({marks}) AND ((m.from_seq > :low AND m.from_seq <= :high) "
            "OR (m.to_seq > :low AND m.to_seq <= :high)) "
            "AND (m.from_seq <= :low OR m.to_seq IS NULL OR m.to_seq > :high) "
            "ORDER BY m.tag_id, p.family, p.network, p.length",
            params,
        ):
            if first <= low:  # and it ends between the two
                side = at_low
            else:  # it begins between the two and is still there at high
                side = at_high
                since[(names_of[tag_id], prefix)] = first
            if tag_id in side:
                side[tag_id].append(prefix)
            else:
                side[tag_id] = [prefix]
            fam = 4 if len(network) == 4 else 6
            if prefix not in intervals:
                begin = int.from_bytes(network, "big")
                intervals[prefix] = (fam, (begin, begin + (1 << (BITS[fam] - length)) - 1))
            if tag_id in both:
                # (a prefix dropped and taken again in between is kept: its bucket is read
                # for nothing, which changes no answer)
                width = _BUCKET_BYTES[fam]
                if length >= 8 * width:
                    buckets.add((tag_id, network[:width]))
                else:
                    _add_buckets(buckets, every, tag_id, fam, *intervals[prefix][1])
    # Pass 2: of the prefixes kept by a tag present at both seqs, those that may overlap one
    # it gained or lost.
    neighbours: dict[int, list[str]] = {}
    if buckets or every:
        for tag_id, prefix, network, length in conn.execute(
            _kept_near_changes(buckets, every), {"low": low, "high": high}
        ):
            if tag_id in neighbours:
                neighbours[tag_id].append(prefix)
            else:
                neighbours[tag_id] = [prefix]
            if prefix not in intervals:
                fam = 4 if len(network) == 4 else 6
                start = int.from_bytes(network, "big")
                intervals[prefix] = (fam, (start, start + (1 << (BITS[fam] - length)) - 1))
    old_tags = [
        _service_tag(row, [*at_low.get(t, ()), *neighbours.get(t, ())])
        for t, row in old_rows.items()
    ]
    new_tags = [
        _service_tag(row, [*at_high.get(t, ()), *neighbours.get(t, ())])
        for t, row in new_rows.items()
    ]
    return old_tags, new_tags, intervals, since


def _chunk_params(ids: list[int], low: int, high: int) -> Iterator[tuple[str, dict[str, object]]]:
    """Per chunk of ``ids``: its ``:t0,:t1,...`` marks and its parameters, with ``low`` and
    ``high``."""
    for chunk in _id_chunks(ids):
        params: dict[str, object] = {"low": low, "high": high}
        params.update({f"t{i}": t for i, t in enumerate(chunk)})
        yield ",".join(f":t{i}" for i in range(len(chunk))), params


def _add_buckets(
    buckets: set[tuple[int, bytes]], every: set[int], tag_id: int, fam: int, first: int, last: int
) -> None:
    """Name the buckets of a changed prefix [first, last] shorter than a bucket (see
    _BUCKET_BYTES), or read every kept prefix of its tag when it covers too many."""
    width = _BUCKET_BYTES[fam]
    shift = BITS[fam] - 8 * width
    low_bucket, high_bucket = first >> shift, last >> shift
    if high_bucket - low_bucket >= 1 << _MAX_SPREAD:
        every.add(tag_id)
        return
    for bucket in range(low_bucket, high_bucket + 1):
        buckets.add((tag_id, bucket.to_bytes(width, "big")))


def _kept_near_changes(buckets: set[tuple[int, bytes]], every: set[int]) -> str:
    """The query of the (tag_id, prefix, network, length) kept between :low and :high
    by the tags of ``buckets`` and ``every`` that share a bucket with a changed prefix of their
    tag, or are shorter than a bucket (all of them for the tags of ``every``).

    The buckets are written into the statement as literals (integers and hexadecimal blobs
    made here, never text from outside): there can be tens of thousands of them, more than
    SQLite allows parameters, and a VALUES list is looked up through one temporary index."""
    tags = ",".join(str(t) for t in {t for t, _ in buckets} | every)
    values = ",".join(f"({t},X'{b.hex()}')" for t, b in buckets) or "(NULL,NULL)"
    all_of = ",".join(str(t) for t in every)
    v4, v6 = _BUCKET_BYTES[4], _BUCKET_BYTES[6]
    return (
        "SELECT m.tag_id, p.prefix, p.network, p.length FROM memberships m "
        f"JOIN prefixes p ON p.id = m.prefix_id WHERE m.tag_id IN ({tags}) "
        "AND m.from_seq <= :low AND (m.to_seq IS NULL OR m.to_seq > :high) AND ("
        f"m.tag_id IN ({all_of}) OR p.length < CASE p.family WHEN 4 THEN {8 * v4} "
        f"ELSE {8 * v6} END OR (m.tag_id, substr(p.network, 1, "
        f"CASE p.family WHEN 4 THEN {v4} ELSE {v6} END)) IN (VALUES {values}))"
    )
