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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from resolver.models import PROPERTY_FIELDS, ChangeKind, ServiceTag
from resolver.prefixes import Interval, interval, merge, sort_prefixes, space

# (family, (first, last)) of a prefix: resolver.prefixes.interval, or a table read from the store
Intervals = Mapping[str, tuple[int, Interval]]


@dataclass(frozen=True, slots=True)
class Recut:
    """Prefixes replaced by others that cover exactly the same addresses."""

    removed: tuple[str, ...]
    added: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TagDiff:
    name: str
    status: ChangeKind  # added, removed or changed (a str: == "added" holds)
    added: tuple[str, ...]  # prefixes new in this tag (outside any re-cut)
    removed: tuple[str, ...]
    recut: tuple[Recut, ...] = ()
    properties: tuple[tuple[str, object, object], ...] = ()  # (field, before, after)


@dataclass(frozen=True, slots=True)
class DiffSummary:
    tags_added: int
    tags_removed: int
    tags_changed: int
    # Summed per changed tag (see the module docstring): not the change of the union of all tags.
    ipv4_addresses_added: int
    ipv4_addresses_removed: int
    ipv6_64s_added: int  # /64 networks holding addresses a tag gained (partly or wholly)
    ipv6_64s_removed: int


def diff_prefixes(
    before: Iterable[str], after: Iterable[str], intervals: Intervals | None = None
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Recut, ...]]:
    """(added, removed, recuts) between two prefix lists of one tag, sorted. ``intervals``
    may give each prefix's (family, (first, last)) already computed."""
    old, new = set(before), set(after)
    added, removed = new - old, old - new
    span = interval if intervals is None else intervals.__getitem__

    def _sorted(prefixes: Iterable[str]) -> tuple[str, ...]:
        if intervals is None:
            return sort_prefixes(prefixes)
        # the order of sort_key: family, address, then the longer block (shorter length) first
        return tuple(sorted(prefixes, key=lambda p: _span_key(span(p))))

    if not added or not removed:
        return _sorted(added), _sorted(removed), ()
    # Group added and removed prefixes that overlap; a group whose two sides cover the same
    # addresses is a re-cut.
    items = sorted((span(p), p in added, p) for p in added | removed)
    recuts: list[Recut] = []
    groups: list[list[tuple[int, int, int, bool, str]]] = []
    current: list[tuple[int, int, int, bool, str]] = []
    reach = (-1, -1)
    for (family, (first, last)), is_added, prefix in items:
        if current and (family, first) > reach:
            groups.append(current)
            current = []
        current.append((family, first, last, is_added, prefix))
        reach = max(reach, (family, last)) if current[1:] else (family, last)
    groups.append(current)
    for group in groups:
        new_side = [(first, last) for _, first, last, a, _ in group if a]
        old_side = [(first, last) for _, first, last, a, _ in group if not a]
        if new_side and old_side and merge(new_side) == merge(old_side):
            recut = Recut(
                removed=_sorted(p for *_, a, p in group if not a),
                added=_sorted(p for *_, a, p in group if a),
            )
            recuts.append(recut)
            added -= set(recut.added)
            removed -= set(recut.removed)
    return _sorted(added), _sorted(removed), tuple(recuts)


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
    diffs = []
    counts = [0, 0, 0, 0]  # IPv4 added, removed; IPv6 /64s added, removed
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old is None and new is not None:
            diffs.append(TagDiff(name, ChangeKind.ADDED, new.prefixes, ()))
            _count(counts, (), new.prefixes, intervals)
        elif new is None and old is not None:
            diffs.append(TagDiff(name, ChangeKind.REMOVED, (), old.prefixes))
            _count(counts, old.prefixes, (), intervals)
        elif old is not None and new is not None and old != new:
            added, removed, recut = diff_prefixes(old.prefixes, new.prefixes, intervals)
            properties = tuple(
                (field, getattr(old, field), getattr(new, field))
                for field in PROPERTY_FIELDS
                if getattr(old, field) != getattr(new, field)
            )
            if added or removed or recut or properties:
                diffs.append(TagDiff(name, ChangeKind.CHANGED, added, removed, recut, properties))
            if added or removed:  # a re-cut alone covers the same addresses
                _count(counts, old.prefixes, new.prefixes, intervals)
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


def _count(
    counts: list[int], old: Iterable[str], new: Iterable[str], intervals: Intervals | None
) -> None:
    """Add one tag's address changes to ``counts`` (IPv4 addresses, IPv6 /64s)."""
    old_space, new_space = _space(old, intervals), _space(new, intervals)
    for fam, at in ((4, 0), (6, 2)):
        a, b = new_space[fam], old_space[fam]
        # A block merged the same on both sides cancels out (merged blocks are disjoint and
        # non-adjacent): only the others are compared.
        same = set(a).intersection(b)
        if same:
            a = [x for x in a if x not in same]
            b = [x for x in b if x not in same]
        measure = _size if fam == 4 else blocks_64
        counts[at] += measure(subtract(a, b))
        counts[at + 1] += measure(subtract(b, a))


def _space(prefixes: Iterable[str], intervals: Intervals | None) -> dict[int, list[Interval]]:
    if intervals is None:
        return space(prefixes)
    blocks = [intervals[p] for p in prefixes]
    return {
        4: merge([block for fam, block in blocks if fam == 4]),
        6: merge([block for fam, block in blocks if fam == 6]),
    }


def _size(intervals: Iterable[Interval]) -> int:
    return sum(last - first + 1 for first, last in intervals)


def subtract(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """The parts of merged ``a`` outside merged ``b``, sorted and disjoint."""
    out: list[Interval] = []
    j = 0
    for first, last in a:
        while j < len(b) and b[j][1] < first:
            j += 1
        k = j
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


def _span_key(span: tuple[int, Interval]) -> tuple[int, int, int]:
    fam, (first, last) = span
    return fam, first, -last
