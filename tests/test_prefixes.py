"""resolver.prefixes against the standard library and netaddr (independent implementations)."""

from __future__ import annotations

import ipaddress

import netaddr
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver import prefixes


def _networks(version: int):
    bits = 32 if version == 4 else 128
    return st.builds(
        lambda value, length: str(
            ipaddress.ip_network((value >> (bits - length) << (bits - length), length))
            if version == 4
            else ipaddress.IPv6Network((value >> (bits - length) << (bits - length), length))
        ),
        st.integers(0, 2**bits - 1),
        st.integers(max(0, bits - 40), bits) if version == 6 else st.integers(8, 32),
    )


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_networks(4), _networks(6)), max_size=40))
def test_aggregate_is_what_netaddr_and_ipaddress_give(cidrs):
    # compared as networks: glibc writes ::/96 addresses in mixed notation, the others do not
    got = [ipaddress.ip_network(p) for p in prefixes.aggregate(cidrs)]
    expected = [ipaddress.ip_network(str(n)) for n in netaddr.cidr_merge(cidrs)]
    assert got == sorted(expected, key=lambda n: (n.version, n.network_address, n.prefixlen))
    by_family = {4: [], 6: []}
    for c in cidrs:
        net = ipaddress.ip_network(c)
        by_family[net.version].append(net)
    collapsed = [n for v in (4, 6) for n in ipaddress.collapse_addresses(by_family[v])]
    assert got == collapsed


@pytest.mark.slow
@given(st.lists(st.one_of(_networks(4), _networks(6)), max_size=30))
def test_sort_key_orders_ipv4_first_then_address_then_length(cidrs):
    expected = sorted(
        cidrs,
        key=lambda c: (
            ipaddress.ip_network(c).version,
            int(ipaddress.ip_network(c).network_address),
            ipaddress.ip_network(c).prefixlen,
        ),
    )
    assert list(prefixes.sort_prefixes(cidrs)) == expected


@pytest.mark.parametrize(
    "text",
    ["10.0.0.0/٣٢", "10.0.0.0/３２", "10.0.0.0/" + "3" * 5000, "10.0.0.1/24", "10.0.0.0/33", "x/8"],
)
def test_parse_prefix_refuses_what_azure_never_publishes(text):
    with pytest.raises(ValueError):
        prefixes.parse_prefix(text)


def test_ipv6_text_is_made_canonical():
    assert prefixes.parse_prefix("2603:1030:0A00::/46")[3] == "2603:1030:a00::/46"


def test_contains_and_family():
    assert prefixes.contains("20.0.0.0/8", "20.38.96.0/20")
    assert not prefixes.contains("20.38.96.0/20", "20.0.0.0/8")
    assert not prefixes.contains("::/0", "20.0.0.0/8")
    assert prefixes.family("2603:1030::/32") == 6 and prefixes.family("20.0.0.0/8") == 4
