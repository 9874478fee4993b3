"""Pure: what changed between two states of a cloud's tags.

A prefix re-cut into smaller ones (or several merged into one) with the same address space is a
:class:`Recut`, not an unrelated add and remove: a firewall that allowed the old prefixes already
allows the new ones. Address counts are computed on the union of address space, so nested prefixes
(AzureCloud holds both a /16 and /24s inside it) are not counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from resolver.models import PROPERTY_FIELDS, ChangeKind, ServiceTag
from resolver.prefixes import interval, merge, sort_prefixes, space, subtract_size


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
    ipv4_addresses_added: int
    ipv4_addresses_removed: int
    ipv6_addresses_added: int
    ipv6_addresses_removed: int


def diff_prefixes(
    before: Iterable[str], after: Iterable[str]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Recut, ...]]:
    """(added, removed, recuts) between two prefix lists of one tag, sorted."""
    old, new = set(before), set(after)
    added, removed = new - old, old - new
    if not added or not removed:
        return _sorted(added), _sorted(removed), ()
    # Group added and removed prefixes that overlap; a group whose two sides cover the same
    # addresses is a re-cut.
    items = sorted((interval(p), p in added, p) for p in added | removed)
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
    before: Mapping[str, ServiceTag], after: Mapping[str, ServiceTag]
) -> tuple[tuple[TagDiff, ...], DiffSummary]:
    """Per-tag changes between two states (only tags that differ), and a summary."""
    diffs = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old is None and new is not None:
            diffs.append(TagDiff(name, ChangeKind.ADDED, new.prefixes, ()))
        elif new is None and old is not None:
            diffs.append(TagDiff(name, ChangeKind.REMOVED, (), old.prefixes))
        elif old is not None and new is not None and old != new:
            added, removed, recut = diff_prefixes(old.prefixes, new.prefixes)
            properties = tuple(
                (field, getattr(old, field), getattr(new, field))
                for field in PROPERTY_FIELDS
                if getattr(old, field) != getattr(new, field)
            )
            if added or removed or recut or properties:
                diffs.append(TagDiff(name, ChangeKind.CHANGED, added, removed, recut, properties))
    old_space = space(p for t in before.values() for p in t.prefixes)
    new_space = space(p for t in after.values() for p in t.prefixes)
    summary = DiffSummary(
        tags_added=sum(1 for d in diffs if d.status is ChangeKind.ADDED),
        tags_removed=sum(1 for d in diffs if d.status is ChangeKind.REMOVED),
        tags_changed=sum(1 for d in diffs if d.status is ChangeKind.CHANGED),
        ipv4_addresses_added=subtract_size(new_space[4], old_space[4]),
        ipv4_addresses_removed=subtract_size(old_space[4], new_space[4]),
        ipv6_addresses_added=subtract_size(new_space[6], old_space[6]),
        ipv6_addresses_removed=subtract_size(old_space[6], new_space[6]),
    )
    return tuple(diffs), summary


def _sorted(prefixes: Iterable[str]) -> tuple[str, ...]:
    return sort_prefixes(prefixes)
