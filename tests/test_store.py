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

from cache.db import open_db, transaction
from cache.history import load_current, load_snapshots, load_tags
from cache.store import SaveOptions, save_snapshot
from resolver.diff import diff_tags
from resolver.errors import SnapshotError
from resolver.ingest import Outcome, RawFile, TagChange
from resolver.models import ChangeKind
from resolver.parse import parse_snapshot
from resolver.prefixes import sort_prefixes
from resolver.refresh import store_file
from resolver.refs import resolve_at
from tests.helpers import (
    ROOT,
    WEEKLY_2023,
    raw_tags,
    real_path,
    require_data,
    simple_snapshot,
    snapshot_bytes,
    tag_json,
)


def ingest(conn, data: bytes, day: str | None = None, **options):
    raw = RawFile(data, f"test-{day}", date.fromisoformat(day) if day else None)
    snapshot = parse_snapshot(data, raw.source)
    with transaction(conn):
        return save_snapshot(conn, snapshot, raw, SaveOptions(**options))


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
    from cache.history import load_raw

    data = simple_snapshot(1, A)
    kept = ingest(conn, data, "2025-01-06")
    assert load_raw(conn, kept.snapshot.id) == data
    skipped = ingest(conn, simple_snapshot(2, B), "2025-01-13", keep_raw=False)
    assert load_raw(conn, skipped.snapshot.id) is None


# -- what changed, and who owns the transaction ----------------------------------------------------


def test_changes_name_each_tag_and_its_prefixes(conn):
    first = ingest(conn, simple_snapshot(1, A), "2025-01-06")
    assert first.changes == (
        TagChange("Storage", ChangeKind.ADDED, added=("10.0.0.0/16", "10.1.0.0/16")),
        TagChange("Storage.WestUS", ChangeKind.ADDED, added=("10.0.0.0/24",)),
    )
    second = ingest(conn, simple_snapshot(2, B), "2025-01-13")
    assert second.changes == (
        TagChange("Sql", ChangeKind.ADDED, added=("20.0.0.0/8",)),
        TagChange("Storage", ChangeKind.CHANGED, added=("10.2.0.0/16",), removed=("10.1.0.0/16",)),
        TagChange("Storage.WestUS", ChangeKind.REMOVED, removed=("10.0.0.0/24",)),
    )
    # the counts printed and in JSON agree with the changes
    assert second.prefixes_added == sum(len(c.added) for c in second.changes) == 2
    assert second.prefixes_removed == sum(len(c.removed) for c in second.changes) == 2


def test_changes_report_property_changes_with_their_values(conn):
    def file(cn, region, features, prefixes=("10.0.0.0/8",)):
        tag = tag_json("X.Y", list(prefixes), region=region, features=features)
        return snapshot_bytes(cn, [tag])

    ingest(conn, file(1, "westus", None), "2025-01-06")
    moved = ingest(conn, file(2, "eastus", ["NSG"]), "2025-01-13")
    assert moved.changes == (
        TagChange(
            "X.Y",
            ChangeKind.CHANGED,
            properties=(
                ("region", "westus", "eastus"),
                ("network_features", None, frozenset({"NSG"})),
            ),
        ),
    )
    assert moved.tags_changed == 0  # counts tags whose prefixes changed, as before
    both = ingest(conn, file(3, "eastus", [], ("10.0.0.0/8", "11.0.0.0/8")), "2025-01-20")
    assert both.changes == (
        TagChange(
            "X.Y",
            ChangeKind.CHANGED,
            added=("11.0.0.0/8",),
            properties=(("network_features", frozenset({"NSG"}), frozenset()),),
        ),
    )
    # only the tag's own changeNumber moved: nothing to report
    tag = tag_json("X.Y", ["10.0.0.0/8", "11.0.0.0/8"], region="eastus", features=[])
    tag["properties"]["changeNumber"] = 7
    assert ingest(conn, snapshot_bytes(4, [tag]), "2025-01-27").changes == ()


def test_a_tag_that_had_no_prefixes_reports_the_ones_it_gains(conn):
    ingest(conn, simple_snapshot(1, {"Empty": []}), "2025-01-06")
    result = ingest(conn, simple_snapshot(2, {"Empty": ["10.0.0.0/24"]}), "2025-01-13")
    assert result.changes == (TagChange("Empty", ChangeKind.CHANGED, added=("10.0.0.0/24",)),)


def test_backfill_changes_are_relative_to_the_older_neighbour(conn):
    ingest(conn, simple_snapshot(1, A), "2025-01-06")
    ingest(conn, simple_snapshot(3, C), "2025-01-20")
    middle = ingest(conn, simple_snapshot(2, B), "2025-01-13")
    assert middle.outcome == Outcome.BACKFILL
    assert middle.changes == ingest_fresh(A, B).changes  # what cn 2 changed after cn 1
    # the oldest file, backfilled: everything it has is "added"
    oldest = ingest(conn, simple_snapshot(0, {"Old": ["30.0.0.0/8"]}), "2024-12-30")
    assert oldest.changes == (TagChange("Old", ChangeKind.ADDED, added=("30.0.0.0/8",)),)


def ingest_fresh(before: dict, after: dict):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        conn = open_db(Path(folder) / "fresh.db")
        ingest(conn, simple_snapshot(1, before), "2025-01-06")
        result = ingest(conn, simple_snapshot(2, after), "2025-01-13")
        conn.close()
    return result


def test_duplicate_and_quarantined_report_no_changes(conn):
    big = {"Storage": [f"10.{i}.0.0/16" for i in range(10)]}
    ingest(conn, simple_snapshot(1, big), "2025-01-06")
    again = ingest(conn, simple_snapshot(1, big), "2025-01-06")
    assert (again.outcome, again.changes) == (Outcome.DUPLICATE, ())
    small = {"Storage": ["10.0.0.0/16"]}
    held = ingest(conn, simple_snapshot(2, small), "2025-01-13")
    assert (held.outcome, held.changes) == (Outcome.QUARANTINED, ())
    forced = ingest(conn, simple_snapshot(2, small), "2025-01-13", force=True)
    assert forced.changes == (
        TagChange(
            "Storage", ChangeKind.CHANGED, removed=tuple(f"10.{i}.0.0/16" for i in range(1, 10))
        ),
    )


def test_outcomes_are_strings_for_comparisons_and_json(conn):
    result = ingest(conn, simple_snapshot(1, A), "2025-01-06")
    assert result.outcome is Outcome.CURRENT
    assert result.outcome == "current" and f"{result.outcome}" == "current"
    assert json.dumps({"outcome": result.outcome}) == '{"outcome": "current"}'
    assert result.changes[0].kind == "added"


def test_save_snapshot_outside_a_transaction_is_a_programming_error(conn, tmp_path):
    data = simple_snapshot(1, A)
    raw = RawFile(data, "test", date(2025, 1, 6))
    with pytest.raises(RuntimeError, match="inside the caller's transaction"):
        save_snapshot(conn, parse_snapshot(data, "test"), raw)
    assert load_snapshots(conn) == []


def test_store_file_commits_what_after_save_writes_with_the_snapshot(tmp_path):
    conn = open_db(tmp_path / "s.db")
    seen = []

    def after_save(c, result, snapshot):
        seen.append((c.in_transaction, result.outcome, result.changes))
        c.execute(
            "UPDATE snapshots SET source = 'tagged by after_save' WHERE id = ?",
            (result.snapshot.id,),
        )

    data = simple_snapshot(1, A)
    result = store_file(
        conn, RawFile(data, "test", date(2025, 1, 6)), SaveOptions(), after_save=after_save
    )
    assert seen == [(True, Outcome.CURRENT, result.changes)]
    conn.close()
    reader = open_db(tmp_path / "s.db", readonly=True)
    assert [s.source for s in load_snapshots(reader)] == ["tagged by after_save"]


def test_an_error_in_after_save_rolls_the_whole_ingest_back(tmp_path):
    path = tmp_path / "s.db"
    conn = open_db(path)
    store_file(conn, RawFile(simple_snapshot(1, A), "a", date(2025, 1, 6)), SaveOptions())
    conn.close()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert list(before) == ["s.db"]

    class Boom(Exception):
        pass

    def after_save(c, result, snapshot):
        c.execute("UPDATE snapshots SET source = 'half-written'")
        raise Boom("the alerts outbox could not be written")

    conn = open_db(path)
    raw = RawFile(simple_snapshot(2, B), "b", date(2025, 1, 13))
    with pytest.raises(Boom):
        store_file(conn, raw, SaveOptions(), after_save=after_save)
    assert not conn.in_transaction
    assert [s.change_number for s in load_snapshots(conn)] == [1]
    conn.close()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # byte for byte


def test_import_json_keeps_its_counts_and_shape(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from cli import main

    monkeypatch.delenv("AZTAGS_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "ServiceTags_Public_20250106.json"
    path.write_bytes(simple_snapshot(1, A))
    done = CliRunner().invoke(main, ["import", "--json", str(path), "--db", "j.db"])
    assert done.exit_code == 0, done.output
    (doc,) = json.loads(done.stdout)
    assert sorted(doc) == [
        "file",
        "notes",
        "outcome",
        "prefixes_added",
        "prefixes_removed",
        "snapshot",
        "tags_added",
        "tags_changed",
        "tags_removed",
    ]
    assert (doc["outcome"], doc["tags_added"], doc["prefixes_added"]) == ("current", 2, 3)


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


@pytest.mark.slow
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


@pytest.mark.slow
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(contents=st.lists(snapshot_contents, min_size=2, max_size=5))
def test_changes_agree_with_diff_tags(tmp_path_factory, contents):
    """What save_snapshot reports is what resolver.diff computes from the two files."""
    conn = open_db(tmp_path_factory.mktemp("changes") / "s.db")
    previous: dict = {}
    for i, c in enumerate(contents):
        data = contents_file(i + 1, c)
        result = ingest(conn, data, f"2025-01-{i + 1:02d}", quarantine_drop=1.0)
        tags = {t.name: t for t in parse_snapshot(data, "test").tags}
        diffs, _ = diff_tags(previous, tags)
        assert result.changes == tuple(
            TagChange(
                d.name,
                d.status,
                sort_prefixes([*d.added, *(p for r in d.recut for p in r.added)]),
                sort_prefixes([*d.removed, *(p for r in d.recut for p in r.removed)]),
                d.properties,
            )
            for d in diffs
        )
        previous = tags
    conn.close()


# -- the 16 weekly Public files against an independent computation ---------------------------------


@pytest.fixture(scope="module")
def _weekly(weekly_public):
    """The session's store of the 16 weekly files (conftest.py: imported in date order, once per
    run), opened read-only, with each file's tags as {name: prefixes} from the raw JSON."""
    conn = open_db(weekly_public.path, readonly=True)
    raw = [
        {name: set(props["addressPrefixes"]) for name, props in raw_tags("Public", d).items()}
        for d in WEEKLY_2023
    ]
    yield conn, raw, weekly_public.results
    conn.close()


@pytest.fixture
def weekly(request):
    require_data()  # first: the realdata guard sees every user, files or no files
    return request.getfixturevalue("_weekly")


@pytest.mark.realdata
def test_weekly_history_matches_raw_json(weekly):
    conn, raw, results = weekly
    assert [r.outcome for r in results] == ["current"] * len(raw)
    for expected, result in zip(raw, results, strict=True):
        assert state(conn, at=f"cn:{result.snapshot.change_number}") == expected


@pytest.mark.realdata
def test_weekly_changes_match_set_differences(weekly):
    _, raw, results = weekly
    for before, after, result in zip(raw, raw[1:], results[1:], strict=False):
        added = sum(len(after[t] - before.get(t, set())) for t in after)
        removed = sum(len(before[t] - after.get(t, set())) for t in before)
        changed = sum(1 for t in after if t in before and after[t] != before[t])
        assert (result.prefixes_added, result.prefixes_removed) == (added, removed)
        assert result.tags_changed == changed
        assert result.tags_added == len(after.keys() - before.keys())
        by_name = {c.name: c for c in result.changes}
        for name in before.keys() | after.keys():
            new, old = after.get(name, set()), before.get(name, set())
            if new != old:
                assert set(by_name[name].added) == new - old
                assert set(by_name[name].removed) == old - new
    # 20230410 -> 20230417 changes nothing but the changeNumber
    quiet = results[WEEKLY_2023.index("20230417")]
    assert (quiet.prefixes_added, quiet.prefixes_removed, quiet.tags_changed) == (0, 0, 0)


@pytest.mark.realdata
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


@pytest.mark.realdata
@pytest.mark.slow  # sleeps up to 3 s in all before its kills
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


# -- referential integrity: foreign keys are not checked row by row during an ingest ---------------


def _dangling(path) -> list:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA foreign_key_check").fetchall()
    finally:
        conn.close()


@pytest.mark.realdata
def test_a_real_history_has_no_dangling_reference(weekly_public):
    assert _dangling(weekly_public.path) == []


def test_backfills_quarantines_and_forced_files_leave_no_dangling_reference(tmp_path):
    path = tmp_path / "s.db"
    conn = open_db(path)
    big = {f"T{i}": [f"10.{i}.0.0/16"] for i in range(10)}
    files = [
        (3, big),
        (1, {**big, "Old": ["30.0.0.0/24"]}),  # a backfill
        (4, {"T0": ["10.0.0.0/16"]}),  # loses 90%: quarantined
        (2, {**big, "T1": ["10.1.0.0/17"]}),  # another backfill, spliced in
    ]
    for cn, tags in files:
        store_file(conn, RawFile(simple_snapshot(cn, tags), f"f{cn}"), SaveOptions())
    store_file(
        conn, RawFile(simple_snapshot(4, {"T0": ["10.0.0.0/16"]}), "f4"), SaveOptions(force=True)
    )
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1  # switched on again
    conn.close()
    assert _dangling(path) == []


@pytest.mark.realdata
@pytest.mark.parametrize("json_functions", [True, False])
def test_a_first_ingest_stores_each_pair_and_prefix_once_and_keeps_its_indexes(
    tmp_path, monkeypatch, json_functions
):
    """The first snapshot of a cloud is written in bulk (cache.store._first_history): every
    (tag, prefix) of the file, the network bytes of each prefix as the parser read them, and
    the memberships' prefix_id index, which is rebuilt after the bulk insert. The same with
    an SQLite built without its JSON functions (rows bound one by one instead)."""
    import cache.store
    from resolver.prefixes import parse_prefix

    if not json_functions:
        monkeypatch.setattr(cache.store, "_has_json", lambda conn: False)

    path = tmp_path / "s.db"
    conn = open_db(path)
    data = gzip.decompress(real_path("Public", WEEKLY_2023[0]).read_bytes())
    result = store_file(conn, RawFile(data, "f"), SaveOptions())
    snapshot = parse_snapshot(data, "f")
    expected = {(t.name, p) for t in snapshot.tags for p in t.prefixes}
    assert result.prefixes_added == len(expected) > 20_000
    stored = conn.execute(
        "SELECT t.name, p.prefix, m.from_seq, m.to_seq FROM memberships m "
        "JOIN tags t ON t.id = m.tag_id JOIN prefixes p ON p.id = m.prefix_id"
    ).fetchall()
    assert len(stored) == len(expected)
    assert {(name, prefix) for name, prefix, _, _ in stored} == expected
    assert {(f, t) for _, _, f, t in stored} == {(1, None)}
    for prefix, family, length, network in conn.execute(
        "SELECT prefix, family, length, network FROM prefixes"
    ):
        assert parse_prefix(prefix)[:3] == (family, network, length)
    indexes = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "idx_memberships_prefix_id" in indexes
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT tag_id FROM memberships WHERE prefix_id = 5"
    ).fetchall()
    assert "idx_memberships_prefix_id" in str(plan)
    conn.close()
    assert _dangling(path) == []


@pytest.mark.realdata
def test_a_first_ingest_rolled_back_leaves_an_empty_store_with_its_indexes(tmp_path):
    path = tmp_path / "s.db"
    conn = open_db(path)
    schema = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    data = gzip.decompress(real_path("Public", WEEKLY_2023[0]).read_bytes())

    def after_save(c, result, snapshot):
        raise RuntimeError("the alerts outbox could not be written")

    with pytest.raises(RuntimeError):
        store_file(conn, RawFile(data, "f"), SaveOptions(), after_save=after_save)
    assert conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == [
        (sql,) for _, _, sql in schema
    ]
    assert conn.execute("SELECT count(*) FROM memberships").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM prefixes").fetchone() == (0,)
    # and the next ingest of the same file stores it
    assert store_file(conn, RawFile(data, "f"), SaveOptions()).outcome == Outcome.CURRENT
    conn.close()


def test_the_cycle_collector_runs_again_after_a_file_is_stored_or_refused(tmp_path):
    """store_file pauses Python's cycle collector while it parses and writes; a stored file,
    a refused one and a failing after_save all leave it as it was."""
    import gc

    conn = open_db(tmp_path / "s.db")
    assert gc.isenabled()
    store_file(conn, RawFile(simple_snapshot(1, A), "a"), SaveOptions())
    assert gc.isenabled()
    with pytest.raises(SnapshotError):
        store_file(conn, RawFile(b'{"changeNumber": 2}', "bad"), SaveOptions())
    assert gc.isenabled()

    def after_save(c, result, snapshot):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store_file(conn, RawFile(simple_snapshot(2, B), "b"), SaveOptions(), after_save=after_save)
    assert gc.isenabled()
    gc.disable()
    try:  # a caller that runs without it keeps it off
        store_file(conn, RawFile(simple_snapshot(3, C), "c"), SaveOptions())
        assert not gc.isenabled()
    finally:
        gc.enable()
    conn.close()
