"""Storing snapshots: history, backfill, duplicates, quarantine, order, crash safety."""

from __future__ import annotations

import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cache.db import open_db
from cache.history import load_tags
from cache.store import SaveOptions, load_current, load_snapshots, save_snapshot
from resolver.models import RawFile
from resolver.parse import parse_snapshot
from resolver.refs import resolve_at
from tests.conftest import ROOT, WEEKLY_2023, real_path, simple_snapshot, snapshot_bytes, tag_json


def ingest(conn, data: bytes, day: str | None = None, **options):
    raw = RawFile(data, f"test-{day}", date.fromisoformat(day) if day else None)
    return save_snapshot(conn, parse_snapshot(data, raw.source), raw, SaveOptions(**options))


def state(conn, cloud="Public", at=None) -> dict[str, set[str]]:
    info = resolve_at(conn, cloud, at)
    return {t.name: set(t.prefixes) for t in load_tags(conn, cloud, info.seq)}


@pytest.fixture
def conn(tmp_path):
    connection = open_db(tmp_path / "store.db")
    yield connection
    connection.close()


A = {"Storage": ["10.0.0.0/16", "10.1.0.0/16"], "Storage.WestUS": ["10.0.0.0/24"]}
B = {"Storage": ["10.0.0.0/16", "10.2.0.0/16"], "Sql": ["20.0.0.0/8"]}
C = {"Storage": ["10.0.0.0/16", "10.1.0.0/16", "10.2.0.0/16"], "Sql": ["20.0.0.0/8"]}


def test_current_snapshot_reads_back_exactly(conn):
    result = ingest(conn, simple_snapshot(1, A), "2025-01-06")
    assert result.outcome == "current"
    assert result.tags_added == 2 and result.prefixes_added == 3
    assert state(conn) == {k: set(v) for k, v in A.items()}


def test_each_snapshot_stays_queryable_after_changes(conn):
    ingest(conn, simple_snapshot(1, A), "2025-01-06")
    result = ingest(conn, simple_snapshot(2, B), "2025-01-13")
    assert (result.tags_added, result.tags_removed, result.tags_changed) == (1, 1, 1)
    assert (result.prefixes_added, result.prefixes_removed) == (2, 2)
    ingest(conn, simple_snapshot(3, C), "2025-01-20")
    assert state(conn, at="cn:1") == {k: set(v) for k, v in A.items()}
    assert state(conn, at="2025-01-15") == {k: set(v) for k, v in B.items()}
    assert state(conn) == {k: set(v) for k, v in C.items()}


def test_same_file_twice_is_a_no_op(conn):
    data = simple_snapshot(1, A)
    ingest(conn, data, "2025-01-06")
    before = conn.execute("SELECT count(*) FROM memberships").fetchone()
    again = ingest(conn, data, "2025-01-06")
    assert again.outcome == "duplicate"
    assert conn.execute("SELECT count(*) FROM memberships").fetchone() == before
    assert len(load_snapshots(conn)) == 1


def test_same_content_with_other_line_endings_is_the_same_snapshot(conn):
    data = simple_snapshot(1, A)
    ingest(conn, data, "2025-01-06")
    assert ingest(conn, data.replace(b"\n", b"\r\n"), "2025-01-06").outcome == "duplicate"


def test_older_file_is_backfill_and_does_not_become_current(conn):
    ingest(conn, simple_snapshot(5, C), "2025-02-03")
    result = ingest(conn, simple_snapshot(4, A), "2025-01-27")
    assert result.outcome == "backfill"
    assert load_current(conn, "Public").change_number == 5
    assert state(conn) == {k: set(v) for k, v in C.items()}
    assert state(conn, at="cn:4") == {k: set(v) for k, v in A.items()}


def test_big_drop_is_quarantined_then_forced(conn):
    big = {"Storage": [f"10.{i}.0.0/16" for i in range(10)]}
    small = {"Storage": [f"10.{i}.0.0/16" for i in range(7)]}  # loses 30%
    ingest(conn, simple_snapshot(1, big), "2025-01-06")
    result = ingest(conn, simple_snapshot(2, small), "2025-01-13")
    assert result.outcome == "quarantined"
    assert "3 (30%) fewer" in result.notes[0]
    assert load_current(conn, "Public").change_number == 1
    assert [s.quarantined for s in load_snapshots(conn)] == [False, True]
    # fetching it again without --force keeps it quarantined
    assert ingest(conn, simple_snapshot(2, small), "2025-01-13").outcome == "quarantined"
    forced = ingest(conn, simple_snapshot(2, small), "2025-01-13", force=True)
    assert forced.outcome == "current"
    assert load_current(conn, "Public").change_number == 2
    assert state(conn) == {"Storage": set(small["Storage"])}
    assert len(load_snapshots(conn)) == 2


def test_threshold_is_configurable(conn):
    ingest(conn, simple_snapshot(1, {"T": [f"10.{i}.0.0/16" for i in range(10)]}), "2025-01-06")
    small = simple_snapshot(2, {"T": [f"10.{i}.0.0/16" for i in range(7)]})
    assert ingest(conn, small, "2025-01-13", quarantine_drop=0.5).outcome == "current"


def test_property_changes_are_kept_over_time(conn):
    def file(cn, region, features):
        tag = tag_json("X.Y", ["10.0.0.0/8"], region=region, features=features)
        return snapshot_bytes(cn, [tag])

    ingest(conn, file(1, "westus", None), "2025-01-06")
    ingest(conn, file(2, "eastus", []), "2025-01-13")
    ingest(conn, file(3, "eastus", ["NSG", "API"]), "2025-01-20")
    info = resolve_at(conn, "Public", "cn:1")
    (old,) = load_tags(conn, "Public", info.seq)
    assert old.region == "westus" and old.network_features is None
    (mid,) = load_tags(conn, "Public", resolve_at(conn, "Public", "cn:2").seq)
    assert mid.region == "eastus" and mid.network_features == frozenset()
    (new,) = load_tags(conn, "Public", resolve_at(conn, "Public").seq)
    assert new.network_features == frozenset({"NSG", "API"})


def test_at_before_first_snapshot_and_unknown_cn(conn):
    from resolver.errors import NotFoundError, UsageError

    ingest(conn, simple_snapshot(3, A), "2025-01-06")
    with pytest.raises(NotFoundError, match="before the first stored Public snapshot"):
        resolve_at(conn, "Public", "2024-12-31")
    with pytest.raises(NotFoundError, match="No Public snapshot with changeNumber 9"):
        resolve_at(conn, "Public", "cn:9")
    with pytest.raises(UsageError, match="neither a date"):
        resolve_at(conn, "Public", "yesterday")


def test_raw_file_kept_compressed_unless_turned_off(conn):
    from cache.store import load_raw

    data = simple_snapshot(1, A)
    kept = ingest(conn, data, "2025-01-06")
    assert load_raw(conn, kept.snapshot.id) == data
    skipped = ingest(conn, simple_snapshot(2, B), "2025-01-13", keep_raw=False)
    assert load_raw(conn, skipped.snapshot.id) is None


# -- order independence ----------------------------------------------------------------------------

PREFIXES = [f"10.0.{i}.0/24" for i in range(6)] + ["2001:db8::/48", "2001:db8:1::/48"]
FEATURES = [None, [], ["NSG"], ["API", "NSG"]]
snapshot_contents = st.dictionaries(
    st.sampled_from(["A", "B", "C.WestUS", "D.EastUS"]),
    st.tuples(
        st.lists(st.sampled_from(PREFIXES), unique=True, max_size=6),
        st.sampled_from(range(len(FEATURES))),  # networkFeatures change without prefix changes
    ),
    min_size=1,
    max_size=4,
)


def contents_file(change_number: int, contents: dict) -> bytes:
    return snapshot_bytes(
        change_number,
        [
            tag_json(name, prefixes, region=name.partition(".")[2].lower(), features=FEATURES[f])
            for name, (prefixes, f) in sorted(contents.items())
        ],
    )


def history_dump(conn) -> list[tuple]:
    """History in terms independent of row ids and seq numbers."""
    cn = dict(conn.execute("SELECT seq, change_number FROM snapshots WHERE seq IS NOT NULL"))
    rows = conn.execute(
        "SELECT t.name, p.prefix, m.from_seq, m.to_seq FROM memberships m "
        "JOIN tags t ON t.id = m.tag_id JOIN prefixes p ON p.id = m.prefix_id"
    ).fetchall()
    versions = conn.execute(
        "SELECT t.name, v.region, v.network_features, v.prefix_digest, v.from_seq, v.to_seq "
        "FROM tag_versions v JOIN tags t ON t.id = v.tag_id"
    ).fetchall()
    return sorted(
        [(n, p, cn[f], cn.get(t)) for n, p, f, t in rows]
        + [(n, r, str(fe), d, cn[f], cn.get(t)) for n, r, fe, d, f, t in versions],
        key=repr,
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(contents=st.lists(snapshot_contents, min_size=2, max_size=5), data=st.data())
def test_import_order_does_not_change_history(tmp_path_factory, contents, data):
    files = [contents_file(i + 1, c) for i, c in enumerate(contents)]
    order = data.draw(st.permutations(range(len(files))))
    dumps = []
    for sequence in (range(len(files)), order):
        conn = open_db(tmp_path_factory.mktemp("order") / "s.db")
        for i in sequence:
            ingest(conn, files[i], f"2025-01-{i + 1:02d}", quarantine_drop=1.0)
        dumps.append(history_dump(conn))
        # and every snapshot reads back as it was published
        for i, c in enumerate(contents):
            assert state(conn, at=f"cn:{i + 1}") == {k: set(v) for k, (v, _) in c.items()}
            seq = resolve_at(conn, "Public", f"cn:{i + 1}").seq
            features = {t.name: t.network_features for t in load_tags(conn, "Public", seq)}
            assert features == {
                k: None if FEATURES[f] is None else frozenset(FEATURES[f])
                for k, (_, f) in c.items()
            }
        conn.close()
    assert dumps[0] == dumps[1]


# -- the 16 weekly Public files against an independent computation ---------------------------------


@pytest.fixture(scope="module")
def weekly(tmp_path_factory):
    paths = [real_path("Public", d) for d in WEEKLY_2023]
    conn = open_db(tmp_path_factory.mktemp("weekly") / "weekly.db")
    results, raw = [], []
    for path in paths:
        data = gzip.decompress(path.read_bytes())
        doc = json.loads(data)
        raw.append({v["name"]: set(v["properties"]["addressPrefixes"]) for v in doc["values"]})
        day = path.name.split("_")[2][:8]
        results.append(ingest(conn, data, f"{day[:4]}-{day[4:6]}-{day[6:]}"))
    yield conn, raw, results
    conn.close()


def test_weekly_history_matches_raw_json(weekly):
    conn, raw, results = weekly
    assert [r.outcome for r in results] == ["current"] * len(raw)
    for expected, result in zip(raw, results, strict=True):
        assert state(conn, at=f"cn:{result.snapshot.change_number}") == expected


def test_weekly_changes_match_set_differences(weekly):
    _, raw, results = weekly
    for before, after, result in zip(raw, raw[1:], results[1:], strict=False):
        added = sum(len(after[t] - before.get(t, set())) for t in after)
        removed = sum(len(before[t] - after.get(t, set())) for t in before)
        changed = sum(1 for t in after if t in before and after[t] != before[t])
        assert (result.prefixes_added, result.prefixes_removed) == (added, removed)
        assert result.tags_changed == changed
        assert result.tags_added == len(after.keys() - before.keys())
    # 20230410 -> 20230417 changes nothing but the changeNumber
    quiet = results[WEEKLY_2023.index("20230417")]
    assert (quiet.prefixes_added, quiet.prefixes_removed, quiet.tags_changed) == (0, 0, 0)


def test_rows_grow_with_changes_not_with_snapshots(weekly):
    conn, raw, results = weekly
    rows = conn.execute("SELECT count(*) FROM memberships").fetchone()[0]
    assert rows == sum(r.prefixes_added for r in results)
    assert rows < 1.1 * sum(len(p) for p in raw[0].values())  # vs 16x for copies per snapshot


# -- concurrency and crash safety ------------------------------------------------------------------


def test_readers_keep_working_while_a_write_is_under_way(tmp_path):
    path = tmp_path / "wal.db"
    writer = open_db(path)
    ingest(writer, simple_snapshot(1, A), "2025-01-06")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("DELETE FROM memberships")  # uncommitted
    reader = open_db(path, readonly=True)
    assert state(reader) == {k: set(v) for k, v in A.items()}
    writer.execute("ROLLBACK")


def test_killing_an_ingest_leaves_the_previous_state_intact(tmp_path):
    first = real_path("Public", "20230306")
    second = real_path("Public", "20250113")
    db = tmp_path / "crash.db"
    env = {**os.environ, "AZTAGS_DB": str(db)}
    cmd = [sys.executable, str(ROOT / "cli.py"), "import"]
    subprocess.run([*cmd, str(first)], env=env, check=True, capture_output=True)
    conn = open_db(db, readonly=True)
    expected = state(conn)
    conn.close()
    killed = 0
    for delay in (0.25, 0.35, 0.45, 0.55, 0.65, 0.8):
        proc = subprocess.Popen(
            [*cmd, str(second)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.returncode == -signal.SIGKILL:
            killed += 1
        check = sqlite3.connect(db)
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        check.close()
        conn = open_db(db, readonly=True)
        changes = {s.change_number for s in load_snapshots(conn)}
        if changes == {244}:
            assert state(conn) == expected
        else:  # the kill came after the commit: the new file is there in full
            assert changes == {244, 341}
            assert sum(len(v) for v in state(conn).values()) == 86199
            conn.close()
            break
        conn.close()
    assert killed >= 1, "no ingest was killed mid-way; the test proved nothing"
