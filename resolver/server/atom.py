"""The Atom 1.0 feed of changes (RFC 4287), rendered from what the store already answered: pure,
no database, no request.

Two kinds of entries:

- per snapshot (``/changes.atom``): what it changed against the snapshot before it in the
  timeline: tags added, removed and changed, with the prefixes each one gained and lost;
- per tag version (``/changes.atom?tag=NAME``): the prefixes the tag gained and lost in that
  snapshot, and an entry for the snapshot in which the tag disappeared, if it did.

Entry ids are ``urn:uuid:`` names derived (UUID v5) from the snapshot's content digest, never
from a row id or a time: the same in every copy of the database, so a feed reader polling two
replicas behind a load balancer sees each change once. ``updated`` is when the snapshot was
stored (its ``fetched_at``), ``published`` the date of its file.
"""

from __future__ import annotations

import html
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from resolver.alerts.event import Event
from resolver.diff import DiffSummary, TagDiff
from resolver.history import TagVersion
from resolver.models import SnapshotInfo

ATOM = "http://www.w3.org/2005/Atom"
MEDIA_TYPE = "application/atom+xml; charset=utf-8"
NAMESPACE = uuid.UUID("0d4c5e2a-7a3b-5c1e-9f40-61a7a2e3f0b1")  # aztags' own UUID v5 namespace
MAX_TAGS = 200  # per entry: tags listed; the rest are counted ("and 12 more tags")
MAX_PREFIXES = 100  # per tag and side: prefixes listed; the rest are counted
# Characters XML 1.0 cannot carry (a hostile file's tag name must not break the feed).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of an Atom feed (RFC 4287)."""

    id: str
    title: str
    updated: datetime
    published: datetime | None
    summary: str
    content_html: str
    link: str | None = None


@dataclass(frozen=True, slots=True)
class Feed:
    """An Atom feed's own elements (RFC 4287): its id, titles, links and last update."""

    id: str
    title: str
    subtitle: str
    updated: datetime
    self_link: str
    alternate_link: str | None
    entries: tuple[Entry, ...]
    generator_version: str = ""


def stable_id(*parts: object) -> str:
    """A URN the same for the same parts everywhere (UUID v5 in aztags' namespace)."""
    return "urn:uuid:" + str(uuid.uuid5(NAMESPACE, "\x1f".join(map(str, parts))))


def _when(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _day(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(), tzinfo=UTC)


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def render(feed: Feed) -> bytes:
    """The feed as an XML document (UTF-8)."""
    root = ET.Element("feed", {"xmlns": ATOM})

    def add(parent: ET.Element, name: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, name, {k: _clean(v) for k, v in attrs.items()})
        if text is not None:
            element.text = _clean(text)
        return element

    add(root, "id", feed.id)
    add(root, "title", feed.title)
    add(root, "subtitle", feed.subtitle)
    add(root, "updated", _when(feed.updated))
    add(root, "link", rel="self", href=feed.self_link, type="application/atom+xml")
    if feed.alternate_link:
        add(root, "link", rel="alternate", href=feed.alternate_link, type="text/html")
    author = add(root, "author")
    add(author, "name", "aztags")
    add(root, "generator", "aztags", version=feed.generator_version or "0")
    for entry in feed.entries:
        element = add(root, "entry")
        add(element, "id", entry.id)
        add(element, "title", entry.title)
        add(element, "updated", _when(entry.updated))
        if entry.published is not None:
            add(element, "published", _when(entry.published))
        if entry.link:
            add(element, "link", rel="alternate", href=entry.link)
        add(element, "summary", entry.summary)
        add(element, "content", entry.content_html, type="html")
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body


# -- entries from what the store answered ----------------------------------------------------------


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


def _prefix_list(prefixes: Sequence[str]) -> str:
    shown = ", ".join(html.escape(p) for p in prefixes[:MAX_PREFIXES])
    more = len(prefixes) - MAX_PREFIXES
    return shown + (f" and {more:,} more" if more > 0 else "")


def _tag_html(diff: TagDiff) -> str:
    parts = [f"<b>{html.escape(diff.name)}</b> ({html.escape(str(diff.status))})"]
    if diff.added:
        parts.append(f"added {_prefix_list(diff.added)}")
    if diff.removed:
        parts.append(f"removed {_prefix_list(diff.removed)}")
    if diff.recut:
        parts.append(f"{_count(len(diff.recut), 're-cut')} (same addresses, other prefixes)")
    for field, before, after in diff.properties:
        parts.append(
            f"{html.escape(field)}: {html.escape(str(before))} &#8594; {html.escape(str(after))}"
        )
    return "<li>" + "; ".join(parts) + "</li>"


def _diff_html(lead: str, tags: Sequence[TagDiff]) -> str:
    items = "".join(_tag_html(d) for d in tags[:MAX_TAGS])
    more = len(tags) - MAX_TAGS
    tail = f"<p>and {_count(more, 'more tag')}</p>" if more > 0 else ""
    return f"<p>{html.escape(lead)}</p>" + (f"<ul>{items}</ul>" if items else "") + tail


def _file(snapshot: SnapshotInfo) -> str:
    day = f", file of {snapshot.file_date.isoformat()}" if snapshot.file_date else ""
    return f"changeNumber {snapshot.change_number}{day}"


def snapshot_entry(
    snapshot: SnapshotInfo,
    previous: SnapshotInfo | None,
    tags: Sequence[TagDiff],
    summary: DiffSummary | None,
    link: str | None,
) -> Entry:
    """What ``snapshot`` changed against ``previous`` (None: the first one stored)."""
    cloud = snapshot.cloud
    if previous is None or summary is None:
        title = f"{cloud} {_file(snapshot)}: first snapshot stored"
        lead = (
            f"The first {cloud} snapshot stored: {_count(snapshot.tag_count, 'tag')}, "
            f"{_count(snapshot.prefix_count, 'prefix', 'prefixes')}."
        )
        content = f"<p>{html.escape(lead)}</p>"
    else:
        changed = summary.tags_added + summary.tags_removed + summary.tags_changed
        added = sum(len(d.added) for d in tags)
        removed = sum(len(d.removed) for d in tags)
        title = (
            f"{cloud} {_file(snapshot)}: {_count(changed, 'tag')} changed, "
            f"{_count(added, 'prefix', 'prefixes')} added, {removed:,} removed"
        )
        lead = (
            f"Against changeNumber {previous.change_number}: {summary.tags_added:,} tags added, "
            f"{summary.tags_removed:,} removed, {summary.tags_changed:,} changed; IPv4 addresses "
            f"+{summary.ipv4_addresses_added:,} -{summary.ipv4_addresses_removed:,}, IPv6 /64s "
            f"+{summary.ipv6_64s_added:,} -{summary.ipv6_64s_removed:,}."
        )
        content = _diff_html(lead, tags)
    return Entry(
        id=stable_id("snapshot", snapshot.cloud, snapshot.sha256),
        title=title,
        updated=snapshot.fetched_at,
        published=_day(snapshot.file_date),
        summary=title,
        content_html=content,
        link=link,
    )


def tag_entry(
    name: str,
    snapshot: SnapshotInfo,
    version: TagVersion | None,
    diff: TagDiff | None,
    link: str | None,
) -> Entry:
    """What tag ``name`` became in ``snapshot``: ``version`` (None: the tag disappeared in it),
    with ``diff`` against the snapshot before (None: nothing to compare, or no prefix moved)."""
    if version is None:
        title = f"{name}: removed in {snapshot.cloud} {_file(snapshot)}"
        kind = "removed"
    elif diff is not None and diff.status == "added":
        count = _count(len(diff.added), "prefix", "prefixes")
        title = f"{name}: added in {snapshot.cloud} {_file(snapshot)} with {count}"
        kind = "added"
    else:
        added = len(diff.added) if diff else version.prefixes_added
        removed = len(diff.removed) if diff else version.prefixes_removed
        title = (
            f"{name}: {_count(added, 'prefix', 'prefixes')} added, {removed:,} removed in "
            f"{snapshot.cloud} {_file(snapshot)}"
        )
        kind = "version"
    if version is not None:
        v4 = _count(version.ipv4_count, "IPv4 prefix", "IPv4 prefixes")
        v6 = _count(version.ipv6_count, "IPv6 prefix", "IPv6 prefixes")
        lead = (
            f"{name} from {snapshot.cloud} {_file(snapshot)}: tag changeNumber "
            f"{version.change_number}, {v4}, {v6}."
        )
    else:
        lead = f"{name} is not in {snapshot.cloud} {_file(snapshot)} any more."
    return Entry(
        id=stable_id("tag", snapshot.cloud, name, kind, snapshot.sha256),
        title=title,
        updated=snapshot.fetched_at,
        published=_day(snapshot.file_date),
        summary=title,
        content_html=_diff_html(lead, [diff] if diff else []),
        link=link,
    )


def event_entry(event: Event, link: str | None = None) -> Entry:
    """One alert event of a watch: its summary, and per tag the prefixes added and removed."""
    tags = event.data.get("tags") or []
    parts = []
    for tag in tags[:MAX_TAGS]:
        added, removed = tag.get("added") or [], tag.get("removed") or []
        name, change = _clean(str(tag.get("name"))), _clean(str(tag.get("change")))
        parts.append(
            f"<li><b>{html.escape(name)}</b> ({html.escape(change)})"
            f"{': +' + _prefix_list(added) if added else ''}"
            f"{'; -' + _prefix_list(removed) if removed else ''}</li>"
        )
    more = f"<p>and {len(tags) - MAX_TAGS} more tags</p>" if len(tags) > MAX_TAGS else ""
    body = f"<p>{html.escape(_clean(event.summary))}</p>" + (
        f"<ul>{''.join(parts)}</ul>{more}" if parts else ""
    )
    return Entry(
        id=f"urn:aztags:event:{event.id}",
        title=_clean(event.summary),
        updated=event.created,
        published=event.created,
        summary=_clean(event.summary),
        content_html=body,
        link=link,
    )
