"""Pure: what changed between two states of a cloud's tags.

A prefix re-cut into smaller ones (or several merged into one) with the same address space is a
:class:`Recut`, not an unrelated add and remove: a firewall that allowed the old prefixes already
allows the new ones.

The summary's address counts are per tag, summed over the changed tags: for each tag, the
addresses its new prefixes cover that its old ones did not (added), and the other way round
(removed), each tag's prefixes merged first so that nested prefixes of one tag (AzureCloud holds a
/16 and /24s inside it) are not counted twice. A range moved from one tag to another is therefore
counted as added to one and removed from the other, and a week that takes prefixes out of tags
shows the addresses those tags lost even when other tags still cover them. IPv6 is counted in /64
networks (a /64 of which only part was added or removed counts as one), not in addresses.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from resolver.models import PROPERTY_FIELDS, ChangeKind, ServiceTag
from resolver.prefixes import Interval, interval, merge

if TYPE_CHECKING:
    from datetime import date

    from resolver.models import SnapshotInfo

# (family, (first, last)) of a prefix: resolver.prefixes.interval, or a table read from the store
Intervals = Mapping[str, tuple[int, Interval]]


@dataclass(frozen=True, slots=True)
class Recut:
    """Prefixes replaced by others that cover exactly the same addresses."""

    removed: tuple[str, ...]
    added: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TagDiff:
    """One tag's change between two snapshots: prefixes added and removed, re-cuts, properties."""

    name: str
    status: ChangeKind  # added, removed or changed (a str: == "added" holds)
    added: tuple[str, ...]  # prefixes new in this tag (outside any re-cut)
    removed: tuple[str, ...]
    recut: tuple[Recut, ...] = ()
    properties: tuple[tuple[str, object, object], ...] = ()  # (field, before, after)


@dataclass(frozen=True, slots=True)
class DiffSummary:
    """Counts over a whole diff: tags added, removed and changed, addresses summed per tag."""

    tags_added: int
    tags_removed: int
    tags_changed: int
    # Summed per changed tag (see the module docstring): not the change of the union of all tags.
    ipv4_addresses_added: int
    ipv4_addresses_removed: int
    ipv6_64s_added: int  # /64 networks holding addresses a tag gained (partly or wholly)
    ipv6_64s_removed: int


@dataclass(frozen=True, slots=True)
class DiffAnswer:
    """What changed between two snapshots, per tag; a summary; when Azure may use what is new."""

    before: SnapshotInfo
    after: SnapshotInfo
    tags: tuple[TagDiff, ...]
    summary: DiffSummary
    usable_from: date | None  # prefixes new in the newer file may be used by Azure from this day
    # per added (tag, prefix): the day Azure may use it, from the first snapshot that had it
    # (earlier than usable_from when the diff spans several weeks)
    usable_by_prefix: Mapping[tuple[str, str], date | None] = field(default_factory=dict)


def diff_prefixes(
    before: Iterable[str], after: Iterable[str], intervals: Intervals | None = None
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Recut, ...]]:
    """(added, removed, recuts) between two prefix lists of one tag, sorted. ``intervals``
    may give each prefix's (family, (first, last)) already computed."""
    old, new = dict.fromkeys(before), dict.fromkeys(after)  # each once, in their order
    added, removed, recuts, _ = _compare(old, new, old.keys(), new.keys(), _span_of(intervals))
    return added, removed, recuts


# A prefix that changed, as it sorts: (family, first, -last, added?, prefix). Sorting by
# (family, first, -last) is sort_key's order (family, address, the shorter prefix first).
_Item = tuple[int, int, int, bool, str]


def _compare(
    old: Iterable[str],
    new: Iterable[str],
    old_set: Collection[str],
    new_set: Collection[str],
    span: Callable[[str], tuple[int, Interval]],
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Recut, ...], list[_Item]]:
    """diff_prefixes of two prefix lists (each prefix once; ``old_set``, ``new_set``: the same
    prefixes, for membership), and every prefix in one and not the other as an _Item, sorted.

    One sort serves all: the prefixes that changed are grouped by overlap in that order (a
    group whose two sides cover the same addresses is a re-cut), and the lists are read from
    it already in order. The lists are walked in their own order, so lists already in
    sort_key's order (as stored) give two sorted runs, which the sort only merges."""
    items = [
        (fam, first, -last, True, p)
        for p in new
        if p not in old_set
        for fam, (first, last) in (span(p),)
    ]
    count_added = len(items)
    items += [
        (fam, first, -last, False, p)
        for p in old
        if p not in new_set
        for fam, (first, last) in (span(p),)
    ]
    items.sort()
    recut_prefixes: set[str] = set()
    recuts: list[Recut] = []
    if 0 < count_added < len(items):  # both sides: there may be re-cuts
        for group in _overlapping(items):
            new_side = [(first, -neg) for _, first, neg, is_added, _ in group if is_added]
            if len(new_side) in (0, len(group)):
                continue
            old_side = [(first, -neg) for _, first, neg, is_added, _ in group if not is_added]
            if merge(new_side) == merge(old_side):
                recuts.append(
                    Recut(
                        removed=tuple(p for *_, is_added, p in group if not is_added),
                        added=tuple(p for *_, is_added, p in group if is_added),
                    )
                )
                recut_prefixes.update(p for *_, p in group)
    sides: tuple[list[str], list[str]] = ([], [])  # removed, added
    if recut_prefixes:
        for *_, is_added, p in items:
            if p not in recut_prefixes:
                sides[is_added].append(p)
    else:
        for *_, is_added, p in items:
            sides[is_added].append(p)
    return tuple(sides[1]), tuple(sides[0]), tuple(recuts), items


def _overlapping(items: list[_Item]) -> Iterator[list[_Item]]:
    """The groups of sorted items that overlap one another (of two CIDR blocks that overlap,
    one holds the other), in order; a group of one is left out."""
    current: list[_Item] = []
    reach_family, reach = -1, -1
    for item in items:
        fam, first, neg, _, _ = item
        if fam != reach_family or first > reach:
            if len(current) > 1:
                yield current
            current = [item]
            reach_family, reach = fam, -neg
        else:
            current.append(item)
            if -neg > reach:
                reach = -neg
    if len(current) > 1:
        yield current


def diff_tags(
    before: Mapping[str, ServiceTag],
    after: Mapping[str, ServiceTag],
    intervals: Intervals | None = None,
) -> tuple[tuple[TagDiff, ...], DiffSummary]:
    """Per-tag changes between two states (only tags that differ), and a summary.

    Tags equal on both sides change nothing, so a caller may pass only the tags that may have
    changed; and of a tag on both sides, the prefixes it keeps that overlap none it gained or
    lost change neither its lists nor its address counts, so a caller may leave those out (the
    lists may then be in any order). ``intervals`` may give each prefix's (family, (first,
    last)) already computed."""
    span = _span_of(intervals)
    diffs = []
    counts = [0, 0, 0, 0]  # IPv4 added, removed; IPv6 /64s added, removed
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old is None and new is not None:
            diffs.append(TagDiff(name, ChangeKind.ADDED, new.prefixes, ()))
            _count_all(counts, 0, new.prefixes, span)
        elif new is None and old is not None:
            diffs.append(TagDiff(name, ChangeKind.REMOVED, (), old.prefixes))
            _count_all(counts, 1, old.prefixes, span)
        elif old is not None and new is not None and old != new:
            old_set, new_set = set(old.prefixes), set(new.prefixes)
            added, removed, recut, items = _compare(
                old.prefixes, new.prefixes, old_set, new_set, span
            )
            properties = tuple(
                (field, getattr(old, field), getattr(new, field))
                for field in PROPERTY_FIELDS
                if getattr(old, field) != getattr(new, field)
            )
            if added or removed or recut or properties:
                diffs.append(TagDiff(name, ChangeKind.CHANGED, added, removed, recut, properties))
            if added or removed:  # a re-cut alone covers the same addresses
                _count_changes(counts, items, old_set & new_set, span)
    summary = DiffSummary(
        tags_added=sum(1 for d in diffs if d.status is ChangeKind.ADDED),
        tags_removed=sum(1 for d in diffs if d.status is ChangeKind.REMOVED),
        tags_changed=sum(1 for d in diffs if d.status is ChangeKind.CHANGED),
        ipv4_addresses_added=counts[0],
        ipv4_addresses_removed=counts[1],
        ipv6_64s_added=counts[2],
        ipv6_64s_removed=counts[3],
    )
    return tuple(diffs), summary


def _span_of(intervals: Intervals | None) -> Callable[[str], tuple[int, Interval]]:
    return interval if intervals is None else intervals.__getitem__


def _count_all(
    counts: list[int],
    side: int,
    prefixes: Iterable[str],
    span: Callable[[str], tuple[int, Interval]],
) -> None:
    """Add the addresses of a tag that appeared (``side`` 0) or went (1) to ``counts``."""
    blocks = list(map(span, prefixes))
    counts[side] += _size(merge([block for fam, block in blocks if fam == 4]))
    counts[2 + side] += blocks_64(merge([block for fam, block in blocks if fam == 6]))


def _count_changes(
    counts: list[int],
    items: list[_Item],
    kept: set[str],
    span: Callable[[str], tuple[int, Interval]],
) -> None:
    """Add one tag's address changes to ``counts`` (IPv4 addresses, IPv6 /64s): what it gained
    is what its added prefixes cover outside its kept and its removed ones (the addresses of
    (kept + added) outside (kept + removed)), and the other way round. ``items``: _compare's."""
    # each side of the change per family, merged straight from the sorted items (no sort)
    sides: dict[tuple[int, bool], list[Interval]] = {}
    for fam, first, neg, is_added, _ in items:
        merged = sides.get((fam, is_added))
        if merged is None:
            sides[(fam, is_added)] = [(first, -neg)]
        elif first > merged[-1][1] + 1:
            merged.append((first, -neg))
        elif -neg > merged[-1][1]:
            merged[-1] = (merged[-1][0], -neg)
    blocks = list(map(span, kept))
    for fam, at in ((4, 0), (6, 2)):
        gained, lost = sides.get((fam, True), []), sides.get((fam, False), [])
        if not gained and not lost:
            continue
        held = merge([block for f, block in blocks if f == fam])
        measure = _size if fam == 4 else blocks_64
        counts[at] += measure(subtract(subtract(gained, held), lost))
        counts[at + 1] += measure(subtract(subtract(lost, held), gained))


def _size(intervals: Iterable[Interval]) -> int:
    return sum(last - first + 1 for first, last in intervals)


def subtract(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """The parts of merged ``a`` outside merged ``b``, sorted and disjoint. Each interval of
    ``a`` finds its first overlap in ``b`` by bisection: the time follows ``a`` and the
    overlaps, not the length of ``b``."""
    if not a or not b:
        return list(a)
    out: list[Interval] = []
    ends = [last for _, last in b]
    for first, last in a:
        k = bisect_left(ends, first)  # the first interval of b that ends at or after first
        while k < len(b) and b[k][0] <= last:
            if b[k][0] > first:
                out.append((first, b[k][0] - 1))
            first = max(first, b[k][1] + 1)
            k += 1
        if first <= last:
            out.append((first, last))
    return out


def blocks_64(intervals: Iterable[Interval]) -> int:
    """How many IPv6 /64 networks sorted disjoint intervals touch (each counted once)."""
    total, seen = 0, -1
    for first, last in intervals:
        lo, hi = max(first >> 64, seen + 1), last >> 64
        if hi >= lo:
            total += hi - lo + 1
            seen = hi
    return total
