"""resolver.lookup: every containing tag, most specific first, checked against brute force."""

from __future__ import annotations

import ipaddress
import random
from bisect import bisect_left, bisect_right

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver.errors import AztagsError
from resolver.lookup import InvalidAddressError, LookupIndex, LookupMatch, QueryResult
from tests.helpers import real_json, require_data


def M(tag: str, prefix: str) -> LookupMatch:
    return LookupMatch(tag, prefix)


NESTED = [
    ("Big", "10.0.0.0/8"),
    ("Mid", "10.1.0.0/16"),
    ("Mid2", "10.1.0.0/16"),  # the same prefix in a second tag
    ("Small", "10.1.2.0/24"),
    ("Other", "10.1.3.0/24"),
    ("Six", "2603:1030::/32"),
    ("Six.West", "2603:1030:a00::/46"),
]


@pytest.fixture
def nested() -> LookupIndex:
    return LookupIndex.build(NESTED)


# --- addresses -----------------------------------------------------------------------------------


def test_nested_prefixes_all_returned_most_specific_first(nested: LookupIndex) -> None:
    assert nested.lookup("10.1.2.3") == (
        M("Small", "10.1.2.0/24"),
        M("Mid", "10.1.0.0/16"),
        M("Mid2", "10.1.0.0/16"),
        M("Big", "10.0.0.0/8"),
    )
    assert nested.lookup("10.1.4.1") == (
        M("Mid", "10.1.0.0/16"),
        M("Mid2", "10.1.0.0/16"),
        M("Big", "10.0.0.0/8"),
    )
    assert nested.lookup("10.200.0.1") == (M("Big", "10.0.0.0/8"),)
    assert nested.lookup("11.0.0.0") == ()
    assert nested.lookup("9.255.255.255") == ()


def test_same_prefix_in_several_tags_sorted_by_tag_name() -> None:
    index = LookupIndex.build(
        [("Zeta", "1.0.0.0/24"), ("Alpha", "1.0.0.0/24"), ("Mu", "1.0.0.0/24")]
    )
    assert [m.tag for m in index.lookup("1.0.0.7")] == ["Alpha", "Mu", "Zeta"]


def test_boundaries_first_and_last_address_and_just_outside(nested: LookupIndex) -> None:
    assert nested.lookup("10.1.2.0")[0] == M("Small", "10.1.2.0/24")
    assert nested.lookup("10.1.2.255")[0] == M("Small", "10.1.2.0/24")
    assert nested.lookup("10.1.1.255")[0] == M("Mid", "10.1.0.0/16")
    assert nested.lookup("10.1.3.0")[0] == M("Other", "10.1.3.0/24")  # adjacent /24
    assert nested.lookup("10.1.255.255")[0] == M("Mid", "10.1.0.0/16")
    assert nested.lookup("10.2.0.0") == (M("Big", "10.0.0.0/8"),)
    assert nested.lookup("10.0.0.0") == (M("Big", "10.0.0.0/8"),)
    assert nested.lookup("10.255.255.255") == (M("Big", "10.0.0.0/8"),)


def test_adjacent_prefixes_and_a_child_ending_with_its_parent() -> None:
    index = LookupIndex.build(
        [("A", "10.0.0.0/25"), ("B", "10.0.0.128/25"), ("P", "10.0.0.0/24"), ("C", "10.0.0.192/26")]
    )
    assert [m.tag for m in index.lookup("10.0.0.127")] == ["A", "P"]
    assert [m.tag for m in index.lookup("10.0.0.128")] == ["B", "P"]
    assert [m.tag for m in index.lookup("10.0.0.191")] == ["B", "P"]
    assert [m.tag for m in index.lookup("10.0.0.192")] == ["C", "B", "P"]
    assert [m.tag for m in index.lookup("10.0.0.255")] == ["C", "B", "P"]
    assert index.lookup("10.0.1.0") == ()


def test_host_routes_slash_32_31_and_128() -> None:
    index = LookupIndex.build(
        [("One", "1.2.3.4/32"), ("Pair", "1.2.3.6/31"), ("Six", "2001:db8::1/128")]
    )
    assert index.lookup("1.2.3.4") == (M("One", "1.2.3.4/32"),)
    assert index.lookup("1.2.3.3") == ()
    assert index.lookup("1.2.3.5") == ()
    assert index.lookup("1.2.3.6") == (M("Pair", "1.2.3.6/31"),)
    assert index.lookup("1.2.3.7") == (M("Pair", "1.2.3.6/31"),)
    assert index.lookup("1.2.3.8") == ()
    assert index.lookup("2001:db8::1") == (M("Six", "2001:db8::1/128"),)
    assert index.lookup("2001:db8::") == ()
    assert index.lookup("2001:db8::2") == ()
    top = LookupIndex.build(
        [("Top", "255.255.255.254/32"), ("Top6", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128")]
    )
    assert index.lookup("255.255.255.255") == ()
    assert top.lookup("255.255.255.254") == (M("Top", "255.255.255.254/32"),)
    assert top.lookup("255.255.255.255") == ()
    assert top.lookup("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")[0].tag == "Top6"
    assert top.lookup("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe") == ()


def test_default_routes_cover_their_family_only() -> None:
    index = LookupIndex.build(
        [("All4", "0.0.0.0/0"), ("All6", "::/0"), ("Net", "255.255.255.0/24")]
    )
    assert index.lookup("0.0.0.0") == (M("All4", "0.0.0.0/0"),)
    assert index.lookup("255.255.255.255") == (M("Net", "255.255.255.0/24"), M("All4", "0.0.0.0/0"))
    assert index.lookup("::") == (M("All6", "::/0"),)
    assert index.lookup("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") == (M("All6", "::/0"),)
    assert LookupIndex.build([("All4", "0.0.0.0/0")]).lookup("::1") == ()


def test_ipv6_nesting_and_any_spelling_of_the_address(nested: LookupIndex) -> None:
    both = (M("Six.West", "2603:1030:a00::/46"), M("Six", "2603:1030::/32"))
    assert nested.lookup("2603:1030:a00::1") == both
    assert nested.lookup("2603:1030:A00:0:0:0:0:1") == both
    assert nested.lookup("2603:1030:a03:ffff:ffff:ffff:ffff:ffff") == both
    assert nested.lookup("2603:1030:a04::") == (M("Six", "2603:1030::/32"),)
    assert nested.lookup("2603:1031::") == ()


def test_ipv4_mapped_ipv6_is_ipv6() -> None:
    index = LookupIndex.build([("V4", "1.2.3.0/24"), ("Mapped", "::ffff:0.0.0.0/96")])
    assert index.lookup("::ffff:1.2.3.4") == (M("Mapped", "::ffff:0.0.0.0/96"),)
    assert index.lookup("1.2.3.4") == (M("V4", "1.2.3.0/24"),)


def test_one_shared_result_tuple_per_segment(nested: LookupIndex) -> None:
    assert nested.lookup("10.1.2.3") is nested.lookup("10.1.2.200")
    assert nested.lookup("10.1.2.3") is nested.lookup(" 10.1.2.4\n")  # whitespace ignored


def test_empty_index_and_counts() -> None:
    empty = LookupIndex.build([])
    assert empty.lookup("1.2.3.4") == ()
    assert empty.lookup("::1") == ()
    assert empty.lookup_cidr("0.0.0.0/0") == ((), ())
    assert (empty.prefix_count, empty.distinct_prefix_count) == (0, 0)
    index = LookupIndex.build(NESTED + [("Big", "10.0.0.0/8")])  # a duplicate pair counts once
    assert index.prefix_count == len(NESTED)
    assert index.distinct_prefix_count == len(NESTED) - 1


def test_same_network_spelt_two_ways_is_one_prefix_and_text_is_kept() -> None:
    index = LookupIndex.build([("a", "2001:DB8::/32"), ("b", "2001:db8::/32")])
    assert index.lookup("2001:db8::5") == (M("a", "2001:DB8::/32"), M("b", "2001:db8::/32"))
    assert index.distinct_prefix_count == 1


def test_build_rejects_a_prefix_that_is_not_canonical() -> None:
    with pytest.raises(
        InvalidAddressError, match=r"'10\.1\.2\.3/16' has host bits set; .* 10\.1\.0\.0/16"
    ):
        LookupIndex.build([("Bad", "10.1.2.3/16")])
    with pytest.raises(InvalidAddressError, match="not an IPv4 or IPv6 address or CIDR"):
        LookupIndex.build([("Bad", "storage")])


# --- CIDRs ---------------------------------------------------------------------------------------


def test_cidr_containing_and_overlapping(nested: LookupIndex) -> None:
    containing, overlapping = nested.lookup_cidr("10.1.0.0/16")
    assert containing == (M("Mid", "10.1.0.0/16"), M("Mid2", "10.1.0.0/16"), M("Big", "10.0.0.0/8"))
    assert overlapping == (M("Small", "10.1.2.0/24"), M("Other", "10.1.3.0/24"))

    containing, overlapping = nested.lookup_cidr("10.0.0.0/8")
    assert containing == (M("Big", "10.0.0.0/8"),)
    assert overlapping == (
        M("Mid", "10.1.0.0/16"),
        M("Mid2", "10.1.0.0/16"),
        M("Small", "10.1.2.0/24"),
        M("Other", "10.1.3.0/24"),
    )

    containing, overlapping = nested.lookup_cidr("10.1.2.128/25")
    assert [m.tag for m in containing] == ["Small", "Mid", "Mid2", "Big"]
    assert overlapping == ()

    containing, overlapping = nested.lookup_cidr("8.0.0.0/6")  # holds 10.0.0.0/8 and more
    assert containing == ()
    assert [m.prefix for m in overlapping][:1] == ["10.0.0.0/8"]
    assert len(overlapping) == 5

    assert nested.lookup_cidr("11.0.0.0/8") == ((), ())


def test_cidr_overlapping_sorted_by_address_then_length_then_tag() -> None:
    index = LookupIndex.build(
        [("z", "10.0.2.0/24"), ("b", "10.0.0.0/24"), ("a", "10.0.0.0/24"), ("c", "10.0.0.0/25")]
    )
    _, overlapping = index.lookup_cidr("10.0.0.0/16")
    assert overlapping == (
        M("a", "10.0.0.0/24"),
        M("b", "10.0.0.0/24"),
        M("c", "10.0.0.0/25"),
        M("z", "10.0.2.0/24"),
    )


def test_cidr_default_route_and_host_routes(nested: LookupIndex) -> None:
    containing, overlapping = nested.lookup_cidr("0.0.0.0/0")
    assert containing == ()
    assert len(overlapping) == 5 and all(":" not in m.prefix for m in overlapping)
    _, six = nested.lookup_cidr("::/0")
    assert [m.tag for m in six] == ["Six", "Six.West"]
    assert nested.lookup_cidr("10.1.2.3/32") == (nested.lookup("10.1.2.3"), ())
    assert nested.lookup_cidr("10.1.2.3") == (nested.lookup("10.1.2.3"), ())  # bare address
    assert nested.lookup_cidr("2603:1030:a00::/48")[0][0] == M("Six.West", "2603:1030:a00::/46")


def test_cidr_with_host_bits_names_the_network(nested: LookupIndex) -> None:
    with pytest.raises(InvalidAddressError) as caught:
        nested.lookup_cidr("10.1.2.3/16")
    assert (
        str(caught.value)
        == "'10.1.2.3/16' has host bits set; the network it belongs to is 10.1.0.0/16"
    )
    with pytest.raises(InvalidAddressError, match=r"network it belongs to is 2603:1030::/32"):
        nested.lookup_cidr("2603:1030:a00::/32")


# --- query ---------------------------------------------------------------------------------------


def test_query_dispatches_on_slash_with_one_result_shape(nested: LookupIndex) -> None:
    address = nested.query(" 10.1.2.3 ")
    assert address == QueryResult("10.1.2.3", False, nested.lookup("10.1.2.3"), ())
    assert address.tags == ("Small", "Mid", "Mid2", "Big")

    cidr = nested.query("10.1.0.0/16")
    assert cidr.is_cidr
    assert (cidr.containing, cidr.overlapping) == nested.lookup_cidr("10.1.0.0/16")
    assert cidr.tags == ("Mid", "Mid2", "Big", "Small", "Other")

    assert nested.query("192.0.2.1") == QueryResult("192.0.2.1", False, (), ())


# --- invalid input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello", "'hello' is not an IPv4 or IPv6 address or CIDR"),
        ("1.2.3", "'1.2.3' is not an IPv4 or IPv6 address or CIDR"),
        ("256.1.1.1", "'256.1.1.1' is not an IPv4 or IPv6 address or CIDR"),
        ("01.2.3.4", "'01.2.3.4' is not an IPv4 or IPv6 address or CIDR"),
        ("1::2::3", "'1::2::3' is not an IPv4 or IPv6 address or CIDR"),
        ("", "'' is not an IPv4 or IPv6 address or CIDR (empty line)"),
        (
            "fe80::1%eth0",
            "'fe80::1%eth0' is not an IPv4 or IPv6 address or CIDR: '%eth0' is an IPv6 zone id, "
            "which is local to one host and never part of a service tag; drop it and ask for "
            "'fe80::1'",
        ),
        (
            "1.2.3.4:443",
            "'1.2.3.4:443' is not an IPv4 or IPv6 address or CIDR: it looks like address:port; "
            "drop the port and ask for '1.2.3.4'",
        ),
        (
            "10.0.0.0/24",
            "'10.0.0.0/24' is not an IPv4 or IPv6 address or CIDR: it is not an address; use "
            "lookup_cidr() or query() for a CIDR",
        ),
    ],
)
def test_invalid_address_messages(nested: LookupIndex, text: str, message: str) -> None:
    with pytest.raises(InvalidAddressError) as caught:
        nested.lookup(text)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, AztagsError)
    assert caught.value.text == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.0.0/33", "the prefix length must be a whole number from 0 to 32"),
        ("2603::/129", "the prefix length must be a whole number from 0 to 128"),
        ("10.0.0.0/", "the prefix length must be a whole number from 0 to 32"),
        ("10.0.0.0/-1", "the prefix length must be a whole number from 0 to 32"),
        ("10.0.0/8", "'10.0.0/8' is not an IPv4 or IPv6 address or CIDR"),
        ("fe80::%eth0/64", "drop it and ask for 'fe80::/64'"),
        ("/8", "'/8' is not an IPv4 or IPv6 address or CIDR"),
    ],
)
def test_invalid_cidr_messages(nested: LookupIndex, text: str, message: str) -> None:
    with pytest.raises(InvalidAddressError, match=message.replace(".", r"\.").replace("(", r"\(")):
        nested.query(text)


# --- batches -------------------------------------------------------------------------------------


def test_lookup_many_keeps_order_and_reports_bad_lines_inline(nested: LookupIndex) -> None:
    lines = (
        line for line in ["10.1.2.3\n", "  bogus ", "\n", "2603:1030::9\n", "11.0.0.1", "10.1.2.3"]
    )
    results = list(nested.lookup_many(lines))
    assert [text for text, _ in results] == [
        "10.1.2.3",
        "bogus",
        "",
        "2603:1030::9",
        "11.0.0.1",
        "10.1.2.3",
    ]
    assert results[0][1] is nested.lookup("10.1.2.3")
    assert results[5][1] is results[0][1]
    assert isinstance(results[1][1], InvalidAddressError)
    assert str(results[1][1]) == "'bogus' is not an IPv4 or IPv6 address or CIDR"
    assert isinstance(results[2][1], InvalidAddressError)
    assert results[3][1] == (M("Six", "2603:1030::/32"),)
    assert results[4][1] == ()


def test_lookup_many_is_lazy(nested: LookupIndex) -> None:
    def lines():
        yield "10.1.2.3"
        raise RuntimeError("read too far")

    batch = nested.lookup_many(lines())
    assert next(batch)[0] == "10.1.2.3"  # answered before the next line is read


# --- property: agrees with brute force over ipaddress --------------------------------------------

TAGS = st.sampled_from(["AzureCloud", "AzureCloud.westus", "Storage", "Storage.WestUS", "Sql"])


@st.composite
def prefixes(draw: st.DrawFn) -> str:
    """Prefixes packed into a small space (10.0.0.0/20 or 2603:1030::/116) so they nest often."""
    if draw(st.booleans()):
        length = draw(st.integers(18, 32) | st.sampled_from([0, 8, 16]))
        value = (10 << 24) | draw(st.integers(0, (1 << 12) - 1))
        return str(ipaddress.IPv4Network((value, length), strict=False))
    length = draw(st.integers(114, 128) | st.sampled_from([0, 32, 64]))
    value = (0x26031030 << 96) | draw(st.integers(0, (1 << 12) - 1))
    return str(ipaddress.IPv6Network((value, length), strict=False))


@st.composite
def addresses(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return str(ipaddress.IPv4Address((10 << 24) + draw(st.integers(-2, (1 << 12) + 1))))
    return str(ipaddress.IPv6Address((0x26031030 << 96) + draw(st.integers(-2, (1 << 12) + 1))))


def _brute_force(pairs: list[tuple[str, str]], address: str) -> set[LookupMatch]:
    ip = ipaddress.ip_address(address)
    return {M(tag, p) for tag, p in pairs if ip in ipaddress.ip_network(p)}


def _most_specific_first(matches: tuple[LookupMatch, ...]) -> bool:
    keys = [(-ipaddress.ip_network(m.prefix).prefixlen, m.tag) for m in matches]
    return keys == sorted(keys)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(TAGS, prefixes()), max_size=25),
    st.lists(addresses(), min_size=1, max_size=20),
)
def test_lookup_agrees_with_brute_force(pairs: list[tuple[str, str]], queries: list[str]) -> None:
    index = LookupIndex.build(pairs)
    for address in queries:
        found = index.lookup(address)
        assert len(found) == len(set(found))
        assert set(found) == _brute_force(pairs, address)
        assert _most_specific_first(found)
    assert [result for _, result in index.lookup_many(queries)] == [
        index.lookup(q) for q in queries
    ]


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(TAGS, prefixes()), max_size=25), prefixes())
def test_lookup_cidr_agrees_with_brute_force(pairs: list[tuple[str, str]], cidr: str) -> None:
    index = LookupIndex.build(pairs)
    containing, overlapping = index.lookup_cidr(cidr)
    query = ipaddress.ip_network(cidr)
    nets = [(tag, p, ipaddress.ip_network(p)) for tag, p in set(pairs)]
    same = [(tag, p, n) for tag, p, n in nets if n.version == query.version]
    assert set(containing) == {M(t, p) for t, p, n in same if query.subnet_of(n)}  # type: ignore[arg-type]
    assert set(overlapping) == {
        M(t, p)
        for t, p, n in same
        if n.subnet_of(query) and not query.subnet_of(n)  # type: ignore[arg-type]
    }
    assert len(containing) + len(overlapping) == len(set(containing) | set(overlapping))
    assert _most_specific_first(containing)
    networks = [(ipaddress.ip_network(m.prefix), m.tag) for m in overlapping]
    keys = [(int(n.network_address), n.prefixlen, tag) for n, tag in networks]
    assert keys == sorted(keys)


# --- real data -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def _real_pairs() -> list[tuple[str, str]]:
    document = real_json("Public", "20250113")
    return [
        (value["name"], prefix)
        for value in document["values"]
        for prefix in value["properties"]["addressPrefixes"]
    ]


@pytest.fixture(scope="module")
def _real_ranges(_real_pairs) -> list[tuple[str, str, int, int, int]]:
    return _ranges(_real_pairs)


@pytest.fixture
def real_pairs(request) -> list[tuple[str, str]]:
    require_data()  # first: the realdata guard sees every user, files or no files
    return request.getfixturevalue("_real_pairs")


@pytest.fixture
def real_ranges(request) -> list[tuple[str, str, int, int, int]]:
    """_ranges(real_pairs), computed once for the module's two tests (read only)."""
    require_data()  # first: the realdata guard sees every user, files or no files
    return request.getfixturevalue("_real_ranges")


def _ranges(pairs: list[tuple[str, str]]) -> list[tuple[str, str, int, int, int]]:
    """(tag, prefix, version, first, last) by ipaddress, independent of the index's parser."""
    out: list[tuple[str, str, int, int, int]] = []
    for tag, prefix in pairs:
        net = ipaddress.ip_network(prefix)
        first = int(net.network_address)
        out.append((tag, prefix, net.version, first, first + net.num_addresses - 1))
    return out


@pytest.mark.realdata
def test_real_snapshot_lookup_agrees_with_brute_force(
    real_pairs: list[tuple[str, str]], real_ranges: list[tuple[str, str, int, int, int]]
) -> None:
    ranges = real_ranges
    rng = random.Random(20250113)
    by_version = {v: [r for r in ranges if r[2] == v] for v in (4, 6)}
    wanted = {4: 2000, 6: 1000}
    bits = {4: 32, 6: 128}
    sample: list[tuple[int, int]] = []  # (version, value)
    for version, count in wanted.items():
        inside = by_version[version]
        for i in range(count // 2):  # inside a random prefix: its first, its last or any address
            _, _, _, first, last = rng.choice(inside)
            sample.append((version, (first, last, rng.randint(first, last))[i % 3]))
        for _ in range(count // 2):  # anywhere
            sample.append((version, rng.getrandbits(bits[version])))
        for _ in range(100):  # extra: just outside a random prefix
            _, _, _, first, last = rng.choice(inside)
            sample.append((version, rng.choice([first - 1, last + 1]) % (1 << bits[version])))

    # Brute force over every pair: which sampled addresses fall in [first, last]?
    expected: list[set[tuple[str, str]]] = [set() for _ in sample]
    for version in (4, 6):
        points = sorted((value, i) for i, (v, value) in enumerate(sample) if v == version)
        values = [value for value, _ in points]
        for tag, prefix, _, first, last in by_version[version]:
            for k in range(bisect_left(values, first), bisect_right(values, last)):
                expected[points[k][1]].add((tag, prefix))

    index = LookupIndex.build(real_pairs)
    texts = [str(ipaddress.ip_address(value)) for _, value in sample]
    batch = list(index.lookup_many(texts))
    found_some = 0
    for text, want, (batch_text, batch_result) in zip(texts, expected, batch, strict=True):
        got = index.lookup(text)
        assert {(m.tag, m.prefix) for m in got} == want, text
        assert len(got) == len(want)
        assert _most_specific_first(got)
        assert batch_text == text and batch_result is got
        found_some += bool(got)
    assert found_some >= 1500  # every inside address, at least
    assert index.prefix_count == len(set(real_pairs))


@pytest.mark.realdata
def test_real_snapshot_cidr_agrees_with_brute_force(
    real_pairs: list[tuple[str, str]], real_ranges: list[tuple[str, str, int, int, int]]
) -> None:
    ranges = real_ranges
    by_version = {v: [r for r in ranges if r[2] == v] for v in (4, 6)}
    index = LookupIndex.build(real_pairs)
    rng = random.Random(7)
    queries = [rng.choice(ranges) for _ in range(40)]
    queries += [r for r in ranges if r[1] in ("13.64.0.0/11", "20.0.0.0/8")][:2]
    for _, prefix, version, _, _ in queries:
        # also ask about the prefix's parent, which often holds siblings
        net = ipaddress.ip_network(prefix)
        for query in (net, net.supernet(min(4, net.prefixlen))):
            q_first, q_last = int(query.network_address), int(query.broadcast_address)
            containing, overlapping = index.lookup_cidr(str(query))
            want_containing = {
                (t, p) for t, p, _, lo, hi in by_version[version] if lo <= q_first and hi >= q_last
            }
            want_overlapping = {
                (t, p)
                for t, p, _, lo, hi in by_version[version]
                if lo >= q_first and hi <= q_last and (t, p) not in want_containing
            }
            assert {(m.tag, m.prefix) for m in containing} == want_containing
            assert {(m.tag, m.prefix) for m in overlapping} == want_overlapping
            assert len(overlapping) == len(want_overlapping)
