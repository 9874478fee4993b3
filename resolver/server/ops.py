"""Operations and the feed of changes:

- ``/healthz`` for load balancers: 200 while the server can answer from its database (each
  cloud's staleness is in the body: old data is not a reason to take every replica out of a load
  balancer at once), 503 when the database cannot be read or holds no snapshot yet. Open even
  when ``[auth]`` is on.
- ``/metrics``: Prometheus text format (resolver/server/metrics.py).
- ``/changes.atom``: an Atom 1.0 feed of what each snapshot changed, or (``?tag=NAME``) of one
  tag's versions (resolver/server/atom.py renders it), with ETag/304 like the feeds.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import urlencode

from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse

from resolver.clouds import CLOUDS
from resolver.errors import AztagsError, UsageError
from resolver.models import SnapshotInfo
from resolver.query import TagStore
from resolver.server import atom
from resolver.server.responses import cached, with_validators

log = logging.getLogger("aztags")

ENTRIES = 12  # entries in a feed: the newest snapshots, or the tag's newest versions
# Kept in memory: rendered feeds by ETag (readers polling after a new snapshot cost one
# render), and entries by the snapshots they compare (a new snapshot is one new diff: a weekly
# Public diff takes 0.1-0.3 s).
FEEDS_KEPT = 32
ENTRIES_KEPT = 1024

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Kept(Generic[K, V]):
    """A small least-recently-used map, safe across the server's worker threads."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def install(app: FastAPI) -> None:
    from resolver.server import metrics

    db = app.state.db
    app.state.metrics = metrics.install(app, db)
    feeds: _Kept[str, bytes] = _Kept(FEEDS_KEPT)
    kept: _Kept[tuple[str, ...], atom.Entry] = _Kept(ENTRIES_KEPT)

    @app.get(
        "/healthz",
        tags=["operations"],
        summary="200 while the database can be read (staleness in the body), else 503",
        responses={503: {"description": "The database cannot be read or holds no snapshot"}},
    )
    def healthz() -> JSONResponse:
        from resolver.status import cloud_status

        headers = {"Cache-Control": "no-store"}
        try:
            with db.view() as conn:
                statuses = cloud_status(conn, CLOUDS, db.max_age_days, datetime.now(UTC))
        except (AztagsError, sqlite3.Error) as e:
            log.warning("healthz: %s", e)
            detail = str(e) if isinstance(e, AztagsError) else "The database cannot be read."
            return JSONResponse(
                {"status": "unavailable", "detail": detail}, status_code=503, headers=headers
            )
        clouds = [
            {
                "cloud": s.cloud.key,
                "change_number": s.snapshot.change_number,
                "file_date": s.snapshot.file_date.isoformat() if s.snapshot.file_date else None,
                "age_days": s.staleness.age_days,
                "stale": s.staleness.stale,
            }
            for s in statuses
        ]
        return JSONResponse(
            {"status": "ok", "stale": any(c["stale"] for c in clouds), "clouds": clouds},
            headers=headers,
        )

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics: snapshots, fetches, alerts, requests",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}},
    )
    def prometheus() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        body = generate_latest(app.state.metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

    @app.get(
        "/changes.atom",
        tags=["feeds"],
        summary=(
            "Atom feed of changes: per snapshot, one tag's versions (?tag=), "
            "or a watch's alert events (?watch=)"
        ),
        response_class=Response,
        responses={
            200: {"content": {atom.MEDIA_TYPE.split(";")[0]: {}}},
            304: {"description": "Not modified (If-None-Match)"},
        },
    )
    def changes_atom(
        request: Request,
        cloud: Annotated[str, Query(max_length=16)] = "public",
        tag: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
        watch: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    ) -> Response:
        from cache import history

        base = str(request.base_url)
        if watch is not None:
            if tag is not None:
                raise UsageError("Ask for ?watch= or ?tag=, not both.")
            return _watch_feed(request, db, cloud, watch)
        with db.view() as conn:
            store = db.store(conn, cloud)
            current = store.snapshot()  # no snapshot: 503
            timeline = [s for s in store.snapshots() if s.seq is not None]
            name = None
            if tag is not None:
                store.history(tag)  # an unknown tag: 404 with close matches
                names = {n.casefold(): n for n in history.tag_names(conn, store.cloud.name)}
                name = names[tag.strip().casefold()]
            # a backfill changes the feed without changing the current snapshot
            digest = hashlib.sha256(
                "".join(f"{s.seq}:{s.sha256};" for s in timeline).encode()
            ).hexdigest()
            etag, unchanged = cached(request, current, store.cloud.key, name, digest, base)
            if unchanged is not None:
                return unchanged
            body = feeds.get(etag)
            if body is None:
                if name is None:
                    entries = _snapshot_entries(store, timeline, base, kept)
                else:
                    entries = _tag_entries(conn, store.cloud.key, name, timeline, base, kept)
                feed = _feed(request, store.cloud.name, name, current, entries)
                body = atom.render(feed)
                feeds.put(etag, body)
        response = Response(body, media_type=atom.MEDIA_TYPE)
        return with_validators(response, current, etag)


def _watch_feed(request: Request, db: Any, cloud: str, watch: str) -> Response:
    """``/changes.atom?watch=NAME``: the alert events of one ``[[watch]]`` (what ``aztags run``,
    ``fetch`` or ``import`` recorded in the outbox), newest first."""
    from cache import outbox
    from resolver import __version__

    with db.view() as conn:
        store = db.store(conn, cloud)
        current = store.snapshot()  # no snapshot: 503
        events = outbox.events_of_watch(conn, watch, ENTRIES) if outbox.has_outbox(conn) else []
        newest = events[0].event.id if events else ""
        etag, unchanged = cached(request, current, "watch", watch, newest)
        if unchanged is not None:
            return unchanged
    entries = tuple(atom.event_entry(s.event) for s in events)
    feed = atom.Feed(
        id=atom.stable_id("watch", watch),
        title=f"aztags: changes seen by watch {watch}",
        subtitle=(
            f"The newest {ENTRIES} alert events of watch {watch}"
            if entries
            else f"No alert event recorded for watch {watch} yet."
        ),
        updated=max([e.updated for e in entries] or [current.fetched_at]),
        self_link=str(request.url),
        alternate_link=str(request.base_url),
        entries=entries,
        generator_version=__version__,
    )
    return with_validators(Response(atom.render(feed), media_type=atom.MEDIA_TYPE), current, etag)


def _feed(
    request: Request,
    cloud_name: str,
    tag: str | None,
    current: SnapshotInfo,
    entries: list[atom.Entry],
) -> atom.Feed:
    from resolver import __version__

    what = f"{tag} in {cloud_name}" if tag else f"{cloud_name} service tags"
    updated = max([e.updated for e in entries] or [current.fetched_at])
    return atom.Feed(
        id=atom.stable_id("feed", cloud_name, tag or ""),
        title=f"aztags: changes of {what}",
        subtitle=(
            f"What each stored snapshot changed (up to the newest {ENTRIES}); current: "
            f"changeNumber {current.change_number}."
        ),
        updated=updated,
        self_link=str(request.url),
        alternate_link=str(request.base_url),
        entries=tuple(entries),
        generator_version=__version__,
    )


def _diff_link(
    base: str, cloud: str, before: SnapshotInfo, after: SnapshotInfo, tag: str = ""
) -> str:
    query = {
        "cloud": cloud,
        "from": f"cn:{before.change_number}",
        "to": f"cn:{after.change_number}",
    }
    if tag:
        query["tag"] = tag
    return f"{base}v1/diff?{urlencode(query)}"


def _snapshot_entries(
    store: TagStore,
    timeline: Sequence[SnapshotInfo],
    base: str,
    kept: _Kept[tuple[str, ...], atom.Entry],
) -> list[atom.Entry]:
    """One entry per snapshot, newest first: its diff against the one before it (the same
    reading of the history as ``aztags diff``: TagStore.changes_between)."""
    cloud = store.cloud.key
    entries = []
    start = max(0, len(timeline) - ENTRIES)
    for index in range(len(timeline) - 1, start - 1, -1):
        snapshot = timeline[index]
        before_sha = timeline[index - 1].sha256 if index else ""
        key = ("snapshot", cloud, before_sha, snapshot.sha256, base)
        entry = kept.get(key)
        if entry is not None:
            entries.append(entry)
            continue
        if index == 0:
            since = {"cloud": cloud, "since": f"cn:{snapshot.change_number}"}
            link = f"{base}v1/changes?{urlencode(since)}"
            entry = atom.snapshot_entry(snapshot, None, (), None, link)
            kept.put(key, entry)
            entries.append(entry)
            continue
        before = timeline[index - 1]
        low, high = int(before.seq or 0), int(snapshot.seq or 0)
        tags, summary, _ = store.changes_between(low, high, None)
        link = _diff_link(base, cloud, before, snapshot)
        entry = atom.snapshot_entry(snapshot, before, tags, summary, link)
        kept.put(key, entry)
        entries.append(entry)
    return entries


def _tag_entries(
    conn: sqlite3.Connection,
    cloud: str,
    name: str,
    timeline: Sequence[SnapshotInfo],
    base: str,
    kept: _Kept[tuple[str, ...], atom.Entry],
) -> list[atom.Entry]:
    """One entry per version of the tag (and one for its removal), newest first."""
    from cache import history
    from resolver.diff import diff_tags

    cloud_name = timeline[0].cloud if timeline else ""
    position = {s.seq: i for i, s in enumerate(timeline)}
    steps: list[tuple[SnapshotInfo, Any]] = []
    for version in history.load_tag_history(conn, cloud_name, name):
        steps.append((version.snapshot, version))
        if version.ended is not None:
            steps.append((version.ended, None))
    steps.sort(key=lambda step: int(step[0].seq or 0), reverse=True)
    entries = []
    for snapshot, version in steps[:ENTRIES]:
        index = position.get(snapshot.seq, 0)
        before_sha = timeline[index - 1].sha256 if index else ""
        kind = "removed" if version is None else "version"
        key = ("tag", cloud, name, kind, before_sha, snapshot.sha256, base)
        entry = kept.get(key)
        if entry is None:
            if index == 0:  # the first snapshot stored: nothing to compare with
                entry = atom.tag_entry(name, snapshot, version, None, None)
            else:
                before = timeline[index - 1]
                old = history.load_tags(conn, cloud_name, int(before.seq or 0), [name])
                new = history.load_tags(conn, cloud_name, int(snapshot.seq or 0), [name])
                diffs, _ = diff_tags({t.name: t for t in old}, {t.name: t for t in new})
                link = _diff_link(base, cloud, before, snapshot, name)
                entry = atom.tag_entry(name, snapshot, version, diffs[0] if diffs else None, link)
            kept.put(key, entry)
        entries.append(entry)
    return entries
