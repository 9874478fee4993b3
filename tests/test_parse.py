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
