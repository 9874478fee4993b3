"""parse_prefix returns an accepted IPv4 text as it is (no inet_ntop round trip): that text must
then be the canonical one, and every non-canonical spelling must be refused."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver.prefixes import parse_prefix


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 32))
def test_an_accepted_ipv4_prefix_is_canonical(value, length):
    network = ipaddress.ip_network((value >> (32 - length) << (32 - length), length))
    fam, packed, got_length, canonical = parse_prefix(str(network))
    assert (fam, packed, got_length, canonical) == (
        4,
        network.network_address.packed,
        length,
        str(network),
    )


@pytest.mark.parametrize(
    "text",
    [
        "01.2.3.0/24",
        "1.2.3.00/32",
        "1.2.3.4 /32",
        " 1.2.3.4/32",
        "1.2.3/24",
        "0x1.2.3.4/32",
        "1.2.3.4.5/32",
        "1.2.3.4/032",
        "1.2.3.４/32",
        "1.2.3.4/33",
    ],
)
def test_a_non_canonical_ipv4_spelling_is_refused(text):
    with pytest.raises(ValueError):
        parse_prefix(text)
