"""The values of one ingest: a file as read (:class:`RawFile`) and what storing it did
(:class:`IngestResult`, per tag :class:`TagChange`). Written by cache/store.py
(``save_snapshot``), read by the commands that store files and by the alert recorder."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from resolver.models import ChangeKind

if TYPE_CHECKING:
    from datetime import date

    from resolver.models import SnapshotInfo


@dataclass(frozen=True, slots=True)
class RawFile:
    """Bytes of a Service Tags file as fetched or read, with where they came from."""

    data: bytes  # uncompressed JSON
    source: str  # URL, path or "-"
    file_date: date | None = None  # the Monday in the file name, when known
    etag: str | None = None
    last_modified: str | None = None
    compressed: bytes | None = None  # the gzip bytes when the source was already gzip


class Outcome(StrEnum):
    """What storing one file did. A ``str``: compares equal to, and prints as, its value."""

    CURRENT = "current"  # the newest file of its cloud: now current
    BACKFILL = "backfill"  # older than the newest: spliced into the history, not current
    DUPLICATE = "duplicate"  # already stored: nothing written
    QUARANTINED = "quarantined"  # lost too many prefixes: kept for inspection, not current


@dataclass(frozen=True, slots=True)
class TagChange:
    """How one tag changed when a snapshot was stored, relative to the snapshot just before it.

    ``added``/``removed``: prefixes, IPv4 first, sorted (all of them for an added or removed
    tag). ``properties``: ``(field, before, after)`` for each of :data:`PROPERTY_FIELDS` that
    changed, with ServiceTag's types (networkFeatures as a frozenset, or None for JSON null).
    """

    name: str
    kind: ChangeKind
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    properties: tuple[tuple[str, object, object], ...] = ()


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What storing one file did.

    The counts and ``changes`` compare the stored snapshot with the one just before it in its
    cloud's timeline (nothing, for the first). For ``current`` that is the previous current
    snapshot, so ``changes`` is what a firewall following the cloud must change. For ``backfill``
    it is the older neighbour the file was spliced in after: history filled in, while the current
    state is untouched, so nothing a firewall must do now. ``duplicate`` and ``quarantined``
    write no history: zero counts, no changes.
    ``tags_changed`` counts tags whose prefixes changed; ``changes`` also lists tags whose only
    change is a property (region, systemService, networkFeatures...).
    """

    snapshot: SnapshotInfo
    outcome: Outcome
    tags_added: int = 0
    tags_removed: int = 0
    tags_changed: int = 0
    prefixes_added: int = 0  # (tag, prefix) pairs
    prefixes_removed: int = 0
    notes: tuple[str, ...] = field(default=())
    changes: tuple[TagChange, ...] = ()  # by tag name
