"""The laws of diff_prefixes and diff_tags, on generated prefix sets."""

from __future__ import annotations

import ipaddress
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver.diff import diff_prefixes, diff_tags
from resolver.models import ChangeKind, ServiceTag

# Every prefix of lengths /22../26 inside 10.0.0.0/22, and a few nested IPv6 ones, so that
# generated sets nest, touch and re-cut each other often.
V4 = [
    str(n)
    for length in range(22, 27)
    for n in ipaddress.ip_network("10.0.0.0/22").subnets(new_prefix=length)
]
v4 = st.sampled_from(V4)
v6 = st.sampled_from(["2001:db8::/46", "2001:db8::/47", "2001:db8:2::/47", "2001:db8:1::/48"])
prefix_sets = st.sets(st.one_of(v4, v6), max_size=8)


def apply(before: set[str], added, removed, recuts) -> set[str]:
    result = set(before) - set(removed) | set(added)
    for recut in recuts:
        result = result - set(recut.removed) | set(recut.added)
    return result


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(prefix_sets)
def test_diff_of_a_set_with_itself_is_empty(a):
    assert diff_prefixes(a, a) == ((), (), ())


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(prefix_sets, prefix_sets)
def test_applying_the_diff_gives_the_new_set(a, b):
    added, removed, recuts = diff_prefixes(a, b)
    assert apply(a, added, removed, recuts) == b
    for recut in recuts:  # a re-cut covers the same addresses on both sides
        old = list(ipaddress.collapse_addresses(ipaddress.ip_network(p) for p in recut.removed))
        new = list(ipaddress.collapse_addresses(ipaddress.ip_network(p) for p in recut.added))
        assert old == new


def tag(name: str, prefixes: set[str]) -> ServiceTag:
    return ServiceTag(name, "", 0, "", None, 1, tuple(sorted(prefixes)))


# IPv6 prefixes inside 2001:db8::/60 (16 /64s), some smaller than a /64, so that a change can
# touch part of a /64.
V6_SMALL = st.sampled_from(
    [
        "2001:db8::/60",
        "2001:db8::/62",
        "2001:db8:0:8::/61",
        "2001:db8::/64",
        "2001:db8:0:1::/64",
        "2001:db8::/120",
        "2001:db8::80/121",
        "2001:db8:0:1::/126",
        "2001:db8:0:2::4/126",
    ]
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from("ABC"), st.sets(st.one_of(v4, V6_SMALL), max_size=6)),
    st.dictionaries(st.sampled_from("ABC"), st.sets(st.one_of(v4, V6_SMALL), max_size=6)),
)
def test_address_counts_are_summed_per_tag_and_match_ipaddress(a, b):
    """IPv4: addresses each tag gained / lost; IPv6: /64s in which a tag gained / lost any."""
    _, summary = diff_tags(
        {n: tag(n, p) for n, p in a.items()}, {n: tag(n, p) for n, p in b.items()}
    )
    expected = [0, 0, 0, 0]
    for name in a.keys() | b.keys():
        old, new = a.get(name, set()), b.get(name, set())
        old4 = list(
            ipaddress.collapse_addresses(
                n for n in map(ipaddress.ip_network, old) if n.version == 4
            )
        )
        new4 = list(
            ipaddress.collapse_addresses(
                n for n in map(ipaddress.ip_network, new) if n.version == 4
            )
        )
        expected[0] += _size(new4) - _overlap(new4, old4)
        expected[1] += _size(old4) - _overlap(new4, old4)
        for block in ipaddress.ip_network("2001:db8::/60").subnets(new_prefix=64):
            was, now = _within(old, block), _within(new, block)
            expected[2] += bool(now - was)
            expected[3] += bool(was - now)
    assert [
        summary.ipv4_addresses_added,
        summary.ipv4_addresses_removed,
        summary.ipv6_64s_added,
        summary.ipv6_64s_removed,
    ] == expected


def _within(prefixes, block) -> set[int]:
    """The addresses (as offsets in the /64) of ``block`` that IPv6 prefixes cover, by class:
    the whole /64 is one marker, else the addresses of the few small prefixes (at most 256)."""
    out: set[int] = set()
    for p in prefixes:
        net = ipaddress.ip_network(p)
        if net.version != 6 or not net.overlaps(block):
            continue
        if net.prefixlen <= 64:
            out |= {-1} | set(range(1024))  # the whole block (every offset below is in it)
        else:
            first = int(net.network_address) - int(block.network_address)
            out |= set(range(first, first + net.num_addresses))
    return out if -1 not in out else {-1} | set(range(1024))


def _size(nets) -> int:
    return sum(n.num_addresses for n in nets)


def _overlap(a, b) -> int:
    """Addresses in both of two collapsed lists (CIDR blocks either nest or are disjoint)."""
    total = 0
    for x in a:
        for y in b:
            if x.overlaps(y):
                total += min(x, y, key=lambda n: n.num_addresses).num_addresses
    return total


def test_status_is_an_enum_that_still_reads_as_its_string():
    def tag(name: str, prefixes: tuple[str, ...]) -> ServiceTag:
        return ServiceTag(name, "", 0, name, None, 1, prefixes)

    before = {"Old": tag("Old", ("10.0.0.0/24",)), "Kept": tag("Kept", ("10.0.1.0/24",))}
    after = {"New": tag("New", ("10.0.2.0/24",)), "Kept": tag("Kept", ("10.0.3.0/24",))}
    diffs, summary = diff_tags(before, after)
    assert [(d.name, d.status) for d in diffs] == [
        ("Kept", ChangeKind.CHANGED),
        ("New", ChangeKind.ADDED),
        ("Old", ChangeKind.REMOVED),
    ]
    assert [d.status for d in diffs] == ["changed", "added", "removed"]
    assert json.dumps([d.status for d in diffs]) == '["changed", "added", "removed"]'
    assert f"({diffs[0].status})" == "(changed)"
    assert (summary.tags_added, summary.tags_removed, summary.tags_changed) == (1, 1, 1)
