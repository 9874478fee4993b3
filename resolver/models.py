"""The domain's values: frozen, sorted, parsed once at the boundary (resolver/parse.py)."""

from __future__ import annotations

from dataclasses import dataclass
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


class ChangeKind(StrEnum):
    """How a tag differs between two states of a cloud. A ``str``: compares equal to, and prints
    as, its value."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


# The properties of a tag whose changes are reported (besides its prefixes), as ServiceTag fields.
# The tag's own changeNumber is left out: it moves whenever the prefixes do.
PROPERTY_FIELDS = ("region", "region_id", "system_service", "network_features")


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


# A tag as region and profile resolution see it: with or without its prefixes loaded.
TagInfo = ServiceTag | TagSummary
