"""Issue 8, part B, as a user meets it: clouds, honest answers, diff --exit-code, lookup --json
and comments, fetch offline, import of a folder with other files.

Through click's CliRunner (stdout and stderr apart) against the query store of conftest.py (the 16
weekly Public files of 2023 and the China file of 2024-11-18, read-only), or a store of its own.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from tests.helpers import ROOT, WEEKLY_2023, cli_env

LATEST = WEEKLY_2023[-1]


clean_env = functools.partial(cli_env, max_age_days=None)  # the warning is tested here


@pytest.fixture
def run(request, tmp_path, monkeypatch):
    """aztags ARGS... against the weekly store (``store=`` for another one)."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, store: Path | str | None = None):
        store = store or request.getfixturevalue("db")
        return runner.invoke(
            main, list(args), input=input, env=clean_env(store, tmp_path), catch_exceptions=False
        )

    return invoke


def aztags_process(*args: str, env: dict[str, str | None]) -> subprocess.CompletedProcess:
    """aztags ARGS... as a real process (where -v logs reach its own stderr)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AZTAGS_")}
    environ.update({k: v for k, v in env.items() if v is not None})
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- diff --exit-code ------------------------------------------------------------------------------


@pytest.mark.realdata
def test_diff_exit_code_is_6_when_something_changed_and_0_when_nothing_did(run):
    changed = run(
        "diff", "--from", "cn:246", "--to", "cn:247", "AzureCloud.westeurope", "--exit-code"
    )
    assert changed.exit_code == 6, changed.stderr
    assert "+ 20.33.2.0/24" in changed.stdout
    same = run("diff", "--from", "cn:247", "--to", "cn:247", "--exit-code")
    assert same.exit_code == 0, same.stderr
    assert "0 tags added, 0 removed, 0 changed" in same.stdout
    # without the flag, differences are not a failure: exit 0 as before
    plain = run("diff", "--from", "cn:246", "--to", "cn:247", "AzureCloud.westeurope")
    assert plain.exit_code == 0
    # an error keeps its own code, never 6
    bad = run("diff", "--exit-code", "NoSuchTag")
    assert bad.exit_code == 3


def test_exit_code_table_lists_6():
    from cli import ExitCode

    assert ExitCode.DIFFERENCES == 6
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "| 6 | differences found" in readme


# -- import of a folder with other files -----------------------------------------------------------


@pytest.mark.slow
def test_import_of_a_folder_counts_and_names_the_files_it_skips(tmp_path, monkeypatch):
    from tests.helpers import simple_snapshot

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "archive"
    folder.mkdir()
    (folder / "ServiceTags_Public_20250106.json").write_bytes(
        simple_snapshot(1, {"Storage": ["10.0.0.0/16"]})
    )
    (folder / "notes.txt").write_text("downloaded by hand\n")
    (folder / "public-20250113.json").write_bytes(simple_snapshot(2, {"Storage": ["10.0.0.0/16"]}))
    env = clean_env(tmp_path / "i.db", tmp_path)
    runner = CliRunner()
    quiet = runner.invoke(main, ["import", str(folder)], env=env, catch_exceptions=False)
    assert quiet.exit_code == 0, quiet.stderr
    assert quiet.stdout.splitlines()[-1] == (
        "1 file imported: 1 stored; 2 other files in the folder(s) skipped "
        "(not named ServiceTags_*.json[.gz]; -v lists them)"
    )
    assert "notes.txt" not in quiet.stderr  # the names only with -v
    loud = aztags_process("-v", "import", str(folder), env=env)  # -v logs: a real process
    skipped = [line for line in loud.stderr.splitlines() if line.startswith("aztags: Skipped ")]
    assert len(skipped) == 2
    assert any(line.startswith(f"aztags: Skipped {folder / 'notes.txt'}:") for line in skipped)
    assert "1 already stored; 2 other files" in loud.stdout
    doc = json.loads(
        runner.invoke(
            main, ["import", "--json", str(folder)], env=env, catch_exceptions=False
        ).stdout
    )
    assert [(Path(d["file"]).name, d["outcome"]) for d in doc] == [
        ("ServiceTags_Public_20250106.json", "duplicate"),
        ("notes.txt", "skipped"),
        ("public-20250113.json", "skipped"),
    ]


# -- fetch: offline, and --source without --cloud --------------------------------------------------

OFFLINE = ["--download-base", "http://127.0.0.1:1", "--details-base", "http://127.0.0.1:1/dl"]


@pytest.mark.slow
def test_fetch_all_offline_says_one_line_per_cloud_and_one_hint(tmp_path):
    env = clean_env(tmp_path / "f.db", tmp_path)
    done = aztags_process("fetch", "--cloud", "all", "--retries", "0", *OFFLINE, env=env)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert [line.split(":")[1].strip() for line in lines[:4]] == [
        "Public",
        "AzureGovernment",
        "China",
        "AzureGermany",
    ]
    assert all("could not find the current file" in line for line in lines[:4]), lines
    assert len(lines) == 5 and lines[4].startswith("aztags: hint: ")
    assert "aztags import FILE" in lines[4] and "--source FILE" in lines[4]
    assert "Traceback" not in done.stderr
    detailed = aztags_process("-v", "fetch", "--cloud", "all", "--retries", "0", *OFFLINE, env=env)
    assert "2. details page" in detailed.stderr  # every step, at -v
    assert detailed.stderr.count("aztags: hint: ") == 1


@pytest.mark.realdata
def test_fetch_source_without_cloud_reads_the_cloud_from_the_file(tmp_path, monkeypatch):
    from tests.helpers import CHINA_DAY, real_path

    monkeypatch.chdir(tmp_path)
    china = real_path("China", CHINA_DAY)
    env = clean_env(tmp_path / "c.db", tmp_path)
    runner = CliRunner()
    done = runner.invoke(main, ["fetch", "--source", str(china)], env=env, catch_exceptions=False)
    assert done.exit_code == 0, done.stderr
    assert done.stdout.startswith("China: changeNumber ")
    status = json.loads(runner.invoke(main, ["status", "--json"], env=env).stdout)
    assert [c["cloud"] for c in status["clouds"]] == ["China"]
    # a --cloud that disagrees with the file is refused, and nothing is stored
    wrong = runner.invoke(
        main, ["fetch", "--cloud", "usgov", "--source", str(china)], env=env, catch_exceptions=False
    )
    assert wrong.exit_code == 1
    assert "is for cloud 'China', but 'AzureGovernment' was requested" in wrong.stderr
    agreed = runner.invoke(
        main, ["fetch", "--cloud", "china", "--source", str(china)], env=env, catch_exceptions=False
    )
    assert agreed.exit_code == 0 and "already stored" in agreed.stdout
    # cloud = "all" in the environment (or a config file) is no reason to refuse either
    env_all = {**env, "AZTAGS_CLOUD": "all"}
    again = runner.invoke(main, ["fetch", "--source", str(china)], env=env_all)
    assert again.exit_code == 0 and "already stored" in again.stdout


# -- lookup --cloud all, --json snapshot, comments -------------------------------------------------

CHINA_ADDRESS = "40.73.81.5"  # Storage.ChinaEast2 in the China file of 2024-11-18
PUBLIC_ADDRESS = "20.38.96.1"  # Storage.CentralUS in the Public files of 2023


def fields_of(line: str) -> list[list[str]]:
    return [field.split(",") for field in line.split("\t")[1:]]


@pytest.mark.realdata
def test_lookup_cloud_all_names_the_cloud_of_every_match(run):
    from tests.helpers import CHINA_DAY, brute_lookup, raw_pairs

    result = run("lookup", CHINA_ADDRESS, PUBLIC_ADDRESS, "10.0.0.1", "--cloud", "all")
    assert result.exit_code == 0, result.stderr
    china, public, nowhere = result.stdout.splitlines()
    expected = brute_lookup(raw_pairs("China", CHINA_DAY), [CHINA_ADDRESS])[CHINA_ADDRESS]
    assert [(f[0], f[1], f[4]) for f in fields_of(china)] == [
        (tag, prefix, "China") for tag, prefix in expected
    ]
    latest = brute_lookup(raw_pairs("Public", LATEST), [PUBLIC_ADDRESS])[PUBLIC_ADDRESS]
    assert [(f[0], f[1], f[4]) for f in fields_of(public)] == [
        (tag, prefix, "Public") for tag, prefix in latest
    ]
    assert nowhere == "10.0.0.1"
    alone = run("lookup", "10.0.0.1", "--cloud", "all")
    assert alone.exit_code == 3
    assert "10.0.0.1 is in no service tag of any stored cloud (Public, China)" in alone.stderr


@pytest.mark.realdata
def test_lookup_cloud_all_json_and_file_agree(run, tmp_path):
    doc = json.loads(run("lookup", CHINA_ADDRESS, "--cloud", "all", "--json").stdout)
    assert [s["cloud"] for s in doc["snapshots"]] == ["Public", "China"]
    assert {m["cloud"] for m in doc["answers"][0]["tags"]} == {"China"}
    ips = tmp_path / "ips.txt"
    ips.write_text(f"# from the proxy log\n{CHINA_ADDRESS}\n\n{PUBLIC_ADDRESS}\n")
    text = run("lookup", "--file", str(ips), "--cloud", "all")
    assert text.exit_code == 0, text.stderr
    lines = text.stdout.split("\n")
    assert lines[0] == "# from the proxy log" and lines[2] == ""
    single = run("lookup", CHINA_ADDRESS, PUBLIC_ADDRESS, "--cloud", "all").stdout.splitlines()
    assert [lines[1], lines[3]] == single
    jl = run("lookup", "--file", str(ips), "--cloud", "all", "--json").stdout.splitlines()
    header = json.loads(jl[0])
    assert [s["cloud"] for s in header["snapshots"]] == ["Public", "China"]
    china = json.loads(jl[1])
    assert china["query"] == CHINA_ADDRESS and china["tags"] == doc["answers"][0]["tags"]


@pytest.mark.realdata
def test_lookup_json_names_its_snapshot_once(run, tmp_path):
    from tests.helpers import as_date, raw_cn

    doc = json.loads(run("lookup", PUBLIC_ADDRESS, "--json").stdout)
    snap = doc["snapshot"]
    assert (snap["cloud"], snap["change_number"], snap["file_date"]) == (
        "Public",
        raw_cn("Public", LATEST),
        as_date(LATEST).isoformat(),
    )
    assert doc["answers"][0]["query"] == PUBLIC_ADDRESS
    assert doc["answers"][0]["tags"][0]["tag"] == "AzureCloud"
    ips = tmp_path / "ips.txt"
    ips.write_text(f"{PUBLIC_ADDRESS}\n{PUBLIC_ADDRESS}\n")
    lines = run("lookup", "--file", str(ips), "--json", "--at", "cn:247").stdout.splitlines()
    header, *answers = map(json.loads, lines)
    assert header["snapshot"]["change_number"] == 247 and "query" not in header
    assert header["stale"] is None  # --at: a question about the past
    assert len(answers) == 2 and all("snapshot" not in a for a in answers)


@pytest.mark.realdata
def test_lookup_file_comments_pass_through_in_text_and_are_skipped_in_json(run, tmp_path):
    ips = tmp_path / "ips.txt"
    ips.write_text(f"# firewall log, 2023-06-19\n{PUBLIC_ADDRESS}\n\n#10.0.0.1\nnot-an-ip\n")
    text = run("lookup", "--file", str(ips))
    assert text.exit_code == 1  # the bad line, not the comments
    assert "1 line(s) were not addresses" in text.stderr
    out = text.stdout.split("\n")
    assert out[0] == "# firewall log, 2023-06-19"
    assert out[1].startswith(PUBLIC_ADDRESS + "\tAzureCloud,")
    assert out[2] == "" and out[3] == "#10.0.0.1"
    assert out[4].startswith("not-an-ip\terror: ")
    assert len(text.stdout.splitlines()) == 5  # output line N answers input line N
    jl = run("lookup", "--file", str(ips), "--json").stdout.splitlines()
    docs = [json.loads(line) for line in jl if line]
    assert [d.get("query") for d in docs] == [None, PUBLIC_ADDRESS, "not-an-ip"]


# -- honest answers: stale data, --at after today --------------------------------------------------


@pytest.mark.realdata
def test_lookup_from_a_stale_store_warns_once_on_stderr_and_in_json(run):
    from tests.helpers import raw_cn

    plain = run("lookup", PUBLIC_ADDRESS)
    assert plain.exit_code == 0
    warnings = plain.stderr.splitlines()
    cn = raw_cn("Public", LATEST)
    assert len(warnings) == 1 and warnings[0].startswith(
        f"aztags: warning: answered from stale data: Public changeNumber {cn} (2023-06-19, "
    )
    assert "older than 14 days" in warnings[0]
    assert plain.stdout == run("lookup", PUBLIC_ADDRESS, "--max-age-days", "100000").stdout
    assert run("lookup", PUBLIC_ADDRESS, "--max-age-days", "100000").stderr == ""
    stale = json.loads(run("lookup", PUBLIC_ADDRESS, "--json").stdout)["stale"]
    assert stale["cloud"] == "Public" and stale["max_age_days"] == 14 and stale["age_days"] > 1000
    past = run("lookup", PUBLIC_ADDRESS, "--at", "2023-06-19")
    assert past.exit_code == 0 and past.stderr == ""  # a question about the past


@pytest.mark.realdata
def test_at_after_today_is_a_usage_error_and_after_the_newest_file_says_so(run):
    from datetime import UTC, datetime, timedelta

    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    future = run("lookup", PUBLIC_ADDRESS, "--at", tomorrow)
    assert future.exit_code == 2 and future.stdout == ""
    assert f"--at {tomorrow} is after today" in future.stderr
    tags = run("tags", "--at", "2999-01-01")
    assert tags.exit_code == 2 and "is after today" in tags.stderr
    diff = run("diff", "--to", "2999-01-01")
    assert diff.exit_code == 2 and "is after today" in diff.stderr
    later = run("lookup", PUBLIC_ADDRESS, "--at", "2024-01-01")
    assert later.exit_code == 0
    assert later.stdout == run("lookup", PUBLIC_ADDRESS, "--max-age-days", "100000").stdout
    assert later.stderr.startswith(
        "aztags: note: --at 2024-01-01 is after the newest stored file (Public 2023-06-19, "
    )
    assert "warning" not in later.stderr  # one note, not the stale warning too


# -- clouds: a region, a tag or an address of another stored cloud ---------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("profile", "show", "azureml", "--region", "chinaeast2"),
            "chinaeast2 is a region of the China cloud; add --cloud china.",
        ),
        (
            ("cidrs", "Storage", "--region", "China East 2"),
            "China East 2 is a region of the China cloud; add --cloud china.",
        ),
        (
            ("tags", "--region", "chinanorth2"),
            "chinanorth2 is a region of the China cloud; add --cloud china.",
        ),
        (
            ("cidrs", "AzureCloud.chinaeast2"),
            "AzureCloud.chinaeast2 is a tag of the China cloud; add --cloud china.",
        ),
        (
            ("lookup", CHINA_ADDRESS),
            f"{CHINA_ADDRESS} is in no Public service tag, but in the China cloud: add --cloud "
            "china (or --cloud all).",
        ),
    ],
)
def test_a_name_of_another_stored_cloud_says_which_cloud(run, args, message):
    result = run(*args)
    assert result.exit_code == 3, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.realdata
def test_a_name_of_no_stored_cloud_gets_no_cloud_hint(run):
    region = run("cidrs", "Storage", "--region", "marsnorth")
    assert region.exit_code == 3 and "Unknown region 'marsnorth'" in region.stderr
    assert "--cloud" not in region.stderr
    # a tag this cloud had at another time is not sent to another cloud
    before = run("cidrs", "AzureManagedGrafana", "--at", "2023-03-06")
    assert before.exit_code == 3 and "Unknown service tag" in before.stderr
    assert "--cloud" not in before.stderr
    china = run("cidrs", "Storage", "--region", "westeurope", "--cloud", "china")
    assert china.exit_code == 3
    assert "westeurope is a region of the Public cloud; add --cloud public." in china.stderr


@pytest.mark.realdata
def test_max_age_days_from_the_config_file_reaches_lookup(run, tmp_path):
    (tmp_path / "aztags.toml").write_text("max_age_days = 100000\n")  # run's working folder
    quiet = run("lookup", PUBLIC_ADDRESS)
    assert quiet.exit_code == 0 and quiet.stderr == ""
    (tmp_path / "aztags.toml").write_text("max_age_days = 10\n")
    assert "older than 10 days" in run("lookup", PUBLIC_ADDRESS).stderr


@pytest.mark.realdata
@pytest.mark.parametrize(
    "args",
    [
        ("cidrs", "Storage.WestEurope"),
        ("tags", "--service", "Storage"),
        ("profile", "show", "azureml", "--region", "westeurope"),
    ],
)
def test_forward_queries_from_a_stale_store_warn_once_and_say_so_in_json(run, args):
    text = run(*args)
    assert text.exit_code == 0, text.stderr
    assert text.stderr.count("answered from stale data: Public") == 1
    doc = json.loads(run(*args, "--json").stdout)
    assert doc["stale"]["cloud"] == "Public" and doc["stale"]["age_days"] > 1000
    past = run(*args, "--at", "2023-06-19")  # a question about the past: no warning
    assert "stale" not in past.stderr
    assert run(*args, "--max-age-days", "100000").stderr.count("stale") == 0
