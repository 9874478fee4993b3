"""Readers see one state of the database per call, whatever a writer commits meanwhile.

A backfill (a file older than the newest) shifts the ``seq`` of every later snapshot. A reader
that resolved ``--at`` in one statement and read prefixes in the next could answer from one
snapshot while naming another; a ``TagStore`` that cached by ``seq`` could answer a later query
from the wrong snapshot. Here: deterministic tests of both (a write committed between a reader's
statements), ``read_view`` itself, and readers looping during a real backfill in another process.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from cache import history
from cache.db import open_db, read_view
from cache.store import SaveOptions
from resolver.ingest import RawFile
from resolver.query import TagStore
from resolver.refresh import store_file
from tests.helpers import ROOT, WEEKLY_2023, require_data, simple_snapshot


def synthetic_file(cn: int, day: str, tags: dict[str, list[str]]) -> RawFile:
    return RawFile(simple_snapshot(cn, tags), f"ServiceTags_Public_{day}.json", _day(day))


def _day(day: str) -> date:
    return date(int(day[:4]), int(day[4:6]), int(day[6:]))


NEWEST = synthetic_file(3, "20250120", {"AzureCloud": ["30.0.0.0/8"], "Three": ["3.0.0.0/8"]})
OLDER = synthetic_file(1, "20250106", {"AzureCloud": ["10.0.0.0/8"], "One": ["1.0.0.0/8"]})


@pytest.fixture
def writer(tmp_path):
    conn = open_db(tmp_path / "aztags.db")
    yield conn
    conn.close()


def test_a_tagstore_kept_open_answers_each_snapshot_after_a_backfill(tmp_path, writer):
    store_file(writer, NEWEST, SaveOptions())
    store = TagStore.open(tmp_path / "aztags.db")
    assert [t.name for t in store.tags(at="cn:3")[1]] == ["AzureCloud", "Three"]  # cached
    store_file(writer, OLDER, SaveOptions())  # backfill: cn 3 moves from seq 0 to seq 1
    snapshot, found = store.tags(at="cn:1")
    assert snapshot.change_number == 1
    assert [t.name for t in found] == ["AzureCloud", "One"]
    assert store.cidrs(["One"], at="cn:1").prefixes == ("1.0.0.0/8",)
    snapshot, found = store.tags()
    assert (snapshot.change_number, [t.name for t in found]) == (3, ["AzureCloud", "Three"])


def _commit_midway(monkeypatch, writer: sqlite3.Connection, name: str) -> list[int]:
    """Make ``history.<name>`` store the older file (a backfill) just before it reads, as a
    writer committing between two statements of a reader would. Returns a list counting calls."""
    original = getattr(history, name)
    calls: list[int] = []

    def commit_then_read(*args, **kwargs):
        if not calls:
            store_file(writer, OLDER, SaveOptions())
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(history, name, commit_then_read)
    return calls


def test_cidrs_reads_the_snapshot_it_names_when_a_backfill_commits_midway(
    tmp_path, writer, monkeypatch
):
    store_file(writer, NEWEST, SaveOptions())
    store = TagStore.open(tmp_path / "aztags.db")
    calls = _commit_midway(monkeypatch, writer, "load_tags")
    answer = store.cidrs(["AzureCloud"])
    assert calls and answer.snapshot.change_number == 3
    assert answer.prefixes == ("30.0.0.0/8",)
    # the next call sees the backfill
    assert store.cidrs(["AzureCloud"], at="cn:1").prefixes == ("10.0.0.0/8",)


def test_tags_and_lookup_read_one_snapshot_when_a_backfill_commits_midway(
    tmp_path, writer, monkeypatch
):
    store_file(writer, NEWEST, SaveOptions())
    store = TagStore.open(tmp_path / "aztags.db")
    _commit_midway(monkeypatch, writer, "load_tag_summaries")
    snapshot, found = store.tags()
    assert (snapshot.change_number, [t.name for t in found]) == (3, ["AzureCloud", "Three"])

    monkeypatch.undo()
    fresh = tmp_path / "second.db"
    second = open_db(fresh)
    store_file(second, NEWEST, SaveOptions())
    reader = TagStore.open(fresh)
    _commit_midway(monkeypatch, second, "load_pairs")
    batch = reader.lookup_batch()
    assert batch.snapshot.change_number == 3
    assert [(t, [m.tag for m in r]) for t, r in batch.answers(["30.1.2.3", "10.1.2.3"])] == [
        ("30.1.2.3", ["AzureCloud"]),
        ("10.1.2.3", []),
    ]
    second.close()


def test_cli_lookup_prints_the_details_of_the_snapshot_it_answered_from(
    tmp_path, writer, monkeypatch
):
    from click.testing import CliRunner

    from cli import main
    from tests.helpers import snapshot_bytes, tag_json

    store_file(writer, NEWEST, SaveOptions())
    moved = snapshot_bytes(  # cn 4: Three gets a region
        4,
        [
            tag_json("AzureCloud", ["30.0.0.0/8"]),
            tag_json("Three", ["3.0.0.0/8"], region="eastus", region_id=2),
        ],
    )
    original = history.load_pairs_for

    def commit_then_read(*args, **kwargs):  # a newer file becomes current mid-command
        if not calls:
            store_file(writer, RawFile(moved, "ServiceTags_Public_20250127.json"), SaveOptions())
        calls.append(1)
        return original(*args, **kwargs)

    calls: list[int] = []
    monkeypatch.setattr(history, "load_pairs_for", commit_then_read)
    result = CliRunner().invoke(
        main,
        ["lookup", "3.0.0.1", "--db", str(tmp_path / "aztags.db")],
        env={"AZTAGS_CONFIG": None, "XDG_CONFIG_HOME": str(tmp_path)},
        catch_exceptions=False,
    )
    assert calls and result.exit_code == 0, result.output
    assert result.stdout == "3.0.0.1\tThree,3.0.0.0/8,,Three\n"  # cn 3: no region yet
    assert TagStore.open(tmp_path / "aztags.db").snapshot().change_number == 4


def test_read_view_holds_one_state_and_ends_with_the_call(tmp_path, writer):
    store_file(writer, NEWEST, SaveOptions())
    reader = open_db(tmp_path / "aztags.db", readonly=True)
    count = "SELECT count(*) FROM snapshots"
    with read_view(reader) as conn:
        assert conn.execute(count).fetchone()[0] == 1
        store_file(writer, OLDER, SaveOptions())  # commits: readers never block the writer
        assert conn.execute(count).fetchone()[0] == 1  # still the state the view began with
        with read_view(conn):  # nested: no new transaction, the same state
            assert conn.execute(count).fetchone()[0] == 1
        assert conn.in_transaction
    assert not reader.in_transaction  # never held open after the call
    assert reader.execute(count).fetchone()[0] == 2


def test_read_view_ends_its_transaction_when_the_call_fails(tmp_path, writer):
    store_file(writer, NEWEST, SaveOptions())
    reader = open_db(tmp_path / "aztags.db", readonly=True)
    with pytest.raises(ZeroDivisionError), read_view(reader):
        reader.execute("SELECT 1").fetchone()
        1 / 0  # noqa: B018
    assert not reader.in_transaction


def test_read_view_inside_a_write_transaction_is_a_no_op(writer):
    from cache.db import transaction

    with transaction(writer), read_view(writer):
        writer.execute("CREATE TABLE scratch (x)")
    assert not writer.in_transaction
    assert writer.execute("SELECT count(*) FROM scratch").fetchone()[0] == 0


# -- readers during a real backfill in another process --------------------------------------------

IMPORTER = """
import sys
from pathlib import Path
from cache.db import open_db
from cache.store import SaveOptions
from resolver.refresh import import_files
from resolver.sources import HttpSettings

conn = open_db(sys.argv[1])
print("started", flush=True)
for path, result in import_files(conn, [Path(p) for p in sys.argv[2:]], HttpSettings(),
                                 SaveOptions()):
    assert not isinstance(result, Exception), result
    print(path.name, result.outcome, flush=True)
"""


def _containing(tags: dict[str, dict], probes: list[str]) -> dict[str, set[tuple[str, str]]]:
    """{address: every (tag, prefix) of a raw file that holds it}, with ipaddress only."""
    addresses = {p: ipaddress.ip_address(p) for p in probes}
    found: dict[str, set[tuple[str, str]]] = {p: set() for p in probes}
    for name, props in tags.items():
        for prefix in props["addressPrefixes"]:
            net = ipaddress.ip_network(prefix)
            for probe, address in addresses.items():
                if address.version == net.version and address in net:
                    found[probe].add((name, prefix))
    return found


def _files(cloud: str) -> list[Path]:
    folder = require_data() / cloud
    return sorted(folder.glob(f"ServiceTags_{cloud}_*.json.gz"))


# (cloud, files, a regional tag, tags to draw lookup probes from): the 5 newest weekly Public
# files (large: few commits, long reads) and all 23 AzureGovernment ones (small: many commits).
BACKFILLS = [
    (
        "Public",
        [f"ServiceTags_Public_{day}.json.gz" for day in WEEKLY_2023[-5:]],
        "AzureCloud.westeurope",
        ("AzureCloud.westeurope", "Storage.WestEurope", "AzureFrontDoor.Frontend"),
    ),
    (
        "AzureGovernment",
        None,
        "AzureCloud.usgovvirginia",
        ("AzureCloud.usgovvirginia", "Storage.USGovVirginia", "AzureCloud.usgovtexas"),
    ),
]


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize(
    ("cloud", "names", "regional", "probe_tags"), BACKFILLS, ids=[b[0] for b in BACKFILLS]
)
def test_readers_during_a_backfill_answer_from_the_snapshot_they_name(
    tmp_path, cloud, names, regional, probe_tags
):
    """The newest file is stored; another process then imports the older ones newest first, so
    every import goes in front of the ones stored before it and shifts their seq. Meanwhile
    readers (a TagStore kept open and a new one per round) loop over cidrs, tags, lookups and a
    batch lookup, at the current snapshot and at an older one by changeNumber; every answer must
    be what the raw file of the snapshot it names says."""
    paths = _files(cloud) if names is None else [require_data() / cloud / n for n in names]
    raw = {}
    for path in paths:
        doc = json.loads(gzip.decompress(path.read_bytes()))
        raw[doc["changeNumber"]] = {v["name"]: v["properties"] for v in doc["values"]}
    newest = raw[max(raw)]
    probes = [newest[name]["addressPrefixes"][0].split("/")[0] for name in probe_tags]
    expected = {cn: _containing(tags, probes) for cn, tags in raw.items()}
    db = tmp_path / "aztags.db"
    conn = open_db(db)
    latest = paths[-1]
    day = _day(latest.name.split("_")[2][:8])
    store_file(conn, RawFile(gzip.decompress(latest.read_bytes()), str(latest), day), SaveOptions())
    conn.close()
    backfill = list(reversed(paths[:-1]))
    importer = subprocess.Popen(
        [sys.executable, "-c", IMPORTER, str(db), *map(str, backfill)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert importer.stdout is not None and importer.stdout.readline() == "started\n"
    kept_open = TagStore.open(db, cloud)  # one store for the whole run: its caches must hold
    answers = during = rounds = 0
    wrong: list[str] = []
    asked = None  # the cn of an older snapshot, asked for by changeNumber

    def check(ok: bool, what: str) -> None:
        nonlocal answers, during
        answers += 1
        during += running
        if not ok:
            wrong.append(what)

    while True:
        running = importer.poll() is None
        rounds += 1
        for store in (kept_open, TagStore.open(db, cloud)):
            at = None if asked is None else f"cn:{asked}"
            want = asked or max(raw)
            answer = store.cidrs(["AzureCloud"])
            cn = answer.snapshot.change_number
            check(set(answer.prefixes) == set(raw[cn]["AzureCloud"]["addressPrefixes"]), f"{cn}")
            older = store.cidrs([regional], at=at)
            cn = older.snapshot.change_number
            check(
                cn == want and set(older.prefixes) == set(raw[cn][regional]["addressPrefixes"]),
                f"cidrs at {at} named {cn}",
            )
            snapshot, found = store.tags(at=at)
            cn = snapshot.change_number
            counts = {t.name: t.ipv4_count + t.ipv6_count for t in found}
            file = {n: len(p["addressPrefixes"]) for n, p in raw[cn].items()}
            check(cn == want and counts == file, f"tags at {at} named {cn}")
            report = store.lookup_report(probes, at=at)
            cn = report.snapshot.change_number
            got = {
                a.query: {(m.tag, m.prefix) for m in a.result.containing} for a in report.answers
            }
            check(cn == want and got == expected[cn], f"lookup at {at} named {cn}")
            if rounds % 4 == 1:  # the whole index: slower, so not every round
                batch = store.lookup_batch(at)
                cn = batch.snapshot.change_number
                got = {q: {(m.tag, m.prefix) for m in r} for q, r in batch.answers(probes)}
                check(cn == want and got == expected[cn], f"batch lookup at {at} named {cn}")
            timeline = [s.change_number for s in store.snapshots() if s.seq is not None]
            asked = timeline[len(timeline) // 2]  # an older one next: its seq moves under it
        if not running:
            break
    out, err = importer.communicate()
    assert importer.returncode == 0, err
    assert out.count("backfill") == len(backfill), out
    assert wrong == [], f"{len(wrong)} of {answers} answers did not match their snapshot's file"
    assert during >= 40, (answers, during)  # the readers did overlap the import
    final = TagStore.open(db, cloud).snapshots()
    assert [s.change_number for s in final] == sorted(raw)
