"""The diff summary's counts, by brute force over raw prefix lists (for the diff tests).

The summary counts per tag, summed over the tags: IPv4 addresses each tag gained and lost, IPv6
/64 networks in which a tag gained (or lost) at least one address. Computed here with integer
ranges from ``ipaddress`` and a sweep, independently of resolver.prefixes and resolver.diff.
"""

from __future__ import annotations

from tests.helpers import ranges_of


def _union(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for first, last in sorted(ranges):
        if out and first <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], last)
        else:
            out.append([first, last])
    return [(a, b) for a, b in out]


def _minus(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Addresses of a not in b, as ranges (a and b sorted disjoint unions): a two-pointer sweep."""
    out = []
    j = 0
    for first, last in a:
        while j < len(b) and b[j][1] < first:
            j += 1
        k, start = j, first
        while k < len(b) and b[k][0] <= last:
            if b[k][0] > start:
                out.append((start, b[k][0] - 1))
            start = max(start, b[k][1] + 1)
            k += 1
        if start <= last:
            out.append((start, last))
    return out


def _size(ranges) -> int:
    return sum(last - first + 1 for first, last in ranges)


def _blocks_64(ranges) -> int:
    """Distinct /64 networks touched (a set of ranges of /64 numbers, merged)."""
    return _size(_union([(first >> 64, last >> 64) for first, last in ranges]))


def tag_delta(before, after) -> dict[str, int]:
    """One tag's counts between two prefix collections."""
    old, new = ranges_of(before), ranges_of(after)
    old4, new4, old6, new6 = (_union(r) for r in (old[4], new[4], old[6], new[6]))
    return {
        "ipv4_addresses_added": _size(_minus(new4, old4)),
        "ipv4_addresses_removed": _size(_minus(old4, new4)),
        "ipv6_64s_added": _blocks_64(_minus(new6, old6)),
        "ipv6_64s_removed": _blocks_64(_minus(old6, new6)),
    }


def summed_delta(old: dict[str, dict], new: dict[str, dict], names=None) -> dict[str, int]:
    """The summary counts between two raw files' tags ({name: raw tag}), over ``names`` (all)."""
    total = dict.fromkeys(
        ("ipv4_addresses_added", "ipv4_addresses_removed", "ipv6_64s_added", "ipv6_64s_removed"), 0
    )
    for name in old.keys() | new.keys() if names is None else names:
        a = set(old[name]["addressPrefixes"]) if name in old else set()
        b = set(new[name]["addressPrefixes"]) if name in new else set()
        if a != b:
            for key, value in tag_delta(a, b).items():
                total[key] += value
    return total
