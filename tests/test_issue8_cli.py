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
