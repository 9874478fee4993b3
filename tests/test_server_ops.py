"""Operations endpoints of the server (issue 12): /healthz, /metrics read by prometheus_client's
own parser, /changes.atom read by feedparser."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import feedparser
import pytest
import requests
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from cache import outbox
from cache.db import open_db, transaction
from resolver.alerts.event import Event, EventType
from resolver.server import atom
from resolver.server.app import Auth, Settings, create_app
from tests.build_store import import_into
from tests.helpers import ROOT, simple_snapshot

FILES = [
    ("20250106", 1, {"Storage": ["10.0.0.0/16"], "Gone": ["30.0.0.0/24"], "Sql": ["20.0.0.0/16"]}),
    ("20250113", 2, {"Storage": ["10.0.0.0/16", "10.2.0.0/16"], "Sql": ["20.0.0.0/16"]}),
    ("20250120", 3, {"Storage": ["10.2.0.0/16"], "Sql": ["20.0.0.0/16"], "New": ["40.0.0.0/24"]}),
]


def build(folder, files=FILES):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for day, cn, tags in files:
        path = folder / f"ServiceTags_Public_{day}.json"
        path.write_bytes(simple_snapshot(cn, tags))
        paths.append(path)
    db = folder / "aztags.db"
    import_into(db, paths)
    return db


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build(tmp_path_factory.mktemp("ops-store"))


def client_for(db, *, max_age_days=36500, auth=None) -> TestClient:
    settings = Settings(db=db, auth=auth or Auth(), max_age_days=max_age_days, version="test")
    return TestClient(create_app(settings), raise_server_exceptions=False)


def scrape(client, **kwargs) -> dict[str, dict[tuple, float]]:
    """/metrics through prometheus_client's parser: {sample name: {labels: value}}."""
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


# -- /healthz --------------------------------------------------------------------------------------


def test_healthz_is_200_with_the_staleness_of_each_cloud(store):
    response = client_for(store).get("/healthz")
    assert response.status_code == 200
    doc = response.json()
    assert doc["status"] == "ok" and doc["stale"] is False
    assert doc["clouds"] == [
        {
            "cloud": "public",
            "change_number": 3,
            "file_date": "2025-01-20",
            "age_days": (datetime.now(UTC).date() - datetime(2025, 1, 20).date()).days,
            "stale": False,
        }
    ]
    assert response.headers["cache-control"] == "no-store"


def test_healthz_stays_200_when_the_data_is_stale(store):
    # staleness is in the body: not a reason to take every replica out of the balancer at once
    response = client_for(store, max_age_days=1).get("/healthz")
    assert response.status_code == 200
    assert response.json()["stale"] is True
    assert response.json()["clouds"][0]["stale"] is True


def test_healthz_is_503_without_a_database(tmp_path):
    response = client_for(tmp_path / "missing.db").get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_healthz_is_503_for_an_empty_store(tmp_path):
    db = tmp_path / "empty.db"
    open_db(db).close()
    response = client_for(db).get("/healthz")
    assert response.status_code == 503
    assert "No snapshot" in response.json()["detail"]


def test_healthz_is_503_when_the_file_is_not_a_database(tmp_path):
    db = tmp_path / "aztags.db"
    db.write_bytes(b"garbage, not SQLite " * 200)
    response = client_for(db).get("/healthz")
    assert response.status_code == 503
    assert "Traceback" not in response.text


def test_healthz_answers_again_once_the_database_is_there(tmp_path, store):
    db = tmp_path / "aztags.db"
    client = client_for(db)
    assert client.get("/healthz").status_code == 503
    shutil.copy(store, db)  # a replica's copy arrives
    assert client.get("/healthz").status_code == 200


# -- /metrics --------------------------------------------------------------------------------------


def test_metrics_of_the_store(store):
    before = datetime.now(UTC)
    samples = scrape(client_for(store))
    after = datetime.now(UTC)
    public = (("cloud", "public"),)
    assert samples["aztags_database_up"][()] == 1
    assert samples["aztags_snapshot_change_number"] == {public: 3}
    assert samples["aztags_snapshot_stale"] == {public: 0}
    day = datetime(2025, 1, 20, tzinfo=UTC)
    age = samples["aztags_snapshot_age_seconds"][public]
    assert (before - day).total_seconds() <= age <= (after - day).total_seconds()
    assert samples["aztags_alerts"] == {(("state", "pending"),): 0, (("state", "dead"),): 0}
    assert "aztags_fetch_last_ok" not in samples  # no scheduled fetch has run


def test_metrics_say_stale(store):
    assert scrape(client_for(store, max_age_days=1))["aztags_snapshot_stale"] == {
        (("cloud", "public"),): 1
    }


def test_metrics_of_fetches_and_alerts(tmp_path, store):
    db = tmp_path / "aztags.db"
    shutil.copy(store, db)
    now = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    conn = open_db(db)
    with transaction(conn):
        outbox.save_fetch_runs(
            conn,
            outbox.FetchRuns(
                "public", 2, "timed out", now, now - timedelta(days=3), failing_alerted=True
            ),
        )
        outbox.save_fetch_runs(conn, outbox.FetchRuns("china", 0, None, now, now))
        for n, channels in enumerate([("ops", "team"), ("ops",), ("team",)]):
            event = Event(f"evt_{n:026d}", EventType.TEST, now, "public", "", "test", {})
            outbox.add_event(
                conn, event, channels, from_snapshot=None, to_snapshot=None, queued=True
            )
        # ops: event 0 dead, event 1 waiting for a round; team: event 0 pending, event 2 sent
        outbox.add_message(conn, "msg_dead", "ops", [f"evt_{0:026d}"], now, state="dead")
        outbox.add_message(conn, "msg_pending", "team", [f"evt_{0:026d}"], now)
        outbox.add_message(conn, "msg_sent", "team", [f"evt_{2:026d}"], now, state="sent")
    conn.close()
    samples = scrape(client_for(db))
    assert samples["aztags_fetch_last_ok"] == {(("cloud", "china"),): 1, (("cloud", "public"),): 0}
    assert samples["aztags_fetch_failures"] == {(("cloud", "china"),): 0, (("cloud", "public"),): 2}
    assert samples["aztags_fetch_last_attempt_timestamp_seconds"][(("cloud", "public"),)] == (
        now.timestamp()
    )
    assert samples["aztags_fetch_last_success_timestamp_seconds"][(("cloud", "public"),)] == (
        (now - timedelta(days=3)).timestamp()
    )
    assert samples["aztags_alert_deliveries"] == {
        (("channel", "ops"), ("state", "dead")): 1,
        (("channel", "ops"), ("state", "pending")): 1,
        (("channel", "team"), ("state", "pending")): 1,
    }
    assert samples["aztags_alerts"] == {(("state", "pending"),): 2, (("state", "dead"),): 1}


def test_metrics_count_requests_by_route_template_and_status(store):
    client = client_for(store)
    for url in ("/feeds/Storage.txt", "/feeds/Sql.txt", "/feeds/NoSuchTag.txt", "/v1/tags/Sql"):
        client.get(url)
    client.get("/v1/tags/Sql", headers={"If-None-Match": "*"})
    client.get("/no/such/page")
    samples = scrape(client)
    requests = {
        (dict(k)["route"], dict(k)["status"]): v
        for k, v in samples["aztags_http_requests_total"].items()
    }
    assert requests[("/feeds/{name}", "200")] == 2
    assert requests[("/feeds/{name}", "404")] == 1
    assert requests[("/v1/tags/{name}", "200")] == 1
    assert requests[("/v1/tags/{name}", "304")] == 1
    assert requests[("<unmatched>", "404")] == 1
    assert not any("Storage" in route or "such" in route for route, _ in requests)
    durations = samples["aztags_http_request_duration_seconds_count"]
    assert durations[(("method", "GET"), ("route", "/feeds/{name}"))] == 3
    buckets = samples["aztags_http_request_duration_seconds_bucket"]
    inf = (("le", "+Inf"), ("method", "GET"), ("route", "/feeds/{name}"))
    assert buckets[inf] == 3


def test_refused_requests_are_counted_under_their_route(store):
    client = client_for(store, auth=Auth(tokens=("tok",)))
    assert client.get("/feeds/Storage.txt").status_code == 401
    samples = scrape(client, headers={"Authorization": "Bearer tok"})
    key = (("method", "GET"), ("route", "/feeds/{name}"), ("status", "401"))
    assert samples["aztags_http_requests_total"][key] == 1


def test_each_app_has_its_own_registry(store):
    first, second = client_for(store), client_for(store)
    first.get("/v1/tags")
    key = (("method", "GET"), ("route", "/v1/tags"), ("status", "200"))
    assert scrape(first)["aztags_http_requests_total"][key] == 1
    assert key not in scrape(second).get("aztags_http_requests_total", {})


def test_metrics_scrape_succeeds_when_the_database_cannot_be_read(tmp_path):
    samples = scrape(client_for(tmp_path / "missing.db"))
    assert samples["aztags_database_up"][()] == 0
    assert "aztags_snapshot_change_number" not in samples


# -- /changes.atom ---------------------------------------------------------------------------------


def read_feed(client, url="/changes.atom", **params):
    response = client.get(url, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "atom10"
    return feed


def test_changes_feed_has_an_entry_per_snapshot(store):
    client = client_for(store)
    feed = read_feed(client)
    assert feed.feed.title == "aztags: changes of Public service tags"
    titles = [e.title for e in feed.entries]
    assert titles == [
        "Public changeNumber 3, file of 2025-01-20: 2 tags changed, 1 prefix added, 1 removed",
        "Public changeNumber 2, file of 2025-01-13: 2 tags changed, 1 prefix added, 1 removed",
        "Public changeNumber 1, file of 2025-01-06: first snapshot stored",
    ]
    newest = feed.entries[0]
    content = newest.content[0].value
    assert "<b>New</b> (added); added 40.0.0.0/24" in content
    assert "<b>Storage</b> (changed); removed 10.0.0.0/16" in content
    assert "Gone" in feed.entries[1].content[0].value  # removed in changeNumber 2
    assert newest.published_parsed[:3] == (2025, 1, 20)
    assert newest.updated_parsed is not None
    # the entry's link answers: the diff between the two snapshots
    diff = client.get(newest.link)
    assert diff.status_code == 200
    assert (diff.json()["from"]["change_number"], diff.json()["to"]["change_number"]) == (2, 3)


def test_changes_feed_of_one_tag(store):
    client = client_for(store)
    feed = read_feed(client, tag="storage")
    assert feed.feed.title == "aztags: changes of Storage in Public"
    assert [e.title for e in feed.entries] == [
        "Storage: 0 prefixes added, 1 removed in Public changeNumber 3, file of 2025-01-20",
        "Storage: 1 prefix added, 0 removed in Public changeNumber 2, file of 2025-01-13",
        "Storage: 1 prefix added, 0 removed in Public changeNumber 1, file of 2025-01-06",
    ]
    assert "removed 10.0.0.0/16" in feed.entries[0].content[0].value
    diff = client.get(feed.entries[0].link).json()
    assert [t["name"] for t in diff["tags"]] == ["Storage"]


def test_changes_feed_of_a_removed_tag_says_so(store):
    feed = read_feed(client_for(store), tag="Gone")
    assert [e.title for e in feed.entries] == [
        "Gone: removed in Public changeNumber 2, file of 2025-01-13",
        "Gone: 1 prefix added, 0 removed in Public changeNumber 1, file of 2025-01-06",
    ]
    assert "removed 30.0.0.0/24" in feed.entries[0].content[0].value


def test_entry_ids_are_stable_across_servers_and_copies(store, tmp_path):
    copy = tmp_path / "replica.db"
    shutil.copy(store, copy)
    one = read_feed(client_for(store))
    other = read_feed(client_for(copy))
    ids = [e.id for e in one.entries]
    assert ids == [e.id for e in other.entries]
    assert len(set(ids)) == len(ids) and all(i.startswith("urn:uuid:") for i in ids)
    assert one.feed.id == other.feed.id
    tag_ids = [e.id for e in read_feed(client_for(store), tag="Storage").entries]
    assert not set(tag_ids) & set(ids)


def test_a_new_snapshot_adds_an_entry_and_keeps_the_others(tmp_path):
    folder = tmp_path / "store"
    db = build(folder, FILES[:2])
    client = client_for(db)
    old = read_feed(client)
    path = folder / "ServiceTags_Public_20250120.json"
    path.write_bytes(simple_snapshot(3, FILES[2][2]))
    import_into(db, [path])
    new = read_feed(client)
    assert [e.id for e in new.entries][1:] == [e.id for e in old.entries]
    assert new.entries[0].title.startswith("Public changeNumber 3")


def test_changes_feed_errors(store, tmp_path):
    client = client_for(store)
    assert client.get("/changes.atom", params={"tag": "NoSuchTag"}).status_code == 404
    assert client.get("/changes.atom", params={"cloud": "china"}).status_code == 503
    assert client.get("/changes.atom", params={"tag": ""}).status_code == 400


def test_atom_rendering_survives_hostile_text():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    entry = atom.Entry(
        id=atom.stable_id("x"),
        title="Tag\x00with <control> & \x1b[31m characters",
        updated=now,
        published=None,
        summary="s",
        content_html="<p>a</p>",
    )
    feed = atom.Feed(atom.stable_id("f"), "t", "s", now, "http://h/changes.atom", None, (entry,))
    parsed = feedparser.parse(atom.render(feed))
    assert not parsed.bozo, parsed.bozo_exception
    assert "<control> & " in parsed.entries[0].title


# -- on real data ----------------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.slow
def test_changes_feed_and_metrics_on_the_weekly_store(db):
    client = client_for(db)
    feed = read_feed(client)
    assert len(feed.entries) == 12
    assert feed.entries[0].title.startswith("Public changeNumber 259, file of 2023-06-19:")
    assert len({e.id for e in feed.entries}) == 12
    tag = read_feed(client, tag="AzureFrontDoor.Frontend")
    assert tag.entries and all("AzureFrontDoor.Frontend" in e.title for e in tag.entries)
    samples = scrape(client)
    assert samples["aztags_snapshot_change_number"][(("cloud", "china"),)] > 0


# -- a real server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_a_real_server_answers_metrics_atom_and_healthz(store, tmp_path):
    """``aztags serve`` under uvicorn: the request middleware counts, the feed parses."""
    port = free_port()
    home = tmp_path / "home"
    env = {
        **os.environ,
        "AZTAGS_DB": str(store),
        "XDG_CONFIG_HOME": str(home),
        "AZTAGS_MAX_AGE_DAYS": "36500",
    }
    for name in ("AZTAGS_CONFIG", "AZTAGS_CLOUD", "AZTAGS_PROFILES_DIR"):
        env.pop(name, None)
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):  # up to 20 s for the server to listen
            try:
                health = requests.get(f"{base}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                assert server.poll() is None, server.communicate()
                time.sleep(0.1)
        else:
            pytest.fail("aztags serve did not listen")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        feed = requests.get(f"{base}/changes.atom", params={"tag": "Storage"}, timeout=10)
        parsed = feedparser.parse(feed.content)
        assert not parsed.bozo and len(parsed.entries) == 3
        assert parsed.entries[0].link.startswith(f"{base}/v1/diff?")
        again = requests.get(
            f"{base}/changes.atom?tag=Storage",
            headers={"If-None-Match": feed.headers["etag"]},
            timeout=10,
        )
        assert again.status_code == 304
        text = requests.get(f"{base}/metrics", timeout=10).text
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        route = (("method", "GET"), ("route", "/changes.atom"))
        assert samples[("aztags_http_requests_total", (*route, ("status", "200")))] == 1
        assert samples[("aztags_http_requests_total", (*route, ("status", "304")))] == 1
        assert samples[("aztags_snapshot_change_number", (("cloud", "public"),))] == 3
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert "Traceback" not in err, err


def test_a_watchs_atom_feed_lists_its_alert_events(tmp_path):
    """/changes.atom?watch=NAME: the events the alerts outbox recorded for that watch."""
    from datetime import UTC, datetime

    import feedparser

    from cache.db import open_db
    from cache.store import SaveOptions
    from resolver.alerts.setup import Alerts
    from resolver.alerts.watches import Watch
    from resolver.ingest import RawFile
    from resolver.refresh import store_file
    from resolver.server.app import Settings, create_app
    from tests.helpers import simple_snapshot

    path = tmp_path / "w.db"
    conn = open_db(path)
    alerts = Alerts(
        watches=(Watch("sql", "public", ("ops",), tags=("Sql",)),),
        now=lambda: datetime(2026, 11, 30, tzinfo=UTC),
    )
    base = {"AzureCloud": [f"10.{i}.0.0/16" for i in range(10)], "Sql": ["20.0.0.0/16"]}
    for cn, tags in ((1, base), (2, {**base, "Sql": ["20.0.0.0/16", "20.1.0.0/16"]})):
        raw = RawFile(simple_snapshot(cn, tags), f"ServiceTags_Public_2025010{cn}.json")
        store_file(conn, raw, SaveOptions(), after_save=alerts.recorder())
    conn.close()
    client = TestClient(create_app(Settings(db=path)))
    answer = client.get("/changes.atom?watch=sql")
    assert answer.status_code == 200
    feed = feedparser.parse(answer.content)
    assert not feed.bozo and len(feed.entries) == 1
    entry = feed.entries[0]
    assert entry.title == "public/sql: Sql changed, +1 -0 prefixes (changeNumber 1 -> 2)"
    assert entry.id.startswith("urn:aztags:event:evt_") and "20.1.0.0/16" in entry.content[0].value
    again = client.get("/changes.atom?watch=sql", headers={"If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304
    other = feedparser.parse(client.get("/changes.atom?watch=nobody").content)
    assert other.entries == [] and "No alert event recorded" in other.feed.subtitle
    both = client.get("/changes.atom?watch=sql&tag=Sql")
    assert both.status_code == 400 and "not both" in both.json()["detail"]
