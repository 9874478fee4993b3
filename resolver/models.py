"""The domain's values: frozen, sorted, parsed once at the boundary (resolver/parse.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from resolver.prefixes import count


@dataclass(frozen=True, slots=True)
class ServiceTag:
    """One entry of a Service Tags file. ``prefixes`` are canonical, IPv4 first, then by address."""

    name: str
    region: str  # ARM region code ("westus"); "" for a global tag
    region_id: int
    system_service: str  # often differs from the name's base ("Storage" -> "AzureStorage")
    network_features: frozenset[str] | None  # None: the tag is in the file only (JSON null)
    change_number: int
    prefixes: tuple[str, ...]
    platform: str = "Azure"

    @property
    def ipv4_count(self) -> int:
        return count(self.prefixes)[0]

    @property
    def ipv6_count(self) -> int:
        return count(self.prefixes)[1]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One published file, parsed and validated. ``tags`` are sorted by name."""

    cloud: str  # "Public", "AzureGovernment", "China", "AzureGermany"
    change_number: int
    tags: tuple[ServiceTag, ...]

    @property
    def prefix_count(self) -> int:
        return sum(len(t.prefixes) for t in self.tags)


@dataclass(frozen=True, slots=True)
class RawFile:
    """Bytes of a Service Tags file as fetched or read, with where they came from."""

    data: bytes  # uncompressed JSON
    source: str  # URL, path or "-"
    file_date: date | None = None  # the Monday in the file name, when known
    etag: str | None = None
    last_modified: str | None = None
    compressed: bytes | None = None  # the gzip bytes when the source was already gzip


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """A stored snapshot's metadata, as listed by ``aztags snapshots``."""

    id: int
    cloud: str
    change_number: int
    file_date: date | None
    sha256: str
    source: str
    fetched_at: datetime
    etag: str | None
    last_modified: str | None
    size: int
    tag_count: int
    prefix_count: int
    quarantined: bool
    seq: int | None  # rank in the cloud's timeline; None while quarantined
    quarantine_reason: str | None = None
    is_current: bool = False


class Outcome(StrEnum):
    """What storing one file did. A ``str``: compares equal to, and prints as, its value."""

    CURRENT = "current"  # the newest file of its cloud: now current
    BACKFILL = "backfill"  # older than the newest: spliced into the history, not current
    DUPLICATE = "duplicate"  # already stored: nothing written
    QUARANTINED = "quarantined"  # lost too many prefixes: kept for inspection, not current


class ChangeKind(StrEnum):
    """How a tag differs between two states of a cloud. A ``str``, like :class:`Outcome`."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


# The properties of a tag whose changes are reported (besides its prefixes), as ServiceTag fields.
# The tag's own changeNumber is left out: it moves whenever the prefixes do.
PROPERTY_FIELDS = ("region", "region_id", "system_service", "network_features")


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


@dataclass(frozen=True, slots=True)
class TagSummary:
    """A tag's properties and prefix counts at one snapshot, without the prefixes themselves."""

    name: str
    region: str
    region_id: int
    system_service: str
    network_features: frozenset[str] | None
    change_number: int
    ipv4_count: int
    ipv6_count: int


@dataclass(frozen=True, slots=True)
class TagVersion:
    """One step in a tag's history: the snapshot from which it held this state."""

    snapshot: SnapshotInfo
    change_number: int
    region: str
    system_service: str
    network_features: frozenset[str] | None
    ipv4_count: int
    ipv6_count: int
    prefixes_added: int  # relative to the previous version; all of them for the first
    prefixes_removed: int
    ended: SnapshotInfo | None  # the snapshot in which the tag disappeared, if it did


# A tag as region and profile resolution see it: with or without its prefixes loaded.
TagInfo = ServiceTag | TagSummary
