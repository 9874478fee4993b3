"""The API's answers on their own timeline per cloud: imported as az / PowerShell output, read
with --source api by every --at query, diff, history, status and snapshots; and `aztags
reconcile`, the newest file against the newest API answer."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli import main
from tests.apishapes import api_answer, az_output, changed, powershell_output
from tests.helpers import cli_env, snapshot_bytes, tag_json

FILE_TAGS = [
    tag_json("AzureCloud", ["10.0.0.0/8"]),
    tag_json("Storage", ["10.1.0.0/16", "10.2.0.0/16"], service="AzureStorage"),
    tag_json(
        "Storage.WestUS", ["10.1.0.0/16"], region="westus", region_id=1, service="AzureStorage"
    ),
    tag_json("Sql", ["20.0.0.0/16"], features=None),  # null: in the file only (not in the API)
]
FILE_DOC = {"changeNumber": 12, "cloud": "Public", "values": FILE_TAGS}
IN_API = {**FILE_DOC, "values": [t for t in FILE_TAGS if t["name"] != "Sql"]}
# cn 63: the API has not applied 10.2.0.0/16 yet, still applies 10.3.0.0/16, and has a tag
# the file lacks; cn 64 has caught up with the file.
OLDER = changed(api_answer(IN_API, "63"), "Storage", add=["10.3.0.0/16"], remove=["10.2.0.0/16"])
API_ONLY = {**FILE_DOC, "values": [tag_json("ApiOnly", ["30.0.0.0/24"])]}
OLDER["values"] += api_answer(API_ONLY, "63")["values"]
NEWER = api_answer(IN_API, "64")


@pytest.fixture
def run(tmp_path, monkeypatch):
    env = cli_env(tmp_path / "t.db", tmp_path)
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str, max_age: str | None = "36500"):
        return CliRunner(env={**env, "AZTAGS_MAX_AGE_DAYS": max_age}).invoke(main, list(args))

    return invoke


@pytest.fixture
def files(tmp_path):
    (tmp_path / "ServiceTags_Public_20250106.json").write_bytes(snapshot_bytes(12, FILE_TAGS))
    (tmp_path / "az-63.json").write_bytes(az_output(OLDER))
    (tmp_path / "ps-64.json").write_bytes(powershell_output(NEWER))
    return tmp_path


def test_az_and_powershell_output_are_stored_as_api_answers(run, files):
    stored = run("import", "ServiceTags_Public_20250106.json", "az-63.json")
    assert stored.exit_code == 0, stored.stderr
    assert "az-63.json: Public@api: changeNumber 63: now current; 4 tags" in stored.stdout
    fetched = run("fetch", "--source", "ps-64.json", "--cloud", "public")
    assert fetched.exit_code == 0, fetched.stderr
    assert fetched.stdout.startswith("Public@api: changeNumber 64: now current;")
    api = run("snapshots", "--source", "api", "--json")
    assert [(s["cloud"], s["change_number"], s["file_date"]) for s in json.loads(api.stdout)] == [
        ("Public@api", 63, None),
        ("Public@api", 64, None),
    ]
    files_only = json.loads(run("snapshots", "--json").stdout)
    assert [(s["cloud"], s["change_number"]) for s in files_only] == [("Public", 12)]


def test_queries_read_the_timeline_asked_and_say_so(run, files):
    run("import", "ServiceTags_Public_20250106.json", "az-63.json", "ps-64.json")
    now = run("cidrs", "Storage", "--source", "api")
    assert now.stdout.split() == ["10.1.0.0/16", "10.2.0.0/16"]
    assert "answered from the Public Discovery API (Public@api): changeNumber 64" in now.stderr
    then = run("cidrs", "Storage", "--source", "api", "--at", "cn:63", "--json")
    doc = json.loads(then.stdout)
    assert doc["snapshot"]["cloud"] == "Public@api" and doc["snapshot"]["change_number"] == 63
    assert run("cidrs", "Storage").stdout.split() == ["10.1.0.0/16", "10.2.0.0/16"]
    assert "Discovery API" not in run("cidrs", "Storage").stderr  # the file: the default
    # lookup: the old API answer still applied 10.3.0.0/16; no file ever had it
    found = run("lookup", "10.3.0.1", "--source", "api", "--at", "cn:63")
    assert found.exit_code == 0 and "Storage,10.3.0.0/16" in found.stdout
    assert "Storage" not in run("lookup", "10.3.0.1").stdout  # only AzureCloud, in the file
    assert "Storage" not in run("lookup", "10.3.0.1", "--source", "api").stdout  # gone by 64
    tags = run("tags", "--source", "api", "--json")
    assert "ApiOnly" not in {t["name"] for t in json.loads(tags.stdout)["tags"]}
    assert run("tags", "--source", "API").exit_code == 0  # any case
    assert run("tags", "--source", "cloud").exit_code == 2


def test_diff_and_history_on_the_api_timeline(run, files):
    run("import", "ServiceTags_Public_20250106.json", "az-63.json", "ps-64.json")
    diff = run("diff", "--source", "api", "Storage")
    assert diff.exit_code == 0, diff.stderr
    assert diff.stdout.startswith("Public@api: changeNumber 63 (-) -> 64 (-)")
    assert "+ 10.2.0.0/16" in diff.stdout and "- 10.3.0.0/16" in diff.stdout
    assert run("diff").exit_code == 3  # one file only
    history = run("history", "Storage", "--source", "api", "--json")
    versions = json.loads(history.stdout)["versions"]
    assert [v["snapshot"]["cloud"] for v in versions] == ["Public@api", "Public@api"]
    assert "answered from the Public Discovery API" in history.stderr
    spans = run("history", "10.3.0.0/16", "--source", "api")
    assert spans.exit_code == 0 and "Public@api" in spans.stdout
    assert "Storage" not in run("history", "10.3.0.0/16").stdout


def test_status_shows_the_newest_file_and_the_newest_api_answer(run, files):
    run("import", "ServiceTags_Public_20250106.json", "ps-64.json")
    text = run("status", max_age="14")
    assert text.exit_code == 4  # the file (2025-01-06) is old: the default judges the file
    rows = {line.split()[0]: line for line in text.stdout.splitlines()[1:]}
    assert set(rows) == {"Public", "Public@api"}
    assert "2025-01-06" in rows["Public"] and "STALE" in rows["Public"]
    assert "ok" in rows["Public@api"]  # dated by the day it was fetched
    api = run("status", "--source", "api", "--json", max_age="14")
    assert api.exit_code == 0
    doc = json.loads(api.stdout)
    assert [(c["timeline"], c["file_date"]) for c in doc["clouds"]] == [("Public@api", None)]
    assert [c["timeline"] for c in doc["alongside"]] == ["Public"]


def test_status_of_a_timeline_with_nothing_says_which_has(run, files):
    run("import", "az-63.json")
    result = run("status")
    assert result.exit_code == 3
    assert "Only Discovery API answers are stored: add --source api." in result.stderr
    assert run("status", "--source", "api").exit_code == 0
    assert run("cidrs", "Storage", "--source", "api").exit_code == 0
    empty = run("cidrs", "Storage")
    assert empty.exit_code == 3 and "No Public snapshot is stored yet" in empty.stderr


def test_reconcile_splits_announced_from_withdrawn(run, files):
    run("import", "ServiceTags_Public_20250106.json", "az-63.json")
    result = run("reconcile", "--cloud", "public")
    assert result.exit_code == 6, result.stderr
    out = result.stdout
    assert out.startswith(
        "Public: file changeNumber 12 (2025-01-06) vs Discovery API changeNumber 63 (fetched "
    )
    assert "in the API only (1): ApiOnly" in out
    assert "+ 10.2.0.0/16  (in the file, not yet in the API)" in out
    assert "- 10.3.0.0/16  (in the API, no longer in the file)" in out
    assert "1 more in the file only, as their networkFeatures (no API) say" in out
    doc = json.loads(run("reconcile", "--json").stdout)
    (public,) = doc["clouds"]
    assert public["differs"] and public["file_only_expected"] == ["Sql"]
    assert public["tags"] == [
        {"name": "Storage", "announced": ["10.2.0.0/16"], "withdrawing": ["10.3.0.0/16"]}
    ]
    assert public["only_in_api"] == ["ApiOnly"] and public["only_in_file"] == []


def test_reconcile_when_the_api_caught_up_and_when_something_is_missing(run, files):
    run("import", "ps-64.json")
    missing = run("reconcile", "--cloud", "public")
    assert missing.exit_code == 3 and "no Public file" in missing.stderr
    assert run("reconcile").exit_code == 3  # no cloud has both
    run("import", "ServiceTags_Public_20250106.json")
    same = run("reconcile")
    assert same.exit_code == 0, same.stdout
    assert "the same: 0 tags differ" in same.stdout
    china = run("reconcile", "--cloud", "china")
    assert china.exit_code == 3 and "no China Discovery API answer" in china.stderr
    germany = run("reconcile", "--cloud", "germany")
    assert germany.exit_code == 3 and "Microsoft Cloud Germany closed" in germany.stderr


def test_watches_follow_the_file_and_an_api_answer_raises_none(run, files):
    (files / "aztags.toml").write_text('[[watch]]\nname = "all"\nall = true\n')
    assert run("import", "ServiceTags_Public_20250106.json").exit_code == 0
    assert run("import", "az-63.json", "ps-64.json").exit_code == 0
    newer = snapshot_bytes(13, [*FILE_TAGS, tag_json("New", ["40.0.0.0/24"])])
    (files / "ServiceTags_Public_20250113.json").write_bytes(newer)
    assert run("import", "ServiceTags_Public_20250113.json").exit_code == 0
    events = json.loads(run("alerts", "list", "--json").stdout)
    assert [e["cloud"] for e in events] == ["public"]  # the file's change only


def test_export_and_profile_show_read_the_timeline_asked(run, files):
    run("import", "ServiceTags_Public_20250106.json", "az-63.json")
    api = run("export", "Storage", "--format", "plain", "--source", "api")
    assert api.exit_code == 0, api.stderr
    assert api.stdout.split() == ["10.1.0.0/16", "10.3.0.0/16"]  # the API's, not the file's
    assert "answered from the Public Discovery API" in api.stderr
    assert run("export", "Storage", "--format", "plain").stdout.split() == [
        "10.1.0.0/16",
        "10.2.0.0/16",
    ]
    china = run("profile", "show", "azureml", "--cloud", "china", "--source", "api")
    assert china.exit_code == 3
    assert "No China Discovery API answer is stored yet" in china.stderr
