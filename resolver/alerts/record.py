"""What each watch saw: events raised when a snapshot is stored, and by the scheduler's clock.

:func:`record_ingest` runs inside the transaction that stores a file (resolver.refresh's
``after_save``), so an event is committed with its snapshot or not at all. Rules:

- the first snapshot of a cloud is a baseline: no events;
- a backfill (a file older than the current one) and a duplicate raise nothing;
- a new current snapshot raises, per watch its changes touch, one ``CHANGED`` event (prefixes
  added and removed per watched tag, tags added or removed), and per watch of the cloud a
  ``GAP`` event when changeNumbers were skipped;
- a newer file that is quarantined raises ``QUARANTINED`` per watch of the cloud;
- several newer files stored one after the other (an import) make ONE event per watch for the
  whole step: while no delivery round has taken the event of the previous step, the next step
  extends it (from the snapshot current before the first file to the one current after the last).

:func:`fetch_failing_event` and :func:`stale_event` are the time-based events of ``aztags run``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from cache import outbox
from cache.history import timeline
from resolver.alerts.event import Event, EventType, new_id
from resolver.alerts.watches import SnapshotView, Watch, watched_names
from resolver.clouds import get_cloud
from resolver.errors import AztagsError
from resolver.ingest import IngestResult, Outcome, TagChange
from resolver.models import ChangeKind, Snapshot, SnapshotInfo, TagInfo
from resolver.prefixes import sort_prefixes
from resolver.refs import USABLE_AFTER, snapshot_day
from resolver.timelines import FILE, split_key

if TYPE_CHECKING:
    from cache.outbox_rows import StoredEvent

log = logging.getLogger("aztags")


# The tags of one stored snapshot by name (region, service), for profile and service watches.
Details = Callable[[sqlite3.Connection, SnapshotInfo], Mapping[str, TagInfo]]
# The tag names a profile watch's rules resolve to in one snapshot.
ProfileTags = Callable[[Watch, SnapshotView], set[str]]


def snapshot_doc(snapshot: SnapshotInfo) -> dict[str, Any]:
    return {
        "snapshot": snapshot.id,
        "change_number": snapshot.change_number,
        "file_date": snapshot.file_date.isoformat() if snapshot.file_date else None,
    }


def usable_from(snapshot: SnapshotInfo) -> date:
    """The earliest day Azure may use prefixes first published in ``snapshot``."""
    return snapshot_day(snapshot) + USABLE_AFTER


@dataclass(frozen=True, slots=True)
class Recorder:
    """The ``after_save`` callback that writes a stored file's events (see the module doc).

    ``details`` and ``profile_tags`` are only called for profile and service watches."""

    watches: Sequence[Watch]
    details: Details
    profile_tags: ProfileTags
    now: Callable[[], datetime]

    def __call__(self, conn: sqlite3.Connection, result: IngestResult, parsed: Snapshot) -> None:
        if result.outcome in (Outcome.BACKFILL, Outcome.DUPLICATE):
            return
        if split_key(result.snapshot.cloud)[1] != FILE:
            return  # watches follow the published file; the API's answers raise none
        cloud = get_cloud(result.snapshot.cloud).key
        watches = [w for w in self.watches if w.cloud == cloud]
        if not watches:
            return
        accepted = timeline(conn, result.snapshot.cloud)
        if result.outcome == Outcome.QUARANTINED:
            current = accepted[-1] if accepted else None
            if current is None or result.snapshot.change_number > current.change_number:
                for watch in watches:
                    event = quarantined_event(watch, result, self.now())
                    outbox.add_event(conn, event, watch.channels)
            return
        # Outcome.CURRENT: the new snapshot is the last of the timeline.
        if len(accepted) < 2:
            return  # the cloud's first snapshot: a baseline
        before, after = accepted[-2], accepted[-1]
        views = (
            SnapshotView(lambda: self.details(conn, before), self.profile_tags),
            SnapshotView(lambda: {t.name: t for t in parsed.tags}, self.profile_tags),
        )
        record_step(conn, watches, before, after, result.changes, views, self.now())


def record_step(
    conn: sqlite3.Connection,
    watches: Sequence[Watch],
    before: SnapshotInfo,
    after: SnapshotInfo,
    changes: Sequence[TagChange],
    views: tuple[SnapshotView, SnapshotView],
    now: datetime,
) -> None:
    """The CHANGED and GAP events of one step from ``before`` to ``after`` (adjacent in the
    timeline; ``views`` of their tags), each merged into its watch's pending event of the
    previous step if there is one. A removed tag is looked up in ``before``, others in
    ``after``."""
    names_after = [c.name for c in changes if c.kind != ChangeKind.REMOVED]
    names_before = [c.name for c in changes if c.kind == ChangeKind.REMOVED]
    # Every watch's event of the previous step that a delivery round has not taken, read once.
    pending = outbox.mergeable_events(
        conn, get_cloud(after.cloud).key, before.id, (EventType.CHANGED, EventType.GAP)
    )
    for watch in watches:
        try:
            chosen = watched_names(watch, names_after, views[1]) | watched_names(
                watch, names_before, views[0]
            )
        except AztagsError as e:  # a region the file lacks...: that watch only, said once
            log.warning("watch %s: %s; no change event for it this time.", watch.name, e)
            continue
        tags = [_tag_doc(c, watch) for c in changes if c.name in chosen]
        changed = [t for t in tags if t]
        _merge_or_add(conn, watch, EventType.CHANGED, before, after, changed, now, pending)
        if after.change_number > before.change_number + 1:
            _merge_or_add(conn, watch, EventType.GAP, before, after, None, now, pending)


def _tag_doc(change: TagChange, watch: Watch) -> dict[str, Any] | None:
    if watch.family == "any":  # every prefix (Watch.keeps, without a call per prefix)
        added, removed = list(change.added), list(change.removed)
    else:
        added = [p for p in change.added if watch.keeps(p)]
        removed = [p for p in change.removed if watch.keeps(p)]
    if not added and not removed:
        return None
    return {"name": change.name, "change": str(change.kind), "added": added, "removed": removed}


def _merge_or_add(
    conn: sqlite3.Connection,
    watch: Watch,
    type_: EventType,
    before: SnapshotInfo,
    after: SnapshotInfo,
    tags: list[dict[str, Any]] | None,
    now: datetime,
    pending: dict[tuple[str, str], StoredEvent],
) -> None:
    """Add the event of one watch and type for the step, or extend its pending event of the
    previous step (``pending``, by watch name and type: taken out once updated or deleted)."""
    cloud = get_cloud(after.cloud).key
    previous = pending.get((watch.name, str(type_)))
    start = snapshot_doc(before)
    if previous is not None:
        start = dict(previous.event.data["from"])
        if tags is not None:
            tags = merge_tags(previous.event.data["tags"], tags)
    if type_ == EventType.CHANGED:
        assert tags is not None
        if not tags:  # nothing watched changed (or the step undid the previous one)
            if previous is not None:
                outbox.delete_event(conn, previous.event.id)
                del pending[(watch.name, str(type_))]
            return
        data = changed_data(start, after, tags)
        summary = changed_summary(watch, cloud, data)
        big_enough = data["counts"]["added"] + data["counts"]["removed"] >= watch.min_change
    else:
        missed = list(range(int(start["change_number"]) + 1, after.change_number))
        stored = {s.change_number for s in timeline(conn, after.cloud)}
        missed = [n for n in missed if n not in stored]
        if not missed:
            return
        data = {"from": start, "to": snapshot_doc(after), "missed_change_numbers": missed}
        summary = (
            f"{cloud}: {len(missed)} publication(s) never seen (changeNumber "
            f"{_ranges(missed)}), between {start['change_number']} and {after.change_number}"
        )
        big_enough = True
    queued = big_enough and bool(watch.channels)
    event_id = previous.event.id if previous is not None else new_id("evt")
    created = previous.event.created if previous is not None else now
    event = Event(event_id, type_, created, cloud, watch.name, summary, data)
    if previous is None:
        outbox.add_event(
            conn,
            event,
            watch.channels,
            from_snapshot=before.id,
            to_snapshot=after.id,
            queued=queued,
        )
    else:
        outbox.update_event(conn, event, watch.channels, to_snapshot=after.id, queued=queued)
        del pending[(watch.name, str(type_))]


def _ranges(numbers: Sequence[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``3-5, 9``."""
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(parts)


def merge_tags(
    first: Iterable[Mapping[str, Any]], second: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Two consecutive steps' tag changes as one: a prefix added then removed is no change, one
    removed then added back neither. Net added = (A1 - R2) | (A2 - R1), removed = (R1 - A2) |
    (R2 - A1). A tag added in the first step stays ``added``, one removed in the second becomes
    ``removed`` (unless it was added in the first: then it never was)."""
    merged: dict[str, dict[str, Any]] = {t["name"]: dict(t) for t in first}
    for tag in second:
        old = merged.get(tag["name"])
        if old is None:
            merged[tag["name"]] = dict(tag)
            continue
        a1, r1, a2, r2 = (
            set(x) for x in (old["added"], old["removed"], tag["added"], tag["removed"])
        )
        kind = old["change"]
        if tag["change"] == "removed":
            kind = None if old["change"] == "added" else "removed"
        elif old["change"] == "removed" and tag["change"] == "added":
            kind = "changed"
        added, removed = (a1 - r2) | (a2 - r1), (r1 - a2) | (r2 - a1)
        if kind is None or not (added or removed):
            del merged[tag["name"]]
            continue
        merged[tag["name"]] = {
            "name": tag["name"],
            "change": kind,
            "added": list(sort_prefixes(added)),
            "removed": list(sort_prefixes(removed)),
        }
    return [merged[name] for name in sorted(merged)]


def changed_data(
    start: Mapping[str, Any], after: SnapshotInfo, tags: list[dict[str, Any]]
) -> dict[str, Any]:
    added = sum(len(t["added"]) for t in tags)
    removed = sum(len(t["removed"]) for t in tags)
    return {
        "from": dict(start),
        "to": snapshot_doc(after),
        "azure_may_use_added_from": usable_from(after).isoformat() if added else None,
        "counts": {"tags": len(tags), "added": added, "removed": removed},
        "tags": sorted(tags, key=lambda t: t["name"]),
    }


def changed_summary(watch: Watch, cloud: str, data: Mapping[str, Any]) -> str:
    counts = data["counts"]
    tags = data["tags"]
    what = tags[0]["name"] if len(tags) == 1 else f"{len(tags)} tags"
    new = sum(t["change"] == "added" for t in tags)
    gone = sum(t["change"] == "removed" for t in tags)
    extra = "".join(
        [f", {new} new tag(s)" if new else "", f", {gone} tag(s) removed" if gone else ""]
    )
    return (
        f"{cloud}/{watch.name}: {what} changed, +{counts['added']} -{counts['removed']} prefixes"
        f"{extra} (changeNumber {data['from']['change_number']} -> "
        f"{data['to']['change_number']})"
    )


def quarantined_event(watch: Watch, result: IngestResult, now: datetime) -> Event:
    snapshot = result.snapshot
    cloud = get_cloud(snapshot.cloud).key
    reason = snapshot.quarantine_reason or "; ".join(result.notes) or "quarantined"
    return Event(
        new_id("evt"),
        EventType.QUARANTINED,
        now,
        cloud,
        watch.name,
        f"{cloud}: the file with changeNumber {snapshot.change_number} was quarantined "
        f"(not used): {reason}",
        {"snapshot": snapshot_doc(snapshot), "reason": reason, "source": snapshot.source},
    )


def fetch_failing_event(
    watch: Watch, cloud: str, failures: int, error: str, since: datetime | None, now: datetime
) -> Event:
    return Event(
        new_id("evt"),
        EventType.FETCH_FAILING,
        now,
        cloud,
        watch.name,
        f"{cloud}: fetching has failed {failures} times in a row: {error}",
        {
            "failures": failures,
            "last_error": error,
            "last_success": since.isoformat().replace("+00:00", "Z") if since else None,
        },
    )


def stale_event(
    watch: Watch, snapshot: SnapshotInfo, age_days: int, limit_days: int, now: datetime
) -> Event:
    cloud = get_cloud(snapshot.cloud).key
    return Event(
        new_id("evt"),
        EventType.STALE,
        now,
        cloud,
        watch.name,
        f"{cloud}: no new publication for {age_days} days (newest: changeNumber "
        f"{snapshot.change_number}, file date {snapshot.file_date or 'unknown'}; limit "
        f"{limit_days} days)",
        {"current": snapshot_doc(snapshot), "age_days": age_days, "limit_days": limit_days},
    )


def api_lag_event(
    watch: Watch,
    file: SnapshotInfo,
    api: SnapshotInfo,
    lagging: Sequence[Any],
    limit_days: int,
    now: datetime,
) -> Event:
    """A ``source.api_lag`` event: ``lagging`` are resolver.reconcile.Lag items (tag, prefix,
    side "announced" or "withdrawing", since) older than ``limit_days``, of the watch's tags."""
    cloud = get_cloud(file.cloud).key
    tags: dict[str, dict[str, Any]] = {}
    for lag in lagging:
        entry = tags.setdefault(lag.tag, {"name": lag.tag, "announced": [], "withdrawing": []})
        entry[lag.side].append({"prefix": lag.prefix, "since": lag.since.isoformat()})
    announced = sum(len(t["announced"]) for t in tags.values())
    withdrawing = sum(len(t["withdrawing"]) for t in tags.values())
    return Event(
        new_id("evt"),
        EventType.API_LAG,
        now,
        cloud,
        watch.name,
        f"{cloud}/{watch.name}: {announced} prefix(es) in the file for more than {limit_days} "
        f"days without reaching the Discovery API, {withdrawing} still in the API more than "
        f"{limit_days} days after leaving the file (file changeNumber {file.change_number}, "
        f"API changeNumber {api.change_number})",
        {
            "file": snapshot_doc(file),
            "api": snapshot_doc(api),
            "limit_days": limit_days,
            "counts": {"tags": len(tags), "announced": announced, "withdrawing": withdrawing},
            "tags": [tags[name] for name in sorted(tags)],
        },
    )
