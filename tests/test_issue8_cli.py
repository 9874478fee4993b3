"""Issue 8, part B, as a user meets it: clouds, honest answers, diff --exit-code, lookup --json
and comments, fetch offline, import of a folder with other files.

Through click's CliRunner (stdout and stderr apart) against the query store of conftest.py (the 16
weekly Public files of 2023 and the China file of 2024-11-18, read-only), or a store of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from tests.helpers import ROOT, WEEKLY_2023

LATEST = WEEKLY_2023[-1]


def clean_env(db: Path | str, home: Path) -> dict[str, str | None]:
    return {
        "AZTAGS_DB": str(db),
        "XDG_CONFIG_HOME": str(home / "config"),
        "AZTAGS_CONFIG": None,
        "AZTAGS_CLOUD": None,
        "AZTAGS_PROFILES_DIR": None,
        "AZTAGS_MAX_AGE_DAYS": None,
    }


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
