"""`aztags run` as a user runs it (issue 10): a real subprocess, a real local HTTP server whose
file changes between runs, a real webhook receiver verifying Standard Webhooks signatures with
the `standardwebhooks` package; SIGTERM, and SIGKILL at any point, lose nothing."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import DATA, ROOT, require_data, simple_snapshot
from tests.httpserver import LocalServer
from tests.receivers import Reply, WebhookReceiver

SECRET = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
PATH = "/mirror/ServiceTags_Public.json"
V1 = {"Sql": ["20.0.0.0/16"], "Storage.WestUS": ["10.0.0.0/24"], "AzureCloud": ["10.0.0.0/8"]}
V2 = {**V1, "Sql": ["20.0.0.0/16", "20.1.0.0/16"]}


def _config(folder: Path, source: str, hook: str, *, every: str = "1s", extra: str = "") -> Path:
    path = folder / "aztags.toml"
    path.write_text(
        f"""
[[refresh]]
cloud = "public"
every = "{every}"
source = "{source}"
fail_alert_after = 2

[[channel]]
name = "netops"
type = "webhook"
url = "{hook}"
secret = "env:AZTAGS_TEST_WEBHOOK_SECRET"
timeout = 1

[[watch]]
name = "sql"
tags = ["Sql"]
channels = ["netops"]

[alerts]
retry_delays = ["1s"]
round_wait = 3
{extra}
"""
    )
    return path


def _env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZTAGS_")}
    env.update(
        AZTAGS_DB=str(folder / "aztags.db"),
        AZTAGS_TEST_WEBHOOK_SECRET=SECRET,
        XDG_CONFIG_HOME=str(folder / "xdg"),
        PYTHONUNBUFFERED="1",
    )
    return env


def _aztags(config: Path, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "cli.py"), "--config", str(config), *args]


def _cmd(config: Path, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _aztags(config, *args), env=_env(folder), capture_output=True, text=True, timeout=60
    )


def _events(body: bytes) -> list[dict]:
    return json.loads(body)["data"]["events"]


def _wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.slow
def test_run_sends_a_signed_alert_when_the_file_changes_and_stops_on_sigterm(tmp_path):
    with LocalServer() as srv, WebhookReceiver(SECRET) as hook:
        srv.route(PATH, simple_snapshot(1, V1))
        config = _config(tmp_path, srv.url + PATH, hook.url)
        proc = subprocess.Popen(
            _aztags(config, "run"), env=_env(tmp_path), stderr=subprocess.PIPE, text=True
        )
        try:
            _wait_until(lambda: len(srv.requests_to(PATH)) >= 2, 15, "two scheduled fetches")
            assert hook.requests == []  # the first snapshot is a baseline
            srv.route(PATH, simple_snapshot(2, V2))
            [received] = hook.wait_for(1, timeout=15)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert received.verified, received.error  # standardwebhooks.Webhook(secret).verify
    assert received.headers["webhook-id"].startswith("msg_")
    [event] = _events(received.body)
    assert event["type"] == "servicetag.prefixes.changed" and event["watch"] == "sql"
    assert event["data"]["tags"] == [
        {"name": "Sql", "change": "changed", "added": ["20.1.0.0/16"], "removed": []}
    ]
    lines = stderr.splitlines()
    assert any("scheduler started: public every 1s" in line for line in lines), stderr
    assert any("refresh public: current changeNumber 2" in line for line in lines), stderr
    assert any("sent" in line and "netops" in line for line in lines), stderr
    assert lines[-1].endswith("aztags: stopped"), stderr
    assert SECRET not in stderr and "MDEyMzQ1" not in stderr


@pytest.mark.slow
def test_the_loop_survives_failing_fetches_and_says_so_once(tmp_path):
    with LocalServer() as srv, WebhookReceiver(SECRET) as hook:
        srv.route(PATH, simple_snapshot(1, V1))
        config = _config(tmp_path, srv.url + PATH, hook.url)
        assert _cmd(config, tmp_path, "run", "--once").returncode == 0
        srv.route(PATH, b"", status=500)
        proc = subprocess.Popen(
            _aztags(config, "run"), env=_env(tmp_path), stderr=subprocess.PIPE, text=True
        )
        try:
            [received] = hook.wait_for(1, timeout=20)
            _wait_until(lambda: len(srv.requests_to(PATH)) >= 5, 15, "more failed fetches")
            srv.route(PATH, simple_snapshot(2, V2))  # the server recovers: the loop goes on
            hook.wait_for(2, timeout=15)
        finally:
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    [failing] = _events(received.body)
    assert failing["type"] == "source.fetch_failing" and failing["data"]["failures"] == 2
    assert "refresh public failed (1 in a row)" in stderr
    assert [e["type"] for e in _events(hook.requests[1].body)] == ["servicetag.prefixes.changed"]
    assert len(hook.requests) == 2  # one "failing" event for the streak, not one per run


@pytest.mark.slow
def test_run_once_leaves_an_undelivered_alert_pending_and_a_later_round_sends_it(tmp_path):
    with LocalServer() as srv, WebhookReceiver(SECRET) as hook:
        srv.route(PATH, simple_snapshot(1, V1))
        config = _config(tmp_path, srv.url + PATH, hook.url)
        assert _cmd(config, tmp_path, "run", "--once").returncode == 0
        srv.route(PATH, simple_snapshot(2, V2))
        hook.script(503, 503, 503, 503)
        first = _cmd(config, tmp_path, "run", "--once")
        assert first.returncode == 0, first.stderr  # a pending alert does not fail the round
        pending = _cmd(config, tmp_path, "alerts", "list", "--pending", "--json")
        [doc] = json.loads(pending.stdout)
        delivery = doc["deliveries"][0]
        assert delivery["state"] == "pending" and delivery["attempts"] >= 2
        assert "503" in delivery["last_error"]
        time.sleep(1.1)
        second = _cmd(config, tmp_path, "run", "--once")
        assert second.returncode == 0, second.stderr
    ids = {r.headers["webhook-id"] for r in hook.requests}
    assert len(ids) == 1  # every attempt carried the same message id
    assert {e["id"] for r in hook.requests for e in _events(r.body)} == {doc["id"]}
    assert hook.requests[-1].verified
    listed = json.loads(_cmd(config, tmp_path, "alerts", "list", "--json").stdout)
    assert [d["state"] for d in listed[0]["deliveries"]] == ["sent"]


@pytest.mark.slow
def test_sigkill_mid_delivery_loses_nothing(tmp_path):
    with LocalServer() as srv, WebhookReceiver(SECRET) as hook:
        srv.route(PATH, simple_snapshot(1, V1))
        config = _config(tmp_path, srv.url + PATH, hook.url)
        assert _cmd(config, tmp_path, "run", "--once").returncode == 0
        srv.route(PATH, simple_snapshot(2, V2))
        hook.script(Reply(200, delay=30))  # holds the request: the process is mid-delivery
        proc = subprocess.Popen(
            _aztags(config, "run", "--once"), env=_env(tmp_path), stderr=subprocess.PIPE
        )
        hook.wait_for(1, timeout=20)
        proc.kill()
        proc.communicate(timeout=10)
        time.sleep(2.2)  # the killed attempt's lease (2 x timeout + 1 s)
        done = _cmd(config, tmp_path, "run", "--once")
        assert done.returncode == 0, done.stderr
        second = hook.wait_for(2, timeout=10)[1]
    assert second.verified
    assert second.headers["webhook-id"] == hook.requests[0].headers["webhook-id"]
    assert _events(second.body)[0]["data"]["tags"][0]["added"] == ["20.1.0.0/16"]


def _public(day: str) -> bytes:
    return gzip.decompress((DATA / "Public" / f"ServiceTags_Public_{day}.json.gz").read_bytes())


@pytest.mark.slow
@pytest.mark.realdata
def test_sigkill_at_any_point_of_a_round_loses_no_event(tmp_path):
    """A real weekly step (two published files): the round is killed at several points
    (during the download and ingest, between commit and delivery, mid-delivery); after the
    last run, the change is stored once and its alert was received, with the exact diff."""
    require_data()
    before, after = _public("20230306"), _public("20230313")
    with LocalServer() as srv, WebhookReceiver(SECRET) as hook:
        srv.route(PATH, before)
        config = _config(tmp_path, srv.url + PATH, hook.url, extra="")
        config.write_text(config.read_text().replace('tags = ["Sql"]', "all = true"))
        assert _cmd(config, tmp_path, "run", "--once").returncode == 0
        srv.route(PATH, after)
        hook.script(Reply(200, delay=0.3))
        for delay in (0.1, 0.4, 0.8, 1.2, 1.6, 2.0, 2.5):
            proc = subprocess.Popen(
                _aztags(config, "run", "--once"), env=_env(tmp_path), stderr=subprocess.DEVNULL
            )
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        time.sleep(2.2)  # a lease left by a kill mid-delivery
        done = _cmd(config, tmp_path, "run", "--once")
        assert done.returncode == 0, done.stderr
    snapshots = json.loads(_cmd(config, tmp_path, "snapshots", "--json").stdout)
    assert sorted(s["change_number"] for s in snapshots) == [
        json.loads(before)["changeNumber"],
        json.loads(after)["changeNumber"],
    ]
    received = [e for r in hook.requests for e in _events(r.body)]
    assert received and len({e["id"] for e in received}) == 1  # one event, maybe sent twice
    old = {v["name"]: set(v["properties"]["addressPrefixes"]) for v in json.loads(before)["values"]}
    new = {v["name"]: set(v["properties"]["addressPrefixes"]) for v in json.loads(after)["values"]}
    expected = {
        name: (
            new.get(name, set()) - old.get(name, set()),
            old.get(name, set()) - new.get(name, set()),
        )
        for name in old.keys() | new.keys()
        if new.get(name, set()) != old.get(name, set())
    }
    got = {t["name"]: (set(t["added"]), set(t["removed"])) for t in received[0]["data"]["tags"]}
    assert got == expected
    listed = json.loads(_cmd(config, tmp_path, "alerts", "list", "--json").stdout)
    assert [d["state"] for e in listed for d in e["deliveries"]] == ["sent"]


@pytest.mark.slow
def test_sigterm_during_a_refresh_lets_it_finish_and_store_the_file(tmp_path):
    with LocalServer() as srv, WebhookReceiver(SECRET) as hook:
        srv.route(PATH, simple_snapshot(1, V1), delay=2.0)  # a slow download
        config = _config(tmp_path, srv.url + PATH, hook.url, every="1h")
        proc = subprocess.Popen(
            _aztags(config, "run"), env=_env(tmp_path), stderr=subprocess.PIPE, text=True
        )
        _wait_until(lambda: srv.requests_to(PATH), 15, "the first fetch to start")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "received SIGTERM" in stderr and "refresh public: current changeNumber 1" in stderr
    assert stderr.index("received SIGTERM") < stderr.index("refresh public: current")
    snapshots = json.loads(_cmd(config, tmp_path, "snapshots", "--json").stdout)
    assert [s["change_number"] for s in snapshots] == [1]
