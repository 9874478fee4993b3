"""The library's rules for time: staleness (resolver.staleness) and ``--at`` (resolver.refs).

Both take every input as an argument (``now``, the timeline), so these tests need no database
except where the one-view readers are checked.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from cache.db import open_db
from cache.store import SaveOptions
from resolver.clouds import get_cloud
from resolver.errors import EmptyStoreError, NotFoundError, UsageError
from resolver.ingest import RawFile
from resolver.models import SnapshotInfo
from resolver.refresh import store_file
from resolver.refs import AtRef, parse_at, pick_snapshot
from resolver.staleness import Staleness, staleness
from resolver.status import cloud_status
from tests.helpers import simple_snapshot

PUBLIC, GERMANY = get_cloud("public"), get_cloud("germany")
FETCHED = datetime(2025, 1, 20, 18, 36, tzinfo=UTC)


def info(cn: int, file_date: date | None, seq: int | None = None, **kw) -> SnapshotInfo:
    return SnapshotInfo(
        id=cn,
        cloud="Public",
        change_number=cn,
        file_date=file_date,
        sha256="",
        source="test",
        fetched_at=kw.pop("fetched_at", FETCHED),
        etag=None,
        last_modified=None,
        size=0,
        tag_count=0,
        prefix_count=0,
        quarantined=seq is None,
        seq=seq,
        **kw,
    )


# -- staleness -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "age", "stale"),
    [
        (datetime(2025, 1, 20, 0, 0, tzinfo=UTC), 14, False),  # exactly the limit: fresh
        (datetime(2025, 1, 20, 23, 59, tzinfo=UTC), 14, False),
        (datetime(2025, 1, 21, 0, 0, tzinfo=UTC), 15, True),  # one day over: stale
        (datetime(2025, 1, 6, 12, 0, tzinfo=UTC), 0, False),
        (datetime(2027, 1, 6, tzinfo=UTC), 730, True),
    ],
)
def test_stale_when_older_than_the_limit(now, age, stale):
    result = staleness(info(341, date(2025, 1, 6), 0), PUBLIC, 14, now)
    assert result == Staleness(stale=stale, age_days=age, max_age_days=14, frozen=False)
    assert result.fresh is not stale
    assert result.state == ("STALE" if stale else "ok")


def test_now_is_read_in_utc():
    # 2025-01-21 01:00 in UTC+02:00 is still 2025-01-20 in UTC: 14 days, not 15
    east = datetime(2025, 1, 21, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    assert staleness(info(341, date(2025, 1, 6), 0), PUBLIC, 14, east).age_days == 14


def test_a_frozen_cloud_is_never_stale():
    result = staleness(info(193, date(2022, 3, 7), 0), GERMANY, 14, FETCHED)
    assert result.frozen and not result.stale and result.state == "frozen"
    assert result.age_days > 1000


def test_without_a_file_date_the_fetch_day_counts():
    snapshot = info(5, None, 0, fetched_at=datetime(2025, 1, 10, 23, 0, tzinfo=UTC))
    assert staleness(snapshot, PUBLIC, 3, datetime(2025, 1, 14, tzinfo=UTC)).stale
    assert not staleness(snapshot, PUBLIC, 4, datetime(2025, 1, 14, tzinfo=UTC)).stale


def test_cloud_status_reads_each_current_snapshot(tmp_path):
    conn = open_db(tmp_path / "aztags.db")
    with pytest.raises(EmptyStoreError, match="Run 'aztags fetch' first"):
        cloud_status(conn, [PUBLIC, GERMANY], 14, FETCHED)
    for cn, day in ((3, date(2025, 1, 13)), (1, date(2025, 1, 6))):
        raw = RawFile(simple_snapshot(cn, {"A": ["10.0.0.0/8"]}), "test", day)
        store_file(conn, raw, SaveOptions(), now=FETCHED)
    (public,) = cloud_status(conn, [PUBLIC, GERMANY], 6, FETCHED)
    assert public.cloud is PUBLIC and public.snapshot.change_number == 3  # the newest, not the last
    assert public.staleness == Staleness(True, 7, 6, False)
    assert not conn.in_transaction


# -- --at ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cn:341", AtRef("cn:341", change_number=341)),
        (" cn:007 ", AtRef("cn:007", change_number=7)),
        ("cn:9223372036854775807", AtRef("cn:9223372036854775807", change_number=2**63 - 1)),
        ("2025-01-13", AtRef("2025-01-13", day=date(2025, 1, 13))),
        ("2024-02-29", AtRef("2024-02-29", day=date(2024, 2, 29))),
    ],
)
def test_parse_at_accepts_dates_and_change_numbers(text, expected):
    assert parse_at(text) == expected
    assert parse_at(expected) is expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("yesterday", "neither a date (YYYY-MM-DD) nor a changeNumber (cn:N)"),
        ("cn:" + "9" * 5000, "larger than any file can have"),
        ("cn:9223372036854775808", "larger than any file can have"),
        ("2025-02-30", "is not a real date"),
        ("2023-02-29", "is not a real date"),
        ("cn:\u0663\u0664\u0661", "neither a date"),  # Arabic-Indic digits: isdigit() is True
        ("\uff12\uff10\uff12\uff15-01-13", "neither a date"),
        ("2025-01-13T00:00", "neither a date"),
        ("cn:3 41", "neither a date"),
    ],
)
def test_parse_at_refuses_other_forms_with_the_accepted_ones(text, says):
    with pytest.raises(UsageError) as error:
        parse_at(text)
    message = str(error.value)
    assert says in message
    assert "a date YYYY-MM-DD" in message and "a changeNumber cn:N" in message
    assert len(message) < 400


def test_pick_snapshot_by_change_number_and_by_day():
    timeline = [info(244, date(2023, 3, 6), 0), info(245, date(2023, 3, 13), 1)]
    assert pick_snapshot(timeline, None, "Public").change_number == 245
    assert pick_snapshot(timeline, "cn:244", "Public").change_number == 244
    assert pick_snapshot(timeline, "2023-03-12", "Public").change_number == 244
    assert pick_snapshot(timeline, "2023-03-13", "Public").change_number == 245
    with pytest.raises(NotFoundError, match="before the first stored Public snapshot"):
        pick_snapshot(timeline, "2023-03-05", "Public")
    with pytest.raises(NotFoundError, match="Did you mean: cn:245, cn:244"):
        pick_snapshot(timeline, "cn:300", "Public")
    with pytest.raises(EmptyStoreError):
        pick_snapshot([], None, "Public")
    with pytest.raises(UsageError):  # the form is checked even when nothing is stored
        pick_snapshot([], "soon", "Public")
