"""Validation of Service Tags files: every problem named, real files accepted."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest

from resolver.errors import SnapshotError
from resolver.parse import parse_prefix, parse_snapshot
from tests.helpers import manifest, require_data, snapshot_bytes, tag_json


def test_parses_tags_sorted_with_properties():
    data = snapshot_bytes(
        7,
        [
            tag_json(
                "Storage.WestUS",
                ["13.64.0.0/16", "2603:1030:A00::/46"],
                region="westus",
                region_id=37,
                service="AzureStorage",
            ),
            tag_json("AzureCloud", ["10.0.0.0/8"], features=None),
            tag_json("Empty", [], features=[]),
        ],
    )
    snap = parse_snapshot(data, "test.json", "Public")
    assert snap.cloud == "Public" and snap.change_number == 7
    assert [t.name for t in snap.tags] == ["AzureCloud", "Empty", "Storage.WestUS"]
    storage = snap.tags[2]
    assert storage.region == "westus" and storage.region_id == 37
    assert storage.system_service == "AzureStorage"
    # IPv6 written in upper case is stored in canonical form
    assert storage.prefixes == ("13.64.0.0/16", "2603:1030:a00::/46")
    # null and [] stay distinct
    assert snap.tags[0].network_features is None
    assert snap.tags[1].network_features == frozenset()


def test_prefixes_sorted_ipv4_first_then_by_address():
    data = snapshot_bytes(
        1, [tag_json("T", ["2001:db8::/32", "10.0.0.0/8", "9.0.0.0/8", "10.0.0.0/16"])]
    )
    assert parse_snapshot(data, "x").tags[0].prefixes == (
        "9.0.0.0/8",
        "10.0.0.0/8",
        "10.0.0.0/16",
        "2001:db8::/32",
    )


def test_collects_every_problem_naming_tag_and_field():
    data = snapshot_bytes(
        3,
        [
            tag_json("Good", ["10.0.0.0/8"]),
            tag_json("HostBits", ["10.0.0.1/8"]),
            tag_json("Garbage", ["not-an-ip/24", "300.1.1.0/24"]),
            {"name": "NoProps", "id": "NoProps"},
            tag_json("Good", ["11.0.0.0/8"]),
        ],
    )
    with pytest.raises(SnapshotError) as err:
        parse_snapshot(data, "bad.json")
    message = str(err.value)
    assert "5 problems" in message
    assert (
        "tag 'HostBits': prefix '10.0.0.1/8': host bits are set (the network is 10.0.0.0/8)"
        in message
    )
    assert "tag 'Garbage': prefix 'not-an-ip/24'" in message
    assert "tag 'Garbage': prefix '300.1.1.0/24'" in message
    assert "tag 'NoProps': properties" in message
    assert "tag 'Good': appears more than once" in message


def test_wrong_cloud_is_refused():
    data = snapshot_bytes(1, [tag_json("T", ["10.0.0.0/8"])], cloud="China")
    with pytest.raises(SnapshotError, match="for cloud 'China', but 'Public' was requested"):
        parse_snapshot(data, "x", "Public")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "the body is empty"),
        (b"   \n", "the body is empty"),
        (b"<!DOCTYPE html><html><body>Download Center</body></html>", "the body is HTML, not JSON"),
        (
            b'{"changeNumber": 1, "cloud": "Public", "values": [{"name": "A"',
            "the file is truncated",
        ),
        (b"\x00\xff\xfe garbage", "not UTF-8"),
        (b"[1, 2, 3]", "the top level is a JSON list"),
        (
            b'{"changeNumber": "x", "cloud": "Public", "values": []}',
            "changeNumber: expected an integer",
        ),
        (b"{not json}", "not valid JSON"),
    ],
)
def test_wrong_bodies_get_one_clear_sentence(body, expected):
    with pytest.raises(SnapshotError, match=expected) as err:
        parse_snapshot(body, "https://example/x.json")
    assert "https://example/x.json" in str(err.value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("10.0.0.0", "address/length"),
        ("10.0.0.0/33", "longer than 32"),
        ("10.0.0.0/08", "address/length"),
        ("2001:db8::1/32", "host bits"),
        ("2001:db8::/129", "longer than 128"),
        ("010.0.0.0/8", "not an IPv4 address"),
    ],
)
def test_parse_prefix_rejects(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_prefix(text)


@pytest.mark.realdata
@pytest.mark.slow  # all 71 files: sha256, parse, and json.loads to compare
def test_every_real_file_parses_and_matches_the_manifest():
    root = require_data()
    rows = manifest()
    assert {r["cloud"] for r in rows} == {"Public", "AzureGovernment", "China", "AzureGermany"}
    for row in rows:
        path = root / row["cloud"] / f"ServiceTags_{row['cloud']}_{row['date']}.json.gz"
        data = gzip.decompress(path.read_bytes())
        assert hashlib.sha256(data).hexdigest() == row["sha256"], path.name
        snap = parse_snapshot(data, path.name, row["cloud"])
        assert snap.change_number == int(row["cn"]), path.name
        assert len(snap.tags) == int(row["tags"]), path.name
        assert snap.prefix_count == int(row["prefixes"]), path.name
        raw = json.loads(data)
        by_name = {t.name: t for t in snap.tags}
        for value in raw["values"]:
            props = value["properties"]
            tag = by_name[value["name"]]
            assert set(tag.prefixes) == set(props["addressPrefixes"]), (path.name, tag.name)
            features = props["networkFeatures"]
            assert tag.network_features == (None if features is None else frozenset(features))


# --------------------------------------------------------------------------------------------
# Hostile files: refused with the field named, never another exception (issue 7). The full corpus,
# through the CLI as well, is tests/test_hostile_files.py.

MAX = 2**63 - 1


def _doc(**top) -> dict:
    doc = {"changeNumber": 5, "cloud": "Public", "values": [tag_json("AzureCloud", ["10.0.0.0/8"])]}
    doc.update(top)
    return doc


def _refused(doc_or_bytes, expected_cloud=None, **kw) -> str:
    data = doc_or_bytes if isinstance(doc_or_bytes, bytes) else json.dumps(doc_or_bytes).encode()
    with pytest.raises(SnapshotError) as err:
        parse_snapshot(data, "bad.json", expected_cloud, **kw)
    return str(err.value)


@pytest.mark.parametrize("value", [MAX + 1, 2**64, 10**30, -1, -(2**63)])
def test_change_number_outside_0_to_2_63_is_refused_naming_the_field(value):
    message = _refused(_doc(changeNumber=value))
    assert "changeNumber:" in message
    assert ("negative" if value < 0 else "too large") in message


def test_change_number_at_the_limit_is_accepted():
    assert parse_snapshot(json.dumps(_doc(changeNumber=MAX)).encode(), "x").change_number == MAX
    assert parse_snapshot(json.dumps(_doc(changeNumber=0)).encode(), "x").change_number == 0


@pytest.mark.parametrize(
    ("field", "value", "phrase"),
    [
        ("changeNumber", MAX + 1, "too large"),
        ("changeNumber", -3, "negative"),
        ("regionId", 2**64, "too large"),
        ("regionId", -1, "negative"),
    ],
)
def test_tag_integers_outside_sqlite_range_are_refused_naming_tag_and_field(field, value, phrase):
    tag = tag_json("Storage", ["10.0.0.0/8"])
    tag["properties"][field] = value
    message = _refused(_doc(values=[tag]))
    assert f"tag 'Storage': {field}:" in message and phrase in message


def test_deep_nesting_is_one_sentence():
    message = _refused(b"[" * 200_000)
    assert "nested too deeply" in message and "1 problem" in message


def test_a_lone_surrogate_in_a_tag_name_is_refused_naming_the_position():
    body = _doc(values=[tag_json("Good", ["10.0.0.0/8"]), tag_json("X", ["11.0.0.0/8"])])
    text = json.dumps(body).replace('"X"', '"Bad\\ud800"')
    message = _refused(text.encode())
    assert "values[1]: name: 'Bad\\ud800'" in message
    assert "surrogate" in message
    message.encode("utf-8")  # the message itself can be printed


@pytest.mark.parametrize("field", ["region", "systemService", "platform"])
def test_a_lone_surrogate_or_control_character_in_a_tag_field_is_refused(field):
    for bad in ("west\\udc80", "west\\u001b[31m"):
        tag = tag_json("Storage", ["10.0.0.0/8"])
        tag["properties"][field] = "PLACEHOLDER"
        text = json.dumps(_doc(values=[tag])).replace("PLACEHOLDER", bad)
        message = _refused(text.encode())
        assert f"tag 'Storage': {field}:" in message
        assert "\x1b" not in message


@pytest.mark.parametrize("length", ["٣٢", "３２", "1e1", "+8", " 8"])
def test_prefix_lengths_in_anything_but_ascii_digits_are_refused(length):
    message = _refused(_doc(values=[tag_json("T", [f"10.0.0.0/{length}"])]))
    assert "tag 'T': prefix" in message and "ASCII digits" in message


def test_only_canonical_prefix_text_is_kept():
    data = snapshot_bytes(1, [tag_json("T", ["2603:1030:A00:0000::/64", "10.0.0.0/8"])])
    assert parse_snapshot(data, "x").tags[0].prefixes == ("10.0.0.0/8", "2603:1030:a00::/64")


def test_ipv4_mapped_ipv6_prefixes_are_refused():
    message = _refused(_doc(values=[tag_json("T", ["::ffff:10.0.0.0/104", "::ffff:0:0/96"])]))
    assert message.count("IPv4-mapped") == 2


@pytest.mark.parametrize("cloud", ["Mars", "china", "PUBLIC", "AzureCloud", " Public"])
def test_a_cloud_that_is_not_one_of_the_four_is_refused_naming_them(cloud):
    message = _refused(_doc(cloud=cloud))
    assert "is not an Azure cloud" in message
    assert "Public, AzureGovernment, China, AzureGermany" in message


def test_each_of_the_four_clouds_is_accepted():
    for cloud in ("Public", "AzureGovernment", "China", "AzureGermany"):
        assert parse_snapshot(json.dumps(_doc(cloud=cloud)).encode(), "x", cloud).cloud == cloud


def test_an_empty_file_is_refused_unless_allowed():
    message = _refused(_doc(values=[]))
    assert "an empty file is never plausible" in message and "--allow-empty" in message
    snap = parse_snapshot(json.dumps(_doc(values=[])).encode(), "x", allow_empty=True)
    assert snap.tags == ()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(literal):
    body = b'{"changeNumber": ' + literal.encode() + b', "cloud": "Public", "values": []}'
    assert f"holds {literal}" in _refused(body)


def test_a_key_twice_in_one_object_is_refused():
    body = b'{"changeNumber": 1, "changeNumber": 2, "cloud": "Public", "values": []}'
    assert "the key 'changeNumber' appears twice" in _refused(body)


def test_a_number_of_5000_digits_is_one_sentence():
    body = b'{"changeNumber": ' + b"9" * 5000 + b', "cloud": "Public", "values": []}'
    assert "too large to read" in _refused(body)


def test_a_utf8_byte_order_mark_is_skipped_but_utf16_is_refused():
    data = json.dumps(_doc()).encode()
    assert parse_snapshot(b"\xef\xbb\xbf" + data, "x") == parse_snapshot(data, "x")
    assert "UTF-16 text" in _refused(
        "\ufeff".encode("utf-16-le") + data.decode().encode("utf-16-le")
    )
    assert "NUL bytes" in _refused(data.decode().encode("utf-16-le"))
    assert "HTML" in _refused(b"\xef\xbb\xbf  <html><body>proxy login</body></html>")


def test_tag_names_differing_only_in_case_are_refused():
    message = _refused(_doc(values=[tag_json("Storage", ["10.0.0.0/8"]), tag_json("storage", [])]))
    assert "tag 'storage': appears more than once (also as 'Storage'" in message


def test_a_feature_name_with_a_comma_is_refused():
    message = _refused(_doc(values=[tag_json("T", ["10.0.0.0/8"], features=["API,NSG"])]))
    assert "networkFeatures" in message and "comma" in message


def test_huge_wrong_values_are_shown_short():
    big = {"values": [[["x" * 100_000] * 10] * 10]}
    message = _refused(_doc(changeNumber=big, cloud="M" * 1_000_000))
    assert len(message) < 1000
    assert "changeNumber: expected an integer, found {" in message
