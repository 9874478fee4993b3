"""Issue 8, part B, as a user meets it: clouds, honest answers, diff --exit-code, lookup --json
and comments, fetch offline, import of a folder with other files.

Through click's CliRunner (stdout and stderr apart) against the query store of conftest.py (the 16
weekly Public files of 2023 and the China file of 2024-11-18, read-only), or a store of its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from tests.helpers import WEEKLY_2023

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
