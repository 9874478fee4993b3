"""Changes over time, for the web page's chart: ``/v1/tags/{name}/history`` and
``/v1/profiles/{name}/history?region=``.

A tag's history is ``aztags history NAME --json`` (``TagStore.history_report``, rendered by
``render_tag_history_json``) plus a ``series``: one entry per stored snapshot of the cloud, in
timeline order, with the prefixes the tag had then and how many it gained and lost in that
snapshot (0 and 0 where it did not change; ``prefixes`` null where the tag was not in the file).
The first stored snapshot is the ``baseline``: what it "added" is everything the tag held when
the store began, not a change. A profile's series sums its tags' (as resolved for the region in
the current snapshot; a tag used by several rules counts once, a prefix in two tags twice).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request, Response

from resolver.history import TagVersion
from resolver.models import SnapshotInfo
from resolver.query import TagStore
from resolver.render import render_snapshot_json, render_tag_history_json
from resolver.server.responses import Document, cached, with_validators

Cloud = Annotated[str, Query(max_length=16, description="public, usgov, china or germany")]


@dataclass(frozen=True, slots=True)
class Point:
    """One snapshot of the timeline, for one tag or summed over several."""

    snapshot: SnapshotInfo
    prefixes: int | None  # held in this snapshot; None: in none of the tags asked
    added: int
    removed: int
    baseline: bool  # the first stored snapshot: its "added" is what the store began with


def timeline(store: TagStore) -> list[SnapshotInfo]:
    """The cloud's accepted snapshots (quarantined ones left out), oldest first."""
    return sorted((s for s in store.snapshots() if s.seq is not None), key=lambda s: s.seq or 0)


def series(snapshots: Sequence[SnapshotInfo], versions: Iterable[TagVersion]) -> list[Point]:
    """Per snapshot: the prefixes a tag held and how many it gained and lost there. A version
    that starts in a snapshot brings its own counts; where the tag vanished, all of the last
    version's prefixes were removed."""
    added: dict[int, int] = {}
    removed: dict[int, int] = {}
    held: dict[int, int | None] = {}  # from this snapshot on (by id)
    for v in versions:
        total = v.ipv4_count + v.ipv6_count
        added[v.snapshot.id] = added.get(v.snapshot.id, 0) + v.prefixes_added
        removed[v.snapshot.id] = removed.get(v.snapshot.id, 0) + v.prefixes_removed
        held[v.snapshot.id] = total
        if v.ended is not None:
            removed[v.ended.id] = removed.get(v.ended.id, 0) + total
            held.setdefault(v.ended.id, None)
    points = []
    now: int | None = None
    for n, s in enumerate(snapshots):
        if s.id in held:
            now = held[s.id]
        points.append(Point(s, now, added.get(s.id, 0), removed.get(s.id, 0), n == 0))
    return points


def summed(snapshots: Sequence[SnapshotInfo], per_tag: Sequence[Sequence[Point]]) -> list[Point]:
    """Several tags' series (over the same snapshots) added up; none: no prefixes anywhere."""
    if not per_tag:
        return [Point(s, None, 0, 0, n == 0) for n, s in enumerate(snapshots)]
    out = []
    for column in zip(*per_tag, strict=True):
        held = [p.prefixes for p in column if p.prefixes is not None]
        first = column[0]
        out.append(
            Point(
                first.snapshot,
                sum(held) if held else None,
                sum(p.added for p in column),
                sum(p.removed for p in column),
                first.baseline,
            )
        )
    return out


def render_series_json(points: Iterable[Point]) -> list[dict[str, Any]]:
    return [
        {
            "change_number": p.snapshot.change_number,
            "file_date": p.snapshot.file_date,
            "prefixes": p.prefixes,
            "prefixes_added": p.added,
            "prefixes_removed": p.removed,
            "baseline": p.baseline,
        }
        for p in points
    ]


def _check(
    request: Request, store: TagStore, *parts: object
) -> tuple[SnapshotInfo, list[SnapshotInfo], str, Response | None]:
    """The current snapshot, the timeline, the ETag and a 304 when the client has this answer.
    The ETag covers every snapshot's content: an older file imported later changes a history
    without changing the current snapshot."""
    snapshot = store.snapshot()
    snapshots = timeline(store)
    etag, unchanged = cached(
        request, snapshot, store.cloud.key, *parts, *(s.sha256 for s in snapshots)
    )
    return snapshot, snapshots, etag, unchanged


def install(app: FastAPI) -> None:
    db = app.state.db
    settings = app.state.settings

    @app.get(
        "/v1/tags/{name}/history",
        tags=["api"],
        summary="A tag's versions, and prefixes added and removed per snapshot",
    )
    def tag_history(
        request: Request,
        name: Annotated[str, Path(max_length=128)],
        cloud: Cloud = "public",
    ) -> Response:
        with db.view() as conn:
            store = db.store(conn, cloud)
            snapshot, snapshots, etag, unchanged = _check(request, store)
            if unchanged is not None:
                return unchanged
            report = store.history_report(name)
        doc = render_tag_history_json(report)
        doc["series"] = render_series_json(series(snapshots, report.versions))
        return with_validators(Document(doc), snapshot, etag)

    @app.get(
        "/v1/profiles/{name}/history",
        tags=["api"],
        summary="Prefixes added and removed per snapshot, summed over a profile's tags",
    )
    def profile_history(
        request: Request,
        name: Annotated[str, Path(max_length=64)],
        cloud: Cloud = "public",
        region: Annotated[str | None, Query(max_length=64)] = None,
    ) -> Response:
        from resolver.profiles import find_profile, resolve_profile

        with db.view() as conn:
            store = db.store(conn, cloud)
            snapshot, snapshots, etag, unchanged = _check(request, store, region)
            if unchanged is not None:
                return unchanged
            resolved = resolve_profile(
                find_profile(name, settings.profile_dirs),
                cloud=store.cloud.name,
                region_text=region,
                tags={t.name: t for t in store.summaries(snapshot)},
                regions=store.regions(snapshot),
            )
            names = list(dict.fromkeys(r.tag.name for r in resolved.rules if r.tag is not None))
            per_tag = [series(snapshots, store.history(n)) for n in names]
        return with_validators(
            Document(
                {
                    "snapshot": render_snapshot_json(snapshot),
                    "profile": resolved.profile.name,
                    "cloud": resolved.cloud,
                    "region": resolved.region,
                    "tags": names,
                    "missing_rules": [
                        f"{r.rule.direction} {r.rule.protocol} {r.rule.ports} {r.rule.tag}"
                        for r in resolved.missing
                    ],
                    "counted": "summed over the profile's tags: a prefix in two of them "
                    "counts twice",
                    "series": render_series_json(summed(snapshots, per_tag)),
                }
            ),
            snapshot,
            etag,
        )
