"""`aztags fetch` end to end against a real local Download Center: discovery, ETag, errors."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cli import main
from resolver.clouds import get_cloud
from resolver.errors import FetchError
from tests.helpers import ROOT, real_path, simple_snapshot
from tests.httpserver import LocalServer

PUBLIC = get_cloud("public")


def details_page(file_url: str) -> bytes:
    return f"""<!DOCTYPE html><html><head><script>
      var AcOEt_DownloadUrl = "{file_url}";
    </script></head><body><h1>Azure IP Ranges and Service Tags - Public Cloud</h1>
    <p>Version: 2025.01.13</p></body></html>""".encode()


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("AZTAGS_DB", str(tmp_path / "fetch.db"))
    monkeypatch.delenv("AZTAGS_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def fetch(server: LocalServer, *args: str):
    return CliRunner().invoke(
        main,
        [
            "fetch",
            "--download-base",
            server.url,
            "--details-base",
            server.url + "/en-us/download",
            "--retries",
            "0",
            "--timeout",
            "2",
            *args,
        ],
        catch_exceptions=False,
    )


def test_fetch_discovers_downloads_then_uses_etag(env):
    body = simple_snapshot(42, {"Storage": ["10.0.0.0/16"], "Sql": ["20.0.0.0/8"]})
    with LocalServer() as srv:
        path = "/download/files/ServiceTags_Public_20250113.json"
        srv.route(path, body, headers={"ETag": '"v42"'})
        srv.route(
            f"/en-us/download/details.aspx?id={PUBLIC.download_id}",
            details_page(srv.url + path),
            content_type="text/html",
        )
        first = fetch(srv)
        assert first.exit_code == 0, first.output
        assert (
            "Public: changeNumber 42 (2025-01-13): now current; 2 tags, 2 prefix entries"
            in first.stdout
        )
        second = fetch(srv)
        assert second.exit_code == 0
        assert "unchanged since the last fetch" in second.stdout
        downloads = srv.requests_to(path)
        assert downloads[-1].headers.get("if-none-match") == '"v42"'
    snaps = json.loads(CliRunner().invoke(main, ["snapshots", "--json"]).stdout)
    assert len(snaps) == 1 and snaps[0]["etag"] == '"v42"'
    assert snaps[0]["source"].endswith("ServiceTags_Public_20250113.json")


def test_fetch_when_every_step_fails_names_each_step(env):
    with LocalServer() as srv:  # answers 404 to everything
        result = fetch(srv)
    assert result.exit_code == 1
    for step in ("1.", "2.", "3.", "4."):
        assert step in result.stderr
    assert "Traceback" not in result.output


def test_fetch_of_a_truncated_file_keeps_the_previous_state(env):
    good = simple_snapshot(1, {"Storage": ["10.0.0.0/16"]})
    newer = simple_snapshot(2, {"Storage": ["10.0.0.0/16", "10.1.0.0/16"]})
    with LocalServer() as srv:
        path = "/download/x/ServiceTags_Public_20250113.json"
        srv.route(path, good)
        srv.route(
            f"/en-us/download/details.aspx?id={PUBLIC.download_id}", details_page(srv.url + path)
        )
        assert fetch(srv).exit_code == 0
        srv.route(path, newer, truncate_at=len(newer) // 2)
        result = fetch(srv)
    assert result.exit_code == 1
    assert "truncated" in result.stderr
    status = json.loads(CliRunner().invoke(main, ["status", "--json"]).stdout)
    assert status["clouds"][0]["change_number"] == 1


def test_fetch_html_instead_of_json(env):
    with LocalServer() as srv:
        path = "/download/x/ServiceTags_Public_20250113.json"
        srv.route(path, b"<html><body>Sign in to the proxy</body></html>", content_type="text/html")
        srv.route(
            f"/en-us/download/details.aspx?id={PUBLIC.download_id}", details_page(srv.url + path)
        )
        result = fetch(srv)
    assert result.exit_code == 1
    assert "HTML" in result.stderr


@pytest.mark.realdata
def test_real_file_fetched_by_a_subprocess_through_the_stable_folder(tmp_path):
    """The installed command, a real Public file, discovery step 1 (probe the stable folder)."""
    data = gzip.decompress(real_path("Public", "20250113").read_bytes())
    with LocalServer() as srv:
        # the probe walks back from today's Monday; answer for every recent Monday
        from datetime import date, timedelta

        today = date.today()
        monday = today - timedelta(days=today.weekday())
        for weeks in range(5):
            day = (monday - timedelta(weeks=weeks)).strftime("%Y%m%d")
            srv.route(
                PUBLIC.folder + PUBLIC.file_name(day), data, status=200 if weeks == 1 else 404
            )
        env = {
            **os.environ,
            "AZTAGS_DB": str(tmp_path / "p.db"),
            "AZTAGS_DOWNLOAD_BASE": srv.url,
            "AZTAGS_DETAILS_BASE": srv.url,
        }
        done = subprocess.run(
            [sys.executable, str(ROOT / "cli.py"), "fetch", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["outcome"] == "current"
    assert doc["snapshot"]["change_number"] == 341 and doc["snapshot"]["prefix_count"] == 86199
    assert doc["snapshot"]["file_date"] == str(monday - timedelta(weeks=1))


@pytest.mark.slow
def test_a_quarantined_download_stays_reported_until_forced(env):
    big = simple_snapshot(1, {"T": [f"10.{i}.0.0/16" for i in range(10)]})
    small = simple_snapshot(2, {"T": ["10.0.0.0/16"]})
    with LocalServer() as srv:
        details = f"/en-us/download/details.aspx?id={PUBLIC.download_id}"
        first = "/download/x/ServiceTags_Public_20250106.json"
        second = "/download/x/ServiceTags_Public_20250113.json"
        srv.route(first, big, headers={"ETag": '"big"'})
        srv.route(details, details_page(srv.url + first))
        assert fetch(srv).exit_code == 0
        srv.route(second, small, headers={"ETag": '"small"'})
        srv.route(details, details_page(srv.url + second))
        dropped = fetch(srv)
        assert dropped.exit_code == 5 and "QUARANTINED" in dropped.stdout
        again = fetch(srv)  # the server answers 304: nothing new, but still not accepted
        assert srv.requests_to(second)[-1].headers.get("if-none-match") == '"small"'
        assert again.exit_code == 5 and "still quarantined" in again.stderr
        forced = fetch(srv, "--force")
        assert forced.exit_code == 0 and "now current" in forced.stdout
    status = json.loads(CliRunner().invoke(main, ["status", "--json"]).stdout)
    assert status["clouds"][0]["change_number"] == 2


# --------------------------------------------------------------------------------------------
# Flags are checked at the flag (issue 7)


@pytest.mark.parametrize("flag", ["--timeout", "--connect-timeout", "--deadline"])
@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "-inf", "1e300", "abc"])
@pytest.mark.parametrize("command", ["fetch", "import"])
def test_a_time_that_is_not_a_number_of_seconds_is_a_usage_error(env, flag, value, command):
    args = [command, f"{flag}={value}"] + (["x.json"] if command == "import" else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{flag}'" in result.stderr
    assert "Traceback" not in result.output
    assert not (env / "fetch.db").exists()  # nothing was opened


def test_a_bad_time_from_the_environment_is_a_usage_error(env, monkeypatch):
    monkeypatch.setenv("AZTAGS_DEADLINE", "nan")
    result = CliRunner().invoke(main, ["fetch"])
    assert result.exit_code == 2 and "Invalid value for '--deadline'" in result.stderr


def test_connect_timeout_and_deadline_reach_the_download(env, monkeypatch):
    seen = {}

    def fake_refresh(conn, cloud, http, options, **kw):
        seen["http"] = http
        raise FetchError("stop here")

    monkeypatch.setattr("resolver.refresh.refresh_cloud", fake_refresh)
    result = CliRunner().invoke(
        main, ["fetch", "--connect-timeout", "2.5", "--deadline", "42", "--timeout", "7"]
    )
    assert result.exit_code == 1 and "stop here" in result.stderr
    http = seen["http"]
    assert (http.connect_timeout, http.deadline, http.read_timeout) == (2.5, 42.0, 7.0)


# --------------------------------------------------------------------------------------------
# Secrets and redirects, as a user sees them (a real process: -v logs go to its stderr)


def _aztags(*args: str, db, verbose: bool = False) -> subprocess.CompletedProcess:
    """The installed command in its own process (with -vv: every log line on its stderr)."""
    environ = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    environ.pop("AZTAGS_CONFIG", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *(["-vv"] if verbose else []), *args],
        env={**environ, "AZTAGS_DB": str(db)},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_credentials_and_signatures_in_a_source_url_are_never_shown(tmp_path):
    body = simple_snapshot(42, {"Storage": ["10.0.0.0/16"]})
    db = tmp_path / "s.db"
    with LocalServer() as srv:
        srv.route("/f/ServiceTags_Public_20250113.json", body)
        host = srv.url.removeprefix("http://")
        url = f"http://reader:Pa55word@{host}/f/ServiceTags_Public_20250113.json?sv=1&sig=S1GNED"
        stored = _aztags("fetch", "--source", url, db=db, verbose=True)
        missing = _aztags("fetch", "--source", url.replace("/f/", "/gone/"), db=db, verbose=True)
    listed = _aztags("snapshots", db=db)
    as_json = _aztags("snapshots", "--json", db=db)
    assert stored.returncode == 0, stored.stderr
    assert "Downloaded" in stored.stderr  # the -v log is there, redacted
    assert missing.returncode == 1 and "404" in missing.stderr
    shown = f"http://***@{host}/f/ServiceTags_Public_20250113.json?***"
    assert shown in listed.stdout
    assert json.loads(as_json.stdout)[0]["source"] == shown
    everything = stored.stdout + stored.stderr + missing.stderr + listed.stdout + as_json.stdout
    for secret in ("Pa55word", "reader", "S1GNED", "sv=1"):
        assert secret not in everything


@pytest.mark.slow
def test_a_proxy_password_is_never_shown(tmp_path):
    environ = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    environ["HTTP_PROXY"] = "http://bob:Hunter22@127.0.0.1:1"  # nothing listens on port 1
    done = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "-vv", "fetch", "--retries", "0", "--db",
         str(tmp_path / "p.db"), "--source", "http://azure.invalid/ServiceTags_Public_20250113.json"],
        env=environ, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1 and "proxy" in done.stderr
    assert "Hunter22" not in done.stderr and "bob" not in done.stderr


@pytest.mark.slow
def test_a_redirect_is_logged_and_the_file_date_is_the_final_names(tmp_path):
    body = simple_snapshot(42, {"Storage": ["10.0.0.0/16"]})
    db = tmp_path / "r.db"
    with LocalServer() as srv:
        srv.route(
            "/latest/ServiceTags_Public_20250106.json",
            status=302,
            headers={"Location": "/files/ServiceTags_Public_20250113.json?sig=S1GNED"},
        )
        srv.route("/files/ServiceTags_Public_20250113.json", body)
        latest = srv.url + "/latest/ServiceTags_Public_20250106.json"
        done = _aztags("fetch", "--source", latest, db=db, verbose=True)
    assert done.returncode == 0, done.stderr
    assert "changeNumber 42 (2025-01-13): now current" in done.stdout
    base = latest.removesuffix("/latest/ServiceTags_Public_20250106.json")
    assert (
        f"Redirected from {latest} to {base}/files/ServiceTags_Public_20250113.json?***"
    ) in done.stderr
    assert "S1GNED" not in done.stderr


# --------------------------------------------------------------------------------------------
# Files that must not be waited on or stored


@pytest.mark.slow
def test_fetch_source_of_a_fifo_is_refused_at_once(env):
    fifo = env / "ServiceTags_Public_20250113.json"
    os.mkfifo(fifo)
    done = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "fetch", "--source", str(fifo)],
        env={**os.environ, "AZTAGS_DB": str(env / "fifo.db")},
        capture_output=True,
        text=True,
        timeout=60,  # blocked forever before
    )
    assert done.returncode == 1
    assert "is a named pipe (FIFO), not a regular file" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_empty_file_is_refused_even_with_force(env):
    good = env / "good.json"
    good.write_bytes(simple_snapshot(1, {"Storage": ["10.0.0.0/16"]}))
    assert CliRunner().invoke(main, ["fetch", "--source", str(good)]).exit_code == 0
    empty = env / "empty.json"
    empty.write_bytes(json.dumps({"changeNumber": 2, "cloud": "Public", "values": []}).encode())
    before = (env / "fetch.db").read_bytes()
    result = CliRunner().invoke(main, ["fetch", "--force", "--source", str(empty)])
    assert result.exit_code == 1
    assert "an empty file is never plausible" in result.stderr
    status = json.loads(CliRunner().invoke(main, ["status", "--json"]).stdout)
    assert status["clouds"][0]["change_number"] == 1 and status["clouds"][0]["tags"] == 1
    assert (env / "fetch.db").read_bytes() == before
