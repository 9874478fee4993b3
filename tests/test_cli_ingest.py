"""fetch --source, import, status and snapshots as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cli import COMMANDS, main
from tests.helpers import ROOT, real_path, simple_snapshot

A = {"Storage": ["10.0.0.0/16", "10.1.0.0/16"], "Storage.WestUS": ["10.0.0.0/24"]}


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("AZTAGS_DB", str(tmp_path / "cli.db"))
    monkeypatch.delenv("AZTAGS_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return invoke


def test_fetch_source_file_then_duplicate(run, tmp_path):
    path = tmp_path / "ServiceTags_Public_20250106.json"
    path.write_bytes(simple_snapshot(12, A))
    first = run("fetch", "--source", str(path))
    assert first.exit_code == 0, first.output
    assert (
        "Public: changeNumber 12 (2025-01-06): now current; 2 tags, 3 prefix entries"
        in first.stdout
    )
    second = run("fetch", "--source", str(path))
    assert second.exit_code == 0
    assert "already stored, nothing to do" in second.stdout


def test_fetch_source_stdin_json(run):
    result = run("fetch", "--source", "-", "--json", input=simple_snapshot(3, A))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["outcome"] == "current" and doc["snapshot"]["change_number"] == 3
    assert doc["snapshot"]["source"] == "-"


def test_fetch_source_for_the_wrong_cloud_exits_1_without_traceback(run, tmp_path):
    path = tmp_path / "x.json"
    path.write_bytes(simple_snapshot(3, A, cloud="China"))
    result = run("fetch", "--cloud", "public", "--source", str(path))
    assert result.exit_code == 1
    assert "is for cloud 'China', but 'Public' was requested" in result.stderr
    assert "Traceback" not in result.output


def test_fetch_source_html_exits_1(run, tmp_path):
    path = tmp_path / "page.json"
    path.write_text("<html><body>Download Center</body></html>")
    result = run("fetch", "--source", str(path))
    assert result.exit_code == 1
    assert "the body is HTML, not JSON" in result.stderr


def test_quarantine_exit_code_and_listing(run, tmp_path):
    big, small = (
        tmp_path / "ServiceTags_Public_20250106.json",
        tmp_path / "ServiceTags_Public_20250113.json",
    )
    big.write_bytes(simple_snapshot(1, {"T": [f"10.{i}.0.0/16" for i in range(10)]}))
    small.write_bytes(simple_snapshot(2, {"T": ["10.0.0.0/16"]}))
    assert run("import", str(big)).exit_code == 0
    result = run("import", str(small))
    assert result.exit_code == 5
    assert "QUARANTINED" in result.stdout
    assert "9 (90%) fewer than the current file" in result.stderr
    listing = run("snapshots", "--json")
    states = [(s["change_number"], s["state"]) for s in json.loads(listing.stdout)]
    assert states == [(1, "current"), (2, "QUARANTINED")]
    assert "9 (90%) fewer" in json.loads(listing.stdout)[1]["quarantine_reason"]
    assert "snapshot 2 is quarantined: it has 1 prefix entries" in run("snapshots").stderr
    forced = run("import", "--force", str(small))
    assert forced.exit_code == 0 and "now current" in forced.stdout


def test_import_folder_any_order_and_bad_file_reported(run, tmp_path):
    folder = tmp_path / "archive"
    folder.mkdir()
    (folder / "ServiceTags_Public_20250113.json").write_bytes(simple_snapshot(2, A))
    (folder / "ServiceTags_Public_20250106.json").write_bytes(simple_snapshot(1, A))
    (folder / "ServiceTags_Public_20250120.json").write_text('{"changeNumber": 3, "cloud"')
    result = run("import", str(folder))
    assert result.exit_code == 1
    assert "ServiceTags_Public_20250120.json" in result.stderr and "truncated" in result.stderr
    assert result.stdout.count("now current") == 2
    snaps = json.loads(run("snapshots", "--json").stdout)
    assert [s["change_number"] for s in snaps] == [1, 2]


def test_import_missing_path_exits_1(run):
    result = run("import", "nope/ServiceTags_Public_20250106.json", "nothing-*.json")
    assert result.exit_code == 1
    assert "no such file" in result.stderr and "matches no file" in result.stderr


def test_status_on_empty_store_says_run_fetch(run):
    result = run("status")
    assert result.exit_code == 3
    assert "Run 'aztags fetch'" in result.stderr


def test_status_reports_staleness_with_exit_4(run, tmp_path):
    path = tmp_path / "ServiceTags_Public_20250106.json"
    path.write_bytes(simple_snapshot(12, A))
    run("import", str(path))
    result = run("status", "--json")
    assert result.exit_code == 4
    doc = json.loads(result.stdout)
    (public,) = doc["clouds"]
    assert public["change_number"] == 12 and public["stale"] is True
    assert public["file_date"] == "2025-01-06" and public["tags"] == 2 and public["prefixes"] == 3
    fresh = run("status", "--max-age-days", "100000")
    assert fresh.exit_code == 0
    assert "Public" in fresh.stdout and "ok" in fresh.stdout


def test_config_file_sets_defaults_and_rejects_unknown_keys(run, tmp_path):
    path = tmp_path / "ServiceTags_Public_20250106.json"
    path.write_bytes(simple_snapshot(12, A))
    run("import", str(path))
    (tmp_path / "aztags.toml").write_text("max_age_days = 100000\n")
    assert run("status").exit_code == 0
    (tmp_path / "aztags.toml").write_text("max_age_dayz = 1\n")
    result = run("status")
    assert result.exit_code == 2
    assert "Unknown setting(s) in aztags.toml: max_age_dayz" in result.stderr


def test_every_command_has_help_with_an_example(run):
    for command in COMMANDS:
        result = run(command, "--help")
        assert result.exit_code == 0
        assert "Example" in result.stdout, command


@pytest.mark.realdata
def test_real_subprocess_import_all_four_clouds(tmp_path):
    files = [
        real_path("Public", "20250113"),
        real_path("AzureGovernment", "20241118"),
        real_path("China", "20241118"),
        real_path("AzureGermany", "20220307"),
    ]
    env = {**os.environ, "AZTAGS_DB": str(tmp_path / "all.db")}
    aztags = [sys.executable, str(ROOT / "cli.py")]
    done = subprocess.run(
        [*aztags, "import", *map(str, files)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("now current") == 4
    status = subprocess.run([*aztags, "status", "--json"], env=env, capture_output=True, text=True)
    assert status.returncode == 4  # the files are from 2022-2025
    clouds = {c["cloud"]: c for c in json.loads(status.stdout)["clouds"]}
    assert clouds["Public"]["prefixes"] == 86199
    assert clouds["AzureGermany"]["frozen"] and not clouds["AzureGermany"]["stale"]
    assert (
        "stale: Public" in status.stderr and "AzureGermany" not in status.stderr.split("stale:")[1]
    )


@pytest.mark.realdata
@pytest.mark.slow  # 71 files through a subprocess (started when the session starts: conftest.py)
def test_real_import_of_every_shared_file(every_file_import):
    done = every_file_import  # aztags import --json Public AzureGovernment China AzureGermany
    assert done.returncode == 0, done.stderr
    outcomes = [d["outcome"] for d in json.loads(done.stdout)]
    assert len(outcomes) == 71 and set(outcomes) == {"current"}


def test_readme_schema_matches_a_new_database(tmp_path):
    from cache.db import open_db

    conn = open_db(tmp_path / "schema.db")
    actual = "\n".join(
        sql + ";"
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
        )
    )
    readme = (ROOT / "README.md").read_text()
    documented = readme.split("<!-- schema:start -->")[1].split("<!-- schema:end -->")[0]
    documented = documented.strip().removeprefix("```sql").removesuffix("```").strip()
    assert documented == actual.strip(), "README schema is out of date: regenerate it from a new DB"


def test_allow_empty_stores_a_file_with_no_tags_and_only_then(run, tmp_path):
    path = tmp_path / "ServiceTags_AzureGermany_20220307.json"
    path.write_bytes(simple_snapshot(193, {}, cloud="AzureGermany"))
    refused = run("import", str(path))
    assert refused.exit_code == 1
    assert "empty" in refused.stderr and "--allow-empty" in refused.stderr
    assert run("snapshots").exit_code == 3  # nothing was stored
    accepted = run("import", "--allow-empty", str(path))
    assert accepted.exit_code == 0, accepted.output
    assert "AzureGermany" in run("snapshots").stdout


def test_a_file_named_for_an_unknown_cloud_is_a_file_error_and_the_rest_go_on(run, tmp_path):
    mars = tmp_path / "ServiceTags_Mars_20250106.json"
    mars.write_bytes(simple_snapshot(12, A))
    good = tmp_path / "ServiceTags_Public_20250113.json"
    good.write_bytes(simple_snapshot(13, A))
    done = run("import", str(mars), str(good))
    assert done.exit_code == 1
    assert "ServiceTags_Mars_20250106.json names cloud 'Mars'" in done.stderr
    assert (
        "Public: changeNumber 13" in done.stdout
        or "ServiceTags_Public_20250113.json" in done.stdout
    )


def test_import_names_a_fifo_as_not_a_regular_file(run, tmp_path):
    fifo = tmp_path / "ServiceTags_Public_20250106.json"
    os.mkfifo(fifo)
    done = run("import", str(fifo))
    assert done.exit_code == 1
    assert "not a regular file" in done.stderr


def test_an_unexpected_error_in_one_file_does_not_stop_the_others(run, tmp_path, monkeypatch):
    import resolver.refresh as refresh

    first = tmp_path / "ServiceTags_Public_20250106.json"
    first.write_bytes(simple_snapshot(12, A))
    second = tmp_path / "ServiceTags_Public_20250113.json"
    second.write_bytes(simple_snapshot(13, A))
    real_store = refresh.store_file

    def flaky(conn, raw, *args, **kwargs):
        if raw.source.endswith("20250106.json"):
            raise RuntimeError("disk on fire")
        return real_store(conn, raw, *args, **kwargs)

    monkeypatch.setattr(refresh, "store_file", flaky)
    done = run("import", str(first), str(second))
    assert done.exit_code == 1
    assert "unexpected error: RuntimeError: disk on fire" in done.stderr
    assert "Traceback" not in done.output
    assert "changeNumber 13" in done.stdout


@pytest.mark.slow
def test_import_of_several_files_shows_progress_on_a_terminal_only(tmp_path):
    # the bar is drawn on stderr when it is a terminal; piped, stderr carries no bar
    import pty

    for day, cn in (("20250106", 1), ("20250113", 2)):
        (tmp_path / f"ServiceTags_Public_{day}.json").write_bytes(simple_snapshot(cn, A))
    env = {**os.environ, "AZTAGS_DB": str(tmp_path / "tty.db"), "HOME": str(tmp_path)}
    env.pop("AZTAGS_CONFIG", None)
    aztags = [sys.executable, str(ROOT / "cli.py"), "import", str(tmp_path)]
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            aztags, env=env, stdout=subprocess.PIPE, stderr=follower, text=True, timeout=60
        )
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
    assert done.returncode == 0 and done.stdout.count("now current") == 2
    assert b"Importing" in drawn and drawn.rstrip().endswith(b"100%\x1b[?25h")
    env["AZTAGS_DB"] = str(tmp_path / "piped.db")
    piped = subprocess.run(aztags, env=env, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0 and "Importing" not in piped.stderr
