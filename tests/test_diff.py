"""The laws of diff_prefixes and diff_tags, on generated prefix sets."""

from __future__ import annotations

import ipaddress
import json

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


@settings(max_examples=300, deadline=None)
@given(prefix_sets)
def test_diff_of_a_set_with_itself_is_empty(a):
    assert diff_prefixes(a, a) == ((), (), ())


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


@settings(max_examples=200, deadline=None)
@given(prefix_sets, prefix_sets)
def test_address_counts_match_ipaddress(a, b):
    _, summary = diff_tags({"T": tag("T", a)}, {"T": tag("T", b)})
    for family, added, removed in (
        (4, summary.ipv4_addresses_added, summary.ipv4_addresses_removed),
        (6, summary.ipv6_addresses_added, summary.ipv6_addresses_removed),
    ):
        old = {ipaddress.ip_network(p) for p in a if ipaddress.ip_network(p).version == family}
        new = {ipaddress.ip_network(p) for p in b if ipaddress.ip_network(p).version == family}
        new_space = list(ipaddress.collapse_addresses(new))
        old_space = list(ipaddress.collapse_addresses(old))
        assert added == _size(new_space) - _overlap(new_space, old_space)
        assert removed == _size(old_space) - _overlap(new_space, old_space)


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
