"""Issue 8, part B, through the library: the freshness rule with an injected clock, --at after
today, the other-cloud hint, comment lines of a batch. Small stores built in code."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from cache.db import open_db
from cache.store import SaveOptions
from resolver.clouds import get_cloud
from resolver.errors import NotFoundError, UsageError
from resolver.ingest import RawFile
from resolver.lookup import CommentLine
from resolver.query import TagStore
from resolver.refresh import store_file
from resolver.staleness import answer_freshness
from tests.helpers import simple_snapshot, snapshot_bytes, tag_json

PUBLIC = [
    tag_json("AzureCloud", ["20.0.0.0/8"]),
    tag_json("Storage.WestUS", ["20.1.0.0/16"], region="westus", region_id=1),
]
CHINA = [
    tag_json("AzureCloud", ["40.72.0.0/13"]),
    tag_json("Storage.ChinaEast2", ["40.73.81.0/24"], region="chinaeast2", region_id=2),
]


def clock(day: str):
    moment = datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)
    return lambda: moment


@pytest.fixture
def db(tmp_path) -> Path:
    """Public of 2025-01-13 and China of 2025-01-06."""
    path = tmp_path / "aztags.db"
    conn = open_db(path)
    for cloud, tags, day in (
        ("Public", PUBLIC, date(2025, 1, 13)),
        ("China", CHINA, date(2025, 1, 6)),
    ):
        name = f"ServiceTags_{cloud}_{day:%Y%m%d}.json"
        store_file(conn, RawFile(snapshot_bytes(1, tags, cloud), name, day), SaveOptions())
    conn.close()
    return path


def test_freshness_is_stale_only_for_now_past_the_limit(db):
    fresh = TagStore.open(db, now=clock("2025-01-27"))  # 14 days: the limit itself
    snap = fresh.snapshot()
    assert fresh.freshness(snap).quiet
    late = TagStore.open(db, now=clock("2025-01-28"))
    stale = late.freshness(late.snapshot()).stale
    assert stale is not None and (stale.age_days, stale.max_age_days) == (15, 14)
    assert late.freshness(late.snapshot("2025-01-13"), "2025-01-13").quiet  # the past: no word
    patient = TagStore.open(db, now=clock("2025-01-28"), max_age_days=30)
    assert patient.freshness(patient.snapshot()).quiet
    report = late.lookup_report(["20.1.2.3"])
    assert report.freshness is not None and report.freshness.stale is not None
    assert late.lookup_batch().freshness.stale is not None


def test_germany_is_frozen_never_stale(db):
    germany = get_cloud("germany")
    public = TagStore.open(db).snapshot()
    judged = answer_freshness(germany, public, public, None, 14, datetime(2030, 1, 1, tzinfo=UTC))
    assert judged.quiet


def test_at_after_today_is_a_usage_error_and_after_the_newest_file_a_note(db):
    store = TagStore.open(db, now=clock("2025-02-01"))
    with pytest.raises(UsageError, match=r"--at 2025-02-02 is after today \(2025-02-01, UTC\)"):
        store.snapshot("2025-02-02")
    with pytest.raises(UsageError, match="after today"):
        store.cidrs(["AzureCloud"], at="2025-02-02")
    answer = store.cidrs(["AzureCloud"], at="2025-02-01")
    note = store.freshness(answer.snapshot, "2025-02-01")
    assert note.after_newest == date(2025, 2, 1) and note.stale is None
    assert store.freshness(answer.snapshot, "2025-01-13").quiet  # the newest file's own day


def test_a_region_or_tag_of_another_stored_cloud_says_which(db):
    store = TagStore.open(db, "public")
    with pytest.raises(NotFoundError) as region:
        store.cidrs(["Storage"], region="chinaeast2")
    assert str(region.value) == (
        "Unknown region 'chinaeast2' in the Public file: chinaeast2 is a region of the China "
        "cloud; add --cloud china."
    )
    with pytest.raises(NotFoundError) as tag:
        store.cidrs(["storage.chinaeast2"])
    assert "Storage.ChinaEast2 is a tag of the China cloud; add --cloud china." in str(tag.value)
    with pytest.raises(NotFoundError) as nowhere:
        store.cidrs(["Storage"], region="marsnorth")
    assert "--cloud" not in str(nowhere.value)
    found = store.found_elsewhere(["40.73.81.7", "10.0.0.1"])
    assert found == {"40.73.81.7": (get_cloud("china"),)}


def test_lookup_all_clouds_reads_every_stored_cloud(db):
    store = TagStore.open(db, "public")
    reports = store.lookup_report_all(["40.73.81.7"])
    assert [r.snapshot.cloud for r in reports] == ["Public", "China"]
    assert reports[1].answers[0].result.tags == ("Storage.ChinaEast2", "AzureCloud")
    batch = store.lookup_batch_all()
    lines = list(batch.answers(["# comment", "40.73.81.7", "", "bad"]))
    assert [text for text, _ in lines] == ["# comment", "40.73.81.7", "", "bad"]
    assert lines[0][1] == (CommentLine("# comment"), CommentLine("# comment"))
    assert batch.errors == 1  # the bad line; the comment and the blank line are no errors


def test_fetch_source_without_cloud_stores_the_files_cloud(tmp_path):
    from resolver.refresh import refresh_cloud
    from resolver.sources import HttpSettings

    path = tmp_path / "china.json"
    path.write_bytes(simple_snapshot(3, {"AzureCloud": ["40.72.0.0/13"]}, cloud="China"))
    conn = open_db(tmp_path / "f.db")
    result = refresh_cloud(conn, None, HttpSettings(), SaveOptions(), source=str(path))
    assert result.cloud == get_cloud("china") and result.ingest.outcome == "current"
    with pytest.raises(UsageError):
        refresh_cloud(conn, None, HttpSettings(), SaveOptions())
