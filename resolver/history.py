"""The answers of ``aztags history``: a tag's versions (:class:`TagVersion`), and which tags
held an address or a CIDR over every stored snapshot (resolver.query.TagStore.history_report and
prefix_history)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from resolver.models import SnapshotInfo


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


@dataclass(frozen=True, slots=True)
class TagHistory:
    """A tag's versions (:meth:`TagStore.history`) with the snapshot the history runs up to."""

    snapshot: SnapshotInfo  # the current snapshot when asked
    query: str  # the name as asked
    versions: tuple[TagVersion, ...]


@dataclass(frozen=True, slots=True)
class PrefixSpan:
    """One stretch of the timeline in which a tag held a prefix without a break."""

    tag: str
    prefix: str
    relation: str  # "equal": the prefix asked; "contains": it contains it; "inside": within it
    first: SnapshotInfo  # the first snapshot that had it
    last: SnapshotInfo  # the last snapshot that had it
    removed_in: SnapshotInfo | None  # the first snapshot without it; None: still in the current


@dataclass(frozen=True, slots=True)
class PrefixHistory:
    """Which tags held an address or a CIDR, over every stored snapshot of a cloud."""

    query: str  # canonical: 20.33.2.0/24, or the address
    is_address: bool
    snapshot: SnapshotInfo  # the current snapshot: the history runs up to it
    first_snapshot: SnapshotInfo  # the oldest stored one: the history starts there
    spans: tuple[PrefixSpan, ...]  # by first snapshot, most specific prefix first, then tag
