"""A weekly import parses only the tags whose prefix list changed (resolver.parse ``validated``):
the same snapshot as a full parse, whatever the changeNumbers say, and a bad prefix in a changed
tag still refuses the whole file."""

from __future__ import annotations

import gzip
import sqlite3

import pytest

import resolver.parse as parse
from cache.db import open_db
from cache.store import SaveOptions, known_prefix_digests
from resolver.errors import SnapshotError
from resolver.ingest import RawFile
from resolver.parse import parse_snapshot, prefix_digest
from resolver.refresh import store_file
from tests.helpers import WEEKLY_2023, real_path, snapshot_bytes, tag_json


def _raw(data: bytes, name: str) -> RawFile:
    return RawFile(data=data, source=name)


def _counting(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = parse.parse_prefix

    def counted(text: str):
        seen.append(text)
        return real(text)

    monkeypatch.setattr(parse, "parse_prefix", counted)
    return seen


@pytest.mark.realdata
def test_a_weekly_file_parsed_with_the_stored_digests_is_the_same_snapshot(tmp_path, monkeypatch):
    old, new = (gzip.decompress(real_path("Public", d).read_bytes()) for d in WEEKLY_2023[-2:])
    conn = open_db(tmp_path / "aztags.db")
    store_file(conn, _raw(old, "old.json"), SaveOptions())
    digests = known_prefix_digests(conn)
    conn.close()
    full = parse_snapshot(new, "new.json")
    previous = {t.name: t.prefixes for t in parse_snapshot(old, "old.json").tags}
    parsed = _counting(monkeypatch)
    assert parse_snapshot(new, "new.json", validated=digests) == full
    changed = [t for t in full.tags if previous.get(t.name) != t.prefixes]
    assert changed and len(changed) < len(full.tags) // 4
    # only the prefixes of the tags whose list changed were parsed, each text once however
    # many of those tags list it
    assert sorted(parsed) == sorted({p for t in changed for p in t.prefixes})


def test_a_prefix_listed_by_many_tags_is_parsed_once_and_checked_in_each(monkeypatch):
    shared = ["10.0.0.0/24", "2001:db8::/48"]
    data = snapshot_bytes(
        1, [tag_json("A", shared), tag_json("B", [*shared, "10.1.0.0/24"]), tag_json("C", shared)]
    )
    parsed = _counting(monkeypatch)
    snapshot = parse_snapshot(data, "x.json")
    assert sorted(parsed) == sorted([*shared, "10.1.0.0/24"])
    assert [t.prefixes for t in snapshot.tags] == [
        ("10.0.0.0/24", "2001:db8::/48"),
        ("10.0.0.0/24", "10.1.0.0/24", "2001:db8::/48"),
        ("10.0.0.0/24", "2001:db8::/48"),
    ]
    # a text parsed for one tag is still checked for duplicates in every other
    twice = snapshot_bytes(1, [tag_json("A", shared), tag_json("B", [shared[0], shared[0]])])
    with pytest.raises(SnapshotError) as refused:
        parse_snapshot(twice, "x.json")
    assert "tag 'B': prefix '10.0.0.0/24' is listed twice" in str(refused.value)
    # and a bad text is reported for every tag that lists it
    bad = snapshot_bytes(1, [tag_json("A", ["10.0.0.1/24"]), tag_json("B", ["10.0.0.1/24"])])
    with pytest.raises(SnapshotError) as refused:
        parse_snapshot(bad, "x.json")
    assert "tag 'A': prefix '10.0.0.1/24'" in str(refused.value)
    assert "tag 'B': prefix '10.0.0.1/24'" in str(refused.value)


def test_a_changed_tag_is_validated_even_with_an_unchanged_change_number(tmp_path):
    first = snapshot_bytes(
        1, [tag_json("A", ["10.0.0.0/24"]), tag_json("B", ["10.1.0.0/24", "10.2.0.0/24"])]
    )
    # B's content changes (a prefix with host bits set) but its changeNumber does not; A is as
    # before. The file is refused whole, and nothing is stored.
    second = snapshot_bytes(
        2, [tag_json("A", ["10.0.0.0/24"]), tag_json("B", ["10.1.0.1/24", "10.2.0.0/24"])]
    )
    path = tmp_path / "aztags.db"
    conn = open_db(path)
    store_file(conn, _raw(first, "ServiceTags_Public_20250106.json"), SaveOptions())
    assert prefix_digest(["10.0.0.0/24"]) in known_prefix_digests(conn)
    with pytest.raises(SnapshotError) as refused:
        store_file(conn, _raw(second, "ServiceTags_Public_20250113.json"), SaveOptions())
    assert "10.1.0.1/24" in str(refused.value) and "host bits" in str(refused.value)
    conn.close()
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT change_number FROM snapshots").fetchall() == [(1,)]
    raw.close()


def test_a_known_list_is_taken_as_is_and_an_unknown_one_is_made_canonical():
    listed = ["10.0.0.0/24", "2001:db8::/48"]
    data = snapshot_bytes(1, [tag_json("A", listed), tag_json("B", ["2001:DB8:0::/48"])])
    snapshot = parse_snapshot(data, "x.json", validated={prefix_digest(listed)})
    assert [t.prefixes for t in snapshot.tags] == [tuple(listed), ("2001:db8::/48",)]
    assert snapshot == parse_snapshot(data, "x.json")


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        (167772160, "167772160 is not a string"),
        (None, "null (or missing) is not a string"),
        (["10.0.0.0/24"], "is not a string"),
        ({"prefix": "10.0.0.0/24"}, "is not a string"),
    ],
)
def test_something_else_than_text_among_prefixes_is_refused_with_known_digests(bad, said):
    """With stored digests at hand (a weekly import), a list holding a number, null, a list
    or an object is not mistaken for a known one: the file is refused, naming it."""
    listed = ["10.0.0.0/24", "10.1.0.0/24"]
    data = snapshot_bytes(1, [tag_json("A", listed), tag_json("B", [listed[0], bad])])
    with pytest.raises(SnapshotError) as refused:
        parse_snapshot(data, "x.json", validated={prefix_digest(listed)})
    assert "tag 'B': addressPrefixes: " in str(refused.value) and said in str(refused.value)
