"""Events raised at ingest (issue 10): what each watch sees when files are stored, written in
the same transaction as the snapshot, one event per watch for a multi-file step."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cache import outbox
from cache.db import open_db
from cache.store import SaveOptions
from resolver.alerts.event import EventType
from resolver.alerts.setup import Alerts
from resolver.alerts.watches import Watch, watches_from_config
from resolver.errors import ConfigError
from resolver.ingest import RawFile
from resolver.refresh import store_file
from tests.helpers import as_date, snapshot_bytes, tag_json

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def _file(cn: int, tags: dict[str, list[str]], day: str = "") -> RawFile:
    values = []
    for name, prefixes in sorted(tags.items()):
        region = name.split(".", 1)[1].lower() if "." in name else ""
        service = "AzureStorage" if name.startswith("Storage") else None
        values.append(tag_json(name, prefixes, region=region, region_id=1, service=service))
    day = day or f"2025{(cn % 12) + 1:02d}01"
    return RawFile(snapshot_bytes(cn, values), f"ServiceTags_Public_{day}.json", as_date(day))


BASE = {
    "Storage": ["10.0.0.0/16"],
    "Storage.WestUS": ["10.0.0.0/24"],
    "Storage.EastUS": ["10.0.1.0/24"],
    "Sql": ["20.0.0.0/16", "2001:db8::/48"],
    "AzureCloud": ["10.0.0.0/8"],
}


def _store(conn, alerts: Alerts, raw: RawFile, **options):
    return store_file(conn, raw, SaveOptions(**options), now=NOW, after_save=alerts.recorder())


def _events(conn):
    return [(stored.event, channels) for stored, channels in outbox.load_events(conn)]


@pytest.fixture
def conn(tmp_path: Path):
    return open_db(tmp_path / "a.db")


def _alerts(*watches: Watch) -> Alerts:
    return Alerts(watches=watches, now=lambda: NOW)


SQL = Watch("sql", "public", ("ops",), tags=("Sql",))


def test_first_snapshot_is_a_baseline(conn):
    _store(conn, _alerts(SQL), _file(1, BASE))
    assert _events(conn) == []


def test_a_watched_change_is_one_event_with_its_prefixes_and_channels(conn):
    alerts = _alerts(SQL, Watch("other", "public", ("ops",), tags=("Storage.EastUS",)))
    _store(conn, alerts, _file(1, BASE, "20251103"))
    _store(conn, alerts, _file(2, {**BASE, "Sql": ["20.0.0.0/16", "20.1.0.0/16"]}, "20251110"))
    [(event, channels)] = _events(conn)
    assert event.type == EventType.CHANGED and event.watch == "sql" and channels == ["ops"]
    assert event.data["tags"] == [
        {"name": "Sql", "change": "changed", "added": ["20.1.0.0/16"], "removed": ["2001:db8::/48"]}
    ]
    assert event.data["from"]["change_number"] == 1 and event.data["to"]["change_number"] == 2
    assert event.data["to"]["file_date"] == "2025-11-10"
    assert event.data["azure_may_use_added_from"] == "2025-11-17"  # file date + 7 days
    assert event.summary == "public/sql: Sql changed, +1 -1 prefixes (changeNumber 1 -> 2)"


def test_family_filter_and_min_change(conn):
    v4 = Watch("v4", "public", ("ops",), tags=("Sql",), family="ipv4")
    big = Watch("big", "public", ("ops",), tags=("Sql",), min_change=5)
    alerts = _alerts(v4, big)
    _store(conn, alerts, _file(1, BASE))
    _store(conn, alerts, _file(2, {**BASE, "Sql": ["20.0.0.0/16"]}))  # only IPv6 removed
    [(event, channels)] = _events(conn)
    assert event.watch == "big" and channels == []  # recorded, below min_change: not sent
    assert not outbox.list_deliveries(conn, "pending", 10)


def test_backfill_and_duplicate_raise_nothing(conn):
    alerts = _alerts(SQL)
    _store(conn, alerts, _file(1, BASE))
    _store(conn, alerts, _file(3, {**BASE, "Sql": ["20.0.0.0/16"]}))
    before = len(_events(conn))
    _store(conn, alerts, _file(2, {**BASE, "Sql": ["20.9.0.0/16"]}))  # older: a backfill
    _store(conn, alerts, _file(3, {**BASE, "Sql": ["20.0.0.0/16"]}))  # again: a duplicate
    assert len(_events(conn)) == before


def test_several_newer_files_make_one_event_per_watch_for_the_whole_step(conn):
    alerts = _alerts(SQL)
    _store(conn, alerts, _file(1, BASE))
    _store(conn, alerts, _file(2, {**BASE, "Sql": [*BASE["Sql"], "20.5.0.0/16", "20.6.0.0/16"]}))
    _store(conn, alerts, _file(3, {**BASE, "Sql": [*BASE["Sql"], "20.6.0.0/16"]}))
    _store(conn, alerts, _file(4, {**BASE, "Sql": ["20.6.0.0/16", "20.0.0.0/16"]}))
    [(event, _)] = _events(conn)
    # 20.5 added then removed: no change; 2001:db8::/48 removed in the last step.
    assert event.data["tags"] == [
        {"name": "Sql", "change": "changed", "added": ["20.6.0.0/16"], "removed": ["2001:db8::/48"]}
    ]
    assert (event.data["from"]["change_number"], event.data["to"]["change_number"]) == (1, 4)


def test_a_step_that_undoes_the_pending_change_leaves_no_event(conn):
    alerts = _alerts(SQL)
    _store(conn, alerts, _file(1, BASE))
    _store(conn, alerts, _file(2, {**BASE, "Sql": [*BASE["Sql"], "20.5.0.0/16"]}))
    _store(conn, alerts, _file(3, BASE))
    assert _events(conn) == []


def test_an_event_already_taken_by_a_delivery_round_is_not_extended(conn):
    alerts = _alerts(SQL)
    _store(conn, alerts, _file(1, BASE))
    _store(conn, alerts, _file(2, {**BASE, "Sql": [*BASE["Sql"], "20.5.0.0/16"]}))
    outbox.add_message(conn, "msg_1", "ops", [e.id for e, _ in _events(conn)], NOW)
    _store(conn, alerts, _file(3, BASE))
    first, second = (e for e, _ in _events(conn))
    assert first.data["tags"][0]["added"] == ["20.5.0.0/16"]
    assert second.data["tags"][0]["removed"] == ["20.5.0.0/16"]


def test_tags_added_and_removed_reach_service_and_all_watches(conn):
    storage = Watch("storage", "public", ("ops",), service="Storage", regions=("West US",))
    every = Watch("every", "public", ("ops",), all=True)
    alerts = _alerts(storage, every)
    _store(conn, alerts, _file(1, BASE))
    new = {**BASE, "Storage.WestUS": ["10.0.0.0/24", "10.0.2.0/24"], "NewTag": ["30.0.0.0/24"]}
    del new["Storage.EastUS"]
    _store(conn, alerts, _file(2, new))
    events = {e.watch: e for e, _ in _events(conn)}
    assert [t["name"] for t in events["storage"].data["tags"]] == ["Storage.WestUS"]
    changes = {t["name"]: t["change"] for t in events["every"].data["tags"]}
    assert changes == {"NewTag": "added", "Storage.EastUS": "removed", "Storage.WestUS": "changed"}
    assert events["every"].data["counts"] == {"tags": 3, "added": 2, "removed": 1}


def test_a_removed_tag_reaches_the_service_watch_of_its_region(conn):
    east = Watch("east", "public", ("ops",), service="Storage", regions=("eastus",))
    _store(conn, _alerts(east), _file(1, BASE))
    gone = dict(BASE)
    del gone["Storage.EastUS"]
    _store(conn, _alerts(east), _file(2, gone))
    [(event, _)] = _events(conn)
    assert event.data["tags"] == [
        {"name": "Storage.EastUS", "change": "removed", "added": [], "removed": ["10.0.1.0/24"]}
    ]


def test_profile_watch_follows_the_tags_its_rules_resolve_to(conn, tmp_path):
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "mini.toml").write_text(
        '[[rule]]\ndirection = "outbound"\nports = "443"\ntag = "Storage.{region}"\n'
        '[[rule]]\ndirection = "outbound"\nports = "1433"\ntag = "Sql"\n'
    )
    watch = Watch("mini", "public", ("ops",), profile="mini", regions=("westus",))
    alerts = Alerts(watches=(watch,), profile_dirs=(folder,), now=lambda: NOW)
    _store(conn, alerts, _file(1, BASE))
    changed = {
        **BASE,
        "Storage.WestUS": ["10.0.3.0/24"],
        "Storage.EastUS": ["10.0.9.0/24"],
        "AzureCloud": ["10.0.0.0/7"],
    }
    _store(conn, alerts, _file(2, changed))
    [(event, _)] = _events(conn)
    assert [t["name"] for t in event.data["tags"]] == ["Storage.WestUS"]


def test_missed_publications_raise_a_gap_event(conn):
    alerts = _alerts(SQL)
    _store(conn, alerts, _file(10, BASE))
    _store(conn, alerts, _file(13, BASE))
    [(event, channels)] = _events(conn)
    assert event.type == EventType.GAP and channels == ["ops"]
    assert event.data["missed_change_numbers"] == [11, 12]
    assert "changeNumber 11-12" in event.summary


def test_each_watch_extends_its_own_pending_events_over_a_multi_file_step(conn):
    # Two steps, each skipping a changeNumber: each watch keeps ONE changed event and ONE gap
    # event for the whole import, whatever the other watch's events are.
    everything = Watch("everything", "public", ("ops",), all=True)
    alerts = _alerts(SQL, everything)
    sql = BASE["Sql"]
    _store(conn, alerts, _file(1, BASE))
    _store(conn, alerts, _file(3, {**BASE, "Sql": [*sql, "20.5.0.0/16"]}))
    _store(
        conn, alerts, _file(5, {**BASE, "Sql": [*sql, "20.6.0.0/16"], "Storage.X": ["10.9.0.0/24"]})
    )
    found = {(e.watch, str(e.type)): e for e, _ in _events(conn)}
    types = (EventType.CHANGED, EventType.GAP)
    assert sorted(found) == [(w, str(t)) for w in ("everything", "sql") for t in types]
    sql_change = {"name": "Sql", "change": "changed", "added": ["20.6.0.0/16"], "removed": []}
    new_tag = {"name": "Storage.X", "change": "added", "added": ["10.9.0.0/24"], "removed": []}
    assert found[("sql", EventType.CHANGED)].data["tags"] == [sql_change]
    assert found[("everything", EventType.CHANGED)].data["tags"] == [sql_change, new_tag]
    for watch in ("everything", "sql"):
        for type_ in types:
            data = found[(watch, type_)].data
            assert (data["from"]["change_number"], data["to"]["change_number"]) == (1, 5)
        assert found[(watch, EventType.GAP)].data["missed_change_numbers"] == [2, 4]


def test_a_newer_quarantined_file_raises_an_event(conn):
    alerts = _alerts(SQL)
    _store(conn, alerts, _file(1, BASE))
    result = _store(conn, alerts, _file(2, {"Sql": ["20.0.0.0/16"]}))
    assert result.outcome == "quarantined"
    [(event, _)] = _events(conn)
    assert event.type == EventType.QUARANTINED and "changeNumber 2" in event.summary


def test_watches_of_another_cloud_see_nothing(conn):
    china = Watch("cn", "china", ("ops",), all=True)
    _store(conn, _alerts(china), _file(1, BASE))
    _store(conn, _alerts(china), _file(2, {**BASE, "Sql": ["20.0.0.0/16"]}))
    assert _events(conn) == []


def test_event_ids_are_stable_and_dot_free(conn):
    alerts = _alerts(SQL)
    _store(conn, alerts, _file(1, BASE))
    _store(conn, alerts, _file(2, {**BASE, "Sql": ["20.0.0.0/16"]}))
    first = _events(conn)[0][0].id
    _store(conn, alerts, _file(3, {**BASE, "Sql": ["20.0.0.0/15"]}))
    assert _events(conn)[0][0].id == first  # extended, same id
    assert first.startswith("evt_") and "." not in first and len(first) == 30


def test_the_event_is_in_the_snapshot_transaction(conn):
    """A failure after the events are written rolls back the snapshot and the events."""
    alerts = _alerts(SQL)
    _store(conn, alerts, _file(1, BASE))
    recorder = alerts.recorder()

    def failing(c, result, snapshot):
        recorder(c, result, snapshot)
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        store_file(
            conn,
            _file(2, {**BASE, "Sql": ["20.0.0.0/16"]}),
            SaveOptions(),
            now=NOW,
            after_save=failing,
        )
    assert _events(conn) == []
    assert conn.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0] == 1


def test_event_data_is_plain_json(conn):
    alerts = _alerts(SQL)
    _store(conn, alerts, _file(1, BASE))
    _store(conn, alerts, _file(2, {**BASE, "Sql": ["20.0.0.0/16"]}))
    [(event, _)] = _events(conn)
    doc = json.loads(json.dumps(event.as_json()))
    assert doc["type"] == "servicetag.prefixes.changed" and doc["cloud"] == "public"
    assert doc["created"] == "2026-11-30T06:00:00Z" and doc["severity"] == "notice"


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"name": "w"}, "exactly one way"),
        ({"name": "w", "tags": ["A"], "all": True}, "it has tags and all"),
        ({"name": "w", "tags": ["A"], "region": "westus"}, "narrow a profile or a service"),
        ({"name": "w", "profile": "azureml", "regions": ["a", "b"]}, "takes one region"),
    ],
)
def test_a_watch_selects_tags_in_exactly_one_way(entry, problem):
    with pytest.raises(ConfigError, match=problem):
        watches_from_config([entry], "aztags.toml")


def test_api_answers_raise_no_event_and_are_stored(conn):
    """az/PowerShell output (the Discovery API's answers) goes to the API timeline; watches
    follow the published file, so storing it raises nothing and is not refused."""
    import json as _json

    from tests.apishapes import api_answer, az_output

    alerts = _alerts(SQL)
    for cn, sql in ((1, ["20.0.0.0/16"]), (2, ["20.0.0.0/16", "20.9.0.0/16"])):
        doc = _json.loads(_file(cn, {**BASE, "Sql": sql}).data)
        raw = RawFile(az_output(api_answer(doc, str(cn))), f"az-{cn}.json")
        result = _store(conn, alerts, raw)
        assert result.snapshot.cloud == "Public@api" and result.outcome == "current"
    assert _events(conn) == []
